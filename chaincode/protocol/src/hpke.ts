/**
 * HPKE (RFC 9180) base mode, single-shot: the standard form of the paper's ECIES for C1, C2 and C3
 * (docs/design.md#cryptographic-suite). DHKEM(P-256, HKDF-SHA256) / DHKEM(P-384, HKDF-SHA384), HKDF of the suite,
 * AES-128-GCM / AES-256-GCM, written directly on node:crypto (OpenSSL ECDH, HKDF, AES-GCM): every
 * step is a synchronous OpenSSL call, ~10x cheaper than going through WebCrypto's async key objects
 * (docs/crypto.md). Pinned by the RFC 9180 A.3 known-answer vector and cross-checked against an
 * independent reference (test/crypto/hpke-reference.ts). Each message kind has its own `info`
 * label so a C1 can never be opened as a C2.
 */
import { createCipheriv, createDecipheriv, createECDH, createHmac, type ECDH } from 'node:crypto';
import { ByteReader, ByteWriter, encodeScalar } from './encoding.js';
import { DecodeError, ErrorCode, ProtocolError } from './errors.js';
import { ALL_SUITES, type Suite, type SuiteId } from './suite.js';

export const HpkeInfo = {
    /** C1 = Enc_{Q_f}(IDCert_i): device -> fog. */
    C1: 'M2M-V1-C1',
    /** C2 = Enc_{Q_c}(i, ID_i): device -> CSP (through the fog, opaque to it). */
    C2: 'M2M-V1-C2',
    /** C3 = Enc_{Q_c}(primaryHash_i): fog -> CSP. */
    C3: 'M2M-V1-C3',
    /** A stored payload's data key wrapped for one reader (envelope encryption, envelope.ts). */
    DataKey: 'M2M-V1-DATA-KEY',
    /** Paper 000 Fig. 7: the records of an information packet, target (or CSP) -> asker. */
    QueryAnswer: 'M2M-V1-QUERY-ANSWER',
} as const;
export type HpkeInfo = (typeof HpkeInfo)[keyof typeof HpkeInfo];

export interface HpkeCiphertext {
    /** Encapsulated key (the paper's A_f / A_c-1 / A_c-2), SEC1 uncompressed as RFC 9180 defines. */
    enc: Uint8Array;
    /** AEAD ciphertext with tag (the paper's C_f / C_c-1 / C_c-2). */
    ct: Uint8Array;
}

/** Recipient key pair in the form HPKE needs; built once per service from its scalar. */
export interface HpkeRecipient {
    readonly suite: Suite;
    readonly publicKey: Uint8Array;
}

/** AES-GCM tag length: the shortest possible HPKE ciphertext (empty plaintext). */
const AEAD_TAG_BYTES = 16;
/** Plaintexts here are a point, a hash or (counter, ID_i); the u16 length prefix bounds them. */
const MAX_CIPHERTEXT_BYTES = 0xffff;

/** RFC 9180 §7 identifiers and sizes of the suite's KEM, KDF and AEAD. */
interface HpkeParams {
    curve: string;
    kemId: number;
    kdfId: number;
    aeadId: number;
    hash: 'sha256' | 'sha384';
    /** Nh = Nsecret. */
    hashBytes: number;
    aead: 'aes-128-gcm' | 'aes-256-gcm';
    /** Nk. */
    keyBytes: number;
    /** KEM suite_id = "KEM" || I2OSP(kem_id, 2). */
    kemSuiteId: Buffer;
    /** HPKE suite_id = "HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) || I2OSP(aead_id, 2). */
    hpkeSuiteId: Buffer;
}

function params(
    curve: string,
    kemId: number,
    kdfId: number,
    aeadId: number,
    rest: Omit<HpkeParams, 'curve' | 'kemId' | 'kdfId' | 'aeadId' | 'kemSuiteId' | 'hpkeSuiteId'>,
): HpkeParams {
    const u16 = (v: number): Buffer => Buffer.from([v >> 8, v & 0xff]);
    return {
        curve,
        kemId,
        kdfId,
        aeadId,
        ...rest,
        kemSuiteId: Buffer.concat([Buffer.from('KEM'), u16(kemId)]),
        hpkeSuiteId: Buffer.concat([Buffer.from('HPKE'), u16(kemId), u16(kdfId), u16(aeadId)]),
    };
}

