/**
 * The paper's counter ZKP (Alg. 2 steps 6-8): a Chaum-Pedersen proof {s_i, x_i*P_i, r_i*P_i, A_i}
 * that the same x_i = i is the discrete log of B_i = i*G and of X_i = i*P_i. docs/design.md#cryptographic-suite binds it
 * to its certificate: P_i = HashToCurve(IDCert_i) and the Fiat-Shamir challenge hashes B_i, P_i
 * and IDCert_i as well, so a proof cannot be moved to another certificate.
 *
 * Paper §II-D: c = H(xP, rP, A), s = r + c*x; verify s*G == A + c*B and s*P == rP + c*xP.
 * Here c = hashToScalar(CounterProofChallenge, B, P, X, R, A, IDCert).
 */
import { ByteReader, ByteWriter, encodePoint } from './encoding.js';
import { hashToCurve, hashToScalar } from './hashing.js';
import { randomScalar, type Point, type Suite } from './suite.js';
import { mulAddPublic, mulBase } from './multiply.js';

export interface CounterProof {
    /** B_i = i*G (stored on the ledger in the Table II record). */
    B: Point;
    /** X_i = x_i*P_i. */
    X: Point;
    /** R_i = r_i*P_i. */
    R: Point;
    /** A_i = r_i*G. */
    A: Point;
    /** s_i = r_i + c_i*x_i mod n. */
    s: bigint;
}

function assertScalar(suite: Suite, s: bigint, what: string): void {
    if (s <= 0n || s >= suite.n) throw new RangeError(`${what} outside [1, n-1]`);
}

/** B_i = i*G. */
export function counterCommitment(suite: Suite, counter: bigint): Point {
    assertScalar(suite, counter, 'counter');
    // i is what the proof hides from chaincode (modulo small-value guessing, docs/design.md#threat-model): constant-time.
    return mulBase(suite, counter);
}

/** P_i = HashToCurve(IDCert_i) with DST CounterProofBase. */
export function counterProofBase(suite: Suite, idCert: Point): Point {
    return hashToCurve(suite, 'CounterProofBase', encodePoint(suite, idCert));
}

function counterChallenge(
    suite: Suite,
    idCert: Point,
    P: Point,
    proof: Pick<CounterProof, 'B' | 'X' | 'R' | 'A'>,
): bigint {
    return hashToScalar(
        suite,
        'CounterProofChallenge',
        encodePoint(suite, proof.B),
        encodePoint(suite, P),
        encodePoint(suite, proof.X),
        encodePoint(suite, proof.R),
        encodePoint(suite, proof.A),
        encodePoint(suite, idCert),
    );
}

/** Made by the manufacturer (who knows i) at purchase time; `nonce` for tests only. */
export function createCounterProof(suite: Suite, idCert: Point, counter: bigint, nonce?: bigint): CounterProof {
    assertScalar(suite, counter, 'counter');
    if (nonce !== undefined) assertScalar(suite, nonce, 'nonce');
    const P = counterProofBase(suite, idCert);
    const B = counterCommitment(suite, counter);
    const X = P.multiply(counter);
    for (;;) {
        const r = nonce ?? randomScalar(suite);
        const R = P.multiply(r);
        const A = mulBase(suite, r);
        const c = counterChallenge(suite, idCert, P, { B, X, R, A });
        const s = (r + c * counter) % suite.n;
        // s = 0 (probability 1/n) would not decode: draw another nonce unless one was given.
        if (s === 0n && nonce === undefined) continue;
        return { B, X, R, A, s };
    }
}

/** s*G == A + c*B and s*P == R + c*X, with c over (B, P, X, R, A, IDCert). */
export function verifyCounterProof(suite: Suite, idCert: Point, proof: CounterProof): boolean {
    const { B, X, R, A, s } = proof;
    if (s <= 0n || s >= suite.n) return false;
    if (idCert.is0() || B.is0() || X.is0() || R.is0() || A.is0()) return false;
    const P = counterProofBase(suite, idCert);
    const c = counterChallenge(suite, idCert, P, proof);
    // c = 0 has probability 1/n for an honest prover and would drop B and X from the equations.
    if (c === 0n) return false;
    // Public data only: variable-time multiplications (G's table, OpenSSL for the one-off B, P, X),
    // s*G - c*B == A and s*P - c*X == R.
    const minusC = suite.n - c;
    if (!mulAddPublic(suite, suite.Point.BASE, s, B, minusC).equals(A)) return false;
    return mulAddPublic(suite, P, s, X, minusC).equals(R);
}

/** B, X, R, A (compressed points) then s (fixed-width scalar). */
export function encodeCounterProof(suite: Suite, proof: CounterProof): Uint8Array {
    return new ByteWriter()
        .point(suite, proof.B)
        .point(suite, proof.X)
        .point(suite, proof.R)
        .point(suite, proof.A)
        .scalar(suite, proof.s)
        .finish();
}

/** Exactly four valid compressed points and a scalar in [1, n-1]; DecodeError otherwise. */
export function decodeCounterProof(suite: Suite, bytes: Uint8Array): CounterProof {
    const r = new ByteReader(bytes);
    const B = r.point(suite);
    const X = r.point(suite);
    const R = r.point(suite);
    const A = r.point(suite);
    const s = r.scalar(suite);
    r.end();
    return { B, X, R, A, s };
}
