/**
 * Communication records (paper 000 §4.3, paper 003's signed ingest): one per message that crosses
 * the session channel or is relayed by a fog, in one canonical binary encoding.
 *
 *   version u8 | suite tag u8 | type u8 | encryption u8
 *   sender   = role u8 | keyId (hashBytes)        keyId = H(public key), DST PublicKeyCommitment
 *   receiver = role u8 | keyId (hashBytes)
 *   sequence u64 | timestamp (ms since epoch) u64 | size u32 | digest = SHA-256(ciphertext) (32)
 *   signer public key (SEC1 compressed) | ECDSA signature r || s (2 x scalarBytes, low-s)
 *
 * Paper 000's fields map one to one: sender ID, receiver ID, information type (upload/download),
 * data size, encryption type, and "information verification" = the ciphertext digest; the data
 * itself is stripped (paper 003) and stored off-chain under its CID, which is the digest wrapped
 * as CIDv1 raw sha2-256. A device's parties are named by H(Q_i) — the per-session public key the
 * ledger's session record already commits to — and it signs with its per-session key d_i, so no
 * record names the device's long-term identity and records of two sessions cannot be linked. The
 * CSP and fogs sign with their service keys; their keyId is H(Q) of that key likewise.
 *
 * The signature is ECDSA with the suite's curve and hash (OpenSSL through node:crypto; ~15k
 * verifications/s on one core, which receipts need), over "M2M-V1-RECORD" || every field before
 * the signature. Only low-s signatures are produced or accepted, so a record has one encoding.
 */
