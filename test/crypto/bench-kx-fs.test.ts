/**
 * The statistics of `bench -- kx-fs` (scripts/bench/kx-fs.ts): medians and the bootstrap interval
 * of the ratio of medians over resampled pairs. No timing: fixed inputs, known answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

// The bench scripts are their own build (scripts/, not a test project's file): loaded like the
// dispatcher the other bench tests spawn.
const { bootstrapRatio, median } = (await import(new URL('../../scripts/bench/kx-fs.js', import.meta.url).href)) as {
    bootstrapRatio: (base: number[], cur: number[], rounds?: number) => [number, number];
    median: (xs: number[]) => number;
};

void test('median of odd and even counts, unsorted input left unchanged', () => {
    const xs = [3, 1, 2];
    assert.equal(median(xs), 2);
    assert.deepEqual(xs, [3, 1, 2]);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
});

void test('bootstrap interval of median(current) / median(baseline): exact for a constant ratio, covers the point estimate, deterministic', () => {
    const base = [1000, 1010, 990, 1005, 1020, 995];
    assert.deepEqual(
        bootstrapRatio(
            base,
            base.map((b) => b * 1.1),
        ).map((x) => Math.round(x * 1e9) / 1e9),
        [1.1, 1.1],
    );
    const cur = [1030, 1000, 1060, 990, 1080, 1010];
    const [lo, hi] = bootstrapRatio(base, cur);
    const point = median(cur) / median(base);
    assert.ok(lo <= point && point <= hi, `${lo} <= ${point} <= ${hi}`);
    assert.ok(lo < hi, 'pairs that differ give an interval, not a point');
    assert.deepEqual(bootstrapRatio(base, cur), [lo, hi], 'the same figures give the same interval');
});
