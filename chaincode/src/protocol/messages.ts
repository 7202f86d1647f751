/**
 * Canonical binary encodings of every structured protocol object. Each begins with a version byte,
 * a type byte and the suite tag; decoders reject unknown versions/types, trailing bytes, and
 * anything non-canonical (DecodeError). What each object carries follows paper 004 and DESIGN.md.
 */
import type { CounterProof } from './counter-proof.js';
import type { DleqProof } from './dleq.js';
import type { HpkeCiphertext } from './hpke.js';
import type { SchnorrSignature } from './schnorr.js';
import type { Point, Suite } from './suite.js';

export const PROTOCOL_VERSION = 1;

export const MessageType = {
    CertificateObject: 0x10,
    CertificateRequest: 0x11,
    M1: 0x21,
    M2: 0x22,
    M3: 0x23,
    M4: 0x24,
    Activation: 0x30,
    Synchronisation: 0x31,
    C2Plaintext: 0x40,
} as const;

/**
 * Table III, the certificate object stored in IPFS and addressed from the ledger. P_i is not stored:
 * it is HashToCurve(IDCert_i), recomputed by every verifier.
 */
export interface CertificateObject {
    suite: Suite;
    /** IDCert_i = R_U = k_i*G (also the ledger key of the Table II record). */
    idCert: Point;
    /** Cert_i = P_U. */
    cert: Point;
    /** r_aux-i = e*r_c + d_c. */
    rAux: bigint;
    /** {B_i, x_i*P_i, r_i*P_i, A_i, s_i}. */
    counterProof: CounterProof;
}
export declare function encodeCertificateObject(obj: CertificateObject): Uint8Array;
export declare function decodeCertificateObject(bytes: Uint8Array): CertificateObject;

/** Alg. 1 request M_alpha without payment details: I_alpha and the counter proofs. No equipment id. */
export interface CertificateRequest {
    suite: Suite;
    entries: { idCert: Point; counterProof: CounterProof }[];
}
export declare function encodeCertificateRequest(req: CertificateRequest): Uint8Array;
export declare function decodeCertificateRequest(bytes: Uint8Array): CertificateRequest;

/** What C2 encrypts for the CSP: the counter i and the dynamic identity ID_i. */
export interface C2Plaintext {
    counter: bigint;
    dynamicId: Uint8Array;
}
export declare function encodeC2Plaintext(suite: Suite, p: C2Plaintext): Uint8Array;
export declare function decodeC2Plaintext(suite: Suite, bytes: Uint8Array): C2Plaintext;

/** M1 = <C1, C2, proof of possession by k_i> (device -> fog). */
export interface M1 {
    suite: Suite;
    c1: HpkeCiphertext;
    c2: HpkeCiphertext;
    proofOfPossession: SchnorrSignature;
}
export declare function encodeM1(m: M1): Uint8Array;
export declare function decodeM1(suite: Suite, bytes: Uint8Array): M1;

/** M2 = the certificate object (fog -> device). */
export interface M2 {
    suite: Suite;
    certificateObject: Uint8Array;
}
export declare function encodeM2(m: M2): Uint8Array;
export declare function decodeM2(suite: Suite, bytes: Uint8Array): M2;

/** M3 = <Q_i, H(symKey_i), signature by d_i> (device -> fog -> chaincode), eq. 14. */
export interface M3 {
    suite: Suite;
    publicKey: Point;
    symKeyCommitment: Uint8Array;
    signature: SchnorrSignature;
}
export declare function encodeM3(m: M3): Uint8Array;
export declare function decodeM3(suite: Suite, bytes: Uint8Array): M3;

/** M4 = <C2, C3, s_f> (fog -> CSP), eq. 16, plus the fog id the CSP verifies s_f against. */
export interface M4 {
    suite: Suite;
    fogId: string;
    c2: HpkeCiphertext;
    c3: HpkeCiphertext;
    signature: SchnorrSignature;
}
export declare function encodeM4(m: M4): Uint8Array;
export declare function decodeM4(suite: Suite, bytes: Uint8Array): M4;

/**
 * The single activation transaction of Alg. 2 (DESIGN.md §4.7), sent in the transient map:
 * certificate object, P = d_f*IDCert_i with its DLEQ proof, the proof of possession and M3.
 */
export interface Activation {
    suite: Suite;
    certificateObject: Uint8Array;
    P: Point;
    dleqProof: DleqProof;
    proofOfPossession: SchnorrSignature;
    m3: M3;
}
export declare function encodeActivation(a: Activation): Uint8Array;
export declare function decodeActivation(suite: Suite, bytes: Uint8Array): Activation;

/** Alg. 3 synchronisation by the CSP, sent in the transient map. */
export interface Synchronisation {
    suite: Suite;
    primaryHash: Uint8Array;
    secondaryHash: Uint8Array;
    symKeyCommitment: Uint8Array;
}
export declare function encodeSynchronisation(s: Synchronisation): Uint8Array;
export declare function decodeSynchronisation(suite: Suite, bytes: Uint8Array): Synchronisation;
