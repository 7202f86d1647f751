/**
 * CSP key rotation under load over the real MQTT path (docs/protocol.md#csp-key-rotation): devices
 * keep establishing sessions while the CSP rotates its CA key. Every session is established, or
 * refused with a typed error and established on a retry; no paid certificate is lost; certificates
 * bought after the rotation are under the new key and the devices learn it (verified from their
 * provisioned key) from the fog; after the old key's end date the fog refuses its certificates with
 * cspKeyExpired before any ledger write.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorCodeOf } from '@m2m-fabric/common';
import { readDeviceState, type DeviceAgent } from '@m2m-fabric/device';
import { ErrorCode } from '@m2m-fabric/protocol';
import type { ChaincodeClient } from '@m2m-fabric/sdk';
import { MANUFACTURER_MSP } from '@m2m-fabric/cli';
import { startTestBed } from './helpers/setup.js';

const DEVICES = 4;
const BEFORE = 6; // sessions each device holds from before the rotation
const AFTER = 2; // sessions bought for each device after it
const OVERLAP_SECONDS = 20;

void test('sessions keep being established while the CSP rotates its key', async () => {
    let cspLedger: ChaincodeClient | undefined;
    const bed = await startTestBed({
        fogOptions: { cspKeyRefreshMs: 200 },
        wrapCspLedger: (ledger) => (cspLedger = ledger),
    });
    try {
        const ids = Array.from({ length: DEVICES }, (_, k) => `rot-${k}`);
        for (const id of ids) await bed.provision(id, BEFORE);
        await bed.provision('rot-late', 1); // used only after the old key's end date
        const agents = new Map<string, DeviceAgent>();
        for (const id of ids) {
            const a = await bed.agent(id);
            await a.connect();
            agents.set(id, a);
        }

        const refusals: string[] = [];
        let established = 0;
        /** One session, retried on a typed refusal (a rotation's MVCC conflict, a stale key). */
        const oneSession = async (agent: DeviceAgent): Promise<string> => {
            for (let attempt = 1; ; attempt++) {
                try {
                    const s = await agent.establishSession();
                    established++;
                    return s.routeId;
                } catch (err) {
                    const code = errorCodeOf(err);
                    assert.ok(code !== undefined && code !== 'internal', `untyped failure: ${String(err)}`);
                    refusals.push(code);
                    if (attempt >= 5) throw err;
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

        // Load: every device runs its pre-rotation sessions; the CSP rotates once a few are done.
        const load = runAll(BEFORE);
        while (established < DEVICES) await new Promise((r) => setTimeout(r, 20));
        const epoch = await bed.net.csp.rotateKey(OVERLAP_SECONDS);
        assert.equal(epoch.keyId, 1);
        await load;
        assert.equal(established, DEVICES * BEFORE, 'every pre-rotation session was established');

        // Purchases after the rotation are issued under the new key.
        await bed.net.csp.grantCredit(MANUFACTURER_MSP, DEVICES * AFTER);
        for (const id of ids) await bed.net.manufacturer.buySessions(id, AFTER);
        for (const id of ids)
            await bed.net.manufacturer.provisionDevice(id, bed.statePath(id), { id: bed.net.fogId(0) });
        for (const agent of agents.values()) await agent.reloadEntitlement();
        const after = (await runAll(AFTER)).flat();
        assert.equal(established, DEVICES * (BEFORE + AFTER));

        // No paid certificate lost: every device used every session it bought.
        for (const agent of agents.values()) assert.equal(agent.remainingSessions, 0n);
        const sessions = bed.net.csp.listSessions().filter((s) => s.state === 'established');
        assert.equal(sessions.length, DEVICES * (BEFORE + AFTER));
        // The post-rotation sessions ran on certificates of epoch 1; the devices accepted the key.
        const csp = bed.net.csp;
        const byRoute = new Map(sessions.map((s) => [s.routeId, s]));
        for (const route of after) {
            const s = byRoute.get(route);
            assert.ok(s !== undefined);
            const record = await cspLedger!.getSession(s.primaryHash);
            assert.equal(record.keyId, 1, 'a certificate bought after the rotation is under the new key');
        }
        for (const id of ids) {
            const state = await readDeviceState(bed.statePath(id));
            assert.deepEqual(state?.cspKeys, [{ keyId: 1, caPublicKey: epoch.caPublicKey }]);
        }
        assert.equal(csp.keyEpochs.length, 2);

        // After the old key's end date, the fog refuses its certificates before any ledger write.
        const late = await bed.agent('rot-late');
        await late.connect();
        const validUntil = Date.parse(csp.keyEpochs[0]!.validUntil!);
        while (Date.now() <= validUntil) await new Promise((r) => setTimeout(r, validUntil - Date.now() + 10));
        const height = bed.net.ledger.height;
        await assert.rejects(late.establishSession(), (err: unknown) => errorCodeOf(err) === ErrorCode.CspKeyExpired);
        assert.equal(bed.net.ledger.height, height, 'nothing was written for the expired certificate');
        console.log(
            `# ${established} sessions across a rotation; typed refusals retried: ${JSON.stringify(
                refusals.reduce<Record<string, number>>((m, c) => ({ ...m, [c]: (m[c] ?? 0) + 1 }), {}),
            )}`,
        );
    } finally {
        await bed.close();
    }
});
