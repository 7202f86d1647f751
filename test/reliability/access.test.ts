/** The bounded slice of the access matrix that `npm test` runs (the full one: `npm run test:access`). */
import './quiet.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runAccessMatrix } from './access-matrix.js';

void test('access matrix slice: wrong organisations, roles and foreign CAs are denied; the expected callers are allowed', async () => {
    const r = await runAccessMatrix({ sample: 0.34 });
    assert.deepEqual(r.failures, []);
    assert.equal(r.wronglyAllowed, 0);
    assert.equal(r.wronglyDenied, 0);
    assert.ok(r.denied >= r.functions * 7, `${r.denied} denials over ${r.functions} functions`);
    assert.ok(r.allowed >= r.functions, `${r.allowed} allowed calls`);
    assert.equal(r.stateChanged, false);
});
