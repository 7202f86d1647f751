/**
 * Forward secrecy over the real MQTT path: the device agent, the fog gateway and the CSP backend in
 * process on the embedded ledger. A relay broker between device and fog (a fog, or anyone on the
 * device's network, in the attacker's seat) records every envelope and can replace the Confirm.
 *
 * - A recorded session + the ledger + d_c + w + the device's later state file cannot give the
 *   traffic key K_i (every key the attacker can form fails to open the recorded frames).
 * - A Confirm without E_C (the paper's bare frame under symKey_i) is refused as a downgrade:
 *   `forwardSecrecyRequired`, no session written.
 * - An old session's Confirm replayed into a new session is refused: `decryptionFailed`.
 * - The fog refuses M1 for a revoked certificate with `certificateRevoked`, before any ledger write.
 * - A state file from before forward secrecy (a pending counter, no x_D): x_D is drawn once at load
 *   and written before anything leaves; the same certificate is then established under it, or —
 *   when the ledger shows the old attempt's activation committed — given up, never reused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
    computeSymKey,
    decodeC2Plaintext,
    decodeFsConfirm,
    decodeM1,
    decodeM3,
    decodePoint,
    decodeScalar,
    dynamicIdentity,
    ecqvRequestKey,
    encodePoint,
    fromHex,
    hpkeOpen,
    HpkeInfo,
    SessionChannel,
    toHex,
    decodeRecordedFrame,
    EphemeralKey,
    getSuite,
} from '@m2m-fabric/protocol';
import { decodeTagged, encodeTagged, EnvelopeKind, ServiceError, type Envelope } from '@m2m-fabric/common';
import { readDeviceState } from '@m2m-fabric/device';
import { DeviceAgent } from '@m2m-fabric/device';
import { loadOrCreateServiceKey } from '@m2m-fabric/services';
import { startTestBed, type TestBed } from './helpers/setup.js';
import { waitFor } from './helpers/process.js';
import { startRelay, type Relay } from './helpers/relay.js';

/**
 * A relay that, until `stop()`, replaces the reply to the device's M3 (the Established carrying the
 * Confirm) with one for another route, so the device sees its Confirm lost after the activation
 * and the synchronisation committed.
 */
async function startConfirmLosingRelay(bed: TestBed): Promise<{ relay: Relay; stop(): void }> {
    let lose = true;
    const relay = await startRelay(bed, (reply, request) => {
        if (!lose || request?.kind !== EnvelopeKind.M3 || reply.kind !== EnvelopeKind.Established) return undefined;
        const { payload } = decodeTagged(reply.body);
        return { ...reply, body: encodeTagged(new Uint8Array(16), payload) };
    });
    return { relay, stop: () => void (lose = false) };
}

async function relayedAgent(bed: TestBed, id: string, url: string): Promise<DeviceAgent> {
    return DeviceAgent.open({ statePath: bed.statePath(id), brokerUrl: url, sessionTimeoutMs: 15_000 });
}

function isCode(code: string) {
    return (err: unknown): boolean => {
        // A ServiceError / ProtocolError (services) or the SDK's EndorseError (chaincode rejections).
        const e = err as ServiceError & { errorCode?: string };
        assert.equal(e.errorCode ?? e.code, code, String(err));
        return true;
    };
}

