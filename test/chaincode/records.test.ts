/**
 * The binary world-state records of Algorithms 1-3: round trips, exact sizes (they set the ledger
 * bytes per certificate and per session), and refusal of anything else.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
    BINARY_CID_BYTES,
    decodeCertificateRecord,
    decodeSessionRecord,
    encodeCertificateRecord,
    encodeSessionRecord,
} from '@m2m-fabric/chaincode/internal';
import { CertificateStatus, SessionStatus } from '@m2m-fabric/chaincode';
import { P256_SHA256, P384_SHA384, contentAddressBytes, encodePoint } from '@m2m-fabric/protocol';
import type { Suite } from '@m2m-fabric/protocol';

function pointBytes(suite: Suite, k: bigint): Uint8Array {
    return encodePoint(suite, suite.Point.BASE.multiply(k));
}

for (const suite of [P256_SHA256, P384_SHA384]) {
    void describe(`records (${suite.id})`, () => {
        const B = pointBytes(suite, 7n);
        const cid = contentAddressBytes(new TextEncoder().encode('certificate object'));

        void it('round-trips a requested and an issued Table II record at their exact sizes', () => {
            const requested = { status: CertificateStatus.Requested, counterCommitment: B };
            const requestedBytes = encodeCertificateRecord(suite, requested);
            assert.equal(requestedBytes.length, 2 + suite.pointBytes);
            assert.deepEqual(decodeCertificateRecord(suite, requestedBytes), requested);

            for (const status of [CertificateStatus.Unused, CertificateStatus.Used]) {
                const issued = { status, counterCommitment: B, contentAddress: cid };
                const bytes = encodeCertificateRecord(suite, issued);
                assert.equal(bytes.length, 2 + suite.pointBytes + BINARY_CID_BYTES);
                assert.deepEqual(decodeCertificateRecord(suite, bytes), issued);
            }
        });

        void it('refuses inconsistent or corrupted certificate records', () => {
            assert.throws(() =>
                encodeCertificateRecord(suite, { status: CertificateStatus.Unused, counterCommitment: B }),
            );
            assert.throws(() =>
                encodeCertificateRecord(suite, {
                    status: CertificateStatus.Requested,
                    counterCommitment: B,
                    contentAddress: cid,
                }),
            );
            assert.throws(() =>
                encodeCertificateRecord(suite, { status: CertificateStatus.Requested, counterCommitment: B.slice(1) }),
            );
            const bytes = encodeCertificateRecord(suite, {
                status: CertificateStatus.Unused,
                counterCommitment: B,
                contentAddress: cid,
            });
            assert.throws(() => decodeCertificateRecord(suite, bytes.slice(0, -1)));
            assert.throws(() => decodeCertificateRecord(suite, Uint8Array.of(...bytes, 0)));
            assert.throws(() => decodeCertificateRecord(suite, Uint8Array.of(2, ...bytes.slice(1))));
            assert.throws(() => decodeCertificateRecord(suite, Uint8Array.of(1, 9, ...bytes.slice(2))));
        });

        void it('round-trips a session record', () => {
            const session = {
                status: SessionStatus.Acknowledged,
                fogId: 'fog-a',
                idCert: pointBytes(suite, 11n),
                publicKeyCommitment: new Uint8Array(suite.hashBytes).fill(1),
                symKeyCommitment: new Uint8Array(suite.hashBytes).fill(2),
            };
            const bytes = encodeSessionRecord(suite, session);
            assert.equal(bytes.length, 2 + 2 + 5 + suite.pointBytes + 2 * suite.hashBytes);
            assert.deepEqual(decodeSessionRecord(suite, bytes), session);
            const synchronised = { ...session, status: SessionStatus.Synchronised };
            assert.deepEqual(decodeSessionRecord(suite, encodeSessionRecord(suite, synchronised)), synchronised);
            assert.throws(() => decodeSessionRecord(suite, bytes.slice(0, -1)));
            assert.throws(() => encodeSessionRecord(suite, { ...session, symKeyCommitment: new Uint8Array(3) }));
        });
    });
}

void describe('records of another suite than the ledger’s (a P-384 epoch on a P-256 ledger)', () => {
    const ledger = P256_SHA256;
    const own = P384_SHA384;
    const B = pointBytes(own, 7n);
    const cid = contentAddressBytes(new TextEncoder().encode('certificate object'));

    void it('a Table II record is version 3: key epoch, suite tag, then the suite’s widths', () => {
        const requested = { status: CertificateStatus.Requested, counterCommitment: B, suite: own };
        const requestedBytes = encodeCertificateRecord(ledger, requested);
        assert.deepEqual([...requestedBytes.subarray(0, 4)], [3, 0, 0, own.tag]);
        assert.equal(requestedBytes.length, 4 + 1 + own.pointBytes);
        assert.deepEqual(decodeCertificateRecord(ledger, requestedBytes), requested);
        const issued = {
            status: CertificateStatus.Unused,
            counterCommitment: B,
            contentAddress: cid,
            keyId: 1,
            suite: own,
        };
        const bytes = encodeCertificateRecord(ledger, issued);
        assert.deepEqual([...bytes.subarray(0, 4)], [3, 0, 1, own.tag]);
        assert.deepEqual(decodeCertificateRecord(ledger, bytes), issued);
        // A record that names the ledger's own suite is written as before (version 1 or 2).
        const plain = encodeCertificateRecord(ledger, {
            ...issued,
            counterCommitment: pointBytes(ledger, 7n),
            suite: ledger,
        });
        assert.equal(plain[0], 2);
        assert.equal(decodeCertificateRecord(ledger, plain).suite, undefined);
        // Refused: version 3 naming the ledger's suite, an unknown tag, the wrong widths.
        assert.throws(() => decodeCertificateRecord(ledger, Uint8Array.of(3, 0, 1, ledger.tag, ...bytes.subarray(4))));
        assert.throws(() => decodeCertificateRecord(ledger, Uint8Array.of(3, 0, 1, 99, ...bytes.subarray(4))));
        assert.throws(() => decodeCertificateRecord(ledger, bytes.subarray(0, -1)));
        assert.throws(() => encodeCertificateRecord(ledger, { ...issued, counterCommitment: pointBytes(ledger, 7n) }));
    });

    void it('a session record is version 2 with the suite tag', () => {
        const session = {
            status: SessionStatus.Acknowledged,
            fogId: 'fog-a',
            idCert: pointBytes(own, 11n),
            publicKeyCommitment: new Uint8Array(own.hashBytes).fill(1),
            symKeyCommitment: new Uint8Array(own.hashBytes).fill(2),
            suite: own,
        };
        const bytes = encodeSessionRecord(ledger, session);
        assert.deepEqual([...bytes.subarray(0, 2)], [2, own.tag]);
        assert.equal(bytes.length, 3 + 2 + 5 + own.pointBytes + 2 * own.hashBytes);
        assert.deepEqual(decodeSessionRecord(ledger, bytes), session);
        assert.throws(() => decodeSessionRecord(ledger, Uint8Array.of(2, ledger.tag, ...bytes.subarray(2))));
        assert.throws(() => decodeSessionRecord(ledger, Uint8Array.of(2, 99, ...bytes.subarray(2))));
        assert.throws(() => encodeSessionRecord(ledger, { ...session, idCert: pointBytes(ledger, 11n) }));
    });
});
