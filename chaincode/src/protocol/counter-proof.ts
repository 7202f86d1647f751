/**
 * The paper's counter ZKP (Alg. 2 steps 6-8): a Chaum-Pedersen proof {s_i, x_i*P_i, r_i*P_i, A_i}
 * that the same x_i = i is the discrete log of B_i = i*G and of X_i = i*P_i. DESIGN.md §2 binds it
 * to its certificate: P_i = HashToCurve(IDCert_i) and the Fiat-Shamir challenge hashes B_i, P_i
 * and IDCert_i as well, so a proof cannot be moved to another certificate.
 */
import type { Point, Suite } from './suite.js';

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

/** B_i = i*G. */
export declare function counterCommitment(suite: Suite, counter: bigint): Point;
/** P_i = HashToCurve(IDCert_i) with DST CounterProofBase. */
export declare function counterProofBase(suite: Suite, idCert: Point): Point;
/** Made by the manufacturer (who knows i) at purchase time; `nonce` for tests only. */
export declare function createCounterProof(suite: Suite, idCert: Point, counter: bigint, nonce?: bigint): CounterProof;
/** s*G == A + c*B and s*P == R + c*X, with c over (B, P, X, R, A, IDCert). */
export declare function verifyCounterProof(suite: Suite, idCert: Point, proof: CounterProof): boolean;
export declare function encodeCounterProof(suite: Suite, proof: CounterProof): Uint8Array;
export declare function decodeCounterProof(suite: Suite, bytes: Uint8Array): CounterProof;
