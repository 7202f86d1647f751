/**
 * OpenSSL-backed scalar multiplication (openssl-ec.ts) against noble, which computes the same points
 * independently: both suites, random and edge scalars, edge points and points in projective form.
 * Every verifier (chaincode included) relies on these products, so any difference is a defect.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
    mulAddPublic,
    mulPublic,
    multiplyPoint,
    opensslEcdhX,
    opensslDecompress,
    opensslMultiply,
    withPrecomputedTable,
    type Point,
    type Suite,
} from '@m2m-fabric/protocol';
import { SUITES, randomScalar } from './helpers.js';

function edgePoints(suite: Suite): Point[] {
    const G = suite.Point.BASE;
    const Q = G.multiply(randomScalar(suite));
    // G, -G (Q + G = O for the old sign check), 2G, -2G, random points, and sums that are not
    // normalised (Z != 1) so the projective comparison is exercised.
    return [G, G.negate(), G.double(), G.double().negate(), Q, Q.negate(), Q.add(G), Q.add(Q.double())];
}

function edgeScalars(suite: Suite): bigint[] {
    return [1n, 2n, 3n, suite.n - 1n, suite.n - 2n, suite.n >> 1n, (suite.n >> 1n) + 1n, randomScalar(suite)];
}

for (const suite of SUITES) {
    void describe(`openssl-ec ${suite.id}`, () => {
        void it('opensslMultiply equals noble k*Q and k*G for edge and random scalars and points', () => {
            const G = suite.Point.BASE;
            for (const Q of edgePoints(suite)) {
                for (const k of edgeScalars(suite)) {
                    const { product, publicKey } = opensslMultiply(suite, k, Q);
                    assert.ok(product.equals(Q.multiply(k)), `k*Q for k=${k}`);
                    assert.ok(publicKey.equals(G.multiply(k)), `k*G for k=${k}`);
                }
            }
        });

        void it('200 random products agree with noble', () => {
            for (let i = 0; i < 200; i++) {
                const Q = suite.Point.BASE.multiply(randomScalar(suite));
                const k = randomScalar(suite);
                assert.ok(multiplyPoint(suite, k, Q).equals(Q.multiplyUnsafe(k)));
            }
        });

        void it('multiplyPoint reduces any scalar mod n; 0 and the identity give the identity', () => {
            const Q = suite.Point.BASE.multiply(randomScalar(suite));
            const k = randomScalar(suite);
            assert.ok(multiplyPoint(suite, k + suite.n, Q).equals(Q.multiply(k)));
            assert.ok(multiplyPoint(suite, -k, Q).equals(Q.multiply(k).negate()));
            assert.ok(multiplyPoint(suite, 0n, Q).is0());
            assert.ok(multiplyPoint(suite, suite.n, Q).is0());
            assert.ok(multiplyPoint(suite, k, suite.Point.ZERO).is0());
        });

        void it('mulPublic and mulAddPublic agree with noble with and without precomputed tables', () => {
            const G = suite.Point.BASE;
            const Q = G.multiply(randomScalar(suite));
            const T = withPrecomputedTable(suite, Q);
            const [a, b] = [randomScalar(suite), randomScalar(suite)];
            const expected = G.multiply(a).add(Q.multiply(b));
            assert.ok(mulPublic(suite, Q, b).equals(Q.multiply(b)));
            assert.ok(mulPublic(suite, T, b).equals(Q.multiply(b)));
            assert.ok(mulPublic(suite, G, a).equals(G.multiply(a)));
            assert.ok(mulAddPublic(suite, G, a, Q, b).equals(expected));
            assert.ok(mulAddPublic(suite, Q, b, G, a).equals(expected));
            assert.ok(mulAddPublic(suite, G, a, Q, suite.n - b).equals(G.multiply(a).subtract(Q.multiply(b))));
            // a*Q - a*Q: the identity comes back as such.
            assert.ok(mulAddPublic(suite, Q, a, Q, suite.n - a).is0());
        });

        void it('opensslEcdhX is the x coordinate of k*Q', () => {
            const Q = suite.Point.BASE.multiply(randomScalar(suite));
            const k = randomScalar(suite);
            const x = Q.multiply(k).toBytes(true).subarray(1);
            assert.deepEqual(opensslEcdhX(suite, k, Q), x);
        });

        void it('opensslDecompress gives the points noble decompresses, for both y parities; refuses x off the curve', () => {
            for (let i = 0; i < 100; i++) {
                const Q = suite.Point.BASE.multiply(randomScalar(suite));
                for (const R of [Q, Q.negate()]) {
                    const bytes = R.toBytes(true);
                    const opened = opensslDecompress(suite, bytes);
                    assert.ok(opened.equals(suite.Point.fromBytes(bytes)));
                    assert.deepEqual(opened.toBytes(true), bytes);
                }
            }
            // Find an x with no curve point (about half of all x): both must refuse it.
            const bytes = suite.Point.BASE.toBytes(true);
            for (let x = 1; ; x++) {
                bytes.fill(0, 1);
                bytes[bytes.length - 1] = x;
                let nobleRefuses = false;
                try {
                    suite.Point.fromBytes(bytes);
                } catch {
                    nobleRefuses = true;
                }
                if (!nobleRefuses) continue;
                assert.throws(() => opensslDecompress(suite, bytes));
                break;
            }
        });

        void it('refuses scalars outside [1, n-1]', () => {
            const G = suite.Point.BASE;
            assert.throws(() => opensslMultiply(suite, 0n, G), RangeError);
            assert.throws(() => opensslMultiply(suite, suite.n, G), RangeError);
            assert.throws(() => opensslEcdhX(suite, -1n, G), RangeError);
        });
    });
}
