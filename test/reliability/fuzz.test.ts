/** The bounded slice of the fuzzer that `npm test` runs (the full one: `npm run test:fuzz`). */
import './quiet.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mutate, Prng, runFuzz } from './fuzz.js';

void test('mutations cover every position and never reproduce the base message', () => {
    const base = new Uint8Array(40).map((_, i) => i);
    const rnd = new Prng(1);
    const hit = new Set<number>();
    for (let i = 0; i < 400; i++) {
        const m = mutate(base, i, rnd, [[0, 4]]);
        assert.ok(m.length !== base.length || m.some((x, k) => x !== base[k]), `mutation ${i} is the base`);
        if (m.length === base.length) {
            assert.deepEqual([...m.subarray(0, 4)], [0, 1, 2, 3], 'fixed range kept');
            m.forEach((x, k) => x !== base[k] && hit.add(k));
        }
    }
    for (let k = 4; k < 40; k++) assert.ok(hit.has(k), `position ${k} never mutated`);
});

void test('fuzz slice: no crash, no state change, every reply typed', async () => {
    const r = await runFuzz({ perTarget: 150, invocations: 150, seed: Date.now() % 1_000_000 });
    assert.equal(r.crashes, 0);
    assert.equal(r.untypedReplies, 0);
    assert.equal(r.stateChanges, 0, JSON.stringify(r.byTarget));
    // Every message target (protocol steps and link message kinds; 'chaincode' counts invocations).
    const messageTargets = Object.keys(r.byTarget).filter((name) => name !== 'chaincode');
    assert.ok(messageTargets.length >= 7, messageTargets.join(', '));
    assert.equal(r.messages, 150 * messageTargets.length);
    assert.equal(r.invocations, 150);
});