void test('a recorded session stays closed to whoever later holds d_c, w, the ledger and the device state', async (t) => {
    const bed = await startTestBed();
    t.after(() => bed.close());
    const relay = await startRelay(bed, () => undefined);
    t.after(() => relay.close());
    await bed.provision('fs-0001', 3);
    const agent = await relayedAgent(bed, 'fs-0001', relay.url);
    t.after(() => agent.close());
    await agent.connect();
    const first = await agent.establishSession();
    await agent.upload({ secret: 'reading-of-session-1' });
    // A later session replaces the first in the state file (the attacker's "later state").
    await agent.establishSession();
    await agent.close();

    const suite = bed.net.suite;
    const state = (await readDeviceState(bed.statePath('fs-0001')))!;
    const stateText = readFileSync(bed.statePath('fs-0001'), 'utf8');
    const w = decodeScalar(suite, fromHex(state.w));
    const cspKey = await loadOrCreateServiceKey(join(bed.dataDir, 'keys', 'csp.json'), suite);
    const dC = cspKey.privateKey;
    const Qc = decodePoint(suite, fromHex(state.cspPublicKey));
    assert.ok(Qc.equals(suite.Point.BASE.multiply(dC)), 'the test holds the real d_c');

    // The recorded transcript of session 1.
    const routeId = fromHex(first.routeId);
    const byKind = (kind: EnvelopeKind, dir: 'up' | 'down'): Envelope[] =>
        relay.log.filter((r) => r.direction === dir && r.env.kind === kind).map((r) => r.env);
    const m1 = decodeM1(suite, byKind(EnvelopeKind.M1, 'up')[0]!.body);
    const m3 = decodeM3(suite, decodeTagged(byKind(EnvelopeKind.M3, 'up')[0]!.body).payload);
    const downFrames = relay.log
        .filter(
            (r) =>
                r.direction === 'down' && [EnvelopeKind.Frame, EnvelopeKind.Established].includes(r.env.kind as never),
        )
        .map((r) => decodeTagged(r.env.body))
        .filter((f) => toHex(f.tag) === first.routeId)
        .map((f) => f.payload);
    const confirmEnv = relay.log.find((r) => r.direction === 'down' && r.env.kind === EnvelopeKind.Established)!;
    const { cspShare } = decodeFsConfirm(suite, decodeTagged(confirmEnv.env.body).payload);
    // The device sends its frames with their communication record (RecordedFrame, i18r).
    const upload = relay.log
        .filter((r) => r.direction === 'up' && r.env.kind === EnvelopeKind.RecordedFrame)
        .map((r) => decodeTagged(r.env.body))
        .filter((f) => toHex(f.tag) === first.routeId)
        .map((f) => decodeRecordedFrame(f.payload).frame)
        .find((f) => f.length > 0)!;

    // What d_c and w give: ID_i, k_i, IDCert_i, C2's E_D, symKey_i = H(d_c*Q_i) — and the ledger agrees.
    const dynamicId = dynamicIdentity(suite, { w, equipmentId: 'fs-0001' }, first.counter);
    const { idCert } = ecqvRequestKey(suite, dynamicId, first.counter, w);
    const idCertBytes = encodePoint(suite, idCert);
    const c2 = await hpkeOpen(cspKey.recipient, HpkeInfo.C2, m1.c2, idCertBytes);
    const deviceShare = decodeC2Plaintext(suite, c2).ephemeralShare!;
    const symKey = computeSymKey(suite, dC, m3.publicKey);
    // Every candidate key the attacker can form from what it holds.
    const candidates: [string, Uint8Array][] = [
        ["symKey_i (the paper's key)", symKey],
        ['H(d_c*E_D)', computeSymKey(suite, dC, deviceShare)],
        ['H(d_c*E_C)', computeSymKey(suite, dC, cspShare)],
        ['H(w*E_C)', computeSymKey(suite, w, cspShare)],
        ['H(w*E_D)', computeSymKey(suite, w, deviceShare)],
        ["the later state's key", fromHex(state.session!.trafficKey!)],
    ];
    for (const [name, key] of candidates) {
        const ch = await SessionChannel.create(suite, key, 'csp', routeId);
        await assert.rejects(ch.open(upload), isCode('decryptionFailed'), `${name} opens the upload`);
        const dev = await SessionChannel.create(suite, key, 'device', routeId);
        for (const f of downFrames)
            await assert.rejects(dev.open(decodeFsConfirmFrame(f)), isCode('decryptionFailed'), name);
    }
    // The state file never held x_D, symKey_i or session 1's key.
    assert.ok(!stateText.includes(toHex(symKey)), 'symKey_i is not in the state file');
    assert.equal(state.session!.counter, '2');
    assert.ok(!('symKey' in state.session!));
    // The CSP's store keeps K_i and the public E_C, never symKey_i.
    const store = readFileSync(join(bed.dataDir, 'csp', 'csp-sessions.jsonl'), 'utf8');
    assert.ok(!store.includes(toHex(symKey)), 'symKey_i is not in the CSP store');
    assert.ok(store.includes(toHex(encodePoint(suite, cspShare))), 'E_C is');
});

/** The channel frame of a (forward-secret or bare) Confirm. */
function decodeFsConfirmFrame(bytes: Uint8Array): Uint8Array {
    return bytes[0] === 0xf5 ? bytes.subarray(2 + 33 + 2) : bytes;
}

