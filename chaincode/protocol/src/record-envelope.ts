/**
 * The sealed payload of a communication record (paper 003's two-tier encryption, docs/records.md
 * "Envelope encryption"): the record's payload in clear, encrypted once under a fresh data key
 * (envelope.ts), the data key wrapped for the CSP's storage key and the device's Q_i, bound to the
 * record and signed by the CSP, which is the party that opened the frame. It is stored beside the
 * frame (the record's own stripped payload, whose CID the record's digest is) under its own CID,
 * and never changes: sharing it with an auditor makes one more wrap of the same data key, carried
 * in a {@link RecordShare} next to the unchanged object.
 *
 *   sealed payload: version u8 | suite tag u8 | recordHash (32) | u32 length || envelope
 *                   | signer key (SEC1 compressed) | signature r || s (low-s ECDSA)
 *   record share:   version u8 | u32 length || sealed payload | reader keyId | HPKE ciphertext
 *
 * recordHash = SHA-256(encoded record) names the one record the payload belongs to; the envelope's
 * payload AAD is "M2M-V1-RECORD-PAYLOAD" || recordHash, and the signature (label
 * "M2M-V1-SEALED-PAYLOAD") covers every byte before it. Why the CSP signs: the frame is AES-GCM
 * under K_i, which only the device and the CSP hold, so nobody else can check that the clear
 * payload is what the frame carried; the signature makes the CSP answerable for that claim, and
 * it is checkable from the record alone (the signer's keyId is the record's CSP party).
 */
import { createHash } from 'node:crypto';

import { ByteReader, ByteWriter, decodePoint, equalBytes } from './encoding.js';
import { DecodeError, ErrorCode, ProtocolError, VerificationError } from './errors.js';
import { contentAddress } from './cid.js';
import {
    decodeEnvelope,
    encodeEnvelope,
    openEnvelope,
    readerKeyId,
    rewrapEnvelope,
    sealEnvelope,
    type Envelope,
    type KeyWrap,
} from './envelope.js';
import type { HpkeRecipient } from './hpke.js';
import { readHpkeCiphertext, writeHpkeCiphertext } from './hpke.js';
import {
    PartyRole,
    encodeRecord,
    partyKeyIdOf,
    verifyDetached,
    type CommunicationRecord,
    type RecordSigner,
} from './record.js';
import { suiteFromTag } from './suite.js';
import type { Suite } from './suite.js';

export const SEALED_PAYLOAD_VERSION = 1;
export const RECORD_SHARE_VERSION = 1;
const RECORD_HASH_BYTES = 32;
const PAYLOAD_LABEL = new TextEncoder().encode('M2M-V1-RECORD-PAYLOAD');
const SIGNATURE_LABEL = new TextEncoder().encode('M2M-V1-SEALED-PAYLOAD');

export interface SealedPayload {
    suite: Suite;
    /** SHA-256 of the encoded record this payload belongs to. */
    recordHash: Uint8Array;
    /** The payload under its data key, wrapped for the readers chosen when it was sealed. */
    envelope: Envelope;
    /** SEC1-compressed key of the signer (the CSP's Q_c). */
    signerKey: Uint8Array;
    signature: Uint8Array;
}

/** SHA-256 of an encoded record: what a sealed payload names. */
export function recordHash(record: CommunicationRecord | Uint8Array): Uint8Array {
    const bytes = record instanceof Uint8Array ? record : encodeRecord(record);
    return new Uint8Array(createHash('sha256').update(bytes).digest());
}

function payloadAad(hash: Uint8Array): Uint8Array {
    return Buffer.concat([PAYLOAD_LABEL, hash]);
}

/** Validated reader keys by suite and bytes: every payload is sealed for the same few readers. */
const readerCache = new Map<string, Uint8Array>();
const READER_CACHE_LIMIT = 4096;

/**
 * A reader public key (SEC1, compressed or uncompressed) checked to be a point of the suite's
 * curve, in the uncompressed form HPKE uses as is (a compressed key would be decompressed on
 * every seal).
 * @throws {DecodeError} when: the key is not a valid point of the curve
 */
