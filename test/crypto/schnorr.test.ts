import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
    ByteWriter,
    SchnorrContext,
    concatBytes,
    decodeSchnorrSignature,
    dstFor,
    encodePoint,
    encodeSchnorrSignature,
    encodeScalar,
    fromHex,
    hashToScalar,
    rfc9380HashToScalar,
    schnorrSign,
    schnorrVerify,
    toHex,
    withPrecomputedTable,
} from '@m2m-fabric/protocol';
import { SUITES, assertDecodeError, flipBit, hexToBigInt, randomScalar, utf8 } from './helpers.js';
import { REGRESSION } from './vectors/regression.js';

for (const suite of SUITES) {
    void describe(`Schnorr signatures (${suite.id})`, () => {
        const G = suite.Point.BASE;
        const d = randomScalar(suite);
        const Q = G.multiply(d);
        const msg = utf8('M4: C2 || C3');

        void it('signs and verifies in every context', () => {
            for (const ctx of Object.values(SchnorrContext)) {
                const sig = schnorrSign(suite, ctx, d, msg);
                assert.ok(schnorrVerify(suite, ctx, Q, msg, sig));
            }
        });

        void it('is the paper eq. (1) scheme: s*G + c*Q = R and c = H(context, Q, R, M)', () => {
            const sig = schnorrSign(suite, SchnorrContext.M3, d, msg);
            const R = G.multiply(sig.s).add(Q.multiply(sig.c));
            // Challenge recomputed by hand from the RFC 9380 primitive and the documented transcript.
            const transcript = new ByteWriter()
                .bytes32(utf8('m3'))
                .bytes32(encodePoint(suite, Q))
                .bytes32(encodePoint(suite, R))
                .bytes32(msg)
                .finish();
            assert.equal(rfc9380HashToScalar(suite, transcript, dstFor(suite, 'SchnorrChallenge')), sig.c);
        });

        void it('verifies identically with a precomputed-table key (long-lived Q_f)', () => {
            const T = withPrecomputedTable(suite, Q);
            const sig = schnorrSign(suite, SchnorrContext.FogM4, d, msg);
            assert.ok(schnorrVerify(suite, SchnorrContext.FogM4, T, msg, sig));
            assert.ok(!schnorrVerify(suite, SchnorrContext.FogM4, T, flipBit(msg, 1), sig));
            assert.ok(!schnorrVerify(suite, SchnorrContext.FogM4, T, msg, { c: sig.c, s: (sig.s + 1n) % suite.n }));
        });

        void it('rejects wrong context, wrong key, tweaked message and out-of-range scalars', () => {
            const sig = schnorrSign(suite, SchnorrContext.FogM4, d, msg);
            assert.ok(!schnorrVerify(suite, SchnorrContext.M3, Q, msg, sig));
            assert.ok(!schnorrVerify(suite, SchnorrContext.ProofOfPossession, Q, msg, sig));
            assert.ok(!schnorrVerify(suite, 'FOG-M4' as SchnorrContext, Q, msg, sig));
            assert.ok(!schnorrVerify(suite, SchnorrContext.FogM4, G.multiply(randomScalar(suite)), msg, sig));
            assert.ok(!schnorrVerify(suite, SchnorrContext.FogM4, Q, flipBit(msg, 0), sig));
            assert.ok(!schnorrVerify(suite, SchnorrContext.FogM4, Q, concatBytes(msg, Uint8Array.of(0)), sig));
            assert.ok(!schnorrVerify(suite, SchnorrContext.FogM4, Q, msg, { c: sig.c, s: (sig.s + 1n) % suite.n }));
            assert.ok(!schnorrVerify(suite, SchnorrContext.FogM4, Q, msg, { c: (sig.c + 1n) % suite.n, s: sig.s }));
            for (const [c, s] of [
                [0n, sig.s],
                [sig.c, 0n],
                [sig.c + suite.n, sig.s],
                [sig.c, sig.s + suite.n],
                [-sig.c, sig.s],
            ] as const) {
                assert.ok(!schnorrVerify(suite, SchnorrContext.FogM4, Q, msg, { c, s }));
            }
            assert.ok(!schnorrVerify(suite, SchnorrContext.FogM4, suite.Point.ZERO, msg, sig));
        });

        void it('nonces are hedged: fixed randomness is deterministic, fresh randomness differs', () => {
            const aux = new Uint8Array(32).fill(7);
            const a = schnorrSign(suite, SchnorrContext.M3, d, msg, aux);
            assert.deepEqual(schnorrSign(suite, SchnorrContext.M3, d, msg, aux), a);
            assert.notDeepEqual(
                schnorrSign(suite, SchnorrContext.M3, d, msg),
                schnorrSign(suite, SchnorrContext.M3, d, msg),
            );
            // The nonce depends on the message even with the same randomness (no nonce reuse).
            const b = schnorrSign(suite, SchnorrContext.M3, d, utf8('other'), aux);
            const Ra = G.multiply(a.s).add(Q.multiply(a.c));
            const Rb = G.multiply(b.s).add(Q.multiply(b.c));
            assert.ok(!Ra.equals(Rb));
            assert.throws(() => schnorrSign(suite, SchnorrContext.M3, d, msg, new Uint8Array(31)), RangeError);
            assert.throws(() => schnorrSign(suite, SchnorrContext.M3, 0n, msg), RangeError);
            assert.throws(() => schnorrSign(suite, SchnorrContext.M3, suite.n, msg), RangeError);
            assert.throws(() => schnorrSign(suite, 'nope' as SchnorrContext, d, msg), RangeError);
        });

        void it('matches the pinned regression vector', () => {
            const v = REGRESSION[suite.id];
            const sk = hexToBigInt(v.secretKey);
            assert.equal(sk, hashToScalar(suite, 'SchnorrNonce', utf8('regression key')));
            const sig = schnorrSign(suite, SchnorrContext.FogM4, sk, utf8('M4 payload'), new Uint8Array(32).fill(1));
            assert.equal(toHex(encodeSchnorrSignature(suite, sig)), v.schnorr);
            assert.ok(
                schnorrVerify(
                    suite,
                    SchnorrContext.FogM4,
                    G.multiply(sk),
                    utf8('M4 payload'),
                    decodeSchnorrSignature(suite, fromHex(v.schnorr)),
                ),
            );
        });

        void it('encoding is two fixed-width scalars; decoding rejects malformed bytes', () => {
            const sig = schnorrSign(suite, SchnorrContext.M3, d, msg);
            const bytes = encodeSchnorrSignature(suite, sig);
            assert.equal(bytes.length, 2 * suite.scalarBytes);
            assert.deepEqual(bytes, concatBytes(encodeScalar(suite, sig.c), encodeScalar(suite, sig.s)));
            assert.deepEqual(decodeSchnorrSignature(suite, bytes), sig);
            assertDecodeError(() => decodeSchnorrSignature(suite, bytes.subarray(0, -1)), 'truncated');
            assertDecodeError(() => decodeSchnorrSignature(suite, new Uint8Array(0)), 'truncated');
            assertDecodeError(
                () => decodeSchnorrSignature(suite, concatBytes(bytes, Uint8Array.of(0))),
                'trailingBytes',
            );
            const n = encodeScalar(suite, suite.n - 1n).slice();
            n[n.length - 1] = (n[n.length - 1] ?? 0) + 1; // = n
            assertDecodeError(
                () => decodeSchnorrSignature(suite, concatBytes(n, bytes.subarray(suite.scalarBytes))),
                'scalarOutOfRange',
            );
            assertDecodeError(
                () =>
                    decodeSchnorrSignature(
                        suite,
                        concatBytes(bytes.subarray(0, suite.scalarBytes), encodeScalar(suite, 0n)),
                    ),
                'scalarOutOfRange',
            );
        });
    });
}
