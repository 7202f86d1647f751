/**
 * ECQV implicit certificates, SEC 4 v1.0 (docs/design.md#cryptographic-suite). Paper 004's equations map as:
 *   IDCert_i = R_U = k_i*G            (eq. 2, k_i = H(ID_i, i*w))
 *   Cert_i   = P_U = R_U + r_c*G      (eq. 4)
 *   r_aux    = r  = e*r_c + d_c       (eq. 5, e = Hn(CertU))
 *   d_i      = e*k_i + r              (eq. 12)
 *   Q_i      = e*P_U + Q_c            (public-key extraction)
 * The hash e = Hn(CertU) follows the suite's ECQV variant (suite.ts, EcqvVariant):
 * - `sec4`: SEC 4's Hn, the leftmost floor(log2 n) bits of the suite hash of CertU, the encoded
 *   certificate;
 * - `ieee1609.2`: IEEE 1609.2's e = Hash(CertU) mod n with CertU = Hash(ToBeSignedCertificate) ||
 *   Hash(issuer certificate) ({@link ieee1609CertU}).
 * The core functions work on CertU bytes so SEC 4 / SCMS / 1609.2 vectors test them unchanged;
 * {@link ecqvCertU} builds the CertU of the project's own certificates for either variant.
 */
import { ByteReader, ByteWriter, bytesToBigInt, encodeScalar } from './encoding.js';
import { ErrorCode, VerificationError, DecodeError } from './errors.js';
import { hashToScalar } from './hashing.js';
import { normalized } from './affine.js';
import { suiteFromTag, type Point, type Suite } from './suite.js';
import { mulBase, mulPublic } from './multiply.js';

/** Version byte of {@link encodeEcqvCertificate}'s format. */
export const ECQV_CERTIFICATE_VERSION = 1;

function assertScalar(suite: Suite, s: bigint, what: string): void {
    if (s <= 0n || s >= suite.n) throw new RangeError(`${what} outside [1, n-1]`);
}

/**
 * The ECQV hash e of CertU under the suite's variant: SEC 4's Hn (leftmost floor(log2 n) bits of
 * hash(certU), < n without reduction) or IEEE 1609.2's hash(certU) mod n.
 */
export function ecqvHn(suite: Suite, certU: Uint8Array): bigint {
    const digest = bytesToBigInt(suite.hash(certU));
    if (suite.ecqv === 'ieee1609.2') return digest % suite.n;
    // n is not a power of two, so floor(log2 n) = bitLength(n) - 1 (255 for P-256, 383 for P-384):
    // the digest loses its last bit and e < 2^floor(log2 n) < n.
    const keep = suite.n.toString(2).length - 1;
    const digestBits = 8 * suite.hashBytes;
    return digestBits > keep ? digest >> BigInt(digestBits - keep) : digest;
}

/**
 * The project's encoded certificate CertU: version, suite tag, IDCert_i (R_U), Cert_i (P_U).
 * e = Hn(encodeEcqvCertificate(...)) binds the suite and both points (paper: e = H(IDCert_i, Cert_i)).
 */
export function encodeEcqvCertificate(suite: Suite, idCert: Point, cert: Point): Uint8Array {
    return new ByteWriter().u8(ECQV_CERTIFICATE_VERSION).u8(suite.tag).point(suite, idCert).point(suite, cert).finish();
}

/**
 * IEEE 1609.2 §5.3.2's hash input for an implicit certificate: Hash(ToBeSignedCertificate) ||
 * Hash(issuer certificate), each with the suite hash. `issuer` is the issuer certificate's bytes,
 * or (`issuerIsDigest`) already its digest, as 1609.2 tools often carry it (HashedId8 is its tail).
 * @throws {RangeError} when: issuer digest must be … bytes
 */
export function ieee1609CertU(
    suite: Suite,
    tbsCertificate: Uint8Array,
    issuer: Uint8Array,
    issuerIsDigest = false,
): Uint8Array {
    const issuerDigest = issuerIsDigest ? issuer : suite.hash(issuer);
    if (issuerDigest.length !== suite.hashBytes) {
        throw new RangeError(`issuer digest must be ${suite.hashBytes} bytes`);
    }
    const out = new Uint8Array(2 * suite.hashBytes);
    out.set(suite.hash(tbsCertificate), 0);
    out.set(issuerDigest, suite.hashBytes);
    return out;
}

/**
 * The issuer record a 1609.2-variant suite hashes in place of an issuer certificate: version,
 * suite tag, Q_c (what the CSP registry records for the key).
 */
export function encodeEcqvIssuer(suite: Suite, caPublicKey: Point): Uint8Array {
    return new ByteWriter().u8(ECQV_CERTIFICATE_VERSION).u8(suite.tag).point(suite, caPublicKey).finish();
}

/**
 * CertU of one of the project's certificates, the bytes e is computed from: the encoded certificate
 * (`sec4`), or Hash(encoded certificate) || Hash(issuer record for Q_c) (`ieee1609.2`).
 */
export function ecqvCertU(suite: Suite, idCert: Point, cert: Point, caPublicKey: Point): Uint8Array {
    const encoded = encodeEcqvCertificate(suite, idCert, cert);
    return suite.ecqv === 'ieee1609.2' ? ieee1609CertU(suite, encoded, encodeEcqvIssuer(suite, caPublicKey)) : encoded;
}

/**
 * Inverse of {@link encodeEcqvCertificate}; rejects another version or suite and any malformed point.
 * @throws {DecodeError} `unknownVersion` when: ECQV certificate version …
 * @throws {DecodeError} `unknownSuite` when: ECQV certificate for …, expected …
 */
