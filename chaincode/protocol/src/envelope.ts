/**
 * Envelope ("two-tier", paper 003) encryption of stored payloads: each payload is encrypted once
 * under a fresh 256-bit data key with AES-256-GCM, and the data key is wrapped for each
 * authorised reader (the CSP, the device, on request an auditor) with HPKE base mode (hpke.ts,
 * info DataKey). Sharing a record with an auditor opens one wrap and adds another: the payload
 * ciphertext, its digest and its CID stay as they are.
 *
 *   version u8 | suite tag u8 | nonce (12) | u32 length || ciphertext+tag
 *   | u8 wrap count | per wrap: reader keyId (hashBytes) | HPKE ciphertext (enc | u16 length || ct)
 *
 * Each wrap is sealed with AAD = "M2M-V1-ENVELOPE" || SHA-256(nonce || ciphertext), so a wrapped
 * key cannot be moved to another payload; the payload's AAD is the caller's (e.g. the record's
 * digest context).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

import { ByteReader, ByteWriter, equalBytes } from './encoding.js';
import { DecodeError, ErrorCode, ProtocolError } from './errors.js';
import { HpkeInfo, hpkeOpen, hpkeSeal, readHpkeCiphertext, writeHpkeCiphertext } from './hpke.js';
import type { HpkeCiphertext, HpkeRecipient } from './hpke.js';
import { partyKeyId } from './record.js';
import { suiteFromTag } from './suite.js';
import type { Suite } from './suite.js';

export const ENVELOPE_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const DATA_KEY_BYTES = 32;
/** Readers per payload; the CSP, the device and a handful of auditors fit with room to spare. */
export const MAX_ENVELOPE_READERS = 32;
const WRAP_LABEL = new TextEncoder().encode('M2M-V1-ENVELOPE');

export interface KeyWrap {
    /** H(reader public key), as a record party's keyId. */
    readerKeyId: Uint8Array;
    wrapped: HpkeCiphertext;
}

export interface Envelope {
    suite: Suite;
    nonce: Uint8Array;
    /** AES-256-GCM ciphertext with its 16-byte tag. */
    ciphertext: Uint8Array;
    wraps: KeyWrap[];
}

/** keyIds by suite and key: the same few readers (the CSP, a session's device) wrap every payload. */
const keyIdCache = new Map<string, Uint8Array>();
const KEY_ID_CACHE_LIMIT = 4096;

/** keyId of an HPKE reader public key (SEC1, compressed or uncompressed). */
export function readerKeyId(suite: Suite, publicKey: Uint8Array): Uint8Array {
    const cacheKey = `${suite.id}:${Buffer.from(publicKey).toString('hex')}`;
    const cached = keyIdCache.get(cacheKey);
    if (cached !== undefined) return cached.slice();
    const id = partyKeyId(suite, suite.Point.fromBytes(publicKey));
    if (keyIdCache.size >= KEY_ID_CACHE_LIMIT) keyIdCache.clear();
    keyIdCache.set(cacheKey, id.slice());
    return id;
}

function wrapAad(nonce: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    const digest = createHash('sha256').update(nonce).update(ciphertext).digest();
    return Buffer.concat([WRAP_LABEL, digest]);
}

async function wrapFor(
    suite: Suite,
    dataKey: Uint8Array,
    readerPublicKey: Uint8Array,
    aad: Uint8Array,
): Promise<KeyWrap> {
    return {
        readerKeyId: readerKeyId(suite, readerPublicKey),
        wrapped: await hpkeSeal(suite, readerPublicKey, HpkeInfo.DataKey, dataKey, aad),
    };
}

/**
 * Encrypts `plaintext` under a fresh data key and wraps the key for each reader public key.
 * @throws RangeError for no readers, too many, or a duplicate reader
 */
export async function sealEnvelope(
    suite: Suite,
    plaintext: Uint8Array,
    readerPublicKeys: readonly Uint8Array[],
    aad?: Uint8Array,
): Promise<Envelope> {
    if (readerPublicKeys.length === 0 || readerPublicKeys.length > MAX_ENVELOPE_READERS) {
        throw new RangeError(`an envelope has 1 to ${MAX_ENVELOPE_READERS} readers`);
    }
    const dataKey = randomBytes(DATA_KEY_BYTES);
    const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
    const cipher = createCipheriv('aes-256-gcm', dataKey, nonce);
    if (aad !== undefined) cipher.setAAD(aad);
    const ciphertext = new Uint8Array(Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]));
    const keyAad = wrapAad(nonce, ciphertext);
    const wraps: KeyWrap[] = [];
    try {
        for (const publicKey of readerPublicKeys) {
            const wrap = await wrapFor(suite, dataKey, publicKey, keyAad);
            if (wraps.some((w) => equalBytes(w.readerKeyId, wrap.readerKeyId))) {
                throw new RangeError('a reader is named twice');
            }
            wraps.push(wrap);
        }
    } finally {
        dataKey.fill(0);
    }
    return { suite, nonce, ciphertext, wraps };
}