/** HPKE parameters of each suite (from the Suite object, with the derived suite ids). */
const PARAMS: Record<SuiteId, HpkeParams> = Object.fromEntries(
    ALL_SUITES.map((s) => [
        s.id,
        params(s.opensslCurve, s.hpke.kemId, s.hpke.kdfId, s.hpke.aeadId, {
            hash: s.hpke.hash,
            hashBytes: s.hashBytes,
            aead: s.hpke.aead,
            keyBytes: s.hpke.keyBytes,
        }),
    ]),
) as Record<SuiteId, HpkeParams>;

const NONCE_BYTES = 12;
const HPKE_V1 = Buffer.from('HPKE-v1');
const EMPTY = Buffer.alloc(0);

/** Length of a SEC1 uncompressed point, the RFC 9180 SerializePublicKey form. */
export function hpkeEncBytes(suite: Suite): number {
    return 1 + 2 * suite.scalarBytes;
}

/** RFC 9180 §4 LabeledExtract: HKDF-Extract(salt, "HPKE-v1" || suite_id || label || ikm). */
function labeledExtract(p: HpkeParams, suiteId: Buffer, salt: Uint8Array, label: string, ikm: Uint8Array): Buffer {
    return createHmac(p.hash, salt).update(HPKE_V1).update(suiteId).update(label).update(ikm).digest();
}

/** RFC 9180 §4 LabeledExpand: HKDF-Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info, L). */
function labeledExpand(
    p: HpkeParams,
    suiteId: Buffer,
    prk: Buffer,
    label: string,
    info: Uint8Array,
    L: number,
): Buffer {
    const labeledInfo = Buffer.concat([Buffer.from([L >> 8, L & 0xff]), HPKE_V1, suiteId, Buffer.from(label), info]);
    const blocks: Buffer[] = [];
    let previous = EMPTY;
    for (let i = 1; blocks.length * p.hashBytes < L; i++) {
        previous = createHmac(p.hash, prk).update(previous).update(labeledInfo).update(Uint8Array.of(i)).digest();
        blocks.push(previous);
    }
    return Buffer.concat(blocks).subarray(0, L);
}

/** RFC 9180 §4.1 ExtractAndExpand(dh, kem_context): the KEM shared secret. */
function kemSharedSecret(p: HpkeParams, dh: Buffer, enc: Uint8Array, pkR: Uint8Array): Buffer {
    const eaePrk = labeledExtract(p, p.kemSuiteId, EMPTY, 'eae_prk', dh);
    return labeledExpand(p, p.kemSuiteId, eaePrk, 'shared_secret', Buffer.concat([enc, pkR]), p.hashBytes);
}

/** RFC 9180 §5.1 KeySchedule for mode_base (no PSK): the AEAD key and base nonce. */
function keySchedule(p: HpkeParams, sharedSecret: Buffer, info: string): { key: Buffer; nonce: Buffer } {
    const pskIdHash = labeledExtract(p, p.hpkeSuiteId, EMPTY, 'psk_id_hash', EMPTY);
    const infoHash = labeledExtract(p, p.hpkeSuiteId, EMPTY, 'info_hash', utf8.encode(info));
    const context = Buffer.concat([Uint8Array.of(0x00), pskIdHash, infoHash]);
    const secret = labeledExtract(p, p.hpkeSuiteId, sharedSecret, 'secret', EMPTY);
    return {
        key: labeledExpand(p, p.hpkeSuiteId, secret, 'key', context, p.keyBytes),
        nonce: labeledExpand(p, p.hpkeSuiteId, secret, 'base_nonce', context, NONCE_BYTES),
    };
}

/** RFC 9180 §7.1.3 DeriveKeyPair for the NIST curves (bitmask 0xff): the ephemeral key from ikm. */
function deriveKeyPair(p: HpkeParams, suite: Suite, ikm: Uint8Array): ECDH {
    const dkpPrk = labeledExtract(p, p.kemSuiteId, EMPTY, 'dkp_prk', ikm);
    for (let counter = 0; counter < 256; counter++) {
        const bytes = labeledExpand(p, p.kemSuiteId, dkpPrk, 'candidate', Uint8Array.of(counter), suite.scalarBytes);
        const sk = BigInt(`0x${bytes.toString('hex')}`);
        if (sk !== 0n && sk < suite.n) {
            const ecdh = createECDH(p.curve);
            ecdh.setPrivateKey(bytes);
            return ecdh;
        }
    }
    throw new Error('DeriveKeyPair: no valid candidate');
}

