/**
 * Discrete-log equality proofs, RFC 9497 §2.2 (GenerateProof / VerifyProof), single-element form.
 * Used for primaryHash (DESIGN.md §1): the fog proves P = d_f*IDCert_i against its registered
 * Q_f = d_f*G without revealing d_f, so chaincode can compute primaryHash = H(P) itself.
 */
import type { Point, Suite } from './suite.js';

export interface DleqProof {
    c: bigint;
    s: bigint;
}

/**
 * Proves log_A(B) == log_C(D) with secret k (B = k*A, D = k*C). RFC 9497 argument order.
 * `r` (the nonce) is optional so RFC 9497 vectors can be reproduced; random otherwise.
 */
export declare function dleqProve(
    suite: Suite,
    k: bigint,
    A: Point,
    B: Point,
    C: Point,
    D: Point,
    r?: bigint,
): DleqProof;
export declare function dleqVerify(suite: Suite, A: Point, B: Point, C: Point, D: Point, proof: DleqProof): boolean;
export declare function encodeDleqProof(suite: Suite, proof: DleqProof): Uint8Array;
export declare function decodeDleqProof(suite: Suite, bytes: Uint8Array): DleqProof;
