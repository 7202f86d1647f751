/**
 * Regression test of failure 3 on real Fabric: `network:deploy` reported success before service
 * discovery had converged, and the first MAJORITY endorsement failed with "no combination of peers
 * can be derived which satisfy the endorsement policy" (EndorsementPolicyError). Run straight after
 * `network:up` and `network:deploy` (run.ts loads this file first): every organisation's Gateway
 * must plan a MAJORITY endorsement at its first attempt, without any retry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { EndorsementPolicyError } from '@m2m-fabric/sdk';

import { openSuite, skip, type OpenSuite } from './suite-setup.js';
import { ORGS } from './targets.js';

void describe('service discovery has converged when the network reports itself deployed', () => {
    let suite: OpenSuite;
    before(async () => {
        if (skip === false) suite = await openSuite();
    });
    after(async () => {
        if (skip === false) await suite.close();
    });

    void it("every organisation's first MAJORITY endorsement is planned at once", { skip }, async () => {
        // org.hyperledger.fabric:GetMetadata (every fabric-contract-api chaincode has it) changes
        // nothing and succeeds on any peer; submitted, it still needs the endorsements of 3 of the 4
        // organisations, which the Gateway plans after the first endorser's answer.
        const outcomes = await Promise.allSettled(
            ORGS.map(async (org) => await suite.contract(org, 'org.hyperledger.fabric').submit('GetMetadata')),
        );
        const failures: string[] = [];
        for (const [index, outcome] of outcomes.entries()) {
            if (outcome.status === 'fulfilled') continue;
            const error: unknown = outcome.reason;
            failures.push(
                `${ORGS[index]}: ${error instanceof EndorsementPolicyError ? 'EndorsementPolicyError' : 'unexpected'} ${String(error)}`,
            );
        }
        assert.deepEqual(failures, [], 'first endorsements refused right after deploy');
    });
});