async function unwrap(envelope: Envelope, recipient: HpkeRecipient): Promise<Buffer> {
    const id = readerKeyId(envelope.suite, recipient.publicKey);
    const wrap = envelope.wraps.find((w) => equalBytes(w.readerKeyId, id));
    if (wrap === undefined) {
        throw new ProtocolError(ErrorCode.DecryptionFailed, 'the envelope has no data key for this reader');
    }
    const key = await hpkeOpen(recipient, HpkeInfo.DataKey, wrap.wrapped, wrapAad(envelope.nonce, envelope.ciphertext));
    if (key.length !== DATA_KEY_BYTES)
        throw new ProtocolError(ErrorCode.DecryptionFailed, 'wrapped data key has the wrong length');
    return Buffer.from(key);
}

/** Decrypts the payload as one of its readers. @throws ProtocolError(decryptionFailed) */
export async function openEnvelope(
    envelope: Envelope,
    recipient: HpkeRecipient,
    aad?: Uint8Array,
): Promise<Uint8Array> {
    const key = await unwrap(envelope, recipient);
    try {
        const tagAt = envelope.ciphertext.length - TAG_BYTES;
        const decipher = createDecipheriv('aes-256-gcm', key, envelope.nonce);
        if (aad !== undefined) decipher.setAAD(aad);
        decipher.setAuthTag(envelope.ciphertext.subarray(tagAt));
        return new Uint8Array(
            Buffer.concat([decipher.update(envelope.ciphertext.subarray(0, tagAt)), decipher.final()]),
        );
    } catch (cause) {
        throw new ProtocolError(ErrorCode.DecryptionFailed, 'the envelope payload does not open', { cause });
    } finally {
        key.fill(0);
    }
}

/**
 * Shares the payload with one more reader (an auditor): `holder`, an existing reader, opens its
 * wrap and the data key is wrapped again for `newReaderPublicKey`. The ciphertext is untouched.
 * @throws ProtocolError(decryptionFailed) when `holder` is not a reader; RangeError for a reader already present
 */
export async function rewrapEnvelope(
    envelope: Envelope,
    holder: HpkeRecipient,
    newReaderPublicKey: Uint8Array,
): Promise<Envelope> {
    const id = readerKeyId(envelope.suite, newReaderPublicKey);
    if (envelope.wraps.some((w) => equalBytes(w.readerKeyId, id))) throw new RangeError('already a reader');
    if (envelope.wraps.length >= MAX_ENVELOPE_READERS) throw new RangeError('the envelope has its maximum of readers');
    const key = await unwrap(envelope, holder);
    try {
        const wrap = await wrapFor(
            envelope.suite,
            key,
            newReaderPublicKey,
            wrapAad(envelope.nonce, envelope.ciphertext),
        );
        return { ...envelope, wraps: [...envelope.wraps, wrap] };
    } finally {
        key.fill(0);
    }
}

/**
 * @throws {RangeError} when: nonce is 12 bytes; ciphertext shorter than its tag; wrap count
 */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
    const { suite } = envelope;
    if (envelope.nonce.length !== NONCE_BYTES) throw new RangeError('nonce is 12 bytes');
    if (envelope.ciphertext.length < TAG_BYTES) throw new RangeError('ciphertext shorter than its tag');
    if (envelope.wraps.length === 0 || envelope.wraps.length > MAX_ENVELOPE_READERS) throw new RangeError('wrap count');
    const w = new ByteWriter().u8(ENVELOPE_VERSION).u8(suite.tag).raw(envelope.nonce).bytes32(envelope.ciphertext);
    w.u8(envelope.wraps.length);
    for (const wrap of envelope.wraps) {
        if (wrap.readerKeyId.length !== suite.hashBytes) throw new RangeError('reader keyId length');
        w.raw(wrap.readerKeyId);
        writeHpkeCiphertext(w, suite, wrap.wrapped);
    }
    return w.finish();
}

/** @throws DecodeError */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
    const r = new ByteReader(bytes);
    const version = r.u8();
    if (version !== ENVELOPE_VERSION) throw new DecodeError('unknownVersion', `envelope version ${version}`);
    const suite = suiteFromTag(r.u8());
    const nonce = r.raw(NONCE_BYTES);
    const ciphertext = r.bytes32();
    if (ciphertext.length < TAG_BYTES)
        throw new DecodeError('invalidValue', 'envelope ciphertext shorter than its tag');
    const count = r.u8();
    if (count === 0 || count > MAX_ENVELOPE_READERS)
        throw new DecodeError('invalidValue', `envelope wrap count ${count}`);
    const wraps: KeyWrap[] = [];
    for (let i = 0; i < count; i++) {
        const readerKeyIdBytes = r.raw(suite.hashBytes);
        if (wraps.some((w) => equalBytes(w.readerKeyId, readerKeyIdBytes))) {
            throw new DecodeError('nonCanonical', 'a reader is named twice');
        }
        wraps.push({ readerKeyId: readerKeyIdBytes, wrapped: readHpkeCiphertext(r, suite) });
    }
    r.end();
    return { suite, nonce, ciphertext, wraps };
}
