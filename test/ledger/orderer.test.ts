/** Block cutting rules of the embedded ordering service (Fabric's blockcutter + batch timer). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { BlockCutter, MessageTooLargeError } from '@m2m-fabric/embedded-ledger/internal';
import { DEFAULT_BATCH_CONFIG } from '@m2m-fabric/embedded-ledger';

function envelope(id: number, size: number): { bytes: Uint8Array; size: number } {
    return { bytes: Uint8Array.from([id]), size };
}

function ids(batches: Uint8Array[][]): number[][] {
    return batches.map((batch) => batch.map((bytes) => bytes[0] ?? -1));
}

void describe('BlockCutter', () => {
    void it("uses Fabric's defaults: 2 s, 500 messages, 2 MiB preferred, 10 MiB absolute", () => {
        assert.deepEqual(DEFAULT_BATCH_CONFIG, {
            batchTimeoutMs: 2000,
            maxMessageCount: 500,
            preferredMaxBytes: 2 * 1024 * 1024,
            absoluteMaxBytes: 10 * 1024 * 1024,
        });
    });

    void it('cuts at MaxMessageCount', () => {
        const batches: Uint8Array[][] = [];
        const cutter = new BlockCutter({ ...DEFAULT_BATCH_CONFIG, maxMessageCount: 3 }, (b) => batches.push(b));
        for (let i = 0; i < 7; i++) cutter.order(envelope(i, 10));
        assert.deepEqual(ids(batches), [
            [0, 1, 2],
            [3, 4, 5],
        ]);
        assert.equal(cutter.pending, 1);
        cutter.close(true);
        assert.deepEqual(ids(batches).at(-1), [6]);
    });

    void it('cuts at BatchTimeout after the first message of a batch', async () => {
        const batches: Uint8Array[][] = [];
        const cutter = new BlockCutter({ ...DEFAULT_BATCH_CONFIG, batchTimeoutMs: 60 }, (b) => batches.push(b));
        cutter.order(envelope(1, 10));
        await sleep(20);
        cutter.order(envelope(2, 10));
        assert.equal(batches.length, 0);
        await sleep(80);
        assert.deepEqual(ids(batches), [[1, 2]]);
        cutter.order(envelope(3, 10));
        await sleep(100);
        assert.deepEqual(ids(batches), [[1, 2], [3]]);
        cutter.close(false);
    });

    void it('cuts before a message that would overflow PreferredMaxBytes, and isolates an oversized one', () => {
        const batches: Uint8Array[][] = [];
        const cutter = new BlockCutter({ ...DEFAULT_BATCH_CONFIG, preferredMaxBytes: 100 }, (b) => batches.push(b));
        cutter.order(envelope(1, 40));
        cutter.order(envelope(2, 40));
        cutter.order(envelope(3, 40)); // 120 > 100: cut [1, 2] first
        assert.deepEqual(ids(batches), [[1, 2]]);
        cutter.order(envelope(4, 150)); // above preferred: cut [3], then [4] alone
        assert.deepEqual(ids(batches), [[1, 2], [3], [4]]);
        cutter.order(envelope(5, 60));
        cutter.order(envelope(6, 40)); // exactly 100 fits
        assert.equal(cutter.pending, 2);
        cutter.close(true);
        assert.deepEqual(ids(batches).at(-1), [5, 6]);
    });

    void it('refuses a message above AbsoluteMaxBytes and invalid configurations', () => {
        const cutter = new BlockCutter(
            { ...DEFAULT_BATCH_CONFIG, preferredMaxBytes: 10, absoluteMaxBytes: 20 },
            () => undefined,
        );
        assert.throws(() => cutter.order(envelope(1, 21)), MessageTooLargeError);
        assert.equal(cutter.pending, 0);
        cutter.close(false);
        assert.throws(() => cutter.order(envelope(2, 1)), /stopped/);
        assert.throws(
            () => new BlockCutter({ ...DEFAULT_BATCH_CONFIG, maxMessageCount: 0 }, () => undefined),
            RangeError,
        );
        assert.throws(
            () => new BlockCutter({ ...DEFAULT_BATCH_CONFIG, batchTimeoutMs: -1 }, () => undefined),
            RangeError,
        );
        assert.throws(
            () =>
                new BlockCutter(
                    { ...DEFAULT_BATCH_CONFIG, preferredMaxBytes: 30, absoluteMaxBytes: 20 },
                    () => undefined,
                ),
            RangeError,
        );
    });
});
