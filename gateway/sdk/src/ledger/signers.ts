/**
 * Signers for {@link LedgerSigner}: ECDSA P-256 (or P-384) with SHA-256, DER, low-S — what a Fabric
 * MSP accepts. OpenSSL (node:crypto) does the arithmetic; only the S normalisation is done here,
 * because OpenSSL does not offer it.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

import type { LedgerSigner } from './types.js';

/** A curve Fabric's MSP accepts, with its group order n and ⌊n/2⌋ as fixed-length big-endian bytes. */
interface CurveOrder {
    readonly n: bigint;
    readonly size: number;
    readonly halfOrder: Buffer;
}

function curveOrder(n: bigint, size: number): CurveOrder {
    return { n, size, halfOrder: Buffer.from((n >> 1n).toString(16).padStart(size * 2, '0'), 'hex') };
}

const CURVE_ORDERS: Readonly<Record<string, CurveOrder>> = {
    prime256v1: curveOrder(0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n, 32),
    secp384r1: curveOrder(
        0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
        48,
    ),
};

// Reading KeyObject.asymmetricKeyDetails crosses into C++ each time; signatures are on the hot
// path of every transaction (six per transaction on the embedded ledger), so remember it per key.
const ordersByKey = new WeakMap<KeyObject, CurveOrder | null>();

function orderOf(key: KeyObject): CurveOrder | undefined {
    let order = ordersByKey.get(key);
    if (order === undefined) {
        const curve = key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined;
        order = (curve === undefined ? undefined : CURVE_ORDERS[curve]) ?? null;
        ordersByKey.set(key, order);
    }
    return order ?? undefined;
}

/**
 * A signer for a PEM (PKCS#8 or SEC1) EC private key.
 * @throws {TypeError} when: unsupported signing key: … …
 */
export function newPrivateKeySigner(privateKey: string | KeyObject): LedgerSigner {
    const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
    const order = orderOf(key);
    if (order === undefined) {
        const curve = key.asymmetricKeyDetails?.namedCurve;
        throw new TypeError(`unsupported signing key: ${key.asymmetricKeyType ?? '?'} ${curve ?? ''}`);
    }
    return (message) => Promise.resolve(signLowS(key, message));
}

/**
 * ECDSA-SHA256 signature of `message`, S normalised to the lower half of the group order, DER-encoded.
 * @throws {TypeError} when: signLowS needs a P-256 or P-384 EC private key
 */
export function signLowS(key: KeyObject, message: Uint8Array): Uint8Array {
    const order = orderOf(key);
    if (order === undefined) throw new TypeError('signLowS needs a P-256 or P-384 EC private key');
    const raw = sign('sha256', message, { key, dsaEncoding: 'ieee-p1363' });
    const r = raw.subarray(0, order.size);
    let s = raw.subarray(order.size);
    // Fixed-length big-endian byte strings compare like the integers they encode.
    if (Buffer.compare(s, order.halfOrder) > 0) {
        const lowS = order.n - BigInt(`0x${s.toString('hex')}`);
        s = Buffer.from(lowS.toString(16).padStart(order.size * 2, '0'), 'hex');
    }
    return encodeDerSignature(r, s);
}

/** Verifies an ECDSA-SHA256 DER signature and, as Fabric does, refuses a high-S one. */
export function verifyLowS(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
    const order = orderOf(publicKey);
    if (order === undefined) return false;
    const s = derSignatureS(signature);
    if (s === undefined || compareUnsigned(s, order.halfOrder) > 0) return false;
    try {
        return verify('sha256', message, publicKey, signature);
    } catch {
        return false;
    }
}

/** Public key of a PEM certificate or key. */
export function publicKeyOf(pem: string | Uint8Array): KeyObject {
    return createPublicKey(typeof pem === 'string' ? pem : Buffer.from(pem));
}

/** Big-endian unsigned integers of any length, leading zero bytes ignored. */
function compareUnsigned(a: Buffer, b: Buffer): number {
    const x = stripLeadingZeros(a);
    const y = stripLeadingZeros(b);
    return x.length !== y.length ? x.length - y.length : Buffer.compare(x, y);
}

function stripLeadingZeros(bytes: Buffer): Buffer {
    let start = 0;
    while (start < bytes.length - 1 && bytes[start] === 0) start++;
    return bytes.subarray(start);
}

/** DER INTEGER body of an unsigned big-endian value: minimal, with a 0x00 where the top bit is set. */
function derIntegerBody(value: Buffer): Buffer {
    const minimal = stripLeadingZeros(value);
    // A leading 1 bit would make the DER integer negative.
    return (minimal[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), minimal]) : minimal;
}

function encodeDerSignature(r: Buffer, s: Buffer): Uint8Array {
    const rBody = derIntegerBody(r);
    const sBody = derIntegerBody(s);
    const bodyLength = 4 + rBody.length + sBody.length;
    // P-256/P-384 signatures are < 128 bytes of body, so the short length form suffices.
    const out = Buffer.allocUnsafe(2 + bodyLength);
    out[0] = 0x30;
    out[1] = bodyLength;
    out[2] = 0x02;
    out[3] = rBody.length;
    rBody.copy(out, 4);
    out[4 + rBody.length] = 0x02;
    out[5 + rBody.length] = sBody.length;
    sBody.copy(out, 6 + rBody.length);
    return out;
}

/** The S value (big-endian bytes) of a DER ECDSA signature, or undefined if it is not well-formed. */
function derSignatureS(signature: Uint8Array): Buffer | undefined {
    const sig = Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength);
    if (sig.length < 8 || sig[0] !== 0x30 || sig[1] !== sig.length - 2) return undefined;
    let offset = 2;
    let s: Buffer | undefined;
    for (let i = 0; i < 2; i++) {
        if (sig[offset] !== 0x02) return undefined;
        const length = sig[offset + 1] ?? 0;
        if (length === 0 || offset + 2 + length > sig.length) return undefined;
        s = sig.subarray(offset + 2, offset + 2 + length);
        offset += 2 + length;
    }
    return offset === sig.length ? s : undefined;
}
