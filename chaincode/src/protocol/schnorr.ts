/**
 * Schnorr signatures (paper 004 eq. 1), domain-separated by a per-use context label. Used for
 * s_f (fog signature over M4), the proof of possession by k_i, and the M3 signature by d_i.
 * Signing is constant-time in the secret key; nonces are derived deterministically from the key,
 * the message and fresh randomness (hedged), so a bad RNG cannot leak the key.
 */
import type { Point, Suite } from './suite.js';

/** Distinct label per use, hashed into the challenge. */
export const SchnorrContext = {
    FogM4: 'fog-m4',
    ProofOfPossession: 'proof-of-possession',
    M3: 'm3',
    CspConfirmation: 'csp-confirmation',
} as const;
export type SchnorrContext = (typeof SchnorrContext)[keyof typeof SchnorrContext];

/** Signature (c, s), encoded as two fixed-width scalars. */
export interface SchnorrSignature {
    c: bigint;
    s: bigint;
}

export declare function schnorrSign(
    suite: Suite,
    context: SchnorrContext,
    secretKey: bigint,
    message: Uint8Array,
): SchnorrSignature;
export declare function schnorrVerify(
    suite: Suite,
    context: SchnorrContext,
    publicKey: Point,
    message: Uint8Array,
    signature: SchnorrSignature,
): boolean;
export declare function encodeSchnorrSignature(suite: Suite, sig: SchnorrSignature): Uint8Array;
export declare function decodeSchnorrSignature(suite: Suite, bytes: Uint8Array): SchnorrSignature;