export function readerPublicKey(suite: Suite, publicKey: Uint8Array): Uint8Array {
    const cacheKey = `${suite.id}:${Buffer.from(publicKey).toString('hex')}`;
    const cached = readerCache.get(cacheKey);
    if (cached !== undefined) return cached.slice();
    let point;
    if (publicKey.length === suite.pointBytes) point = decodePoint(suite, publicKey);
    else {
        try {
            point = suite.Point.fromBytes(publicKey);
            point.assertValidity();
            if (point.is0()) throw new RangeError('identity');
        } catch (cause) {
            throw new DecodeError('offCurve', 'reader key is not a point of the curve', { cause });
        }
    }
    const uncompressed = point.toBytes(false);
    if (readerCache.size >= READER_CACHE_LIMIT) readerCache.clear();
    readerCache.set(cacheKey, uncompressed.slice());
    return uncompressed;
}

function signedPart(s: Omit<SealedPayload, 'signature'>): Uint8Array {
    return new ByteWriter()
        .u8(SEALED_PAYLOAD_VERSION)
        .u8(s.suite.tag)
        .raw(s.recordHash)
        .bytes32(encodeEnvelope(s.envelope))
        .raw(s.signerKey)
        .finish();
}

/**
 * Seals `plaintext`, the clear payload of `record`, for `readers` (at least the signer's storage
 * key) and signs it with `signer` (the CSP key d_c).
 * @throws {DecodeError} when: a reader key is not a point; {RangeError} for no, too many or repeated readers
 */
export async function sealRecordPayload(
    signer: RecordSigner,
    record: CommunicationRecord | Uint8Array,
    plaintext: Uint8Array,
    readers: readonly Uint8Array[],
): Promise<SealedPayload> {
    const { suite } = signer;
    const hash = recordHash(record);
    const keys = readers.map((k) => readerPublicKey(suite, k));
    const envelope = await sealEnvelope(suite, plaintext, keys, payloadAad(hash));
    const unsigned = { suite, recordHash: hash, envelope, signerKey: signer.compressedKey };
    return { ...unsigned, signature: signer.signDetached(SIGNATURE_LABEL, signedPart(unsigned)) };
}

export function encodeSealedPayload(s: SealedPayload): Uint8Array {
    return new ByteWriter().raw(signedPart(s)).raw(s.signature).finish();
}

/**
 * Decodes a sealed payload and checks its signature (not yet whose it is: {@link checkSealedPayload}).
 * @throws {DecodeError} for malformed bytes; {VerificationError} `recordSignatureInvalid` when: the signature does not verify
 */
export function decodeSealedPayload(bytes: Uint8Array): SealedPayload {
    const r = new ByteReader(bytes);
    const version = r.u8();
    if (version !== SEALED_PAYLOAD_VERSION)
        throw new DecodeError('unknownVersion', `sealed payload version ${version}`);
    const suite = suiteFromTag(r.u8());
    const hash = r.raw(RECORD_HASH_BYTES);
    const envelope = decodeEnvelope(r.bytes32());
    if (envelope.suite.id !== suite.id) throw new DecodeError('invalidValue', 'envelope of another suite');
    const signerKey = r.raw(suite.pointBytes);
    const signature = r.raw(2 * suite.scalarBytes);
    r.end();
    const sealed = { suite, recordHash: hash, envelope, signerKey, signature };
    if (!verifyDetached(suite, signerKey, SIGNATURE_LABEL, signedPart(sealed), signature)) {
        throw new VerificationError(ErrorCode.RecordSignatureInvalid, 'the sealed payload signature does not verify');
    }
    return sealed;
}

/** The CID a sealed payload is stored under (CIDv1 raw sha2-256 of its encoding). */
export function sealedPayloadAddress(bytes: Uint8Array): string {
    return contentAddress(bytes);
}

/**
 * Checks that a (decoded, signature-checked) sealed payload belongs to `record` and was signed by
 * the record's CSP party: its receiver when a device sent the frame, its sender when the CSP did.
 * @throws {VerificationError} `recordMismatch` when: it names another record; `recordSenderMismatch` when: another key signed it
 */
export function checkSealedPayload(sealed: SealedPayload, record: CommunicationRecord): void {
    if (!equalBytes(sealed.recordHash, recordHash(record))) {
        throw new VerificationError(ErrorCode.RecordMismatch, 'the sealed payload belongs to another record');
    }
    const signerId = partyKeyIdOf(sealed.suite, sealed.signerKey);
    const csp = [record.sender, record.receiver].some((p) => p.role === PartyRole.Csp && equalBytes(p.keyId, signerId));
    if (!csp) {
        throw new VerificationError(
            ErrorCode.RecordSenderMismatch,
            'the sealed payload is not signed by the CSP the record names',
        );
    }
}

