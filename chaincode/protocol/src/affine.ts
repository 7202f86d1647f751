/**
 * Affine normalisation of noble points. noble (2.x) keeps points in projective coordinates and does
 * not memoise their affine form: every toAffine() of a point with Z != 1 costs a field inversion
 * (~25 us on P-256 here), and toBytes() makes two (its validity check, then the encoding). A point
 * that will be encoded or multiplied more than once is therefore normalised once, to Z = 1, where
 * noble's fast path returns (X, Y) without inverting. The point itself is unchanged.
 */
import type { Point, Suite } from './suite.js';

/** The same point with Z = 1 (the identity stays the identity). One inversion unless already so. */
export function normalized(suite: Suite, P: Point): Point {
    const Fp = suite.Point.Fp;
    if (Fp.eql(P.Z, Fp.ONE) || P.is0()) return P;
    return suite.Point.fromAffine(P.toAffine());
}
