/**
 * HPKE (RFC 9180) base mode: the standard form of the paper's ECIES for C1, C2 and C3
 * (DESIGN.md §2). DHKEM(P-256, HKDF-SHA256) / DHKEM(P-384, HKDF-SHA384), HKDF of the suite,
 * AES-128-GCM / AES-256-GCM, via @hpke/core (WebCrypto, OpenSSL-backed). Each message kind has its
 * own `info` label so a C1 can never be opened as a C2.
 */
import { createECDH, type webcrypto } from 'node:crypto';
import {
    Aes128Gcm,
    Aes256Gcm,
    CipherSuite,
    DhkemP256HkdfSha256,
    DhkemP384HkdfSha384,
    HkdfSha256,
    HkdfSha384,
} from '@hpke/core';
import { ByteReader, ByteWriter, encodeScalar } from './encoding.js';
import { DecodeError, ErrorCode, ProtocolError } from './errors.js';
import type { Suite, SuiteId } from './suite.js';

declare global {
    // Node 20 has WebCrypto's CryptoKey/CryptoKeyPair as globals, but @types/node declares them only
    // under `webcrypto`; @hpke/core's typings name the globals, so give them their Node types.
    /* eslint-disable @typescript-eslint/no-empty-object-type */
    interface CryptoKey extends webcrypto.CryptoKey {}
    interface CryptoKeyPair extends webcrypto.CryptoKeyPair {}
    /* eslint-enable @typescript-eslint/no-empty-object-type */
}

export const HpkeInfo = {
    /** C1 = Enc_{Q_f}(IDCert_i): device -> fog. */
    C1: 'M2M-V1-C1',
    /** C2 = Enc_{Q_c}(i, ID_i): device -> CSP (through the fog, opaque to it). */
    C2: 'M2M-V1-C2',
    /** C3 = Enc_{Q_c}(primaryHash_i): fog -> CSP. */
    C3: 'M2M-V1-C3',
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

/** OpenSSL curve names, for the node:crypto ECDH that derives a recipient's public key. */
const OPENSSL_CURVE: Record<SuiteId, string> = { 'P256-SHA256': 'prime256v1', 'P384-SHA384': 'secp384r1' };

const cipherSuites = new Map<SuiteId, CipherSuite>();

/**
 * The RFC 9180 cipher suite used for `suite`: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM
 * (RFC 9180 A.3) or DHKEM(P-384, HKDF-SHA384), HKDF-SHA384, AES-256-GCM.
 */
export function hpkeCipherSuite(suite: Suite): CipherSuite {
    let cs = cipherSuites.get(suite.id);
    if (cs === undefined) {
        cs =
            suite.id === 'P256-SHA256'
                ? new CipherSuite({ kem: new DhkemP256HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() })
                : new CipherSuite({ kem: new DhkemP384HkdfSha384(), kdf: new HkdfSha384(), aead: new Aes256Gcm() });
        cipherSuites.set(suite.id, cs);
    }
    return cs;
}

/** Length of a SEC1 uncompressed point, the RFC 9180 SerializePublicKey form. */
export function hpkeEncBytes(suite: Suite): number {
    return 1 + 2 * suite.scalarBytes;
}

/** The private key is kept in a class field no serializer reaches, never on the returned interface. */
class Recipient implements HpkeRecipient {
    readonly #keyPair: CryptoKeyPair;
    constructor(
        readonly suite: Suite,
        readonly publicKey: Uint8Array,
        keyPair: CryptoKeyPair,
    ) {
        this.#keyPair = keyPair;
    }
    keyPair(): CryptoKeyPair {
        return this.#keyPair;
    }
    toJSON(): object {
        return { suite: this.suite.id, publicKey: Buffer.from(this.publicKey).toString('hex') };
    }
}

export async function hpkeRecipientFromScalar(suite: Suite, secret: bigint): Promise<HpkeRecipient> {
    if (secret <= 0n || secret >= suite.n) {
        throw new DecodeError('scalarOutOfRange', 'HPKE recipient key must be in [1, n-1]');
    }
    const secretBytes = encodeScalar(suite, secret);
    // OpenSSL computes d*G (constant time) for the public half; WebCrypto imports d as PKCS#8.
    const ecdh = createECDH(OPENSSL_CURVE[suite.id]);
    ecdh.setPrivateKey(secretBytes);
    const publicKey = new Uint8Array(ecdh.getPublicKey());
    const kem = hpkeCipherSuite(suite).kem;
    const keyPair: CryptoKeyPair = {
        privateKey: await kem.deserializePrivateKey(secretBytes),
        publicKey: await kem.deserializePublicKey(publicKey),
    };
    secretBytes.fill(0);
    return new Recipient(suite, publicKey, keyPair);
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
    const cs = hpkeCipherSuite(suite);
    const pkBytes = toUncompressed(suite, recipientPublicKey);
    const recipientKey = await cs.kem.deserializePublicKey(pkBytes);
    const sender = await cs.createSenderContext({
        recipientPublicKey: recipientKey,
        info: utf8.encode(info),
        ...(testOnlyEphemeralIkm === undefined ? {} : { ekm: testOnlyEphemeralIkm }),
    });
    const ct = await sender.seal(plaintext, aad);
    return { enc: new Uint8Array(sender.enc), ct: new Uint8Array(ct) };
}

/** Throws ProtocolError(DecryptionFailed) on any authentication failure. */
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
    if (ciphertext.enc.length !== hpkeEncBytes(suite)) {
        throw new ProtocolError(ErrorCode.DecryptionFailed, 'HPKE: encapsulated key has the wrong length');
    }
    try {
        const cs = hpkeCipherSuite(suite);
        const ctx = await cs.createRecipientContext({
            recipientKey: recipient.keyPair(),
            enc: ciphertext.enc,
            info: utf8.encode(info),
        });
        return new Uint8Array(await ctx.open(ciphertext.ct, aad));
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

/** Writes the canonical ciphertext form into a larger object (messages.ts). */
export function writeHpkeCiphertext(w: ByteWriter, suite: Suite, c: HpkeCiphertext): void {
    if (c.enc.length !== hpkeEncBytes(suite) || c.enc[0] !== 0x04) {
        throw new RangeError(`HPKE enc must be a ${hpkeEncBytes(suite)}-byte uncompressed point`);
    }
    if (c.ct.length < AEAD_TAG_BYTES || c.ct.length > MAX_CIPHERTEXT_BYTES) {
        throw new RangeError(`HPKE ciphertext length ${c.ct.length} out of range`);
    }
    w.raw(c.enc).bytes16(c.ct);
}

/** Reads the canonical ciphertext form; DecodeError for a malformed enc or a too-short ct. */
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
