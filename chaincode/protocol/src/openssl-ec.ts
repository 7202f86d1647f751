/**
 * Scalar multiplication of an arbitrary point by OpenSSL (node:crypto ECDH), returning the full point.
 *
 * Why: a multiplication k*Q of a point without a precomputed table costs ~1.7 ms in noble (P-256, on
 * this machine) but ~0.1 ms in OpenSSL. Every verifier in the protocol (chaincode on each endorsing
 * peer, the CSP, the device) multiplies such one-off points (IDCert_i, P, Cert_i, Q_i, B_i, ...), so
 * this is where the session's CPU goes (docs/crypto.md, "Where the CPU goes").
 *
 * How: ECDH yields only x(k*Q), which fixes the product up to sign. A second ECDH with k + 1,
 * x((k+1)*Q) = x(k*Q + Q), fixes the sign, and even gives y without a square root: for R = k*Q =
 * (x1, y1), Q = (x2, y2), R + Q = (x3, .) with x1 != x2, the chord rule x3 = l^2 - x1 - x2,
 * l = (y2 - y1)/(x2 - x1), gives (y2 - y1)^2 = (x3 + x1 + x2)(x2 - x1)^2, and with
 * y1^2 = x1^3 + a*x1 + b this is linear in y1:
 *     y1 = (y2^2 + x1^3 + a*x1 + b - (x3 + x1 + x2)(x2 - x1)^2) / (2*y2)
 * (y2 != 0: these prime-order curves have no point of order 2). R is built in projective
 * coordinates (Z = 2*y2, no inversion) from noble's field operations, then checked — on the curve,
 * and x(R + Q) = x3 — so inconsistent ECDH output can only throw. (The square root a decompression
 * would need costs ~0.1 ms in noble, a third of the whole multiplication.) R = +-Q, where x1 = x2,
 * falls back to choosing between the two decompressed candidates. The result is the same point
 * noble computes (tests cross-check both suites, edge scalars and edge points), so using it changes
 * no protocol value and keeps chaincode deterministic.
 *
 * OpenSSL's ECDH is constant-time in k (it is built for secret keys), so the same function serves the
 * secret multiplications (d_f*IDCert_i, DLEQ nonces); the sign selection depends only on the product.
 */
import { createECDH, ECDH as NodeECDH, type ECDH } from 'node:crypto';
import { normalized } from './affine.js';
import type { Point, Suite, SuiteId } from './suite.js';

function scalarBytes(suite: Suite, k: bigint): Buffer {
    return Buffer.from(k.toString(16).padStart(2 * suite.scalarBytes, '0'), 'hex');
}

/** One ECDH object per curve for public scalars (verifications): a new object costs ~12 us. */
const publicScalarEcdh = new Map<SuiteId, ECDH>();

/**
 * An OpenSSL ECDH object holding k (in [1, n-1]); the caller zeroes nothing else. A secret k gets
 * an object of its own (garbage once dropped); a public k (`shared`) the curve's reused object.
 * @throws {RangeError} when: scalar outside [1, n-1]
 */
export function opensslKey(suite: Suite, k: bigint, shared = false): ECDH {
    if (k <= 0n || k >= suite.n) throw new RangeError('scalar outside [1, n-1]');
    let ecdh = shared ? publicScalarEcdh.get(suite.id) : undefined;
    if (ecdh === undefined) {
        ecdh = createECDH(suite.opensslCurve);
        if (shared) publicScalarEcdh.set(suite.id, ecdh);
    }
    const secret = scalarBytes(suite, k);
    ecdh.setPrivateKey(secret);
    secret.fill(0);
    return ecdh;
}

/** x(k*Q) by OpenSSL: the ECDH shared secret (Q must be a valid point other than the identity). */
export function opensslEcdhX(suite: Suite, k: bigint, Q: Point): Uint8Array {
    return new Uint8Array(opensslKey(suite, k).computeSecret(Q.toBytes(false)));
}

/**
 * k*Q and D = k*G, for k in [1, n-1] and Q a valid point other than the identity. The sign of the
 * product comes from a second ECDH with k + 1: x((k+1)*Q) = x(k*Q + Q), which exactly one of the two
 * candidates R = (x, +-y) satisfies (both would need 2*R = O or 2*Q = O). The comparison is made in
 * noble's projective coordinates (x = X/Z, so x(S) = x' iff X == x'*Z), avoiding a field inversion.
 */
export function opensslMultiply(
    suite: Suite,
    k: bigint,
    Q: Point,
    withPublicKey = true,
): { product: Point; publicKey: Point } {
    return multiplyWith(opensslKey(suite, k), suite, k, Q, withPublicKey);
}

