/**
 * Real Fabric, seen in `bench -- kx --target fabric` at 25 concurrent sessions: the CSP's own peer
 * already shows the activation (so Algorithm 3's read succeeds), but another org's endorsing peer
 * has not committed that block yet and refuses the synchronisation with `invalidPrimaryHash`. The
 * CSP used to drop the session and fail it; it must submit again until the endorser catches up
 * (bounded), as it already waits for its own peer.
 *
 * The lagging endorser is stood in for by a wrapper around the CSP's chaincode client that refuses
 * the first synchronisation the way the Gateway reports an endorser's refusal. The embedded
 * ledger's peers never lag, so this is the only way to reach the branch deterministically here;
 * the real-Fabric run is the bench.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChaincodeClient } from '@m2m-fabric/sdk';
import { startTestBed } from './helpers/setup.js';

/** A client whose first `count` synchronisations are refused as a lagging endorser refuses them. */
function lagging(ledger: ChaincodeClient, count: number, refused: { n: number }): ChaincodeClient {
    return new Proxy(ledger, {
        get(target, prop, receiver) {
            const value: unknown = Reflect.get(target, prop, receiver);
            if (prop !== 'synchroniseSession' || typeof value !== 'function') {
                return typeof value === 'function'
                    ? ((value as (...a: unknown[]) => unknown).bind(target) as unknown)
                    : value;
            }
            return async (...args: unknown[]) => {
                if (refused.n < count) {
                    refused.n++;
                    throw new Error(
                        'endorsement of tx failed (status 500): invalidPrimaryHash: no session with this primaryHash',
                    );
                }
                return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            };
        },
    });
}

void test('a synchronisation refused by an endorser that lags behind the CSP peer is submitted again and the session established', async (t) => {
    const refused = { n: 0 };
    const bed = await startTestBed({ wrapCspLedger: (l) => lagging(l, 2, refused) });
    t.after(() => bed.close());
    await bed.provision('lag-0001', 1);
    const agent = await bed.agent('lag-0001');
    await agent.connect();
    const session = await agent.establishSession();
    assert.equal(refused.n, 2, 'the wrapper refused the first two synchronisations');
    assert.equal(session.counter, 1n);
    const established = bed.net.csp.listSessions().filter((s) => s.state === 'established');
    assert.equal(established.length, 1);
});