/** The private key is kept in a class field no serializer reaches, never on the returned interface. */
class Recipient implements HpkeRecipient {
    readonly #ecdh: ECDH;
    constructor(
        readonly suite: Suite,
        readonly publicKey: Uint8Array,
        ecdh: ECDH,
    ) {
        this.#ecdh = ecdh;
    }
    /** DH(skR, pkE): x of the shared point; throws for an enc that is not a valid point. */
    dh(enc: Uint8Array): Buffer {
        return this.#ecdh.computeSecret(enc);
    }
    toJSON(): object {
        return { suite: this.suite.id, publicKey: Buffer.from(this.publicKey).toString('hex') };
    }
}

/**
 * @throws {DecodeError} `scalarOutOfRange` when: HPKE recipient key must be in [1, n-1]
 */
export async function hpkeRecipientFromScalar(suite: Suite, secret: bigint): Promise<HpkeRecipient> {
    if (secret <= 0n || secret >= suite.n) {
        throw new DecodeError('scalarOutOfRange', 'HPKE recipient key must be in [1, n-1]');
    }
    const secretBytes = encodeScalar(suite, secret);
    // OpenSSL computes d*G (constant time) for the public half and keeps d for the DH of every open.
    const ecdh = createECDH(PARAMS[suite.id].curve);
    ecdh.setPrivateKey(secretBytes);
    secretBytes.fill(0);
    return Promise.resolve(new Recipient(suite, new Uint8Array(ecdh.getPublicKey()), ecdh));
}

const utf8 = new TextEncoder();

/**
 * Seals `plaintext` to `recipientPublicKey` (SEC1, compressed or uncompressed; validated on the
 * curve). `testOnlyEphemeralIkm` fixes the sender's ephemeral key through DeriveKeyPair(ikmE), so
 * RFC 9180 known-answer vectors can be reproduced; production callers never pass it.
 */
export async function hpkeSeal(
    suite: Suite,
    recipientPublicKey: Uint8Array,
    info: HpkeInfo,
    plaintext: Uint8Array,
    aad?: Uint8Array,
    testOnlyEphemeralIkm?: Uint8Array,
): Promise<HpkeCiphertext> {
    const p = PARAMS[suite.id];
    const pkR = toUncompressed(suite, recipientPublicKey);
    // §4.1 Encap: a fresh ephemeral key pair (OpenSSL draws it), DH with pkR.
    let ephemeral: ECDH;
    if (testOnlyEphemeralIkm === undefined) {
        ephemeral = createECDH(p.curve);
        ephemeral.generateKeys();
    } else {
        ephemeral = deriveKeyPair(p, suite, testOnlyEphemeralIkm);
    }
    const enc = ephemeral.getPublicKey();
    const dh = ephemeral.computeSecret(pkR);
    const { key, nonce } = keySchedule(p, kemSharedSecret(p, dh, enc, pkR), info);
    // §5.2 Seal with sequence number 0: the nonce is base_nonce itself.
    const cipher = createCipheriv(p.aead, key, nonce);
    if (aad !== undefined) cipher.setAAD(aad);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return Promise.resolve({ enc: new Uint8Array(enc), ct: new Uint8Array(body) });
}

/**
 * Throws ProtocolError(DecryptionFailed) on any authentication failure.
 * @throws {TypeError} when: hpkeOpen needs a recipient made by hpkeRecipientFromScalar
 * @throws {ProtocolError} `decryptionFailed` when: HPKE: encapsulated key has the wrong length; HPKE: ciphertext shorter than the tag; HPKE: ciphertext does n…
 */
