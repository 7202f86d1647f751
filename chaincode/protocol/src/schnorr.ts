/**
 * Schnorr signatures (paper 004 eq. 1), domain-separated by a per-use context label. Used for
 * s_f (fog signature over M4), the proof of possession by k_i, and the M3 signature by d_i.
 * Signing is constant-time in the secret key; nonces are derived deterministically from the key,
 * the message and fresh randomness (hedged), so a bad RNG cannot leak the key.
 *
 * Paper eq. (1): R = r*G, h = H(M, R), s = r - h*d; verify s*G == R - h*Q. Here the signature is
 * (c, s) with c = h: the verifier recomputes R' = s*G + c*Q and accepts iff H(.., R', ..) == c.
 * The challenge hashes the context label and the public key as well as R and M (DST
 * SchnorrChallenge), so a signature made for one use or one key is never valid for another.
 */
import { randomBytes } from '@noble/hashes/utils.js';
import { ByteReader, ByteWriter, encodePoint, encodeScalar } from './encoding.js';
import { hashToScalar } from './hashing.js';
import { normalizeZ } from '@noble/curves/abstract/curve.js';
import { type Point, type Suite } from './suite.js';
import { mulAddPublic, mulBase } from './multiply.js';

/** Distinct label per use, hashed into the challenge. */
export const SchnorrContext = {
    FogM4: 'fog-m4',
    ProofOfPossession: 'proof-of-possession',
    M3: 'm3',
    CspConfirmation: 'csp-confirmation',
    /** A writer's signed batch head (writer, sequence, tree size, root) anchored by anchors.ts. */
    BatchHead: 'batch-head',
    /** A machine's static key (M-EB) over a material transformation it performed. */
    MaterialTransformation: 'material-transformation',
    /** Paper 000 Fig. 6: the asker's signature over a query packet. */
    QueryPacket: 'query-packet',
    /** Paper 000 Fig. 7: the target's signature over an information packet. */
    InformationPacket: 'information-packet',
    /** Paper 000 step 4: a machine tells its fog which connection is its private area. */
    QueryListen: 'query-listen',
    /** The CSP's old and new CA keys over a key rotation statement (csp-key-rotation.ts). */
    CspKeyRotation: 'csp-key-rotation',
    /** A fog's identity key and its new key over a session key for another suite (fog-suite-key.ts). */
    FogSuiteKey: 'fog-suite-key',
} as const;
export type SchnorrContext = (typeof SchnorrContext)[keyof typeof SchnorrContext];

const KNOWN_CONTEXTS: ReadonlySet<string> = new Set(Object.values(SchnorrContext));

/** Signature (c, s), encoded as two fixed-width scalars. */
export interface SchnorrSignature {
    c: bigint;
    s: bigint;
}

/** Bytes of fresh randomness mixed into each nonce. */
export const SCHNORR_AUX_BYTES = 32;

const UTF8 = new TextEncoder();

function assertContext(context: string): void {
    if (!KNOWN_CONTEXTS.has(context)) throw new RangeError(`unknown Schnorr context ${JSON.stringify(context)}`);
}

function challenge(suite: Suite, context: SchnorrContext, publicKey: Point, R: Point, message: Uint8Array): bigint {
    // One field inversion for both points when both are projective (a verifier's R and Q_i).
    const [Q, Rn] = normalizeZ(suite.Point, [publicKey, R]) as [Point, Point];
    return hashToScalar(
        suite,
        'SchnorrChallenge',
        UTF8.encode(context),
        encodePoint(suite, Q),
        encodePoint(suite, Rn),
        message,
    );
}

/**
 * Signs `message` under `context`. `auxRandomness` (32 bytes) replaces the fresh randomness so
 * regression vectors can be reproduced; callers leave it out.
 * @throws {RangeError} when: secret key outside [1, n-1]; auxRandomness must be … bytes
 */
export function schnorrSign(
    suite: Suite,
    context: SchnorrContext,
    secretKey: bigint,
    message: Uint8Array,
    auxRandomness?: Uint8Array,
): SchnorrSignature {
    assertContext(context);
    if (secretKey <= 0n || secretKey >= suite.n) throw new RangeError('secret key outside [1, n-1]');
    if (auxRandomness !== undefined && auxRandomness.length !== SCHNORR_AUX_BYTES) {
        throw new RangeError(`auxRandomness must be ${SCHNORR_AUX_BYTES} bytes`);
    }
    const aux = auxRandomness ?? randomBytes(SCHNORR_AUX_BYTES);
    const publicKey = mulBase(suite, secretKey);
    const keyBytes = encodeScalar(suite, secretKey);
    // Each retry (c = 0 or s = 0, probability ~2/n each) derives a fresh nonce from a counter.
    for (let attempt = 0; ; attempt++) {
        const attemptBytes = new ByteWriter().u32(attempt).finish();
        const k = hashToScalar(suite, 'SchnorrNonce', keyBytes, aux, UTF8.encode(context), message, attemptBytes);
        if (k === 0n) continue;
        const R = mulBase(suite, k);
        const c = challenge(suite, context, publicKey, R, message);
        if (c === 0n) continue;
        const s = (((k - c * secretKey) % suite.n) + suite.n) % suite.n;
        if (s === 0n) continue;
        return { c, s };
    }
}

/** True iff (c, s) is a signature by `publicKey` over `message` in `context`. Never throws on valid points. */
export function schnorrVerify(
    suite: Suite,
    context: SchnorrContext,
    publicKey: Point,
    message: Uint8Array,
    signature: SchnorrSignature,
): boolean {
    if (!KNOWN_CONTEXTS.has(context)) return false;
    const { c, s } = signature;
    if (c <= 0n || c >= suite.n || s <= 0n || s >= suite.n) return false;
    if (publicKey.is0()) return false;
    // Public data only: variable-time double multiplication (fast when publicKey went through
    // withPrecomputedTable, e.g. a fog's Q_f).
    const R = mulAddPublic(suite, suite.Point.BASE, s, publicKey, c);
    if (R.is0()) return false;
    return challenge(suite, context, publicKey, R, message) === c;
}

export function encodeSchnorrSignature(suite: Suite, sig: SchnorrSignature): Uint8Array {
    return new ByteWriter().scalar(suite, sig.c).scalar(suite, sig.s).finish();
}

/** Exactly two scalars in [1, n-1]; DecodeError for any other length or value. */
export function decodeSchnorrSignature(suite: Suite, bytes: Uint8Array): SchnorrSignature {
    const r = new ByteReader(bytes);
    const c = r.scalar(suite);
    const s = r.scalar(suite);
    r.end();
    return { c, s };
}
