/**
 * Double use of a certificate, through the embedded ledger's real execute-order-validate pipeline:
 * 50 concurrent activations of one certificate through two fogs leave exactly one session (the
 * others are invalidated by MVCC or refused with failedDoubleSpendingCheck-1/-2); a certificate
 * used at fog A cannot be used at fog B; a recorded activation or synchronisation cannot be
 * replayed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ErrorCode, P256_SHA256, decodeCertificateObject, encodePoint, toHex } from '@m2m-fabric/protocol';
import { CommitError, EndorseError } from '@m2m-fabric/sdk';

import { newDevice, prepareActivation } from './actors.js';
import type { PreparedActivation } from './actors.js';
import { startNetwork } from './network.js';
import type { TestNetwork } from './network.js';
import {
    activate,
    assertRejectedUnchanged,
    bootstrap,
    evaluate,
    fogParty,
    purchase,
    runSession,
    submit,
} from './scenario.js';

const suite = P256_SHA256;
const RACERS = 50;

void describe('double use of a certificate', () => {
    let net: TestNetwork;
    before(async () => {
        net = await startNetwork(suite, { batchTimeoutMs: 20 });
        await bootstrap(net, 10);
    });
    after(async () => net.close());

    void it(`${RACERS} concurrent activations of one certificate through two fogs give exactly one session`, async () => {
        const device = newDevice('welder-1', suite);
        const { objects } = await purchase(net, device, 1n, 1);
        const object = objects[0];
        assert.ok(object !== undefined);
        const racers: { fog: typeof net.fogA; prepared: PreparedActivation }[] = [];
        for (let k = 0; k < RACERS; k++) {
            const fog = k % 2 === 0 ? net.fogA : net.fogB;
            racers.push({ fog, prepared: await prepareActivation(net.csp, fog, device, 1n, object) });
        }
        const outcomes = await Promise.allSettled(
            racers.map(({ fog, prepared }) =>
                fogParty(net, fog)
                    .contract('sessions')
                    .submit('activateSession', { arguments: [fog.id], transientData: { activation: prepared.bytes } }),
            ),
        );
        const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
        assert.equal(won.length, 1, 'exactly one activation commits');
        let mvcc = 0;
        let refused = 0;
        for (const outcome of outcomes) {
            if (outcome.status === 'fulfilled') continue;
            const error: unknown = outcome.reason;
            if (error instanceof CommitError) {
                assert.equal(error.code, 'MVCC_READ_CONFLICT');
                mvcc++;
            } else {
                assert.ok(error instanceof EndorseError, `unexpected ${String(error)}`);
                assert.ok(
                    error.errorCode === ErrorCode.FailedDoubleSpendingCheck1 ||
                        error.errorCode === ErrorCode.FailedDoubleSpendingCheck2,
                    error.chaincodeMessage,
                );
                refused++;
            }
        }
        assert.equal(mvcc + refused, RACERS - 1);
        const state = await net.dumpState();
        assert.equal(state.filter((entry) => entry.type === 'session').length, 1);
        const idCert = toHex(encodePoint(suite, decodeCertificateObject(object).idCert));
        assert.equal(
            (await evaluate(net.parties.csp, 'certificates', 'getCertificate', { args: [idCert] })).status,
            'used',
        );
        console.log(`# race: 1 committed, ${mvcc} MVCC_READ_CONFLICT, ${refused} refused at endorsement`);
    });

    void it('a certificate used at fog A cannot be used at fog B, and no activation or synchronisation replays', async () => {
        const device = newDevice('welder-2', suite);
        const { objects } = await purchase(net, device, 1n, 1);
        const object = objects[0];
        assert.ok(object !== undefined);
        const { prepared, sync } = await runSession(net, net.fogA, device, 1n, object);

        const atB = await prepareActivation(net.csp, net.fogB, device, 1n, object);
        await assertRejectedUnchanged(net, () => activate(net, net.fogB, atB), ErrorCode.FailedDoubleSpendingCheck1);
        await assertRejectedUnchanged(
            net,
            () => activate(net, net.fogA, prepared),
            ErrorCode.FailedDoubleSpendingCheck1,
        );
        const again = await prepareActivation(net.csp, net.fogA, device, 1n, object);
        await assertRejectedUnchanged(net, () => activate(net, net.fogA, again), ErrorCode.FailedDoubleSpendingCheck1);
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.csp, 'sessions', 'synchroniseSession', { transient: { synchronisation: sync } }),
            ErrorCode.InvalidPrimaryHash,
        );
    });
});
