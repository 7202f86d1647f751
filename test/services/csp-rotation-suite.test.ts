/**
 * A CSP key rotation to another suite over the real MQTT path (docs/protocol.md#rotation-to-another-suite):
 * the ledger and the devices are P-256; the CSP moves its CA to P-384 while devices keep
 * establishing sessions. The fog registers a P-384 key of its own when it sees the rotation; the
 * devices learn the new CA key and the fog's P-384 key from the fog's info message, verified from
 * what they were provisioned with; certificates bought after the rotation are P-384 (their session
 * records name the suite) and run with the device's derived P-384 owner secret; certificates bought
 * before keep working under the P-256 key during the overlap; no paid certificate is lost; and one
 * revocation covers a device's certificates of both suites.
 */
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorCodeOf } from '@m2m-fabric/common';
import { readDeviceState, type DeviceAgent } from '@m2m-fabric/device';
import { ErrorCode, P384_SHA384 } from '@m2m-fabric/protocol';
import type { ChaincodeClient } from '@m2m-fabric/sdk';
import { MANUFACTURER_MSP } from '@m2m-fabric/cli';
import { countCertificates } from '@m2m-fabric/console';
import { startTestBed } from './helpers/setup.js';

const DEVICES = 3;
const BEFORE = 4; // P-256 sessions each device holds from before the rotation
const AFTER = 3; // P-384 sessions bought for each device after it
const OVERLAP_SECONDS = 600;

