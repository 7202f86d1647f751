/**
 * Regression test of failure 1 on real Fabric: concurrent purchases of one manufacturer all wrote
 * one credit key, so they lost MVCC races and — with peers at different heights — failed at
 * endorsement with "ProposalResponsePayloads do not match", which was not retried (1 of 4
 * concurrent buys failed). Here 50 purchases run at once through the SDK (`ChaincodeClient`, as the
 * manufacturer service submits them): every one must succeed, each debiting exactly one credit; and
 * the payment rule must hold under the same concurrency: with k credits left, k+3 concurrent
 * purchases give exactly k sessions and 3 `failedPayment` refusals.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { DEFAULT_SUITE, ErrorCode } from '@m2m-fabric/protocol';
import { EndorseError } from '@m2m-fabric/sdk';

import { ChaincodeClient } from '@m2m-fabric/sdk';

import { buildRequest, newDevice } from '../chaincode/actors.js';
import { grantCreditEverywhere, json, openSuite, registeredCsp, skip, type OpenSuite } from './suite-setup.js';
import { MSP } from './targets.js';

void describe('manufacturer credit under concurrent purchases', () => {
    let suite: OpenSuite;
    let manufacturer: ChaincodeClient;
    const balance = async (): Promise<number> =>
        Number(
            json(
                await suite
                    .contract('manufacturer', 'registry')
                    .evaluate('getCredit', { arguments: [MSP.manufacturer] }),
            ).balance,
        );
    const grant = async (amount: number): Promise<void> => {
        await grantCreditEverywhere(suite, MSP.manufacturer, amount);
    };
    /** `count` purchases of one session each, all at once, of fresh devices. */
    const purchaseAll = async (count: number): Promise<PromiseSettledResult<unknown>[]> => {
        const requests = Array.from({ length: count }, () =>
            buildRequest(DEFAULT_SUITE, newDevice(`buyer-${randomBytes(4).toString('hex')}`, DEFAULT_SUITE), 1n, 1),
        );
        return await Promise.allSettled(
            requests.map(async (request) => await manufacturer.requestSessions(1, request.cid, request.bytes)),
        );
    };
    const describeFailures = (outcomes: PromiseSettledResult<unknown>[]): string[] =>
        outcomes.flatMap((o) => (o.status === 'rejected' ? [String(o.reason)] : []));

    before(async () => {
        if (skip !== false) return;
        suite = await openSuite();
        await registeredCsp(suite);
        manufacturer = new ChaincodeClient(
            suite.connections.get('manufacturer') as NonNullable<ReturnType<typeof suite.connections.get>>,
            suite.target.chaincodeName,
            60_000,
        );
    });
    after(async () => {
        if (skip === false) await suite.close();
    });

    void it('50 concurrent purchases all succeed, each debiting one credit', { skip }, async () => {
        await grant(50);
        const start = await balance();
        const outcomes = await purchaseAll(50);
        assert.deepEqual(describeFailures(outcomes), [], 'every purchase succeeds');
        // The manufacturer's own peer committed each purchase before its submit returned.
        assert.equal(await balance(), start - 50);
    });

    void it(
        'with k credits left, k + 3 concurrent purchases: exactly k succeed, 3 failedPayment',
        { skip },
        async () => {
            await grant(5);
            const k = await balance();
            const outcomes = await purchaseAll(k + 3);
            const refused = outcomes.filter(
                (o) =>
                    o.status === 'rejected' &&
                    o.reason instanceof EndorseError &&
                    o.reason.errorCode === ErrorCode.FailedPayment,
            ).length;
            const succeeded = outcomes.filter((o) => o.status === 'fulfilled').length;
            assert.equal(succeeded, k, describeFailures(outcomes).join('\n'));
            assert.equal(refused, 3, describeFailures(outcomes).join('\n'));
            assert.equal(await balance(), 0);
        },
    );
});
