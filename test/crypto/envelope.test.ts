import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
    DecodeError,
    ErrorCode,
    decodeEnvelope,
    encodeEnvelope,
    hpkeRecipientFromScalar,
    openEnvelope,
    rewrapEnvelope,
    sealEnvelope,
} from '@m2m-fabric/protocol';
import { randomScalar, rejectsWithCode, SUITES } from './protocol-helpers.js';

for (const suite of SUITES) {
    void describe(`envelope (two-tier) encryption (${suite.id})`, async () => {
        const csp = await hpkeRecipientFromScalar(suite, randomScalar(suite));
        const device = await hpkeRecipientFromScalar(suite, randomScalar(suite));
        const auditor = await hpkeRecipientFromScalar(suite, randomScalar(suite));
        const stranger = await hpkeRecipientFromScalar(suite, randomScalar(suite));
        const plaintext = randomBytes(1000);
        const aad = new TextEncoder().encode('record context');

        void it('opens for every named reader and nobody else', async () => {
            const envelope = await sealEnvelope(suite, plaintext, [csp.publicKey, device.publicKey], aad);
            assert.deepEqual(await openEnvelope(envelope, csp, aad), new Uint8Array(plaintext));
            assert.deepEqual(await openEnvelope(envelope, device, aad), new Uint8Array(plaintext));
            await rejectsWithCode(() => openEnvelope(envelope, stranger, aad), ErrorCode.DecryptionFailed);
            await rejectsWithCode(() => openEnvelope(envelope, csp, new Uint8Array()), ErrorCode.DecryptionFailed);
        });

        void it('shares with an auditor by re-wrapping one key, without re-encrypting', async () => {
            const envelope = await sealEnvelope(suite, plaintext, [csp.publicKey, device.publicKey], aad);
            const shared = await rewrapEnvelope(envelope, csp, auditor.publicKey);
            assert.deepEqual(shared.ciphertext, envelope.ciphertext);
            assert.deepEqual(shared.nonce, envelope.nonce);
            assert.equal(shared.wraps.length, 3);
            assert.deepEqual(await openEnvelope(shared, auditor, aad), new Uint8Array(plaintext));
            await rejectsWithCode(
                () => rewrapEnvelope(envelope, stranger, auditor.publicKey),
                ErrorCode.DecryptionFailed,
            );
            await assert.rejects(() => rewrapEnvelope(shared, csp, auditor.publicKey), RangeError);
        });

        void it('binds each wrapped key to its payload', async () => {
            const a = await sealEnvelope(suite, plaintext, [csp.publicKey], aad);
            const b = await sealEnvelope(suite, plaintext, [csp.publicKey], aad);
            await rejectsWithCode(() => openEnvelope({ ...a, wraps: b.wraps }, csp, aad), ErrorCode.DecryptionFailed);
            const tampered = a.ciphertext.slice();
            tampered[0]! ^= 1;
            await rejectsWithCode(
                () => openEnvelope({ ...a, ciphertext: tampered }, csp, aad),
                ErrorCode.DecryptionFailed,
            );
        });

        void it('round-trips its canonical encoding and rejects malformed ones', async () => {
            const envelope = await sealEnvelope(suite, plaintext, [csp.publicKey, device.publicKey], aad);
            const bytes = encodeEnvelope(envelope);
            const decoded = decodeEnvelope(bytes);
            assert.deepEqual(encodeEnvelope(decoded), bytes);
            assert.deepEqual(await openEnvelope(decoded, device, aad), new Uint8Array(plaintext));
            assert.throws(() => decodeEnvelope(bytes.subarray(0, bytes.length - 1)), DecodeError);
            assert.throws(() => decodeEnvelope(new Uint8Array([...bytes, 0])), DecodeError);
            const badVersion = bytes.slice();
            badVersion[0] = 9;
            assert.throws(() => decodeEnvelope(badVersion), DecodeError);
            const twice = encodeEnvelope({ ...envelope, wraps: [envelope.wraps[0]!, envelope.wraps[0]!] });
            assert.throws(() => decodeEnvelope(twice), DecodeError);
            await assert.rejects(() => sealEnvelope(suite, plaintext, [csp.publicKey, csp.publicKey]), RangeError);
            await assert.rejects(() => sealEnvelope(suite, plaintext, []), RangeError);
        });
    });
}
