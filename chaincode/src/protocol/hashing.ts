/**
 * Domain-separated hashing (RFC 9380). Each use has its own DST so a value computed for one purpose
 * can never be replayed as another.
 */
import type { Point, Suite } from './suite.js';

/** Every domain-separation tag the protocol uses; the suite id is appended at use. */
export const DST = {
    /** k_i = H(ID_i, i*w): the device's ECQV request private key (paper eq. 2). */
    EcqvRequestKey: 'M2M-V1-ECQV-REQUEST-KEY',
    /** ID_i: the device's dynamic identity for session i. */
    DynamicIdentity: 'M2M-V1-DYNAMIC-ID',
    /** HashToCurve(ID_i || i), multiplied by d_c for secondaryHash (Alg. 3). */
    SecondaryHashPoint: 'M2M-V1-SECONDARY-HASH-POINT',
    /** secondaryHash = H(d_c * HashToCurve(ID_i || i)). */
    SecondaryHash: 'M2M-V1-SECONDARY-HASH',
    /** primaryHash = H(P) with P = d_f * IDCert_i (Alg. 2, eq. 10). */
    PrimaryHash: 'M2M-V1-PRIMARY-HASH',
    /** symKey_i = H(d_i * d_c * G) (eq. 13/20). */
    SymmetricKey: 'M2M-V1-SYMMETRIC-KEY',
    /** H(symKey_i), stored on the ledger. */
    SymmetricKeyCommitment: 'M2M-V1-SYMKEY-COMMITMENT',
    /** H(Q_i), stored on the ledger. */
    PublicKeyCommitment: 'M2M-V1-PUBKEY-COMMITMENT',
    /** addr_f = H(ID_f, d_f * Q_c). */
    FogAddress: 'M2M-V1-FOG-ADDRESS',
    /** P_i, the counter proof's second base: HashToCurve(IDCert_i). */
    CounterProofBase: 'M2M-V1-COUNTER-PROOF-BASE',
    CounterProofChallenge: 'M2M-V1-COUNTER-PROOF-CHALLENGE',
    SchnorrChallenge: 'M2M-V1-SCHNORR-CHALLENGE',
    SchnorrNonce: 'M2M-V1-SCHNORR-NONCE',
    /** RFC 9497 contextString-style prefix for the primaryHash DLEQ proof. */
    Dleq: 'M2M-V1-DLEQ',
    SessionChannel: 'M2M-V1-SESSION-CHANNEL',
} as const;
export type DstName = keyof typeof DST;

/** RFC 9380 hash_to_field(msg, 1) reduced mod n, with the named DST. Result in [0, n-1]. */
export declare function hashToScalar(suite: Suite, dst: DstName, ...parts: Uint8Array[]): bigint;
/** RFC 9380 hash_to_curve, `_XMD:SHA-xxx_SSWU_RO_`, with the named DST. */
export declare function hashToCurve(suite: Suite, dst: DstName, ...parts: Uint8Array[]): Point;
/** Suite hash over an unambiguous (length-prefixed) encoding of DST and parts; hashBytes long. */
export declare function hashBytes(suite: Suite, dst: DstName, ...parts: Uint8Array[]): Uint8Array;
