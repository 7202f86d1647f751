/**
 * Cryptographic suites (docs/design.md#cryptographic-suite). Every protocol function takes a Suite so a deployment can
 * choose P-256/SHA-256 (default) or P-384/SHA-384 (paper 004's 384-bit case); the suite is
 * recorded on the ledger with Q_c. Everything that differs per curve is a field of the Suite
 * object here (hash, hash-to-curve, HPKE ids, OpenSSL curve name), so adding a curve is one
 * object in this file plus its vectors.
 */
import type { H2CHasher } from '@noble/curves/abstract/hash-to-curve.js';
import type { WeierstrassPoint, WeierstrassPointCons } from '@noble/curves/abstract/weierstrass.js';
import { p256, p256_hasher, p384, p384_hasher } from '@noble/curves/nist.js';
import { sha256, sha384 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { DecodeError } from './errors.js';

export type SuiteId = 'P256-SHA256' | 'P384-SHA384' | 'P256-SHA256-IEEE1609.2' | 'P384-SHA384-IEEE1609.2';
export type Point = WeierstrassPoint<bigint>;
/** The curve a suite works on; every curve-specific table (OpenSSL name, HPKE KEM, RFC 9380 hasher) is keyed by it. */
export type CurveId = 'P-256' | 'P-384';

/**
 * How a suite's ECQV hash e is computed (ecqv.ts):
 * - `sec4`: SEC 4 v1.0 Hn, the leftmost floor(log2 n) bits of Hash(CertU), CertU the encoded
 *   certificate — the SCMS reference scripts' choice.
 * - `ieee1609.2`: IEEE 1609.2 / SCMS production certificates and the KISA V2X profile,
 *   e = Hash(CertU) mod n (the whole digest, reduced) with CertU = Hash(ToBeSignedCertificate) ||
 *   Hash(issuer certificate); for the project's own certificates the "issuer certificate" is the
 *   CSP key record (suite tag, Q_c), so e also binds the key that issued the certificate.
 */
export type EcqvVariant = 'sec4' | 'ieee1609.2';

export interface Suite {
    readonly id: SuiteId;
    /** One-byte wire tag for the suite in canonical encodings (P256 = 1, P384 = 2). */
    readonly tag: number;
    readonly Point: WeierstrassPointCons<bigint>;
    /** Group order n. */
    readonly n: bigint;
    /** Fixed width of a scalar, in bytes (32 / 48). */
    readonly scalarBytes: number;
    /** Length of a SEC1 compressed point (33 / 49). */
    readonly pointBytes: number;
    /** Digest length of the suite's hash (32 / 48). */
    readonly hashBytes: number;
    /** Suite hash (SHA-256 / SHA-384). */
    hash(msg: Uint8Array): Uint8Array;
    /** Name used by WebCrypto / node:crypto for the curve ('P-256' / 'P-384'). */
    readonly webCryptoCurve: CurveId;
    /** The ECQV hash variant (see {@link EcqvVariant}). */
    readonly ecqv: EcqvVariant;
    /** OpenSSL's name of the curve (createECDH). */
    readonly opensslCurve: 'prime256v1' | 'secp384r1';
    /**
     * Whether OpenSSL's k*Q (two ECDH, openssl-ec.ts) beats noble's variable-time k*Q, as measured
     * with node 20's bundled OpenSSL on x86-64: P-256 ~0.5 ms vs ~1.7 ms (OpenSSL has an assembly
     * P-256); P-384 ~8 ms vs ~8 ms (no such code path), so P-384 stays with noble.
     */
    readonly opensslMultipliesFaster: boolean;
    /** RFC 9380 hash-to-curve `<curve>_XMD:<hash>_SSWU_RO_` (noble's hasher for the curve). */
    readonly hashToCurve: H2CHasher<WeierstrassPointCons<bigint>>;
    /**
     * RFC 9180 HPKE: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM (A.3) or DHKEM(P-384,
     * HKDF-SHA384), HKDF-SHA384, AES-256-GCM.
     */
    readonly hpke: {
        readonly kemId: number;
        readonly kdfId: number;
        readonly aeadId: number;
        readonly hash: 'sha256' | 'sha384';
        readonly aead: 'aes-128-gcm' | 'aes-256-gcm';
        readonly keyBytes: number;
    };
}

// Fixed-base multiplications (k*G in signing, key derivation, ECQV issuance) dominate the secret-key
// work; a window-8 table roughly doubles their speed over noble's default window 6.
// The table is built lazily on first use, so importing the module stays cheap.
p256.Point.BASE.precompute(8);
p384.Point.BASE.precompute(8);

export const P256_SHA256: Suite = Object.freeze<Suite>({
    id: 'P256-SHA256',
    tag: 1,
    Point: p256.Point,
    n: p256.Point.CURVE().n,
    scalarBytes: 32,
    pointBytes: 33,
    hashBytes: 32,
    hash: (msg: Uint8Array): Uint8Array => sha256(msg),
    webCryptoCurve: 'P-256',
    opensslCurve: 'prime256v1',
    opensslMultipliesFaster: true,
    hashToCurve: p256_hasher,
    hpke: { kemId: 0x0010, kdfId: 0x0001, aeadId: 0x0001, hash: 'sha256', aead: 'aes-128-gcm', keyBytes: 16 },
    ecqv: 'sec4',
});

export const P384_SHA384: Suite = Object.freeze<Suite>({
    id: 'P384-SHA384',
    tag: 2,
    Point: p384.Point,
    n: p384.Point.CURVE().n,
    scalarBytes: 48,
    pointBytes: 49,
    hashBytes: 48,
    hash: (msg: Uint8Array): Uint8Array => sha384(msg),
    webCryptoCurve: 'P-384',
    opensslCurve: 'secp384r1',
    opensslMultipliesFaster: false,
    hashToCurve: p384_hasher,
    hpke: { kemId: 0x0011, kdfId: 0x0002, aeadId: 0x0002, hash: 'sha384', aead: 'aes-256-gcm', keyBytes: 32 },
    ecqv: 'sec4',
});

/**
 * P-256 / SHA-256 with the IEEE 1609.2 ECQV hash: accepts real 1609.2 / SCMS implicit certificates'
 * reconstruction values (test/crypto/ecqv-1609.test.ts). Everything else is P256_SHA256's, but every
 * domain-separation tag names this suite, so no value crosses between the two.
 */
export const P256_SHA256_IEEE1609: Suite = Object.freeze({
    ...P256_SHA256,
    id: 'P256-SHA256-IEEE1609.2',
    tag: 3,
    ecqv: 'ieee1609.2',
});

/** P-384 / SHA-384 with the IEEE 1609.2 ECQV hash (1609.2's NIST P-384 + SHA-384 profile). */
export const P384_SHA384_IEEE1609: Suite = Object.freeze({
    ...P384_SHA384,
    id: 'P384-SHA384-IEEE1609.2',
    tag: 4,
    ecqv: 'ieee1609.2',
});

export const DEFAULT_SUITE: Suite = P256_SHA256;

/** Every suite the protocol knows, by tag. */
export const ALL_SUITES: readonly Suite[] = [P256_SHA256, P384_SHA384, P256_SHA256_IEEE1609, P384_SHA384_IEEE1609];
const SUITES = ALL_SUITES;

/**
 * The suite an optional id names, else `fallback`. Records name their suite only when it is not
 * the default (a CA key epoch, certificate or session of another suite than the ledger's).
 * @throws {DecodeError} `unknownSuite` when: the id names no suite
 */
export function suiteOr(id: string | undefined, fallback: Suite): Suite {
    return id === undefined ? fallback : getSuite(id);
}

/**
 * Throws DecodeError('unknownSuite') for anything else.
 * @throws {DecodeError} `unknownSuite` when: unknown suite id …
 */
export function getSuite(id: string): Suite {
    const suite = SUITES.find((s) => s.id === id);
    if (suite === undefined) {
        throw new DecodeError('unknownSuite', `unknown suite id ${JSON.stringify(id)}`);
    }
    return suite;
}

/**
 * Throws DecodeError('unknownSuite') for an unknown tag.
 * @throws {DecodeError} `unknownSuite` when: unknown suite tag …
 */
export function suiteFromTag(tag: number): Suite {
    const suite = SUITES.find((s) => s.tag === tag);
    if (suite === undefined) {
        throw new DecodeError('unknownSuite', `unknown suite tag ${tag}`);
    }
    return suite;
}

/**
 * A uniformly random scalar in [1, n-1] from the platform CSPRNG: 16 extra bytes make the bias of
 * the modular reduction negligible (below 2^-128), as in FIPS 186-5 A.4.1. Never used by chaincode.
 */
export function randomScalar(suite: Suite): bigint {
    let v = 0n;
    for (const b of randomBytes(suite.scalarBytes + 16)) v = (v << 8n) | BigInt(b);
    return (v % (suite.n - 1n)) + 1n;
}
