/**
 * Cryptographic suites (DESIGN.md §2). Every protocol function takes a Suite so a deployment can
 * choose P-256/SHA-256 (default) or P-384/SHA-384 (paper 004's 384-bit case); the suite is
 * recorded on the ledger with Q_c.
 */
import type { WeierstrassPoint, WeierstrassPointCons } from '@noble/curves/abstract/weierstrass.js';
import { p256, p384 } from '@noble/curves/nist.js';
import { sha256, sha384 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { DecodeError } from './errors.js';
import { multiplyPoint, opensslBaseMultiply, opensslMultipliesFaster } from './openssl-ec.js';

export type SuiteId = 'P256-SHA256' | 'P384-SHA384';
export type Point = WeierstrassPoint<bigint>;

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
    readonly webCryptoCurve: 'P-256' | 'P-384';
}

// Fixed-base multiplications (k*G in signing, key derivation, ECQV issuance) dominate the secret-key
// work; a window-8 table roughly doubles their speed over noble's default window 6 (TOOLCHAIN.md).
// The table is built lazily on first use, so importing the module stays cheap.
p256.Point.BASE.precompute(8);
p384.Point.BASE.precompute(8);

export const P256_SHA256: Suite = Object.freeze({
    id: 'P256-SHA256',
    tag: 1,
    Point: p256.Point,
    n: p256.Point.CURVE().n,
    scalarBytes: 32,
    pointBytes: 33,
    hashBytes: 32,
    hash: (msg: Uint8Array): Uint8Array => sha256(msg),
    webCryptoCurve: 'P-256',
});

export const P384_SHA384: Suite = Object.freeze({
    id: 'P384-SHA384',
    tag: 2,
    Point: p384.Point,
    n: p384.Point.CURVE().n,
    scalarBytes: 48,
    pointBytes: 49,
    hashBytes: 48,
    hash: (msg: Uint8Array): Uint8Array => sha384(msg),
    webCryptoCurve: 'P-384',
});

export const DEFAULT_SUITE: Suite = P256_SHA256;

const SUITES: readonly Suite[] = [P256_SHA256, P384_SHA384];

/** Throws DecodeError('unknownSuite') for anything else. */
export function getSuite(id: string): Suite {
    const suite = SUITES.find((s) => s.id === id);
    if (suite === undefined) {
        throw new DecodeError('unknownSuite', `unknown suite id ${JSON.stringify(id)}`);
    }
    return suite;
}

/** Throws DecodeError('unknownSuite') for an unknown tag. */
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

/** Window of the tables built for long-lived public keys (see {@link withPrecomputedTable}). */
const KEY_TABLE_WINDOW = 6;
/** Most tables kept at once; each P-256 window-6 table is ~1,400 points (~0.2 MB). */
const KEY_TABLE_CACHE_SIZE = 32;
const tabled = new WeakSet<Point>();
const tableCache = new Map<string, Point>();

/**
 * An equal point that carries a precomputed window-6 multiplication table, cached (LRU, by suite
 * and encoding) so every later call for the same key returns the same instance. For long-lived
 * public keys that verifiers multiply again and again (a fog's Q_f in DLEQ and s_f
 * verification): building a table costs ~60 ms, after which a verification's c*Q costs ~0.4 ms
 * instead of ~3 ms (P-256, measured on this machine). The result of every operation is unchanged.
 */
export function withPrecomputedTable(suite: Suite, point: Point): Point {
    if (tabled.has(point) || point === suite.Point.BASE) return point;
    if (point.is0()) throw new RangeError('the identity has no multiplication table');
    const key = `${suite.id}:${Buffer.from(point.toBytes(true)).toString('hex')}`;
    const cached = tableCache.get(key);
    if (cached !== undefined) {
        // Re-insert to mark it most recently used.
        tableCache.delete(key);
        tableCache.set(key, cached);
        return cached;
    }
    const fresh = suite.Point.fromAffine(point.toAffine()).precompute(KEY_TABLE_WINDOW, false);
    tabled.add(fresh);
    tableCache.set(key, fresh);
    if (tableCache.size > KEY_TABLE_CACHE_SIZE) {
        const oldest = tableCache.keys().next().value;
        if (oldest !== undefined) tableCache.delete(oldest);
    }
    return fresh;
}

/**
 * k*G for any scalar k (reduced mod n; 0 gives the identity), secret or public: OpenSSL's
 * constant-time base multiplication where it is faster (P-256, ~8x), else noble's constant-time
 * multiplication with its window-8 table. The same point either way.
 */
export function mulBase(suite: Suite, k: bigint): Point {
    const r = ((k % suite.n) + suite.n) % suite.n;
    if (r === 0n) return suite.Point.ZERO;
    return opensslMultipliesFaster(suite) ? opensslBaseMultiply(suite, r) : suite.Point.BASE.multiply(r);
}

/**
 * k*Q for a public scalar (any value, reduced mod n) and a public point: noble with the precomputed
 * table when Q carries one (G always does), else OpenSSL (openssl-ec.ts), ~15x faster than noble's
 * variable-time multiplication of a point without a table. Same result either way.
 */
export function mulPublic(suite: Suite, Q: Point, k: bigint): Point {
    if (Q === suite.Point.BASE) return mulBase(suite, k);
    if (tabled.has(Q) || !opensslMultipliesFaster(suite)) {
        return Q.multiplyUnsafe(((k % suite.n) + suite.n) % suite.n);
    }
    return multiplyPoint(suite, k, Q);
}

/**
 * a*P + b*Q for public scalars and points only (variable time): each term by {@link mulPublic}
 * (tables for G and long-lived keys, OpenSSL for one-off points), or, where OpenSSL is not faster
 * (P-384), noble's double multiplication sharing one doubling chain.
 */
export function mulAddPublic(suite: Suite, P: Point, a: bigint, Q: Point, b: bigint): Point {
    const hasTable = (X: Point): boolean => X === suite.Point.BASE || tabled.has(X);
    if (opensslMultipliesFaster(suite) || (hasTable(P) && hasTable(Q))) {
        return mulPublic(suite, P, a).add(mulPublic(suite, Q, b));
    }
    const mod = (k: bigint): bigint => ((k % suite.n) + suite.n) % suite.n;
    return P.mulAddUnsafe(mod(a), Q, mod(b));
}
