import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
    acceptFsConfirm,
    ByteWriter,
    createM1,
    decodeM2,
    decodePoint,
    decodeScalar,
    encodeM1,
    encodeM3,
    fromHex,
    FrameType,
    processM2,
    randomScalar,
    type M1,
} from '@m2m-fabric/protocol';
import {
    decodeTagged,
    encodeEnvelope,
    encodeTagged,
    EnvelopeKind,
    newCorrelationId,
    ServiceError,
} from '@m2m-fabric/common';
import { MqttConnection } from '@m2m-fabric/common';
import { RequestClient } from '@m2m-fabric/common';
import { TopicLayout } from '@m2m-fabric/common';
import { readDeviceState } from '@m2m-fabric/device';
import { routeIdFor } from '@m2m-fabric/common';
import type { ObjectStore } from '@m2m-fabric/sdk';
import { StorageUnavailableError } from '@m2m-fabric/sdk';
import { startTestBed } from './helpers/setup.js';
import { WrappedStore } from './helpers/wrapped-store.js';
import { join } from 'node:path';
import { loadOrCreateServiceKey, loginToken, serviceKeyFromScalar } from '@m2m-fabric/services';
import { encodeFrameUp, encodeLinkMessage, LinkKind } from '@m2m-fabric/services';

const layout = new TopicLayout();

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
    await assert.rejects(p, (err: unknown) => {
        assert.ok(err instanceof ServiceError, `expected a ServiceError, got ${String(err)}`);
        assert.equal(err.code, code);
        return true;
    });
}

