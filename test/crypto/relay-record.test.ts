/**
 * Relay records (chaincode/protocol/src/relay-record.ts): a fog's signed record of a packet it
 * relays between two other parties. The signer is the relayer, not the sender — the one exception
 * to the record rule that the signer key hashes to the sender's keyId, and only for type relay.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
    DecodeError,
    EncryptionType,
    ErrorCode,
    PartyRole,
    RecordSigner,
    RecordType,
    VerificationError,
    checkRelayRecord,
    decodeRecord,
    encodeRecord,
    openRecord,
    partyKeyId,
    payloadDigest,
    recordRelay,
    relayerKeyId,
    verifyRecord,
    type Party,
} from '@m2m-fabric/protocol';
import { randomScalar, SUITES } from './protocol-helpers.js';

function assertCode(fn: () => unknown, code: ErrorCode): void {
    assert.throws(fn, (e: unknown) => e instanceof VerificationError && e.code === code);
}

for (const suite of SUITES) {
    void describe(`relay record (${suite.id})`, () => {
        const fogSecret = randomScalar(suite);
        const fog = new RecordSigner(suite, fogSecret);
        const fogQ = suite.Point.BASE.multiply(fogSecret);
        const otherFogQ = suite.Point.BASE.multiply(randomScalar(suite));
        const machine = (): Party => ({
            role: PartyRole.Device,
            keyId: partyKeyId(suite, suite.Point.BASE.multiply(randomScalar(suite))),
        });
        const asker = machine();
        const target = machine();
        const packet = randomBytes(300);
        const record = recordRelay(fog, {
            packet,
            sender: asker,
            receiver: target,
            encryption: EncryptionType.Cleartext,
            sequence: 5n,
            timestampMs: 1_765_000_000_000,
        });
        const bytes = encodeRecord(record);

        void it('is signed by the fog for a packet between two machines, and verifies', () => {
            assert.equal(record.type, RecordType.Relay);
            assert.deepEqual(record.sender, asker);
            assert.deepEqual(relayerKeyId(record), fog.keyId);
            assert.equal(record.size, packet.length);
            assert.deepEqual(record.digest, payloadDigest(packet));
            verifyRecord(openRecord(bytes));
            const checked = checkRelayRecord(bytes, packet, { relayer: fogQ, sender: asker, receiver: target });
            assert.equal(checked.sequence, 5n);
        });

        void it('is refused for another fog, other ends or another packet', () => {
            assertCode(() => checkRelayRecord(bytes, packet, { relayer: otherFogQ }), ErrorCode.RecordSenderMismatch);
            assertCode(
                () => checkRelayRecord(bytes, packet, { relayer: fogQ, sender: target }),
                ErrorCode.RecordSenderMismatch,
            );
            assertCode(
                () => checkRelayRecord(bytes, packet, { relayer: fogQ, receiver: asker }),
                ErrorCode.RecordSenderMismatch,
            );
            assertCode(() => checkRelayRecord(bytes, randomBytes(300), { relayer: fogQ }), ErrorCode.RecordMismatch);
            assertCode(() => checkRelayRecord(bytes, packet.subarray(1), { relayer: fogQ }), ErrorCode.RecordMismatch);
        });

        void it('keeps the sender rule for every other type: a record signed by someone other than its sender', () => {
            // Only type relay may be signed by a third party; an upload naming the asker but signed by the fog is not.
            assert.throws(
                () => fog.sign({ ...record, type: RecordType.Upload }),
                (e: unknown) => e instanceof RangeError,
            );
            // Re-typing a relay record to escape into another type breaks its signature.
            assertCode(() => verifyRecord({ ...record, type: RecordType.Upload }), ErrorCode.RecordSenderMismatch);
            const asUpload = new Uint8Array(bytes);
            asUpload[2] = RecordType.Upload;
            assertCode(() => openRecord(asUpload), ErrorCode.RecordSenderMismatch);
            // And a device's upload record re-typed as relay (to drop the sender check) fails its signature.
            const device = new RecordSigner(suite, randomScalar(suite));
            const upload = device.sign({ ...record, type: RecordType.Upload, sender: device.party(PartyRole.Device) });
            const retyped = encodeRecord(upload);
            retyped[2] = RecordType.Relay;
            assertCode(() => openRecord(retyped), ErrorCode.RecordSignatureInvalid);
        });

        void it('refuses every single bit flip', () => {
            for (let i = 0; i < bytes.length * 8; i++) {
                const flipped = new Uint8Array(bytes);
                flipped[i >> 3]! ^= 1 << (i & 7);
                assert.throws(
                    () => checkRelayRecord(flipped, packet, { relayer: fogQ, sender: asker, receiver: target }),
                    (e: unknown) => e instanceof DecodeError || e instanceof VerificationError,
                    `bit ${i}`,
                );
            }
            assert.equal(decodeRecord(bytes).encryption, EncryptionType.Cleartext);
        });
    });
}