void test('a Confirm without E_C is a refused downgrade, a replayed old Confirm is refused: no key kept, the same certificate then finishes', async (t) => {
    const bed = await startTestBed();
    t.after(() => bed.close());
    let mode: 'pass' | 'downgrade' | 'replay' = 'pass';
    let oldConfirm: Uint8Array | undefined;
    const relay = await startRelay(bed, (reply, request) => {
        if (request?.kind !== EnvelopeKind.M3 || reply.kind !== EnvelopeKind.Established) return undefined;
        const { tag, payload } = decodeTagged(reply.body);
        if (mode === 'pass') {
            oldConfirm = payload;
            return undefined;
        }
        // downgrade: strip E_C and send the bare frame; replay: session 1's Confirm for this route.
        const forged = mode === 'downgrade' ? decodeFsConfirmFrame(payload) : oldConfirm!;
        return { ...reply, body: encodeTagged(tag, forged) };
    });
    t.after(() => relay.close());
    await bed.provision('fs-0002', 4);
    const agent = await relayedAgent(bed, 'fs-0002', relay.url);
    t.after(() => agent.close());
    await agent.connect();
    await agent.establishSession();
    const readState = (): string => readFileSync(bed.statePath('fs-0002'), 'utf8');

    for (const [m, code] of [
        ['downgrade', 'forwardSecrecyRequired'],
        ['replay', 'decryptionFailed'],
    ] as const) {
        mode = m;
        const before = (await readDeviceState(bed.statePath('fs-0002')))!;
        await assert.rejects(agent.establishSession(), isCode(code), m);
        const after = (await readDeviceState(bed.statePath('fs-0002')))!;
        // Refused: no key was derived from the forged Confirm; the paid certificate stays pending
        // (its activation committed) with its x_D and symKey_i, for the next attempt.
        assert.equal(after.session?.established, false, `${m}: no session was established`);
        assert.equal(after.session.trafficKey, undefined, `${m}: no K_i on disk`);
        assert.equal(after.pendingCounter, before.nextCounter, `${m}: the certificate stays pending`);
        assert.ok(after.pendingEphemeral !== undefined, `${m}: x_D kept for the retry`);
        assert.equal(BigInt(after.nextCounter), BigInt(before.nextCounter) + 1n, `${m}: one counter reserved`);
        assert.ok(!readState().includes('trafficKey'), `${m}: no key on disk`);
        assert.equal(agent.session?.established, false);
        // The genuine path then finishes the SAME certificate: the retry's M1 finds it activated and
        // asks for the CSP's Confirm (an empty frame, which the relay leaves alone).
        mode = 'pass';
        const retried = await agent.establishSession();
        assert.equal(retried.counter.toString(), before.nextCounter, `${m}: same certificate`);
        assert.equal(retried.resumed, true);
        const done = (await readDeviceState(bed.statePath('fs-0002')))!;
        assert.equal(done.pendingCounter, undefined);
        assert.equal(done.pendingEphemeral, undefined, `${m}: x_D left the file at the Confirm`);
        assert.equal(done.session?.symKey, undefined, `${m}: symKey_i left the file at the Confirm`);
        assert.ok(!readState().includes(after.session.symKey!), `${m}: symKey_i is gone`);
        assert.ok(!readState().includes(after.pendingEphemeral), `${m}: x_D is gone`);
        await agent.upload({ ok: m });
    }
});

void test('the fog refuses M1 for a revoked certificate with certificateRevoked, before any transaction', async (t) => {
    const bed = await startTestBed();
    t.after(() => bed.close());
    await bed.provision('fs-0003', 2);
    const revoked = await bed.net.manufacturer.revokeDevice('fs-0003');
    assert.equal(revoked.revoked, 2);
    const agent = await bed.agent('fs-0003');
    await agent.connect();
    const before = await bed.net.ledgerTotals();
    await assert.rejects(agent.establishSession(), isCode('certificateRevoked'));
    assert.deepEqual(await bed.net.ledgerTotals(), before, 'no activation was submitted');
    // Revoking again is idempotent: alreadyRevoked, nothing changes.
    await assert.rejects(bed.net.manufacturer.revokeDevice('fs-0003'), isCode('alreadyRevoked'));
    assert.equal((await bed.net.ledgerTotals()).validTransactions, before.validTransactions);
});