import { createECDH, createHash, createPrivateKey, createPublicKey, createSign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

import {
    bytesToBigInt,
    bigIntToBytes,
    ByteReader,
    ByteWriter,
    decodePoint,
    encodePoint,
    equalBytes,
} from './encoding.js';
import { DecodeError, ErrorCode, VerificationError } from './errors.js';
import { contentAddress } from './cid.js';
import { publicKeyCommitment } from './session.js';
import { hashBytes } from './hashing.js';
import { suiteFromTag } from './suite.js';
import type { Point, Suite } from './suite.js';

export const RECORD_VERSION = 1;

/** Information type: paper 000's upload/download, plus acknowledgements and fog-relayed messages. */
export const RecordType = {
    /** Device -> CSP telemetry (upload). */
    Upload: 1,
    /** CSP -> device instruction or parameters (download). */
    Download: 2,
    /** An acknowledgement of a received message. */
    Acknowledgement: 3,
    /** Device -> device message relayed by a fog. */
    Relay: 4,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** Encryption type of the payload the digest covers. */
export const EncryptionType = {
    /** Session-channel frame: AES-256-GCM under the session key (session-channel.ts). */
    SessionChannel: 1,
    /** Stored envelope: AES-256-GCM under a fresh data key wrapped per reader with HPKE (envelope.ts). */
    Envelope: 2,
    /** A relayed packet in clear: a record query packet (signed by its sender) or a target's failure packet. */
    Cleartext: 3,
    /** A relayed packet HPKE-sealed to its receiver's static key: a record query's information packet. */
    Hpke: 4,
} as const;
export type EncryptionType = (typeof EncryptionType)[keyof typeof EncryptionType];

/** Who a party is; the keyId says which key of that kind. */
export const PartyRole = { Device: 1, Csp: 2, Fog: 3 } as const;
export type PartyRole = (typeof PartyRole)[keyof typeof PartyRole];

export interface Party {
    role: PartyRole;
    /** H(public key), hashBytes long: H(Q_i) for a device session, H(Q) of the service key otherwise. */
    keyId: Uint8Array;
}

/** The signed fields of a record. */
export interface RecordBody {
    suite: Suite;
    type: RecordType;
    encryption: EncryptionType;
    sender: Party;
    receiver: Party;
    /** The sender's per-direction message sequence number (the session channel's). */
    sequence: bigint;
    /** Milliseconds since the epoch when the sender sent the message. */
    timestamp: bigint;
    /** Bytes of the ciphertext. */
    size: number;
    /** SHA-256 of the ciphertext: paper 000's inspection information; also the payload's CID digest. */
    digest: Uint8Array;
}

export interface CommunicationRecord extends RecordBody {
    /** The signer's public key, SEC1 compressed (checked on the curve by OpenSSL when decoded). */
    signerKey: Uint8Array;
    /** r || s, fixed width, low-s. */
    signature: Uint8Array;
}

export const RECORD_DIGEST_BYTES = 32;
const SIGNING_LABEL = new TextEncoder().encode('M2M-V1-RECORD');
const ROLES: ReadonlySet<number> = new Set(Object.values(PartyRole));
const TYPES: ReadonlySet<number> = new Set(Object.values(RecordType));
const ENCRYPTIONS: ReadonlySet<number> = new Set(Object.values(EncryptionType));

/** Encoded length of a record of `suite`. */
export function recordBytes(suite: Suite): number {
    return 4 + 2 * (1 + suite.hashBytes) + 8 + 8 + 4 + RECORD_DIGEST_BYTES + suite.pointBytes + 2 * suite.scalarBytes;
}

/** SHA-256 of a payload: the record's digest. */
export function payloadDigest(ciphertext: Uint8Array): Uint8Array {
    return new Uint8Array(createHash('sha256').update(ciphertext).digest());
}

/** The CID under which a record's stripped payload is stored (CIDv1 raw sha2-256 of the ciphertext). */
export function recordPayloadAddress(ciphertext: Uint8Array): string {
    return contentAddress(ciphertext);
}

/** keyId of a public key: H(Q) with the PublicKeyCommitment DST (for a device: the ledger's H(Q_i)). */
export function partyKeyId(suite: Suite, publicKey: Point): Uint8Array {
    return publicKeyCommitment(suite, publicKey);
}

/** partyKeyId of a SEC1-compressed key (the same hash: publicKeyCommitment hashes the compressed form). */
export function partyKeyIdOf(suite: Suite, compressed: Uint8Array): Uint8Array {
    return hashBytes(suite, 'PublicKeyCommitment', compressed);
}

function writeParty(w: ByteWriter, suite: Suite, party: Party): void {
    if (!ROLES.has(party.role)) throw new RangeError(`unknown party role ${party.role}`);
    if (party.keyId.length !== suite.hashBytes) throw new RangeError(`a keyId is ${suite.hashBytes} bytes`);
    w.u8(party.role).raw(party.keyId);
}

function readParty(r: ByteReader, suite: Suite): Party {
    const role = r.u8();
    if (!ROLES.has(role)) throw new DecodeError('unknownType', `unknown party role ${role}`);
    return { role: role as PartyRole, keyId: r.raw(suite.hashBytes) };
}

/** The signed bytes: every field before the signature (the signer key included). */
function encodeSigned(body: RecordBody, signerKey: Uint8Array): Uint8Array {
    const { suite } = body;
    if (!TYPES.has(body.type)) throw new RangeError(`unknown record type ${body.type}`);
    if (!ENCRYPTIONS.has(body.encryption)) throw new RangeError(`unknown encryption type ${body.encryption}`);
    if (body.digest.length !== RECORD_DIGEST_BYTES) throw new RangeError('the digest is 32 bytes');
    if (body.sequence < 0n || body.timestamp < 0n) throw new RangeError('sequence and timestamp are unsigned');
    const w = new ByteWriter().u8(RECORD_VERSION).u8(suite.tag).u8(body.type).u8(body.encryption);
    writeParty(w, suite, body.sender);
    writeParty(w, suite, body.receiver);
    if (signerKey.length !== suite.pointBytes) throw new RangeError('the signer key is a compressed point');
    w.u64(body.sequence).u64(body.timestamp).u32(body.size).raw(body.digest).raw(signerKey);
    return w.finish();
}

/** The message the record signature covers: "M2M-V1-RECORD" || the encoded fields before the signature. */
export function recordSigningMessage(record: CommunicationRecord): Uint8Array {
    return new Uint8Array(Buffer.concat([SIGNING_LABEL, encodeSigned(record, record.signerKey)]));
}

/**
 * @throws {RangeError} when: signature has the wrong length
 */
export function encodeRecord(record: CommunicationRecord): Uint8Array {
    const { suite } = record;
    if (record.signature.length !== 2 * suite.scalarBytes) throw new RangeError('signature has the wrong length');
    return new ByteWriter().raw(encodeSigned(record, record.signerKey)).raw(record.signature).finish();
}

/**
 * Strict decoder: DecodeError for any byte string that is not a canonical record. Does not verify.
 * @throws {DecodeError} `unknownVersion` when: record version …
 * @throws {DecodeError} `unknownType` when: record type …; encryption type …
 * @throws {DecodeError} `nonCanonical` when: record signer key is not a compressed point; record signature is not a low-s ECDSA signature
 * @throws {DecodeError} `offCurve` when: record signer key is not a curve point
 */
export function decodeRecord(bytes: Uint8Array): CommunicationRecord {
    const r = new ByteReader(bytes);
    const version = r.u8();
    if (version !== RECORD_VERSION) throw new DecodeError('unknownVersion', `record version ${version}`);
    const suite = suiteFromTag(r.u8());
    const type = r.u8();
    if (!TYPES.has(type)) throw new DecodeError('unknownType', `record type ${type}`);
    const encryption = r.u8();
    if (!ENCRYPTIONS.has(encryption)) throw new DecodeError('unknownType', `encryption type ${encryption}`);
    const sender = readParty(r, suite);
    const receiver = readParty(r, suite);
    const sequence = r.u64();
    const timestamp = r.u64();
    const size = r.u32();
    const digest = r.raw(RECORD_DIGEST_BYTES);
    const signerKey = r.raw(suite.pointBytes);
    const signature = r.raw(2 * suite.scalarBytes);
    r.end();
    // Decompressing through noble costs ~0.5 ms; OpenSSL checks the point when it builds the
    // verification key (cached per key), which is what verification uses anyway.
    if (
        (signerKey[0] !== 0x02 && signerKey[0] !== 0x03) ||
        bytesToBigInt(signerKey.subarray(1)) >= suite.Point.Fp.ORDER
    ) {
        throw new DecodeError('nonCanonical', 'record signer key is not a compressed point');
    }
    try {
        verificationKey(suite, signerKey);
    } catch (cause) {
        throw new DecodeError('offCurve', 'record signer key is not a curve point', { cause });
    }
    const s = bytesToBigInt(signature.subarray(suite.scalarBytes));
    const rr = bytesToBigInt(signature.subarray(0, suite.scalarBytes));
    if (rr === 0n || rr >= suite.n || s === 0n || s > suite.n / 2n) {
        throw new DecodeError('nonCanonical', 'record signature is not a low-s ECDSA signature');
    }
    return {
        suite,
        type: type as RecordType,
        encryption: encryption as EncryptionType,
        sender,
        receiver,
        sequence,
        timestamp,
        size,
        digest,
        signerKey,
        signature,
    };
}

const CURVE_OID_SPKI_PREFIX: Readonly<Record<string, string>> = {
    // SubjectPublicKeyInfo { id-ecPublicKey, prime256v1 } with a 33-byte compressed point.
    'P256-SHA256': '3039301306072a8648ce3d020106082a8648ce3d030107032200',
    // { id-ecPublicKey, secp384r1 } with a 49-byte compressed point.
    'P384-SHA384': '3046301006072a8648ce3d020106052b81040022033200',
};
const HASH_NAME: Readonly<Record<string, string>> = { 'P256-SHA256': 'sha256', 'P384-SHA384': 'sha384' };

/** Verification keys by compressed point: a session signs many records, a service millions. */
const publicKeyCache = new Map<string, KeyObject>();
const PUBLIC_KEY_CACHE_LIMIT = 4096;

function verificationKey(suite: Suite, compressed: Uint8Array): KeyObject {
    const hex = Buffer.from(compressed).toString('hex');
    let key = publicKeyCache.get(hex);
    if (key === undefined) {
        key = createPublicKey({
            key: Buffer.from(CURVE_OID_SPKI_PREFIX[suite.id]! + hex, 'hex'),
            format: 'der',
            type: 'spki',
        });
        if (publicKeyCache.size >= PUBLIC_KEY_CACHE_LIMIT) publicKeyCache.clear();
        publicKeyCache.set(hex, key);
    }
    return key;
}

/**
 * A record signing key (the device's d_i for the session, or a service key), held as an OpenSSL
 * key object so each signature is one native call.
 */
export class RecordSigner {
    readonly suite: Suite;
    readonly publicKey: Point;
    /** H(publicKey): the party keyId of this signer. */
    readonly keyId: Uint8Array;
    readonly #key: KeyObject;
    readonly #compressed: Uint8Array;

    /**
     * @throws {RangeError} when: secret key outside [1, n-1]
     */
    constructor(suite: Suite, secretKey: bigint) {
        if (secretKey <= 0n || secretKey >= suite.n) throw new RangeError('secret key outside [1, n-1]');
        const d = bigIntToBytes(secretKey, suite.scalarBytes);
        const ecdh = createECDH(suite.webCryptoCurve === 'P-256' ? 'prime256v1' : 'secp384r1');
        ecdh.setPrivateKey(d);
        const uncompressed = ecdh.getPublicKey();
        const half = suite.scalarBytes;
        this.#key = createPrivateKey({
            key: {
                kty: 'EC',
                crv: suite.webCryptoCurve,
                d: Buffer.from(d).toString('base64url'),
                x: uncompressed.subarray(1, 1 + half).toString('base64url'),
                y: uncompressed.subarray(1 + half).toString('base64url'),
            },
            format: 'jwk',
        });
        d.fill(0);
        this.suite = suite;
        this.publicKey = suite.Point.fromBytes(uncompressed);
        this.#compressed = encodePoint(suite, this.publicKey);
        this.keyId = partyKeyId(suite, this.publicKey);
    }

    /** The sender party for this key. */
    party(role: PartyRole): Party {
        return { role, keyId: this.keyId };
    }

    /**
     * Signs a record body; the body's sender must be this key (RangeError otherwise), except in a
     * relay record, which the relaying fog signs for a message between two other parties.
     * @throws {RangeError} when: record suite differs from the signer suite; the record names another sender
     */
    sign(body: RecordBody): CommunicationRecord {
        if (body.suite.id !== this.suite.id) throw new RangeError('record suite differs from the signer suite');
        if (body.type !== RecordType.Relay && !equalBytes(body.sender.keyId, this.keyId))
            throw new RangeError('the record names another sender');
        const signature = this.#sign(Buffer.concat([SIGNING_LABEL, encodeSigned(body, this.#compressed)]));
        return { ...body, signerKey: this.#compressed, signature };
    }

    /** SEC1-compressed public key of this signer. */
    get compressedKey(): Uint8Array {
        return this.#compressed;
    }

    /**
     * A low-s ECDSA signature r || s over `label || message` with this key, for the other signed
     * objects of the records (a sealed payload, record-envelope.ts); `label` keeps them apart.
     */
    signDetached(label: Uint8Array, message: Uint8Array): Uint8Array {
        return this.#sign(Buffer.concat([label, message]));
    }

    #sign(message: Uint8Array): Uint8Array {
        const signature = new Uint8Array(
            createSign(HASH_NAME[this.suite.id]!).update(message).sign({ key: this.#key, dsaEncoding: 'ieee-p1363' }),
        );
        // Low-s normalisation: (r, n - s) is the other valid signature; keep the smaller s.
        const n = this.suite.n;
        const s = bytesToBigInt(signature.subarray(this.suite.scalarBytes));
        if (s > n / 2n) signature.set(bigIntToBytes(n - s, this.suite.scalarBytes), this.suite.scalarBytes);
        return signature;
    }
}

/**
 * Checks a {@link RecordSigner.signDetached} signature by the SEC1-compressed `signerKey`
 * (validated on the curve; a high-s signature is refused).
 * @throws {DecodeError} when: the key is not a curve point
 */
export function verifyDetached(
    suite: Suite,
    signerKey: Uint8Array,
    label: Uint8Array,
    message: Uint8Array,
    signature: Uint8Array,
): boolean {
    decodePoint(suite, signerKey);
    if (signature.length !== 2 * suite.scalarBytes) return false;
    if (bytesToBigInt(signature.subarray(suite.scalarBytes)) > suite.n / 2n) return false;
    return verify(
        HASH_NAME[suite.id],
        Buffer.concat([label, message]),
        { key: verificationKey(suite, signerKey), dsaEncoding: 'ieee-p1363' },
        signature,
    );
}

/**
 * Verifies a record: the signer key must be the sender's (keyId = H(signer key), else
 * recordSenderMismatch) and the signature valid over the record's fields (else
 * recordSignatureInvalid). Binding the sender's keyId to a session or service on the ledger is
 * the caller's step (a device's keyId is the session record's H(Q_i)).
 *
 * A relay record (type relay) is the exception to the first rule: it is signed by the fog that
 * relayed the message, and its sender and receiver are the message's two ends, so its signer is
 * the relayer ({@link relayerKeyId}), never the sender; binding that key to the fog writer whose
 * log holds the record is the caller's step (the fog signs only its own, relay-record.ts).
 * @throws VerificationError
 */
export function verifyRecord(record: CommunicationRecord): void {
    const { suite } = record;
    if (record.type !== RecordType.Relay && !equalBytes(partyKeyIdOf(suite, record.signerKey), record.sender.keyId)) {
        throw new VerificationError(
            ErrorCode.RecordSenderMismatch,
            'the record is signed by a key other than its sender',
        );
    }
    const compressed = record.signerKey;
    const message = Buffer.concat([SIGNING_LABEL, encodeSigned(record, record.signerKey)]);
    const ok = verify(
        HASH_NAME[suite.id],
        message,
        { key: verificationKey(suite, compressed), dsaEncoding: 'ieee-p1363' },
        record.signature,
    );
    if (!ok) throw new VerificationError(ErrorCode.RecordSignatureInvalid, 'the record signature does not verify');
}

/** keyId of the key that signed a record: the sender's, or for a relay record the relaying fog's. */
export function relayerKeyId(record: CommunicationRecord): Uint8Array {
    return partyKeyIdOf(record.suite, record.signerKey);
}

/** Decodes and verifies encoded record bytes. @throws DecodeError, VerificationError */
export function openRecord(bytes: Uint8Array): CommunicationRecord {
    const record = decodeRecord(bytes);
    verifyRecord(record);
    return record;
}
