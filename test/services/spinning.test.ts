/**
 * `npm start -- --scenario spinning` end to end (paper 000's cotton-spinning line): every 9-step
 * query goes over MQTT and is answered — five by the target machine's agent, one by the CSP while the
 * blow room is offline — with every record's Merkle receipt verified at the asker, and the trace
 * and recall reach the lots the scenario made.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import { runSpinning } from '@m2m-fabric/cli';

import { tempDir } from './helpers/temp-dir.js';

void test('the spinning scenario runs its queries over MQTT and traces combed yarn to its bales', async () => {
    const dir = await tempDir('m2m-spinning-');
    const summary = await runSpinning({ dataDir: join(dir, 'spinning'), batchTimeoutMs: 100, print: () => undefined });
    assert.deepEqual(summary.queryFailures, {});
    assert.equal(summary.queries, 6);
    assert.equal(summary.queriesByTarget, 5);
    assert.equal(summary.queriesByCsp, 1);
    // Every quality record was anchored and its Merkle receipt reached (and verified at) its machine.
    assert.equal(summary.records, 8);
    assert.equal(summary.receipts, 8);
    assert.equal(summary.traced, 20);
    assert.equal(summary.tracedBales.length, 8);
    assert.deepEqual(summary.recalled, ['combed-yarn-1', 'combed-yarn-2', 'combed-yarn-3', 'combed-yarn-4']);
    // fog-1 recorded each query packet and answer it relayed (at least two per query), all anchored.
    const relays = summary.relayRecords;
    assert.ok(relays.journaled >= 2 * summary.queries, JSON.stringify(relays));
    assert.equal(relays.anchored, relays.journaled);
    assert.ok(relays.batches >= 1 && relays.allAnchored && relays.receiptVerified, JSON.stringify(relays));
});
