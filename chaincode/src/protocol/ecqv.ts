/**
 * ECQV implicit certificates, SEC 4 v1.0 (DESIGN.md §2). Paper 004's equations map as:
 *   IDCert_i = R_U = k_i*G            (eq. 2, k_i = H(ID_i, i*w))
 *   Cert_i   = P_U = R_U + r_c*G      (eq. 4)
 *   r_aux    = r  = e*r_c + d_c       (eq. 5, e = Hn(CertU))
 *   d_i      = e*k_i + r              (eq. 12)
 *   Q_i      = e*P_U + Q_c            (public-key extraction)
 * Hn is SEC 4's: the leftmost floor(log2 n) bits of the suite hash of the encoded certificate.
 * The core functions work on encoded certificate bytes so SEC 4 / SCMS vectors test them unchanged.
 */
import type { Point, Suite } from './suite.js';

/** SEC 4 Hn: leftmost floor(log2 n) bits of hash(certU), as an integer (not reduced). */
export declare function ecqvHn(suite: Suite, certU: Uint8Array): bigint;

/**
 * The project's encoded certificate CertU: version, suite tag, IDCert_i (R_U), Cert_i (P_U).
 * e = Hn(encodeEcqvCertificate(...)) binds the suite and both points (paper: e = H(IDCert_i, Cert_i)).
 */
export declare function encodeEcqvCertificate(suite: Suite, idCert: Point, cert: Point): Uint8Array;

/** k_i = H(ID_i, i*w mod n) with DST EcqvRequestKey; IDCert_i = k_i*G. */
export declare function ecqvRequestKey(
    suite: Suite,
    dynamicId: Uint8Array,
    counter: bigint,
    w: bigint,
): { k: bigint; idCert: Point };

/**
 * CA side (Alg. 1, eq. 4-5): given R_U, the CA private key d_c and a fresh ephemeral r_c, returns
 * P_U = R_U + r_c*G, CertU = encode(P_U) and r = e*r_c + d_c mod n. `encode` lets SEC 4 vectors
 * supply their own certificate encoding.
 */
export declare function ecqvGenerateCertificate(
    suite: Suite,
    requestPoint: Point,
    caPrivateKey: bigint,
    ephemeral: bigint,
    encode: (publicReconstruction: Point) => Uint8Array,
): { cert: Point; certU: Uint8Array; r: bigint };

/** eq. 12: d_U = e*k_U + r mod n; throws VerificationError(InvalidIssuance) unless d_U*G == Q_U. */
export declare function ecqvReconstructPrivateKey(
    suite: Suite,
    certU: Uint8Array,
    cert: Point,
    r: bigint,
    requestKey: bigint,
    caPublicKey: Point,
): bigint;

/** Q_U = e*P_U + Q_CA (public data only: variable-time multiplication allowed). */
export declare function ecqvExtractPublicKey(suite: Suite, certU: Uint8Array, cert: Point, caPublicKey: Point): Point;

/**
 * The public issuance check chaincode runs: r*G == e*(P_U - R_U) + Q_CA. Returns boolean;
 * never throws on a well-formed input.
 */
export declare function ecqvVerifyIssuance(
    suite: Suite,
    certU: Uint8Array,
    requestPoint: Point,
    cert: Point,
    r: bigint,
    caPublicKey: Point,
): boolean;
