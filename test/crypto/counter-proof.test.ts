import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
    ByteWriter,
    concatBytes,
    counterCommitment,
    counterProofBase,
    createCounterProof,
    decodeCounterProof,
    dstFor,
    encodeCounterProof,
    encodePoint,
    encodeScalar,
    rfc9380HashToCurve,
    toHex,
    verifyCounterProof,
    type CounterProof,
} from '@m2m-fabric/protocol';
import { SUITES, assertDecodeError, flipBit, hexToBigInt, randomScalar } from './helpers.js';
import { REGRESSION } from './vectors/regression.js';

for (const suite of SUITES) {
    void describe(`counter proof (${suite.id})`, () => {
        const G = suite.Point.BASE;
        const idCert = G.multiply(randomScalar(suite));
        const counter = 42n;

        void it('genuine proof verifies and has the paper shape', () => {
            const proof = createCounterProof(suite, idCert, counter);
            assert.ok(verifyCounterProof(suite, idCert, proof));
            const P = counterProofBase(suite, idCert);
            assert.ok(proof.B.equals(G.multiply(counter)));
            assert.ok(proof.B.equals(counterCommitment(suite, counter)));
            assert.ok(proof.X.equals(P.multiply(counter)));
            // P_i is RFC 9380 hash_to_curve of the length-prefixed IDCert_i under its own DST.
            const msg = new ByteWriter().bytes32(encodePoint(suite, idCert)).finish();
            assert.ok(P.equals(rfc9380HashToCurve(suite, msg, dstFor(suite, 'CounterProofBase'))));
        });

        void it('cannot be moved to another certificate', () => {
            const proof = createCounterProof(suite, idCert, counter);
            assert.ok(!verifyCounterProof(suite, G.multiply(randomScalar(suite)), proof));
        });

        void it('rejects a wrong B (another counter) and every tweaked field', () => {
            const proof = createCounterProof(suite, idCert, counter);
            const tweaks: [string, CounterProof][] = [
                ['B = (i+1)G', { ...proof, B: G.multiply(counter + 1n) }],
                ['X', { ...proof, X: proof.X.add(G) }],
                ['R', { ...proof, R: proof.R.add(G) }],
                ['A', { ...proof, A: proof.A.add(G) }],
                ['s+1', { ...proof, s: (proof.s + 1n) % suite.n }],
                ['s=0', { ...proof, s: 0n }],
                ['s=n', { ...proof, s: suite.n }],
                ['identity R', { ...proof, R: suite.Point.ZERO }],
            ];
            for (const [name, bad] of tweaks) assert.ok(!verifyCounterProof(suite, idCert, bad), name);
            // A consistent-looking proof for counter i+1 on B_i does not verify either.
            const other = createCounterProof(suite, idCert, counter + 1n);
            assert.ok(!verifyCounterProof(suite, idCert, { ...other, B: proof.B }));
            // A prover who uses x != log_G(B) for X fails (the second equation binds X to B).
            const P = counterProofBase(suite, idCert);
            assert.ok(!verifyCounterProof(suite, idCert, { ...proof, X: P.multiply(counter + 1n) }));
        });

        void it('refuses out-of-range counters and nonces', () => {
            assert.throws(() => createCounterProof(suite, idCert, 0n), RangeError);
            assert.throws(() => createCounterProof(suite, idCert, suite.n), RangeError);
            assert.throws(() => createCounterProof(suite, idCert, 1n, 0n), RangeError);
            assert.throws(() => counterCommitment(suite, 0n), RangeError);
        });

        void it('matches the pinned regression vector', () => {
            const v = REGRESSION[suite.id];
            const id = G.multiply(hexToBigInt(v.secretKey));
            const proof = createCounterProof(suite, id, 7n, 12345n);
            assert.equal(toHex(encodeCounterProof(suite, proof)), v.counterProof);
            assert.ok(verifyCounterProof(suite, id, proof));
        });

        void it('encode/decode round trip; every malformed encoding rejects', () => {
            const proof = createCounterProof(suite, idCert, counter);
            const bytes = encodeCounterProof(suite, proof);
            const pb = suite.pointBytes;
            assert.equal(bytes.length, 4 * pb + suite.scalarBytes);
            const back = decodeCounterProof(suite, bytes);
            assert.ok(
                back.B.equals(proof.B) && back.X.equals(proof.X) && back.R.equals(proof.R) && back.A.equals(proof.A),
            );
            assert.equal(back.s, proof.s);
            assert.ok(verifyCounterProof(suite, idCert, back));

            for (let len = 0; len < bytes.length; len += 7) {
                assertDecodeError(() => decodeCounterProof(suite, bytes.subarray(0, len)), 'truncated');
            }
            assertDecodeError(() => decodeCounterProof(suite, bytes.subarray(0, -1)), 'truncated');
            assertDecodeError(() => decodeCounterProof(suite, concatBytes(bytes, Uint8Array.of(0))), 'trailingBytes');
            for (let field = 0; field < 4; field++) {
                const uncompressed = bytes.slice();
                uncompressed[field * pb] = 0x04;
                assertDecodeError(() => decodeCounterProof(suite, uncompressed), 'nonCanonical');
                const identity = bytes.slice();
                identity.fill(0, field * pb, (field + 1) * pb);
                assertDecodeError(() => decodeCounterProof(suite, identity), 'nonCanonical');
            }
            // Flip x bits in a point until it leaves the curve (about half of all x do).
            let offCurveSeen = false;
            for (let bit = 0; bit < 8 && !offCurveSeen; bit++) {
                const flipped = flipBit(bytes, pb - 1, bit);
                try {
                    decodeCounterProof(suite, flipped);
                } catch (err) {
                    assertDecodeError(() => {
                        throw err;
                    }, 'offCurve');
                    offCurveSeen = true;
                }
            }
            assert.ok(offCurveSeen);
            const sAt = 4 * pb;
            assertDecodeError(
                () => decodeCounterProof(suite, concatBytes(bytes.subarray(0, sAt), encodeScalar(suite, 0n))),
                'scalarOutOfRange',
            );
            assertDecodeError(
                () =>
                    decodeCounterProof(
                        suite,
                        concatBytes(bytes.subarray(0, sAt), new Uint8Array(suite.scalarBytes).fill(0xff)),
                    ),
                'scalarOutOfRange',
            );
        });
    });
}
