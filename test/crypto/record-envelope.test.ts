/**
 * Sealed payloads of communication records (record-envelope.ts, docs/records.md "Envelope
 * encryption"): a record's clear payload under a fresh data key, wrapped for the CSP's storage key
 * and the device's Q_i, bound to its record and signed by the CSP; shared with an auditor by one
 * re-wrap that leaves the stored object and its CID unchanged. Cross-checked against an independent
 * open (the reference HPKE of hpke-reference.ts, WebCrypto AES-GCM and ECDSA).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, webcrypto } from 'node:crypto';

import {
    DecodeError,
    ErrorCode,
    HpkeInfo,
    PartyRole,
    ProtocolError,
    RecordSigner,
    VerificationError,
    checkSealedPayload,
    decodeEnvelope,
    decodeRecord,
    decodeRecordShare,
    decodeSealedPayload,
    encodeEnvelope,
    encodeFrameRecord,
    encodePoint,
    encodeRecordShare,
    encodeScalar,
    encodeSealedPayload,
    hpkeRecipientFromScalar,
    openRecordShare,
    openSealedPayload,
    readerKeyId,
    recordHash,
    sealRecordPayload,
    sealedPayloadAddress,
    shareSealedPayload,
    type Suite,
} from '@m2m-fabric/protocol';

import { flipBit } from './helpers.js';
import { REF_P256, REF_P384, referenceOpen } from './hpke-reference.js';
import { randomScalar, rejectsWithCode, SUITES } from './protocol-helpers.js';

/** An upload frame's shape (version 1, type Upload, seq) with random ciphertext. */
function fakeFrame(seq: number, body = 48): Uint8Array {
    const frame = new Uint8Array(10 + body);
    frame[0] = 1;
    frame[1] = 2;
    new DataView(frame.buffer).setBigUint64(2, BigInt(seq));
    frame.set(randomBytes(body), 10);
    return frame;
}

/** A typed error of the protocol module: what every refusal must be. */
function isTyped(err: unknown): boolean {
    return err instanceof ProtocolError;
}