void test('bad input at every step gets a typed error (or is dropped) and changes nothing', async (t) => {
    const bed = await startTestBed();
    t.after(() => bed.close());
    await bed.provision('bad-0001', 3);
    const state = (await readDeviceState(bed.statePath('bad-0001')))!;
    const suite = bed.net.suite;
    const secrets = { w: decodeScalar(suite, fromHex(state.w)), equipmentId: state.equipmentId };
    const Qf = decodePoint(suite, fromHex(state.fog.publicKey));
    const Qc = decodePoint(suite, fromHex(state.cspPublicKey));
    const conn = await MqttConnection.connect(bed.net.fogs[0]!.deviceBrokerUrl, { clientId: 'dev-raw0001' });
    t.after(() => conn.close());
    const rc = await RequestClient.create(
        conn,
        layout.fogRequest('fog-1', 'dev-raw0001'),
        layout.fogReply('fog-1', 'dev-raw0001'),
    );
    let unsolicited = 0;
    rc.onUnsolicited(() => unsolicited++);
    const ledgerBefore = await bed.net.ledgerTotals();

    // Envelope level.
    const corr = newCorrelationId();
    await rejectsWith(
        rc.requestRaw(new Uint8Array([1, EnvelopeKind.M1, ...corr, 0, 0, 0, 5, 1, 2]), corr, 5_000),
        'malformedInput',
    );
    const corr2 = newCorrelationId();
    await rejectsWith(rc.requestRaw(new Uint8Array([1, 0x55, ...corr2, 0, 0, 0, 0]), corr2, 5_000), 'malformedInput');
    await conn.publish(layout.fogRequest('fog-1', 'dev-raw0001'), new Uint8Array([7, 7, 7]));
    await rejectsWith(rc.request(EnvelopeKind.M1, new Uint8Array(20_000), 5_000), 'oversized');
    await rejectsWith(rc.request(EnvelopeKind.M2, new Uint8Array(), 5_000), 'malformedInput');

    // M1: truncated, not for this fog.
    const { m1, session } = await createM1(suite, secrets, 1n, 'fog-1', Qf, Qc);
    const m1Bytes = encodeM1(m1);
    await rejectsWith(rc.request(EnvelopeKind.M1, m1Bytes.slice(0, m1Bytes.length - 3), 5_000), 'malformedInput');
    const otherFogKey = suite.Point.BASE.multiply(randomScalar(suite));
    const { m1: wrongM1 } = await createM1(suite, secrets, 1n, 'fog-1', otherFogKey, Qc);
    await rejectsWith(rc.request(EnvelopeKind.M1, encodeM1(wrongM1), 5_000), 'decryptionFailed');

    // M3: unknown handle, malformed M3.
    await rejectsWith(
        rc.request(EnvelopeKind.M3, encodeTagged(new Uint8Array(16), new Uint8Array(10)), 5_000),
        'unknownRequest',
    );
    const m2 = await rc.request(EnvelopeKind.M1, m1Bytes, 5_000);
    const { tag: handle, payload } = decodeTagged(m2.body);
    await rejectsWith(rc.request(EnvelopeKind.M3, encodeTagged(handle, new Uint8Array(5)), 5_000), 'malformedInput');
    // Session frames before any session exists.
    await rejectsWith(
        rc.request(EnvelopeKind.Frame, encodeTagged(new Uint8Array(16), new Uint8Array(30)), 5_000),
        'unknownSession',
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(unsolicited, 0, 'a payload without a correlation id was dropped, not answered');
    assert.deepEqual(await bed.net.ledgerTotals(), ledgerBefore, 'no transaction was submitted');
    assert.match(bed.net.fogs[0]!.metrics.render(), /m2m_fog_dropped_total\{reason="malformed"\} 1/);

    // The malformed M3 consumed the handle (single use); a fresh M1 -> M2 -> M3 succeeds.
    const m2b = await rc.request(EnvelopeKind.M1, m1Bytes, 5_000);
    const b = decodeTagged(m2b.body);
    const processed = processM2(session, decodeM2(suite, b.payload).certificateObject, Qc, 'fog-1');
    const m3Bytes = encodeM3(processed.m3);
    void payload;
    const done = await rc.request(EnvelopeKind.M3, encodeTagged(b.tag, m3Bytes), 15_000);
    const routeId = routeIdFor(suite, session.idCert);
    // The forward-secret Confirm: E_C, then a Confirm frame under K_i (acceptFsConfirm checks its type).
    const { channel } = await acceptFsConfirm(
        suite,
        session.ephemeral,
        processed.symKey,
        session.idCert,
        routeId,
        decodeTagged(done.body).payload,
    );

    // Replays after success: M3 (handle used), M1 (certificate used), an upload frame (channel window).
    await rejectsWith(rc.request(EnvelopeKind.M3, encodeTagged(b.tag, m3Bytes), 5_000), 'unknownRequest');
    await rejectsWith(rc.request(EnvelopeKind.M1, m1Bytes, 5_000), 'failedDoubleSpendingCheck-1');
    const upload = await channel.seal(FrameType.Upload, new TextEncoder().encode('{"t":1}'));
    await rc.request(EnvelopeKind.Frame, encodeTagged(routeId, upload), 5_000);
    const afterUpload = await bed.net.ledgerTotals();
    await rejectsWith(rc.request(EnvelopeKind.Frame, encodeTagged(routeId, upload), 5_000), 'replayDetected');
    const tampered = (await channel.seal(FrameType.Upload, new TextEncoder().encode('{"t":2}'))).slice();
    tampered[tampered.length - 1]! ^= 1;
    await rejectsWith(rc.request(EnvelopeKind.Frame, encodeTagged(routeId, tampered), 5_000), 'decryptionFailed');
    assert.equal(
        bed.net.csp.readTelemetry({ routeId: routeId.reduce((s, x) => s + x.toString(16).padStart(2, '0'), '') })
            .length,
        1,
    );
    assert.deepEqual(await bed.net.ledgerTotals(), afterUpload);

    // Anonymous session requests are rate limited per client: a flood gets `rateLimited`.
    const codes: string[] = [];
    for (let i = 0; i < 30 && !codes.includes('rateLimited'); i++) {
        await rc.request(EnvelopeKind.M1, new Uint8Array(40), 5_000).catch((e: unknown) => {
            codes.push(e instanceof ServiceError ? e.code : 'untyped');
        });
    }
    assert.ok(codes.includes('rateLimited'), codes.join(','));
    assert.ok(
        codes.every((c) => c === 'malformedInput' || c === 'rateLimited'),
        codes.join(','),
    );
    assert.match(bed.net.fogs[0]!.metrics.render(), /m2m_fog_requests_total\{kind="M1",outcome="rateLimited"\} [1-9]/);
    assert.deepEqual(await bed.net.ledgerTotals(), afterUpload);
});

void test('double use under concurrency: two M3s for one certificate, exactly one activation commits and both get the session', async (t) => {
    const bed = await startTestBed();
    t.after(() => bed.close());
    await bed.provision('race-0001', 1);
    const state = (await readDeviceState(bed.statePath('race-0001')))!;
    const suite = bed.net.suite;
    const secrets = { w: decodeScalar(suite, fromHex(state.w)), equipmentId: state.equipmentId };
    const Qf = decodePoint(suite, fromHex(state.fog.publicKey));
    const Qc = decodePoint(suite, fromHex(state.cspPublicKey));
    const conn = await MqttConnection.connect(bed.net.fogs[0]!.deviceBrokerUrl, { clientId: 'dev-race0001' });
    t.after(() => conn.close());
    const rc = await RequestClient.create(
        conn,
        layout.fogRequest('fog-1', 'dev-race0001'),
        layout.fogReply('fog-1', 'dev-race0001'),
    );
    const { m1, session } = await createM1(suite, secrets, 1n, 'fog-1', Qf, Qc);
    const attempt = async (msg: M1): Promise<string> => {
        const m2 = await rc.request(EnvelopeKind.M1, encodeM1(msg), 5_000);
        const { tag, payload } = decodeTagged(m2.body);
        const { m3 } = processM2(session, decodeM2(suite, payload).certificateObject, Qc, 'fog-1');
        return encodeEnvelope({
            kind: EnvelopeKind.M3,
            correlationId: newCorrelationId(),
            body: encodeTagged(tag, encodeM3(m3)),
        }).length > 0
            ? (await rc.request(EnvelopeKind.M3, encodeTagged(tag, encodeM3(m3)), 15_000), 'established')
            : 'unreachable';
    };
    // Both M2s first, then both M3s at once.
    const results = await Promise.allSettled([attempt(m1), attempt(m1)]);
    // Both are attempts of one session (same IDCert_i, primaryHash, key): the activation that lost
    // the race stands on the one that committed, so both devices' requests get the Confirm.
    assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'fulfilled'],
        JSON.stringify(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))),
    );
    const [cspSession] = bed.net.csp.listSessions();
    assert.equal(bed.net.csp.listSessions().length, 1, 'one CSP session for the certificate');
    assert.equal((await bed.net.csp['options'].ledger.getSession(cspSession!.primaryHash)).status, 'synchronised');
});

