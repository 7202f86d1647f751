/**
 * Signers for {@link LedgerSigner}: ECDSA P-256 (or P-384) with SHA-256, DER, low-S — what a Fabric
 * MSP accepts. OpenSSL (node:crypto) does the arithmetic; only the S normalisation is done here,
 * because OpenSSL does not offer it.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

import type { LedgerSigner } from './types.js';

const CURVE_ORDERS: Record<string, bigint> = {
    'P-256': 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
    'P-384': 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
};

/** A signer for a PEM (PKCS#8 or SEC1) EC private key. */
export function newPrivateKeySigner(privateKey: string | KeyObject): LedgerSigner {
    const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const order =
        curve === 'prime256v1' ? CURVE_ORDERS['P-256'] : curve === 'secp384r1' ? CURVE_ORDERS['P-384'] : undefined;
    if (key.asymmetricKeyType !== 'ec' || order === undefined) {
        throw new TypeError(`unsupported signing key: ${key.asymmetricKeyType ?? '?'} ${curve ?? ''}`);
    }
    return (message) => Promise.resolve(signLowS(key, order, message));
}

/** ECDSA-SHA256 signature of `message`, S normalised to the lower half of the group order, DER-encoded. */
export function signLowS(key: KeyObject, order: bigint, message: Uint8Array): Uint8Array {
    const raw = sign('sha256', message, { key, dsaEncoding: 'ieee-p1363' });
    const half = raw.length / 2;
    const r = bytesToBigInt(raw.subarray(0, half));
    let s = bytesToBigInt(raw.subarray(half));
    if (s > order >> 1n) s = order - s;
    return encodeDerSignature(r, s);
}

/** Verifies an ECDSA-SHA256 DER signature and, as Fabric does, refuses a high-S one. */
export function verifyLowS(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
    const curve = publicKey.asymmetricKeyDetails?.namedCurve;
    const order =
        curve === 'prime256v1' ? CURVE_ORDERS['P-256'] : curve === 'secp384r1' ? CURVE_ORDERS['P-384'] : undefined;
    if (order === undefined) return false;
    const s = derSignatureS(signature);
    if (s === undefined || s > order >> 1n) return false;
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

function bytesToBigInt(bytes: Uint8Array): bigint {
    return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}

function derInteger(value: bigint): Buffer {
    let hex = value.toString(16);
    if (hex.length % 2 === 1) hex = `0${hex}`;
    let bytes = Buffer.from(hex, 'hex');
    // A leading 1 bit would make the DER integer negative.
    if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
    return Buffer.concat([Buffer.from([0x02, bytes.length]), bytes]);
}

function encodeDerSignature(r: bigint, s: bigint): Uint8Array {
    const body = Buffer.concat([derInteger(r), derInteger(s)]);
    // P-256/P-384 signatures are < 128 bytes of body, so the short length form suffices.
    return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

/** The S value of a DER ECDSA signature, or undefined if it is not well-formed. */
function derSignatureS(signature: Uint8Array): bigint | undefined {
    const sig = Buffer.from(signature);
    if (sig.length < 8 || sig[0] !== 0x30 || sig[1] !== sig.length - 2) return undefined;
    let offset = 2;
    const values: bigint[] = [];
    for (let i = 0; i < 2; i++) {
        if (sig[offset] !== 0x02) return undefined;
        const length = sig[offset + 1] ?? 0;
        if (length === 0 || offset + 2 + length > sig.length) return undefined;
        values.push(bytesToBigInt(sig.subarray(offset + 2, offset + 2 + length)));
        offset += 2 + length;
    }
    return offset === sig.length ? values[1] : undefined;
}