for (const suite of SUITES) {
    void describe(`sealed record payloads (${suite.id})`, async () => {
        const cspSecret = randomScalar(suite);
        const csp = new RecordSigner(suite, cspSecret);
        const deviceSecret = randomScalar(suite);
        const device = new RecordSigner(suite, deviceSecret);
        const storageSecret = randomScalar(suite);
        const storage = await hpkeRecipientFromScalar(suite, storageSecret);
        const deviceReader = await hpkeRecipientFromScalar(suite, deviceSecret);
        const auditorSecret = randomScalar(suite);
        const auditor = await hpkeRecipientFromScalar(suite, auditorSecret);
        const stranger = await hpkeRecipientFromScalar(suite, randomScalar(suite));
        const cspParty = csp.party(PartyRole.Csp);
        const record = (seq: number): Uint8Array =>
            encodeFrameRecord(device, PartyRole.Device, cspParty, fakeFrame(seq));
        const plaintext = new TextEncoder().encode('{"equipmentId":"eq-1","temperature":21.5}');
        const seal = async (rec: Uint8Array, text = plaintext): Promise<Uint8Array> =>
            encodeSealedPayload(
                await sealRecordPayload(csp, rec, text, [storage.publicKey, encodePoint(suite, device.publicKey)]),
            );

        void it('opens for the CSP storage key and the device (d_i), names its record, and nobody else reads it', async () => {
            const rec = record(1);
            const bytes = await seal(rec);
            const sealed = decodeSealedPayload(bytes);
            assert.deepEqual(sealed.recordHash, recordHash(rec));
            checkSealedPayload(sealed, decodeRecord(rec));
            assert.deepEqual(await openSealedPayload(sealed, storage), plaintext);
            assert.deepEqual(await openSealedPayload(sealed, deviceReader), plaintext);
            await rejectsWithCode(() => openSealedPayload(sealed, stranger), ErrorCode.DecryptionFailed);
            await rejectsWithCode(() => openSealedPayload(sealed, auditor), ErrorCode.DecryptionFailed);
            assert.deepEqual(encodeSealedPayload(sealed), bytes, 'canonical encoding');
            // A fresh data key each time: the same payload sealed twice shares no ciphertext.
            const again = decodeSealedPayload(await seal(rec));
            assert.notDeepEqual(again.envelope.ciphertext, sealed.envelope.ciphertext);
        });

        void it('shares one record with an auditor by one re-wrap: the stored object and its CID are unchanged', async () => {
            const rec = record(2);
            const bytes = await seal(rec);
            const cid = sealedPayloadAddress(bytes);
            const share = await shareSealedPayload(bytes, storage, auditor.publicKey);
            assert.equal(share.sealed, bytes);
            assert.equal(sealedPayloadAddress(share.sealed), cid);
            assert.deepEqual(share.wrap.readerKeyId, readerKeyId(suite, auditor.publicKey));
            const decoded = decodeRecordShare(encodeRecordShare(share));
            assert.deepEqual(decoded.sealed, bytes);
            const opened = await openRecordShare(decoded, auditor, decodeRecord(rec));
            assert.deepEqual(opened.plaintext, plaintext);
            assert.equal(opened.cid, cid);
            // The device can share too (it holds d_i); a stranger cannot.
            await shareSealedPayload(bytes, deviceReader, auditor.publicKey);
            await rejectsWithCode(
                () => shareSealedPayload(bytes, stranger, auditor.publicKey),
                ErrorCode.DecryptionFailed,
            );
        });

        void it('refuses a wrap moved to another payload, a non-reader key, another record and another signer', async () => {
            const recA = record(3);
            const recB = record(4);
            const a = await seal(recA);
            const b = await seal(recB);
            const shareA = await shareSealedPayload(a, storage, auditor.publicKey);
            const shareB = await shareSealedPayload(b, storage, auditor.publicKey);
            // A's wrap beside B's payload: the wrap is bound to A's nonce and ciphertext.
            await rejectsWithCode(
                () => openRecordShare({ sealed: b, wrap: shareA.wrap }, auditor),
                ErrorCode.DecryptionFailed,
            );
            // The auditor's share opened with another key.
            await rejectsWithCode(() => openRecordShare(shareA, stranger), ErrorCode.DecryptionFailed);
            // B's (genuine) share checked against A's receipt record.
            await rejectsWithCode(() => openRecordShare(shareB, auditor, decodeRecord(recA)), ErrorCode.RecordMismatch);
            // Sealed and signed by a key that is not the CSP the record names (here: the device).
            const byDevice = encodeSealedPayload(await sealRecordPayload(device, recA, plaintext, [auditor.publicKey]));
            assert.throws(
                () => checkSealedPayload(decodeSealedPayload(byDevice), decodeRecord(recA)),
                (e: unknown) => e instanceof VerificationError && e.code === ErrorCode.RecordSenderMismatch,
            );
        });

        void it('refuses an auditor key that is not a point of the curve', async () => {
            const bytes = await seal(record(5));
            const offCurve = encodePoint(suite, device.publicKey);
            // Flip x until it is not the coordinate of a point (about half of all x are not).
            for (let i = 1; ; i++) {
                offCurve[offCurve.length - 1] = (offCurve[offCurve.length - 1]! + 1) & 0xff;
                try {
                    suite.Point.fromBytes(offCurve);
                } catch {
                    break;
                }
                assert.ok(i < 256);
            }
            for (const bad of [offCurve, new Uint8Array(suite.pointBytes), randomBytes(7), new Uint8Array([0])]) {
                await assert.rejects(
                    () => shareSealedPayload(bytes, storage, bad),
                    (e: unknown) => e instanceof DecodeError,
                );
            }
            const uncompressed = device.publicKey.toBytes(false);
            uncompressed[uncompressed.length - 1]! ^= 1;
            await assert.rejects(() => shareSealedPayload(bytes, storage, uncompressed), DecodeError);
        });

        void it('refuses every flipped bit of a sealed payload and of a share with a typed error', async () => {
            const rec = record(6);
            const bytes = await seal(rec, new TextEncoder().encode('{"t":1}'));
            const share = encodeRecordShare(await shareSealedPayload(bytes, storage, auditor.publicKey));
            const record6 = decodeRecord(rec);
            // Every byte, two of its bits (the signature covers every byte, so one flip is as good as another).
            for (let i = 0; i < bytes.length; i++) {
                for (const bit of [i % 8, 7 - (i % 8)]) {
                    const flipped = flipBit(bytes, i, bit);
                    await assert.rejects(
                        async () => openSealedPayload(decodeSealedPayload(flipped), storage),
                        isTyped,
                        `byte ${i} bit ${bit}`,
                    );
                }
            }
            for (let i = 0; i < share.length; i++) {
                const flipped = flipBit(share, i, i % 8);
                await assert.rejects(
                    async () => openRecordShare(decodeRecordShare(flipped), auditor, record6),
                    isTyped,
                    `share byte ${i}`,
                );
            }
            await assert.rejects(async () => decodeSealedPayload(bytes.subarray(0, bytes.length - 1)), DecodeError);
            await assert.rejects(async () => decodeRecordShare(new Uint8Array([...share, 0])), DecodeError);
        });

        void it('cross-check: an independent open (reference HPKE, WebCrypto AES-GCM and ECDSA) reads what the module sealed', async () => {
            const rec = record(7);
            const bytes = await seal(rec);
            const share = await shareSealedPayload(bytes, storage, auditor.publicKey);
            const sealed = decodeSealedPayload(bytes);
            const { envelope } = sealed;
            const ref = suite.hashBytes === 32 ? REF_P256 : REF_P384;
            const wrapAad = Buffer.concat([
                Buffer.from('M2M-V1-ENVELOPE'),
                createHash('sha256').update(envelope.nonce).update(envelope.ciphertext).digest(),
            ]);
            const { plaintext: dataKey } = referenceOpen(
                ref,
                encodeScalar(suite, auditorSecret),
                share.wrap.wrapped.enc,
                new TextEncoder().encode(HpkeInfo.DataKey),
                wrapAad,
                share.wrap.wrapped.ct,
            );
            const hash = createHash('sha256').update(rec).digest();
            const key = await webcrypto.subtle.importKey('raw', dataKey, 'AES-GCM', false, ['decrypt']);
            const clear = await webcrypto.subtle.decrypt(
                {
                    name: 'AES-GCM',
                    iv: envelope.nonce,
                    additionalData: Buffer.concat([Buffer.from('M2M-V1-RECORD-PAYLOAD'), hash]),
                },
                key,
                envelope.ciphertext,
            );
            assert.deepEqual(new Uint8Array(clear), plaintext);
            // The CSP's signature over every byte before it, checked with WebCrypto's ECDSA.
            assert.ok(await webcryptoVerify(suite, sealed.signerKey, bytes));
            // The encoding's envelope is the envelope module's, byte for byte.
            assert.deepEqual(encodeEnvelope(decodeEnvelope(encodeEnvelope(envelope))), encodeEnvelope(envelope));
        });
    });
}

async function webcryptoVerify(suite: Suite, signerKey: Uint8Array, bytes: Uint8Array): Promise<boolean> {
    const sigBytes = 2 * suite.scalarBytes;
    const point = suite.Point.fromBytes(signerKey).toBytes(false);
    const half = suite.scalarBytes;
    const curve = suite.hashBytes === 32 ? 'P-256' : 'P-384';
    const key = await webcrypto.subtle.importKey(
        'jwk',
        {
            kty: 'EC',
            crv: curve,
            x: Buffer.from(point.subarray(1, 1 + half)).toString('base64url'),
            y: Buffer.from(point.subarray(1 + half)).toString('base64url'),
        },
        { name: 'ECDSA', namedCurve: curve },
        false,
        ['verify'],
    );
    return webcrypto.subtle.verify(
        { name: 'ECDSA', hash: suite.hashBytes === 32 ? 'SHA-256' : 'SHA-384' },
        key,
        bytes.subarray(bytes.length - sigBytes),
        Buffer.concat([Buffer.from('M2M-V1-SEALED-PAYLOAD'), bytes.subarray(0, bytes.length - sigBytes)]),
    );
}
