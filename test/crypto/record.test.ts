import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { p256, p384 } from '@noble/curves/nist.js';
import {
    DecodeError,
    EncryptionType,
    ErrorCode,
    PartyRole,
    RecordSigner,
    RecordType,
    VerificationError,
    bigIntToBytes,
    bytesToBigInt,
    decodeRecord,
    encodeRecord,
    openRecord,
    partyKeyId,
    partyKeyIdOf,
    payloadDigest,
    publicKeyCommitment,
    recordBytes,
    recordPayloadAddress,
    recordSigningMessage,
    verifyRecord,
    contentAddress,
    type CommunicationRecord,
    type RecordBody,
    type Suite,
} from '@m2m-fabric/protocol';
import { randomScalar, SUITES } from './protocol-helpers.js';

function body(suite: Suite, sender: RecordSigner, receiverKeyId: Uint8Array, payload: Uint8Array): RecordBody {
    return {
        suite,
        type: RecordType.Upload,
        encryption: EncryptionType.SessionChannel,
        sender: sender.party(PartyRole.Device),
        receiver: { role: PartyRole.Csp, keyId: receiverKeyId },
        sequence: 7n,
        timestamp: 1_765_000_000_123n,
        size: payload.length,
        digest: payloadDigest(payload),
    };
}

function assertCode(fn: () => unknown, code: ErrorCode, message?: string): void {
    assert.throws(fn, (e: unknown) => e instanceof VerificationError && e.code === code, message);
}

for (const suite of SUITES) {
    void describe(`communication record (${suite.id})`, () => {
        const device = new RecordSigner(suite, randomScalar(suite));
        const csp = new RecordSigner(suite, randomScalar(suite));
        const payload = randomBytes(256);
        const record = device.sign(body(suite, device, csp.keyId, payload));
        const bytes = encodeRecord(record);

        void it('round-trips its canonical encoding and verifies', () => {
            assert.equal(bytes.length, recordBytes(suite));
            const decoded = openRecord(bytes);
            assert.deepEqual(encodeRecord(decoded), bytes);
            assert.equal(decoded.sequence, 7n);
            assert.equal(decoded.size, 256);
        });

        void it("names a device by H(Q_i), the session record's public-key commitment, never by a long-term id", () => {
            assert.deepEqual(record.sender.keyId, publicKeyCommitment(suite, device.publicKey));
            assert.deepEqual(partyKeyId(suite, device.publicKey), device.keyId);
            assert.deepEqual(partyKeyIdOf(suite, record.signerKey), device.keyId);
        });

        void it('stores the payload under the CID that wraps its digest', () => {
            assert.equal(recordPayloadAddress(payload), contentAddress(payload));
        });

        void it('is a standard low-s ECDSA signature (checked with @noble/curves)', () => {
            const curve = suite.id === 'P256-SHA256' ? p256 : p384;
            assert.ok(
                curve.verify(record.signature, recordSigningMessage(record), record.signerKey, {
                    lowS: true,
                }),
            );
            const s = bytesToBigInt(record.signature.subarray(suite.scalarBytes));
            assert.ok(s <= suite.n / 2n);
        });

        void it('verifies a record signed by @noble/curves (independent signer)', () => {
            const curve = suite.id === 'P256-SHA256' ? p256 : p384;
            const secret = randomScalar(suite);
            const signer = new RecordSigner(suite, secret);
            const unsigned = signer.sign(body(suite, signer, csp.keyId, payload));
            const signature = curve.sign(recordSigningMessage(unsigned), bigIntToBytes(secret, suite.scalarBytes), {
                lowS: true,
            });
            verifyRecord({ ...unsigned, signature });
        });

        void it('rejects a record claiming another sender (recordSenderMismatch)', () => {
            const forged: CommunicationRecord = { ...record, sender: { role: PartyRole.Device, keyId: csp.keyId } };
            assertCode(() => verifyRecord(forged), ErrorCode.RecordSenderMismatch);
            assert.throws(
                () => device.sign({ ...body(suite, device, csp.keyId, payload), sender: csp.party(PartyRole.Csp) }),
                RangeError,
            );
        });

        void it('rejects a forged signature and changed fields (recordSignatureInvalid)', () => {
            const other = csp.sign({ ...body(suite, csp, device.keyId, payload), sender: csp.party(PartyRole.Device) });
            assertCode(() => verifyRecord({ ...record, signature: other.signature }), ErrorCode.RecordSignatureInvalid);
            assertCode(() => verifyRecord({ ...record, size: 255 }), ErrorCode.RecordSignatureInvalid);
            assertCode(() => verifyRecord({ ...record, type: RecordType.Download }), ErrorCode.RecordSignatureInvalid);
            assertCode(
                () => verifyRecord({ ...record, timestamp: record.timestamp + 1n }),
                ErrorCode.RecordSignatureInvalid,
            );
        });

        void it('refuses a high-s signature (one encoding per record)', () => {
            const s = bytesToBigInt(record.signature.subarray(suite.scalarBytes));
            const high = record.signature.slice();
            high.set(bigIntToBytes(suite.n - s, suite.scalarBytes), suite.scalarBytes);
            assert.throws(() => decodeRecord(encodeRecord({ ...record, signature: high })), DecodeError);
        });

        void it('gives a typed error for every single-bit flip of the encoding', () => {
            for (let i = 0; i < bytes.length; i++) {
                for (let bit = 0; bit < 8; bit++) {
                    const flipped = bytes.slice();
                    flipped[i]! ^= 1 << bit;
                    assert.throws(
                        () => openRecord(flipped),
                        (e: unknown) => e instanceof DecodeError || e instanceof VerificationError,
                        `byte ${i} bit ${bit}`,
                    );
                }
            }
        });

        void it('rejects truncation and trailing bytes', () => {
            assert.throws(() => decodeRecord(bytes.subarray(0, bytes.length - 1)), DecodeError);
            assert.throws(() => decodeRecord(new Uint8Array([...bytes, 0])), DecodeError);
            assert.throws(() => decodeRecord(new Uint8Array()), DecodeError);
        });
    });
}