/**
 * Opens the payload as one of the readers it was sealed for.
 * @throws {ProtocolError} `decryptionFailed` when: `recipient` is not a reader, or the payload does not open
 */
export function openSealedPayload(sealed: SealedPayload, recipient: HpkeRecipient): Promise<Uint8Array> {
    return openEnvelope(sealed.envelope, recipient, payloadAad(sealed.recordHash));
}

/** What the CSP hands an auditor: the unchanged sealed payload and the data key wrapped for the auditor. */
export interface RecordShare {
    /** The stored object's bytes, exactly as stored (its CID is unchanged by sharing). */
    sealed: Uint8Array;
    wrap: KeyWrap;
}

/**
 * Re-wraps the data key of one sealed payload for `auditorPublicKey`; nothing is re-encrypted.
 * @throws {DecodeError} when: the auditor key is not a point, or `sealedBytes` is malformed;
 *   {ProtocolError} `decryptionFailed` when: `holder` is not a reader; RangeError for a reader already present
 */
export async function shareSealedPayload(
    sealedBytes: Uint8Array,
    holder: HpkeRecipient,
    auditorPublicKey: Uint8Array,
): Promise<RecordShare> {
    const sealed = decodeSealedPayload(sealedBytes);
    const auditor = readerPublicKey(sealed.suite, auditorPublicKey);
    const shared = await rewrapEnvelope(sealed.envelope, holder, auditor);
    return { sealed: sealedBytes, wrap: shared.wraps[shared.wraps.length - 1]! };
}

export function encodeRecordShare(share: RecordShare): Uint8Array {
    const suite = decodeSuiteOf(share.sealed);
    const w = new ByteWriter().u8(RECORD_SHARE_VERSION).bytes32(share.sealed).raw(share.wrap.readerKeyId);
    writeHpkeCiphertext(w, suite, share.wrap.wrapped);
    return w.finish();
}

function decodeSuiteOf(sealed: Uint8Array): Suite {
    if (sealed.length < 2) throw new DecodeError('truncated', 'sealed payload shorter than its header');
    return suiteFromTag(sealed[1]!);
}

/** @throws {DecodeError} */
export function decodeRecordShare(bytes: Uint8Array): RecordShare {
    const r = new ByteReader(bytes);
    const version = r.u8();
    if (version !== RECORD_SHARE_VERSION) throw new DecodeError('unknownVersion', `record share version ${version}`);
    const sealed = r.bytes32();
    const suite = decodeSuiteOf(sealed);
    const wrap = { readerKeyId: r.raw(suite.hashBytes), wrapped: readHpkeCiphertext(r, suite) };
    r.end();
    return { sealed, wrap };
}

/** What an auditor learns from a share it opened. */
export interface OpenedShare {
    sealed: SealedPayload;
    /** CID of the sealed payload object. */
    cid: string;
    plaintext: Uint8Array;
}

/**
 * Opens a share offline with the auditor's key: the sealed payload's signature, the wrap (bound to
 * this payload's ciphertext, so a wrap of another payload does not open), the payload; with
 * `record` (from a verified receipt) also that the payload is that record's and signed by its CSP.
 * @throws {DecodeError}, {VerificationError} (`recordSignatureInvalid`, `recordMismatch`, `recordSenderMismatch`),
 *   {ProtocolError} `decryptionFailed` when: the share is not for this key or does not open
 */
export async function openRecordShare(
    share: RecordShare,
    auditor: HpkeRecipient,
    record?: CommunicationRecord,
): Promise<OpenedShare> {
    const sealed = decodeSealedPayload(share.sealed);
    if (record !== undefined) checkSealedPayload(sealed, record);
    if (!equalBytes(share.wrap.readerKeyId, readerKeyId(sealed.suite, auditor.publicKey))) {
        throw new ProtocolError(ErrorCode.DecryptionFailed, 'the share is for another reader');
    }
    const plaintext = await openSealedPayload(
        { ...sealed, envelope: { ...sealed.envelope, wraps: [share.wrap] } },
        auditor,
    );
    return { sealed, cid: sealedPayloadAddress(share.sealed), plaintext };
}
