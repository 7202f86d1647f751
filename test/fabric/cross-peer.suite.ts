/**
 * Regression test of failure 2 on real Fabric: a submit returns once the submitter's own peer has
 * committed; another organisation's peer may not have the block yet. The suite's purchase helper
 * let the CSP issue on its own peer right after the manufacturer's request had committed on the
 * manufacturer's peer, and the CSP's chaincode sometimes did not know the request
 * (`unknownRequest`, 1 of 3 SmartBFT runs). Here 20 purchases, one after the other (so that they
 * do not contend for credit), each go straight from the manufacturer's commit to the CSP's
 * issuance, the way the shared helper does it: every issuance must find its request. The second
 * test makes the CSP's peer lag: the purchase commits while that peer restarts, and the CSP issues as
 * soon as its peer is back (M2M_FABRIC_RESTART_PEER_CMD on Fabric). The third makes the race
 * deterministic: the CSP's peer process is frozen (SIGSTOP) while earlier purchases and then the
 * purchase itself are endorsed by the three other organisations (MAJORITY) and committed; it is let
 * run again (SIGCONT) and the CSP issues on it at once. The peer then has a backlog of blocks to
 * validate and commit before the purchase's, so issuing without waiting for that block on the CSP's
 * peer (the helper before waitForCommit) fails with `unknownRequest` every time.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { DEFAULT_SUITE } from '@m2m-fabric/protocol';

import {
    buildRequest,
    issuanceTransient,
    issueObjects,
    newDevice,
    type CspActor,
    type SessionRequest,
} from '../chaincode/actors.js';
import { grantCreditEverywhere, json, openSuite, registeredCsp, skip, type OpenSuite } from './suite-setup.js';
import { MSP } from './targets.js';
import { purchaseAndIssue } from './purchase.js';

/**
 * Earlier purchases committed while the CSP's peer is frozen. With none, the resumed peer commits the
 * purchase's block before the CSP's proposal reaches its chaincode (2 of 2 runs passed without the
 * wait); with 8, the proposal arrives first in 5 of 5 runs (2.5.12, one Raft orderer, 2 cores).
 */
const BACKLOG_BLOCKS = 8;

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

    void it(
        'the CSP issues on its peer the moment that peer runs again after the purchase committed without it',
        { skip },
        async (t) => {
            const pausePeer = suite.target.pausePeer;
            if (pausePeer === undefined) {
                t.skip(suite.target.pausePeerUnavailable ?? 'this target cannot pause a peer');
                return;
            }
            // Blocks the frozen peer must validate and commit before it reaches the purchase's block.
            const backlog = BACKLOG_BLOCKS;
            await grantCreditEverywhere(suite, MSP.manufacturer, backlog + 1);
            const newRequest = (): SessionRequest =>
                buildRequest(
                    DEFAULT_SUITE,
                    newDevice(`frozen-${randomBytes(4).toString('hex')}`, DEFAULT_SUITE),
                    1n,
                    1,
                );
            // MAJORITY (3 of 4) without the frozen CSP.
            const endorsingOrganizations = [MSP.manufacturer, MSP.foga, MSP.fogb];
            const earlier: SessionRequest[] = [];
            const request = newRequest();
            let cid: string;
            const paused = await pausePeer('csp');
            try {
                for (let i = 0; i < backlog; i++) {
                    const other = newRequest();
                    const submitted = await suite
                        .contract('manufacturer', 'certificates')
                        .submitAsync('requestSessions', {
                            arguments: ['1', other.cid],
                            transientData: { request: other.bytes },
                            endorsingOrganizations,
                        });
                    const status = await submitted.getStatus();
                    assert.equal(status.code, 'VALID', `requestSessions ${status.transactionId}`);
                    earlier.push(other);
                }
                cid = await purchaseAndIssue(suite, csp, request, {
                    endorsingOrganizations,
                    beforeIssue: () => paused.resume(),
                });
            } finally {
                paused.resume();
            }
            const issued = json(
                await suite.contract('csp', 'certificates').evaluate('getRequest', { arguments: [cid] }),
            );
            assert.equal(issued.status, 'issued');
            // The earlier purchases committed before it on the CSP's peer: they are issued too.
            for (const other of earlier) {
                await suite.contract('csp', 'certificates').submit('issueCertificates', {
                    arguments: [other.cid],
                    transientData: issuanceTransient(other, issueObjects(csp, other)),
                });
            }
        },
    );
});