void test('a device restarted between M3 and the Confirm finishes the same certificate with the x_D on disk (records on)', async (t) => {
    const bed = await startTestBed({ records: { batchSize: 1000, maxDelayMs: 200 } });
    t.after(() => bed.close());
    // The Confirm of the first attempt is lost (replaced by one for another route): the device gives
    // the attempt up after the activation and the synchronisation committed.
    const losing = await startConfirmLosingRelay(bed);
    const relay = losing.relay;
    t.after(() => relay.close());
    await bed.provision('fs-0004', 2);
    const path = bed.statePath('fs-0004');
    const first = await relayedAgent(bed, 'fs-0004', relay.url);
    await first.connect();
    await assert.rejects(first.establishSession(), isCode('malformedInput'));
    await first.close(); // the restart: everything in memory is gone
    const pending = (await readDeviceState(path))!;
    assert.equal(pending.pendingCounter, '1');
    assert.ok(pending.pendingEphemeral !== undefined && pending.session?.symKey !== undefined);
    assert.equal(pending.session.established, false);
    assert.equal(statSync(path).mode & 0o777, 0o600, 'x_D is on disk only in a 0600 file');

    losing.stop();
    const second = await relayedAgent(bed, 'fs-0004', relay.url);
    t.after(() => second.close());
    await second.connect();
    const before = bed.net.csp.records!.received;
    const done = await second.establishSession();
    assert.equal(done.counter, 1n, 'the same certificate, no paid certificate lost');
    assert.equal(done.resumed, true);
    // The Confirm came through the empty-frame request: a plain Frame without a record, which the
    // CSP answers with records on.
    const asked = relay.log.filter(
        (r) =>
            r.direction === 'up' && r.env.kind === EnvelopeKind.Frame && decodeTagged(r.env.body).payload.length === 0,
    );
    assert.ok(asked.length >= 1, 'the Confirm was asked for with an empty frame');
    assert.equal(bed.net.csp.records!.received, before, 'no record demanded for the empty frame');
    const after = (await readDeviceState(path))!;
    assert.equal(after.pendingCounter, undefined);
    assert.equal(after.pendingEphemeral, undefined, 'x_D left the file with the Confirm');
    assert.equal(after.session?.symKey, undefined, 'symKey_i left the file with the Confirm');
    assert.ok(after.session?.established && after.session.trafficKey !== undefined);
    const text = readFileSync(path, 'utf8');
    assert.ok(!text.includes(pending.pendingEphemeral) && !text.includes(pending.session.symKey));
    // The channel works, with records: the upload's record is journaled.
    await second.upload({ after: 'restart' });
    await waitFor(() => bed.net.csp.records!.received > before, 5_000);
    assert.equal(second.remainingSessions, 1n);
});

/**
 * The device state file of a release before forward secrecy, crafted from the current format: the
 * same file with `pendingEphemeral` removed (mode 0600 kept).
 */
async function stripEphemeral(path: string): Promise<string> {
    const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    const old = raw.pendingEphemeral as string;
    assert.ok(typeof old === 'string', 'the current format holds x_D while a counter is pending');
    delete raw.pendingEphemeral;
    await writeFile(path, JSON.stringify(raw, null, 2), { mode: 0o600 });
    return old;
}