function multiplyWith(
    ecdh: ECDH,
    suite: Suite,
    k: bigint,
    Q: Point,
    withPublicKey: boolean,
): { product: Point; publicKey: Point } {
    // D = k*G as OpenSSL derived it with the key (uncompressed: noble checks the curve equation only).
    const D = withPublicKey ? suite.Point.fromBytes(ecdh.getPublicKey()) : suite.Point.ZERO;
    if (k === suite.n - 1n) return { product: Q.negate(), publicKey: D };
    // Q's affine form is used three times below (its encoding, x2 and y2, R + Q): one inversion.
    Q = normalized(suite, Q);
    const peer = Q.toBytes(false);
    const x = ecdh.computeSecret(peer);
    // The same ECDH object for k + 1: setting a key is ~10 us, a new object ~12 us more.
    const next = scalarBytes(suite, k + 1n);
    ecdh.setPrivateKey(next);
    next.fill(0);
    const x1 = bytesToField(x);
    const x3 = bytesToField(ecdh.computeSecret(peer));
    const Fp = suite.Point.Fp;
    const { x: x2, y: y2 } = Q.toAffine();
    // x((k+1)*Q) = x(R + Q), compared without an inversion (x = X/Z).
    const matches = (R: Point): boolean => {
        const sum = R.add(Q);
        return !sum.is0() && Fp.eql(sum.X, Fp.mul(x3, sum.Z));
    };
    if (!Fp.eql(x1, x2)) {
        const { a, b } = suite.Point.CURVE();
        const dx = Fp.sub(x2, x1);
        const y1Squared = Fp.add(Fp.add(Fp.mul(Fp.sqr(x1), x1), Fp.mul(a, x1)), b);
        const chord = Fp.mul(Fp.add(Fp.add(x3, x1), x2), Fp.sqr(dx));
        const Z = Fp.add(y2, y2);
        const R = new suite.Point(Fp.mul(x1, Z), Fp.sub(Fp.add(Fp.sqr(y2), y1Squared), chord), Z);
        // On the curve, checked projectively: most products are only added and compared, so the
        // inversion noble's assertValidity would make (toAffine) is never needed.
        if (!onCurveProjective(suite, R) || !matches(R)) throw new Error('OpenSSL ECDH results are inconsistent');
        return { product: R, publicKey: D };
    }
    // R = +-Q: choose between the two points with x-coordinate x1.
    const candidate = suite.Point.fromBytes(Buffer.concat([Uint8Array.of(0x02), x]));
    for (const R of [candidate, candidate.negate()]) {
        if (matches(R)) return { product: R, publicKey: D };
    }
    throw new Error('OpenSSL ECDH results are inconsistent');
}

/**
 * The point a SEC1 compressed encoding (prefix 0x02/0x03, x < p: the caller checks) names,
 * decompressed by OpenSSL (~4x faster than noble's square root on P-256 and P-384) and then
 * checked by noble's curve equation. Throws if x is not the x-coordinate of a curve point.
 */
export function opensslDecompress(suite: Suite, compressed: Uint8Array): Point {
    const uncompressed = NodeECDH.convertKey(
        compressed,
        suite.opensslCurve,
        undefined,
        undefined,
        'uncompressed',
    ) as Buffer;
    return suite.Point.fromBytes(uncompressed);
}

/** Y^2*Z == X^3 + a*X*Z^2 + b*Z^3 for (X : Y : Z), Z != 0: the curve equation without an inversion. */
function onCurveProjective(suite: Suite, P: Point): boolean {
    const Fp = suite.Point.Fp;
    const { a, b } = suite.Point.CURVE();
    const { X, Y, Z } = P;
    if (Fp.is0(Z)) return false;
    const Z2 = Fp.sqr(Z);
    const left = Fp.mul(Fp.sqr(Y), Z);
    const right = Fp.add(Fp.mul(X, Fp.add(Fp.sqr(X), Fp.mul(a, Z2))), Fp.mul(b, Fp.mul(Z2, Z)));
    return Fp.eql(left, right);
}

function bytesToField(bytes: Uint8Array): bigint {
    return BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}

/** k*Q for any k (reduced mod n; 0 gives the identity) and any valid point Q, by OpenSSL when it helps. */
export function multiplyPoint(suite: Suite, k: bigint, Q: Point): Point {
    const r = ((k % suite.n) + suite.n) % suite.n;
    if (r === 0n || Q.is0()) return suite.Point.ZERO;
    return opensslProduct(suite, r, Q);
}

/** k*Q alone (no k*G) for a public k in [1, n-1] (the reused ECDH object holds it afterwards). */
export function opensslProduct(suite: Suite, k: bigint, Q: Point): Point {
    return multiplyWith(opensslKey(suite, k, true), suite, k, Q, false).product;
}

/**
 * k*G by OpenSSL (k in [1, n-1]): the public key ECDH derives with the private key — OpenSSL's
 * precomputed-table base multiplication, constant time in k. On P-256 ~40 us against ~320 us for
 * noble's constant-time k*G and ~180 us for its variable-time table walk (`bench -- crypto`).
 */
export function opensslBaseMultiply(suite: Suite, k: bigint): Point {
    return suite.Point.fromBytes(opensslKey(suite, k).getPublicKey());
}
