/**
 * ECDSA as a Fabric MSP checks it: SHA-256, DER, and a signature with S above half the group
 * order refused (Fabric's low-S rule, against malleability). OpenSSL (node:crypto) does the
 * arithmetic. One implementation for the SDK's signers, the embedded ledger's validator and the
 * offline receipt verifier (receipt.ts), which runs on the device as well.
 */
import { verify, type KeyObject } from 'node:crypto';

/** A curve Fabric's MSP accepts, with its group order n and ⌊n/2⌋ as fixed-length big-endian bytes. */
export interface EcdsaCurveOrder {
    readonly n: bigint;
    readonly size: number;
    readonly halfOrder: Buffer;
}

function curveOrder(n: bigint, size: number): EcdsaCurveOrder {
    return { n, size, halfOrder: Buffer.from((n >> 1n).toString(16).padStart(size * 2, '0'), 'hex') };
}

const CURVE_ORDERS: Readonly<Record<string, EcdsaCurveOrder>> = {
    prime256v1: curveOrder(0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n, 32),
    secp384r1: curveOrder(
        0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
        48,
    ),
};

// Reading KeyObject.asymmetricKeyDetails crosses into C++ each time; signatures are on the hot
// path of every transaction (six per transaction on the embedded ledger), so remember it per key.
const ordersByKey = new WeakMap<KeyObject, EcdsaCurveOrder | null>();

/** The group order of a P-256 or P-384 key; undefined for any other key. */
export function ecdsaCurveOrder(key: KeyObject): EcdsaCurveOrder | undefined {
    let order = ordersByKey.get(key);
    if (order === undefined) {
        const curve = key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined;
        order = (curve === undefined ? undefined : CURVE_ORDERS[curve]) ?? null;
        ordersByKey.set(key, order);
    }
    return order ?? undefined;
}

/** Verifies an ECDSA-SHA256 DER signature and, as Fabric does, refuses a high-S one. */
export function verifyLowS(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
    const order = ecdsaCurveOrder(publicKey);
    if (order === undefined) return false;
    const s = derSignatureS(signature);
    if (s === undefined || compareUnsigned(s, order.halfOrder) > 0) return false;
    try {
        return verify('sha256', message, publicKey, signature);
    } catch {
        return false;
    }
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
