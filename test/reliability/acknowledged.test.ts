/**
 * Issue 17, "nothing acknowledged is lost" checked per upload: one lost upload and one extra stored
 * upload must not cancel out. The count comparison the fault runner used before
 * (max(0, acknowledged - stored)) reports 0 for this case; the per-identity check reports the lost one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acknowledgedIn, missingAcknowledged, storedIn } from './acknowledged.js';

const ROUTE_A = 'a1'.repeat(16);
const ROUTE_B = 'b2'.repeat(16);

void test('one lost and one extra upload: the count method sees nothing, the per-upload check names the lost one', () => {
    const deviceOutput = [
        `session counter 3 established in 120 ms`,
        `telemetry frame 1 acknowledged by the CSP on route ${ROUTE_A}`,
        `session counter 4 established in 110 ms`,
        `telemetry frame 1 acknowledged by the CSP on route ${ROUTE_B}`,
    ].join('\n');
    // The CSP holds route A's frame 1 and frame 2 (stored, its Ack lost on the way back), not route B's.
    const cspOutput = [
        JSON.stringify({ routeId: ROUTE_A, seq: '1', receivedAt: 1, payload: 'x' }),
        JSON.stringify({ routeId: ROUTE_A, seq: '2', receivedAt: 2, payload: 'y' }),
        '',
    ].join('\n');
    const acked = acknowledgedIn(deviceOutput);
    const stored = storedIn(cspOutput);
    assert.equal(acked.length, 2);
    assert.equal(stored.length, 2);
    assert.equal(Math.max(0, acked.length - stored.length), 0, 'the count method cancels the two out');
    assert.deepEqual(missingAcknowledged(acked, stored), [{ routeId: ROUTE_B, seq: '1' }]);
});

void test('the same sequence number on another route is another upload; case and leading zeros are not', () => {
    const acked = [
        { routeId: ROUTE_A, seq: '7' },
        { routeId: ROUTE_B, seq: '7' },
    ];
    assert.deepEqual(missingAcknowledged(acked, [{ routeId: ROUTE_A.toUpperCase(), seq: '07' }]), [
        { routeId: ROUTE_B, seq: '7' },
    ]);
    assert.deepEqual(missingAcknowledged(acked, [...acked]), []);
    assert.deepEqual(missingAcknowledged([], [{ routeId: ROUTE_A, seq: '1' }]), []);
});
