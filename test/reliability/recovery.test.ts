/**
 * Issue 17 #1, regression: a fault must not burn a paid session. Real processes (`m2m peer`,
 * mosquitto, `m2m csp`, `m2m fog`, `m2m device`) through the fault matrix's runner:
 *  - the fog SIGKILLed when the device reaches M3, restarted 3 s later;
 *  - the broker SIGKILLed when the device reaches M1.
 * Before the fix the device's retry took the next counter and the faulted session's certificate
 * stayed `unused` on the ledger for good (lostPaidCertificates 1 per cell); now the retry presents
 * the same certificate (fresh M1) and the session is established with it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mosquittoSkipReason } from '../services/helpers/mosquitto.js';
import { runFaultMatrix } from './faults.js';

void test(
    'kill -9 of the fog at M3 (restart after 3 s) and of the broker at M1: the same certificate is retried, none is lost',
    { skip: mosquittoSkipReason },
    async () => {
        const r = await runFaultMatrix({
            sessions: 0,
            devices: 1,
            cells: [
                { victim: 'fog', step: 'M3' },
                { victim: 'broker', step: 'M1' },
            ],
            restartDelayMs: 3_000,
        });
        assert.equal(r.cells.length, 2);
        for (const c of r.cells) {
            assert.ok(c.killed, `${c.victim}@${c.step}: the kill point fired`);
            assert.notEqual(c.first, 'established', `${c.victim}@${c.step}: the faulted run failed`);
            assert.ok(c.recovered, `${c.victim}@${c.step}: a retry established a session`);
            assert.ok(c.sameCertificate, `${c.victim}@${c.step}: with the certificate of the faulted run`);
        }
        assert.equal(r.lostPaidCertificates, 0);
        assert.equal(r.pendingAtEnd, 0);
        assert.equal(r.unfinished, 0);
        assert.ok(r.ledgerVerified);
    },
);