export async function hpkeOpen(
    recipient: HpkeRecipient,
    info: HpkeInfo,
    ciphertext: HpkeCiphertext,
    aad?: Uint8Array,
): Promise<Uint8Array> {
    if (!(recipient instanceof Recipient)) {
        throw new TypeError('hpkeOpen needs a recipient made by hpkeRecipientFromScalar');
    }
    const suite = recipient.suite;
    const p = PARAMS[suite.id];
    if (ciphertext.enc.length !== hpkeEncBytes(suite)) {
        throw new ProtocolError(ErrorCode.DecryptionFailed, 'HPKE: encapsulated key has the wrong length');
    }
    if (ciphertext.ct.length < AEAD_TAG_BYTES) {
        throw new ProtocolError(ErrorCode.DecryptionFailed, 'HPKE: ciphertext shorter than the tag');
    }
    try {
        // §4.1 Decap: OpenSSL refuses an enc that is not a point on the curve.
        const dh = recipient.dh(ciphertext.enc);
        const { key, nonce } = keySchedule(p, kemSharedSecret(p, dh, ciphertext.enc, recipient.publicKey), info);
        const decipher = createDecipheriv(p.aead, key, nonce);
        if (aad !== undefined) decipher.setAAD(aad);
        const tagAt = ciphertext.ct.length - AEAD_TAG_BYTES;
        decipher.setAuthTag(ciphertext.ct.subarray(tagAt));
        const plaintext = Buffer.concat([decipher.update(ciphertext.ct.subarray(0, tagAt)), decipher.final()]);
        return Promise.resolve(new Uint8Array(plaintext));
    } catch (e) {
        // An invalid enc (off curve) and a failed tag are both "this ciphertext is not for you".
        throw new ProtocolError(ErrorCode.DecryptionFailed, 'HPKE: ciphertext does not open', { cause: e });
    }
}

/** Canonical form: enc (fixed length, SEC1 uncompressed) || u16 length || ct. */
export function encodeHpkeCiphertext(suite: Suite, c: HpkeCiphertext): Uint8Array {
    const w = new ByteWriter();
    writeHpkeCiphertext(w, suite, c);
    return w.finish();
}

export function decodeHpkeCiphertext(suite: Suite, bytes: Uint8Array): HpkeCiphertext {
    const r = new ByteReader(bytes);
    const c = readHpkeCiphertext(r, suite);
    r.end();
    return c;
}

/**
 * Writes the canonical ciphertext form into a larger object (messages.ts).
 * @throws {RangeError} when: HPKE enc must be a …-byte uncompressed point; HPKE ciphertext length … out of range
 */
export function writeHpkeCiphertext(w: ByteWriter, suite: Suite, c: HpkeCiphertext): void {
    if (c.enc.length !== hpkeEncBytes(suite) || c.enc[0] !== 0x04) {
        throw new RangeError(`HPKE enc must be a ${hpkeEncBytes(suite)}-byte uncompressed point`);
    }
    if (c.ct.length < AEAD_TAG_BYTES || c.ct.length > MAX_CIPHERTEXT_BYTES) {
        throw new RangeError(`HPKE ciphertext length ${c.ct.length} out of range`);
    }
    w.raw(c.enc).bytes16(c.ct);
}

/**
 * Reads the canonical ciphertext form; DecodeError for a malformed enc or a too-short ct.
 * @throws {DecodeError} `invalidValue` when: HPKE ciphertext shorter than the …-byte tag
 */
export function readHpkeCiphertext(r: ByteReader, suite: Suite): HpkeCiphertext {
    const enc = r.raw(hpkeEncBytes(suite));
    checkEnc(suite, enc);
    const ct = r.bytes16();
    if (ct.length < AEAD_TAG_BYTES) {
        throw new DecodeError('invalidValue', `HPKE ciphertext shorter than the ${AEAD_TAG_BYTES}-byte tag`);
    }
    return { enc, ct };
}

function checkEnc(suite: Suite, enc: Uint8Array): void {
    if (enc[0] !== 0x04) {
        throw new DecodeError('nonCanonical', 'HPKE enc must be a SEC1 uncompressed point');
    }
    let point;
    try {
        point = suite.Point.fromBytes(enc);
    } catch (e) {
        throw new DecodeError('offCurve', 'HPKE enc is not a point on the curve', { cause: e });
    }
    if (point.is0()) {
        throw new DecodeError('identityPoint', 'HPKE enc is the identity');
    }
}

function toUncompressed(suite: Suite, publicKey: Uint8Array): Uint8Array {
    let point;
    try {
        point = suite.Point.fromBytes(publicKey);
    } catch (e) {
        throw new DecodeError('offCurve', 'HPKE recipient public key is not a point on the curve', { cause: e });
    }
    if (point.is0()) {
        throw new DecodeError('identityPoint', 'HPKE recipient public key is the identity');
    }
    return point.toBytes(false);
}
