/**
 * Signers for {@link LedgerSigner}: ECDSA P-256 (or P-384) with SHA-256, DER, low-S — what a Fabric
 * MSP accepts. OpenSSL (node:crypto) does the arithmetic; only the S normalisation is done here,
 * because OpenSSL does not offer it.
 */
import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';

import { ecdsaCurveOrder as orderOf, verifyLowS } from '@m2m-fabric/protocol';

import type { LedgerSigner } from './types.js';

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

/** Verifies an ECDSA-SHA256 DER signature and, as Fabric does, refuses a high-S one (in the protocol package). */
export { verifyLowS };

/** Public key of a PEM certificate or key. */
export function publicKeyOf(pem: string | Uint8Array): KeyObject {
    return createPublicKey(typeof pem === 'string' ? pem : Buffer.from(pem));
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