void test('sessions keep being established while the CSP moves its CA to another suite', async () => {
    let cspLedger: ChaincodeClient | undefined;
    const bed = await startTestBed({
        fogOptions: { cspKeyRefreshMs: 200 },
        records: { batchSize: 8, maxDelayMs: 100, envelopes: true },
        wrapCspLedger: (ledger) => (cspLedger = ledger),
    });
    try {
        const ids = Array.from({ length: DEVICES }, (_, k) => `mig-${k}`);
        for (const id of ids) await bed.provision(id, BEFORE);
        await bed.provision('mig-spare', 1); // never used: revoked at the end with its P-384 ones
        const agents = new Map<string, DeviceAgent>();
        for (const id of ids) {
            const a = await bed.agent(id);
            await a.connect();
            agents.set(id, a);
        }
        const refusals: string[] = [];
        let established = 0;
        const oneSession = async (agent: DeviceAgent): Promise<string> => {
            for (let attempt = 1; ; attempt++) {
                try {
                    const s = await agent.establishSession();
                    established++;
                    await agent.upload({ temperature: 20 + established });
                    return s.routeId;
                } catch (err) {
                    const code = errorCodeOf(err);
                    assert.ok(code !== undefined && code !== 'internal', `untyped failure: ${String(err)}`);
                    refusals.push(code);
                    if (attempt >= 6) throw err;
                    await new Promise((r) => setTimeout(r, 300));
                }
            }
        };
        const runAll = (count: number): Promise<string[][]> =>
            Promise.all(
                [...agents.values()].map(async (agent) => {
                    const routes: string[] = [];
                    for (let k = 0; k < count; k++) routes.push(await oneSession(agent));
                    return routes;
                }),
            );

        // Load on P-256 certificates; the CSP moves its CA to P-384 once some sessions are done.
        const load = runAll(BEFORE);
        while (established < DEVICES) await new Promise((r) => setTimeout(r, 20));
        const epoch = await bed.net.csp.rotateKey(OVERLAP_SECONDS, P384_SHA384);
        assert.equal(epoch.keyId, 1);
        assert.equal(epoch.suite, P384_SHA384.id);
        const before = (await load).flat();
        assert.equal(established, DEVICES * BEFORE, 'every pre-rotation (P-256) session was established');

        // The fog registers its P-384 key on its own once it sees the rotation.
        const fogId = bed.net.fogId(0);
        for (let k = 0; ; k++) {
            const fog = await cspLedger!.getFog(fogId);
            if (fog.suiteKeys?.some((e) => e.suite === P384_SHA384.id) === true) break;
            assert.ok(k < 100, 'the fog registered no P-384 key');
            await new Promise((r) => setTimeout(r, 100));
        }

        // Purchases after the rotation are P-384 certificates under epoch 1.
        await bed.net.csp.grantCredit(MANUFACTURER_MSP, DEVICES * AFTER);
        for (const id of ids) await bed.net.manufacturer.buySessions(id, AFTER);
        for (const id of ids) await bed.net.manufacturer.provisionDevice(id, bed.statePath(id), { id: fogId });
        for (const agent of agents.values()) await agent.reloadEntitlement();
        const after = (await runAll(AFTER)).flat();
        assert.equal(established, DEVICES * (BEFORE + AFTER));

        // No paid certificate lost: every device used every session it bought.
        for (const agent of agents.values()) assert.equal(agent.remainingSessions, 0n);
        const sessions = bed.net.csp.listSessions().filter((s) => s.state === 'established');
        assert.equal(sessions.length, DEVICES * (BEFORE + AFTER));
        const byRoute = new Map(sessions.map((s) => [s.routeId, s]));
        for (const route of after) {
            const record = await cspLedger!.getSession(byRoute.get(route)!.primaryHash);
            assert.equal(record.keyId, 1);
            assert.equal(record.suite, P384_SHA384.id, 'a session bought after the rotation is P-384');
            assert.equal(record.primaryHash.length, 2 * P384_SHA384.hashBytes);
        }
        for (const route of before) {
            const record = await cspLedger!.getSession(byRoute.get(route)!.primaryHash);
            assert.equal(record.keyId, 0);
            assert.equal(record.suite, undefined, 'a session bought before the rotation is of the ledger suite');
        }
        for (const id of ids) {
            const state = await readDeviceState(bed.statePath(id));
            assert.deepEqual(state?.cspKeys, [{ keyId: 1, caPublicKey: epoch.caPublicKey, suite: P384_SHA384.id }]);
            assert.equal(state?.counterSuites?.[0]?.suite, P384_SHA384.id);
            assert.equal(state?.session?.suite, P384_SHA384.id, "the device's current session is P-384");
        }

        // One revocation (the seed of the provisioning suite) covers a device's certificates of both
        // suites: the spare device holds one unused P-256 and two unused P-384 certificates.
        await bed.net.csp.grantCredit(MANUFACTURER_MSP, 2);
        await bed.net.manufacturer.buySessions('mig-spare', 2);
        // The console's counts find the P-384 certificates from the manufacturer's record.
        const count = (): ReturnType<typeof countCertificates> =>
            countCertificates(bed.net.suite, cspLedger!, join(bed.dataDir, 'manufacturer'), 'mig-spare');
        assert.deepEqual(await count(), { purchased: 3, requested: 0, unused: 3, used: 0, revoked: 0, missing: 0 });
        const revoked = await bed.net.manufacturer.revokeDevice('mig-spare');
        assert.equal(revoked.revoked, 3, 'the P-256 and both P-384 certificates were revoked');
        assert.equal(revoked.used, 0);
        assert.deepEqual(await count(), { purchased: 3, requested: 0, unused: 0, used: 0, revoked: 3, missing: 0 });
        console.log(
            `# ${established} sessions across a rotation P-256 -> P-384; typed refusals retried: ${JSON.stringify(
                refusals.reduce<Record<string, number>>((m, c) => ({ ...m, [c]: (m[c] ?? 0) + 1 }), {}),
            )}`,
        );
    } finally {
        await bed.close();
    }
});

void test('a session of a suite its fog announces no key for is refused before a counter is spent', async () => {
    // The fog does not follow the CSP's key epochs on its own here (an hour between reads).
    const bed = await startTestBed({ fogOptions: { cspKeyRefreshMs: 3_600_000 } });
    try {
        await bed.net.csp.rotateKey(600, P384_SHA384);
        await bed.provision('mig-wait', 1);
        const agent = await bed.agent('mig-wait');
        await agent.connect();
        const next = agent.nextCounter;
        const height = bed.net.ledger.height;
        await assert.rejects(
            agent.establishSession(),
            (err: unknown) => errorCodeOf(err) === ErrorCode.FogSuiteKeyMissing,
        );
        assert.equal(agent.nextCounter, next, 'no counter was reserved');
        assert.equal(agent.pendingCounter, undefined);
        assert.equal(agent.remainingSessions, 1n, 'the paid certificate is still there');
        assert.equal(bed.net.ledger.height, height, 'nothing was written');
        // Once the fog reads the epochs it registers its P-384 key, and the same certificate works.
        await bed.net.fogs[0]!.followCspKeys();
        const s = await agent.establishSession();
        assert.equal(s.counter, next);
        assert.equal(agent.remainingSessions, 0n);
    } finally {
        await bed.close();
    }
});
