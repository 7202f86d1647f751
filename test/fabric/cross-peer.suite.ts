/**
 * Regression test of failure 2 on real Fabric: a submit returns once the submitter's own peer has
 * committed; another organisation's peer may not have the block yet. The suite's purchase helper
 * let the CSP issue on its own peer right after the manufacturer's request had committed on the
 * manufacturer's peer, and the CSP's chaincode sometimes did not know the request
 * (`unknownRequest`, 1 of 3 SmartBFT runs). Here 20 purchases, one after the other (so that they
 * do not contend for credit), each go straight from the manufacturer's commit to the CSP's
 * issuance, the way the shared helper does it: every issuance must find its request. The second
 * test makes the CSP's peer lag for certain: the purchase commits while that peer restarts, and the
 * CSP issues as soon as its peer is back (M2M_FABRIC_RESTART_PEER_CMD on Fabric).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { DEFAULT_SUITE } from '@m2m-fabric/protocol';

import { buildRequest, newDevice, type CspActor } from '../chaincode/actors.js';
import { grantCreditEverywhere, json, openSuite, registeredCsp, skip, type OpenSuite } from './suite-setup.js';
import { MSP } from './targets.js';
import { purchaseAndIssue } from './purchase.js';

void describe("acting on another organisation's commit", () => {
    let suite: OpenSuite;
    let csp: CspActor;
    before(async () => {
        if (skip !== false) return;
        suite = await openSuite();
        csp = await registeredCsp(suite);
    });
    after(async () => {
        if (skip === false) await suite.close();
    });

    void it("the CSP issues on its own peer straight after the manufacturer's request commits", { skip }, async () => {
        const count = 20;
        await grantCreditEverywhere(suite, MSP.manufacturer, count);
        const devices = Array.from({ length: count }, () =>
            newDevice(`cross-${randomBytes(4).toString('hex')}`, DEFAULT_SUITE),
        );
        const outcomes: PromiseSettledResult<string>[] = [];
        for (const device of devices) {
            const [outcome] = await Promise.allSettled([
                purchaseAndIssue(suite, csp, buildRequest(DEFAULT_SUITE, device, 1n, 1)),
            ]);
            outcomes.push(outcome);
        }
        assert.deepEqual(
            outcomes.flatMap((o) => (o.status === 'rejected' ? [String(o.reason)] : [])),
            [],
            'every issuance found its request',
        );
        for (const outcome of outcomes) {
            assert.ok(outcome.status === 'fulfilled');
            const request = json(
                await suite.contract('csp', 'certificates').evaluate('getRequest', { arguments: [outcome.value] }),
            );
            assert.equal(request.status, 'issued');
        }
    });

    void it('the CSP issues for a purchase that committed while its peer was restarting', { skip }, async (t) => {
        const restartPeer = suite.target.restartPeer;
        if (restartPeer === undefined) {
            t.skip('set M2M_FABRIC_RESTART_PEER_CMD to restart a peer');
            return;
        }
        await grantCreditEverywhere(suite, MSP.manufacturer, 1);
        const request = buildRequest(
            DEFAULT_SUITE,
            newDevice(`lag-${randomBytes(4).toString('hex')}`, DEFAULT_SUITE),
            1n,
            1,
        );
        const restarting = restartPeer('csp');
        // The CSP's peer is down within a second; MAJORITY is met by the three other organisations.
        await sleep(1000);
        const cid = await purchaseAndIssue(suite, csp, request, { beforeIssue: async () => await restarting });
        const issued = json(await suite.contract('csp', 'certificates').evaluate('getRequest', { arguments: [cid] }));
        assert.equal(issued.status, 'issued');
    });
});
