/**
 * Scalar multiplication for the protocol: k*G, k*Q and a*P + b*Q, each by whichever of OpenSSL
 * (openssl-ec.ts) and noble is faster for the suite and the point (precomputed tables for G and
 * long-lived keys), with the same result either way.
 */
import { multiplyPoint, opensslBaseMultiply } from './openssl-ec.js';
import type { Point, Suite } from './suite.js';

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
 * @throws {RangeError} when: the identity has no multiplication table
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
    return suite.opensslMultipliesFaster ? opensslBaseMultiply(suite, r) : suite.Point.BASE.multiply(r);
}

/**
 * k*Q for a public scalar (any value, reduced mod n) and a public point: noble with the precomputed
 * table when Q carries one (G always does), else OpenSSL (openssl-ec.ts), ~15x faster than noble's
 * variable-time multiplication of a point without a table. Same result either way.
 */
export function mulPublic(suite: Suite, Q: Point, k: bigint): Point {
    if (Q === suite.Point.BASE) return mulBase(suite, k);
    if (tabled.has(Q) || !suite.opensslMultipliesFaster) {
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
    if (suite.opensslMultipliesFaster || (hasTable(P) && hasTable(Q))) {
        return mulPublic(suite, P, a).add(mulPublic(suite, Q, b));
    }
    const mod = (k: bigint): bigint => ((k % suite.n) + suite.n) % suite.n;
    return P.mulAddUnsafe(mod(a), Q, mod(b));
}