export function decodeEcqvCertificate(suite: Suite, certU: Uint8Array): { idCert: Point; cert: Point } {
    const r = new ByteReader(certU);
    const version = r.u8();
    if (version !== ECQV_CERTIFICATE_VERSION) {
        throw new DecodeError('unknownVersion', `ECQV certificate version ${version}`);
    }
    const tagSuite = suiteFromTag(r.u8());
    if (tagSuite.id !== suite.id) {
        throw new DecodeError('unknownSuite', `ECQV certificate for ${tagSuite.id}, expected ${suite.id}`);
    }
    const idCert = r.point(suite);
    const cert = r.point(suite);
    r.end();
    return { idCert, cert };
}

/**
 * k_i = H(ID_i, i*w mod n) with DST EcqvRequestKey; IDCert_i = k_i*G.
 * @throws {RangeError} when: counter must be non-negative; request key hashed to zero
 */
export function ecqvRequestKey(
    suite: Suite,
    dynamicId: Uint8Array,
    counter: bigint,
    w: bigint,
): { k: bigint; idCert: Point } {
    if (counter < 0n) throw new RangeError('counter must be non-negative');
    assertScalar(suite, w, 'owner secret w');
    const iw = (counter * w) % suite.n;
    const k = hashToScalar(suite, 'EcqvRequestKey', dynamicId, encodeScalar(suite, iw));
    // hash_to_field output is 0 with probability 1/n; refuse rather than use a zero key.
    if (k === 0n) throw new RangeError('request key hashed to zero');
    return { k, idCert: mulBase(suite, k) };
}

/**
 * CA side (Alg. 1, eq. 4-5): given R_U, the CA private key d_c and a fresh ephemeral r_c, returns
 * P_U = R_U + r_c*G, CertU = encode(P_U) and r = e*r_c + d_c mod n. `encode` lets SEC 4 vectors
 * supply their own certificate encoding.
 * @throws {RangeError} when: P_U is the identity; choose another ephemeral key
 */
export function ecqvGenerateCertificate(
    suite: Suite,
    requestPoint: Point,
    caPrivateKey: bigint,
    ephemeral: bigint,
    encode: (publicReconstruction: Point) => Uint8Array,
): { cert: Point; certU: Uint8Array; r: bigint } {
    assertScalar(suite, caPrivateKey, 'CA private key');
    assertScalar(suite, ephemeral, 'CA ephemeral key');
    requestPoint.assertValidity();
    // r_c is secret: constant-time fixed-base multiplication.
    const cert = requestPoint.add(mulBase(suite, ephemeral));
    if (cert.is0()) {
        // SEC 4 §3.4 step 4: P_U = O happens only for r_c = -k_U; the CA must pick another r_c.
        throw new RangeError('P_U is the identity; choose another ephemeral key');
    }
    const certU = encode(cert);
    const e = ecqvHn(suite, certU);
    const r = (e * ephemeral + caPrivateKey) % suite.n;
    return { cert, certU, r };
}

/** Q_U = e*P_U + Q_CA (public data only: variable-time multiplication allowed). */
export function ecqvExtractPublicKey(suite: Suite, certU: Uint8Array, cert: Point, caPublicKey: Point): Point {
    const e = ecqvHn(suite, certU);
    // Normalised: Q_i is encoded (commitments, signed messages) and multiplied by its users.
    return normalized(suite, mulPublic(suite, cert, e).add(caPublicKey));
}

/**
 * eq. 12: d_U = e*k_U + r mod n; throws VerificationError(InvalidIssuance) unless d_U*G == Q_U.
 * @throws {VerificationError} `invalidIssuance` when: private-key reconstruction value outside [0, n-1]; reconstructed private key is zero; d_U*G does not match …
 */
export function ecqvReconstructPrivateKey(
    suite: Suite,
    certU: Uint8Array,
    cert: Point,
    r: bigint,
    requestKey: bigint,
    caPublicKey: Point,
): bigint {
    assertScalar(suite, requestKey, 'request key');
    if (r < 0n || r >= suite.n) {
        throw new VerificationError(ErrorCode.InvalidIssuance, 'private-key reconstruction value outside [0, n-1]');
    }
    const e = ecqvHn(suite, certU);
    const d = (e * requestKey + r) % suite.n;
    if (d === 0n) {
        throw new VerificationError(ErrorCode.InvalidIssuance, 'reconstructed private key is zero');
    }
    // SEC 4 §3.6 step 5: the key pair is only accepted if d_U*G equals the public key anyone can
    // extract from the certificate; a wrong r, CertU or Q_CA shows up here.
    const expected = ecqvExtractPublicKey(suite, certU, cert, caPublicKey);
    if (!mulBase(suite, d).equals(expected)) {
        throw new VerificationError(ErrorCode.InvalidIssuance, 'd_U*G does not match the extracted public key');
    }
    return d;
}

/**
 * The public issuance check chaincode runs: r*G == e*(P_U - R_U) + Q_CA. Returns boolean;
 * never throws on a well-formed input.
 */
export function ecqvVerifyIssuance(
    suite: Suite,
    certU: Uint8Array,
    requestPoint: Point,
    cert: Point,
    r: bigint,
    caPublicKey: Point,
): boolean {
    if (r <= 0n || r >= suite.n) return false;
    if (requestPoint.is0() || cert.is0() || caPublicKey.is0()) return false;
    // P_U == R_U means r_c = 0 and r = d_c: such a "certificate" publishes the CA key. Refuse it.
    if (cert.equals(requestPoint)) return false;
    const e = ecqvHn(suite, certU);
    const expected = mulPublic(suite, cert.subtract(requestPoint), e).add(caPublicKey);
    return mulBase(suite, r).equals(expected);
}