class FaultyStore extends WrappedStore {
    mode: 'ok' | 'down' | 'tamper' = 'ok';
    override get: ObjectStore['get'] = async (cid, o) => {
        if (this.mode === 'down') throw new StorageUnavailableError('injected: IPFS daemon unreachable');
        const bytes = await this.inner.get(cid, o);
        if (this.mode === 'tamper') {
            const copy = bytes.slice();
            copy[copy.length - 1]! ^= 1; // flips a bit of the counter proof's s_i
            return copy;
        }
        return bytes;
    };
}

void test('IPFS unavailable and a tampered certificate object: clear errors, the same certificate then succeeds', async (t) => {
    let fogStore: FaultyStore | undefined;
    const bed = await startTestBed({
        wrapStore: (store, owner) => {
            if (owner !== 'fog-1') return store;
            fogStore ??= new FaultyStore(store);
            return fogStore;
        },
    });
    t.after(() => bed.close());
    await bed.provision('ipfs-0001', 3);
    const agent = await bed.agent('ipfs-0001');
    await agent.connect();
    fogStore!.mode = 'down';
    await rejectsWith(agent.establishSession(), 'storageUnavailable');
    fogStore!.mode = 'tamper';
    await assert.rejects(agent.establishSession(), (err: unknown) => {
        // The device checks the object itself: a flipped bit fails decoding or the ECQV check.
        assert.ok(err instanceof Error && 'code' in err);
        // The fog hands over what IPFS returned; the device (ECQV check) or the chaincode (content
        // address) refuses it.
        assert.ok(
            ['invalidIssuance', 'malformedInput', 'contentAddressMismatch'].includes((err as ServiceError).code),
            (err as ServiceError).code,
        );
        return true;
    });
    fogStore!.mode = 'ok';
    const s = await agent.establishSession();
    assert.equal(s.counter, 1n, 'the failed attempts kept their certificate: counter 1 was retried, not spent');
    assert.equal(agent.nextCounter, 2n);
    await agent.upload({ ok: true });
});