void test('a state file from before forward secrecy, pending counter and no x_D, M3 never arrived: x_D drawn once at load, the same certificate established under it', async (t) => {
    const bed = await startTestBed();
    t.after(() => bed.close());
    let drop = true;
    const relay = await startRelay(
        bed,
        () => undefined,
        (request) => drop && request.kind === EnvelopeKind.M3,
    );
    t.after(() => relay.close());
    await bed.provision('fs-0005', 3);
    const path = bed.statePath('fs-0005');
    const open = (timeoutMs = 15_000): Promise<DeviceAgent> =>
        DeviceAgent.open({ statePath: path, brokerUrl: relay.url, sessionTimeoutMs: timeoutMs });
    // The old release's attempt: counter 1 reserved, symKey_i written before M3, M3 lost on the way.
    const first = await open(2_000);
    await first.connect();
    // No answer to M3: the attempt ends with `timeout`, or `unknownSession` from the Confirm request.
    await assert.rejects(first.establishSession(), (err: unknown) => {
        assert.ok(['timeout', 'unknownSession'].includes((err as ServiceError).code), String(err));
        return true;
    });
    await first.close();
    const stripped = await stripEphemeral(path);
    const legacy = (await readDeviceState(path))!;
    assert.equal(legacy.pendingCounter, '1');
    assert.equal(legacy.nextCounter, '2');
    assert.equal(legacy.pendingEphemeral, undefined);
    assert.ok(legacy.session?.symKey !== undefined && !legacy.session.established);

    // Load: before the agent connects (nothing can leave), x_D is on disk; no counter moved; the old
    // attempt's unconfirmed session is gone in the same write.
    const m1sBefore = relay.log.filter((r) => r.direction === 'up' && r.env.kind === EnvelopeKind.M1).length;
    const loaded = await open();
    const atLoad = (await readDeviceState(path))!;
    assert.ok(atLoad.pendingEphemeral !== undefined, 'x_D drawn and written at load');
    assert.notEqual(atLoad.pendingEphemeral, stripped);
    assert.equal(atLoad.pendingCounter, '1', 'the same certificate stays pending');
    assert.equal(atLoad.nextCounter, '2', 'no counter reserved');
    assert.equal(atLoad.session, undefined, "the old attempt's symKey_i is removed");
    assert.ok(!readFileSync(path, 'utf8').includes(legacy.session.symKey));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(loaded.remainingSessions, 3n);
    await loaded.close();
    // Drawn once: opening the file again keeps that x_D.
    const again = await open();
    t.after(() => again.close());
    assert.equal((await readDeviceState(path))!.pendingEphemeral, atLoad.pendingEphemeral, 'not drawn again');

    drop = false;
    await again.connect();
    const done = await again.establishSession();
    assert.equal(done.counter, 1n, 'the same certificate, no paid certificate lost');
    assert.ok(
        relay.log.filter((r) => r.direction === 'up' && r.env.kind === EnvelopeKind.M1).length > m1sBefore,
        'a fresh M1 after the load',
    );
    // The CSP keyed the session with the E_D of the x_D drawn at load.
    const suite = getSuite(atLoad.suite);
    const share = toHex(encodePoint(suite, EphemeralKey.fromSecret(suite, fromHex(atLoad.pendingEphemeral)).share));
    const stored = bed.net.csp.listSessions().filter((x) => x.routeId === done.routeId);
    assert.equal(stored.length, 1);
    assert.equal(stored[0]!.deviceShare, share);
    const after = (await readDeviceState(path))!;
    assert.equal(after.pendingCounter, undefined);
    assert.equal(after.pendingEphemeral, undefined, 'x_D left the file at the Confirm');
    assert.equal(after.nextCounter, '2');
    assert.ok(after.session?.established && after.session.trafficKey !== undefined);
    await again.upload({ legacy: 'upgraded' });
    assert.equal(again.remainingSessions, 2n);
});

void test("a state file from before forward secrecy whose old attempt's activation committed: the counter is given up (failedDoubleSpendingCheck-1), none reused, the next one established", async (t) => {
    const bed = await startTestBed();
    t.after(() => bed.close());
    // The old attempt's Confirm is lost: its activation and synchronisation committed, under an E_D
    // whose x_D the device no longer has (as for a release that sent no E_D at all).
    const losing = await startConfirmLosingRelay(bed);
    const relay = losing.relay;
    t.after(() => relay.close());
    await bed.provision('fs-0006', 3);
    const path = bed.statePath('fs-0006');
    const first = await relayedAgent(bed, 'fs-0006', relay.url);
    await first.connect();
    await assert.rejects(first.establishSession(), isCode('malformedInput'));
    await first.close();
    await stripEphemeral(path);
    const sessionsBefore = bed.net.csp.listSessions().length;

    losing.stop();
    const agent = await relayedAgent(bed, 'fs-0006', relay.url);
    t.after(() => agent.close());
    const atLoad = (await readDeviceState(path))!;
    assert.ok(atLoad.pendingEphemeral !== undefined && atLoad.session === undefined);
    await agent.connect();
    // The fresh M1 finds the certificate used: no Confirm the device could open can come, so the
    // counter is given up with a typed error instead of being polled for ever.
    await assert.rejects(agent.establishSession(), isCode('failedDoubleSpendingCheck-1'));
    const given = (await readDeviceState(path))!;
    assert.equal(given.pendingCounter, undefined, 'the counter is given up');
    assert.equal(given.pendingEphemeral, undefined, 'with its x_D');
    assert.equal(given.nextCounter, '2', 'no other counter spent');
    assert.equal(bed.net.csp.listSessions().length, sessionsBefore, 'no second CSP session for the certificate');
    assert.equal(agent.remainingSessions, 2n);
    const next = await agent.establishSession();
    assert.equal(next.counter, 2n, 'the next certificate, counter 1 never presented again');
    await agent.upload({ legacy: 'next' });
});