void test('CSP and fog restart mid-session: the outbox delivers M4 and the device resumes', async (t) => {
    const bed = await startTestBed({ fogOptions: { cspTimeoutMs: 1_500 } });
    t.after(() => bed.close());
    await bed.provision('restart-1', 2);
    const agent = await bed.agent('restart-1');
    await agent.connect();
    // CSP down: the activation commits, M4 waits in the fog's outbox; the fog then crashes too.
    await bed.net.csp.close();
    const pending = agent.establishSession();
    for (let i = 0; i < 100 && bed.net.fogs[0]!.outboxDepth === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(bed.net.fogs[0]!.outboxDepth, 1);
    await new Promise((r) => setTimeout(r, 300));
    await bed.net.restartFog(0);
    assert.equal(bed.net.fogs[0]!.outboxDepth, 1, 'the outbox survived the fog restart');
    await bed.net.restartCsp();
    const s = await pending;
    assert.equal(s.counter, 1n);
    for (let i = 0; i < 100 && bed.net.fogs[0]!.outboxDepth > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(bed.net.fogs[0]!.outboxDepth, 0);
    await agent.upload({ after: 'restart' });
    const s2 = await agent.establishSession();
    assert.equal(s2.counter, 2n);
    // The ledger agrees: two sessions, both synchronised, nothing left half-done anywhere.
    const sessions = bed.net.csp.listSessions();
    assert.equal(sessions.length, 2);
    for (const s of sessions) {
        assert.equal(s.state, 'established');
        assert.equal((await bed.net.csp['options'].ledger.getSession(s.primaryHash)).status, 'synchronised');
    }
    assert.equal(bed.net.fogs[0]!.outboxDepth, 0);
    void ByteWriter;
});

void test('ledger rejection (the fog was revoked): a clear error, the ledger unchanged; the same certificate succeeds at another fog', async (t) => {
    const bed = await startTestBed({ fogs: 2 });
    t.after(() => bed.close());
    const path = await bed.provision('rej-0001', 3, 0);
    let agent = await bed.agent('rej-0001', 0);
    await agent.connect();
    await bed.net.csp.revokeFog('fog-1');
    const before = await bed.net.ledgerTotals();
    // M1 and M2 are read-only at the fog; the activation (M3) is what the chaincode refuses.
    await rejectsWith(agent.establishSession(), 'fogNotApproved');
    const after = await bed.net.ledgerTotals();
    assert.equal(after.validTransactions, before.validTransactions, 'no transaction committed');
    assert.equal(bed.net.fogs[0]!.outboxDepth, 0, 'a definite refusal leaves nothing to retry');
    assert.equal(bed.net.csp.listSessions().length, 0);
    // The manufacturer moves the device to fog-2 (its agent stopped). Counter 1's certificate was
    // never activated, so it stays pending and is retried there (not lost, not given to another session).
    await agent.close();
    const moved = await bed.net.manufacturer.provisionDevice('rej-0001', path, { id: 'fog-2' });
    assert.equal(moved.delivery, 'state');
    agent = await bed.agent('rej-0001', 1);
    await agent.connect();
    assert.equal(agent.pendingCounter, 1n);
    const s = await agent.establishSession();
    assert.equal(s.counter, 1n);
    await agent.upload({ via: 'fog-2' });
    const [session] = bed.net.csp.listSessions();
    assert.equal(session?.fogId, 'fog-2');
    assert.equal((await bed.net.csp['options'].ledger.getSession(session.primaryHash)).status, 'synchronised');
});

void test('the fog-CSP link is authenticated: forged logins and link messages are refused and change nothing', async (t) => {
    const bed = await startTestBed();
    t.after(() => bed.close());
    const suite = bed.net.suite;
    const url = bed.net.csp.brokerUrl;
    const stranger = await serviceKeyFromScalar(suite, randomScalar(suite));
    // A login as fog-1 with a token not signed by fog-1's key on the ledger.
    await rejectsWith(
        MqttConnection.connect(url, {
            clientId: 'fog-1-forger',
            username: 'fog-1',
            password: loginToken(stranger, 'fog-1', 'fog-1-forger'),
            reconnectPeriodMs: 0,
        }),
        'unavailable',
    );
    // With fog-1's broker login, messages must still be signed by fog-1 and name fog-1.
    const fogKey = await loadOrCreateServiceKey(join(bed.dataDir, 'keys', 'fog-1.json'), suite);
    const conn = await MqttConnection.connect(url, {
        clientId: 'fog-1-probe',
        username: 'fog-1',
        password: () => loginToken(fogKey, 'fog-1', 'fog-1-probe'),
        reconnectPeriodMs: 0,
    });
    t.after(() => conn.close());
    const body = encodeFrameUp({
        correlationId: newCorrelationId(),
        clientId: 'dev-x',
        routeId: new Uint8Array(16),
        frame: new Uint8Array(40),
    });
    const topic = layout.cspInbound('fog-1');
    await conn.publish(topic, new Uint8Array([1, 2, 3]));
    await conn.publish(topic, encodeLinkMessage(stranger, LinkKind.FrameUp, 'fog-1', body));
    await conn.publish(topic, encodeLinkMessage(fogKey, LinkKind.FrameUp, 'fog-2', body));
    const metrics = (): string => bed.net.csp.metrics.render();
    for (let i = 0; i < 100 && !/m2m_csp_link_refused_total\{code="unauthorisedMsp"\} 1/.test(metrics()); i++)
        await new Promise((r) => setTimeout(r, 20));
    assert.match(metrics(), /m2m_csp_link_refused_total\{code="failedSignatureVerification"\} 1/);
    assert.match(metrics(), /m2m_csp_link_refused_total\{code="unauthorisedMsp"\} 1/);
    assert.match(metrics(), /m2m_csp_link_refused_total\{code="(truncated|malformedInput|unknownVersion)"\} 1/);
    assert.doesNotMatch(metrics(), /m2m_csp_frames_total\{/, 'no frame reached the session channel');
});

void test('the outbox drain never submits an activation twice: concurrent sessions with the drain running constantly', async (t) => {
    // Every 1 ms: the drain runs while M3s are being written to the outbox (a window that once let
    // it submit the same activation a second time: a spurious MVCC loss or "already used").
    const bed = await startTestBed({ fogOptions: { outboxRetryMs: 1 } });
    t.after(() => bed.close());
    const ids = ['drain-01', 'drain-02', 'drain-03', 'drain-04', 'drain-05', 'drain-06'];
    for (const id of ids) await bed.provision(id, 2);
    const before = await bed.net.ledgerTotals();
    const results = await Promise.all(
        ids.map(async (id) => {
            const agent = await bed.agent(id);
            await agent.connect();
            const out: string[] = [];
            for (let i = 0; i < 2; i++)
                out.push(
                    await agent.establishSession().then(
                        (s) => `ok:${s.counter}`,
                        (e: unknown) => (e instanceof ServiceError ? e.code : String(e)),
                    ),
                );
            return out;
        }),
    );
    assert.deepEqual(
        results,
        ids.map(() => ['ok:1', 'ok:2']),
    );
    const after = await bed.net.ledgerTotals();
    assert.equal(after.transactions - before.transactions, 24, 'one activation and one synchronisation per session');
    assert.equal(after.validTransactions - before.validTransactions, 24, 'none invalidated');
});

void test('a pushed frame for a session that ends while the frame is opened is dropped, not applied to the next', async (t) => {
    const bed = await startTestBed();
    t.after(() => bed.close());
    await bed.provision('pushed-1', 3);
    const agent = await bed.agent('pushed-1');
    await agent.connect();
    const first = await agent.establishSession();
    // A duplicate Confirm the fog pushes (its outbox re-forwarded M4 and nobody waited for the answer).
    const pushedConfirm = async (): Promise<{ kind: EnvelopeKind; correlationId: Uint8Array; body: Uint8Array }> => {
        const csp = bed.net.csp as unknown as {
            channels: { seal(k: string, t: FrameType, p: Uint8Array): Promise<Uint8Array> };
        };
        const frame = await csp.channels.seal(first.routeId, FrameType.Confirm, fromHex(first.routeId));
        return {
            kind: EnvelopeKind.Frame,
            correlationId: newCorrelationId(),
            body: encodeTagged(fromHex(first.routeId), frame),
        };
    };
    const internals = agent as unknown as {
        onPushed(env: unknown): Promise<void>;
        state: { session?: { established: boolean; routeId: string } };
    };
    // An unconfirmed session with the same route (as after a restart), to stand in below.
    const original = internals.state.session!;
    const unconfirmed = { ...structuredClone(original), established: false };
    // The session ends (a failed next attempt clears it) while the frame is being opened.
    const ending = internals.onPushed(await pushedConfirm());
    internals.state.session = undefined;
    await ending; // was: TypeError reading `established` of undefined, an unhandled rejection
    assert.equal(internals.state.session, undefined, 'the ended session is not brought back');
    // Another session takes its place while the frame is being opened: the frame is not for it.
    internals.state.session = original;
    const replacing = internals.onPushed(await pushedConfirm());
    internals.state.session = unconfirmed;
    await replacing;
    assert.equal(unconfirmed.established, false, "another session's Confirm does not establish it");
});

void test("the CSP's synchronisation fails on a ledger outage: the fog keeps M4 in its outbox and re-sends it until the CSP decides; the same certificate is established", async (t) => {
    const bed = await startTestBed();
    t.after(() => bed.close());
    await bed.provision('outage-1', 2);
    const agent = await bed.agent('outage-1');
    await agent.connect();
    // The CSP's peer is unreachable for one submission (as when the fault matrix kills the peer):
    // the CSP keeps the session `syncing` and answers the fog with an undecided outcome.
    const ledger = (
        bed.net.csp as unknown as { options: { ledger: { synchroniseSession: (...a: never[]) => Promise<void> } } }
    ).options.ledger;
    const synchronise = ledger.synchroniseSession.bind(ledger);
    let failures = 1;
    ledger.synchroniseSession = (...args: never[]) =>
        failures-- > 0 ? Promise.reject(new Error('peer unreachable (test)')) : synchronise(...args);
    await assert.rejects(agent.establishSession(), (err: unknown) => {
        assert.equal((err as ServiceError).code, 'internal', String(err));
        return true;
    });
    // Before the fix the Result settled the entry: outbox empty, the CSP session `syncing` for good,
    // and every retry of the (now used) certificate polled `unknownSession`.
    assert.equal(bed.net.fogs[0]!.outboxDepth, 1, 'the activation is on the ledger: M4 stays in the outbox');
    const s = await agent.establishSession();
    assert.equal(s.counter, 1n, 'the same certificate');
    assert.equal(s.resumed, true);
    for (let i = 0; i < 250 && bed.net.fogs[0]!.outboxDepth > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(bed.net.fogs[0]!.outboxDepth, 0, 'settled once the CSP decided');
    const sessions = bed.net.csp.listSessions();
    assert.equal(sessions.length, 1);
    assert.equal(sessions[0]!.state, 'established');
    await agent.upload({ after: 'outage' });
});
