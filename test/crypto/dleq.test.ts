import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { p256_oprf } from '@noble/curves/nist.js';
import {
    P256_SHA256,
    P384_SHA384,
    concatBytes,
    decodeDleqProof,
    decodePoint,
    dleqContext,
    dleqProve,
    dleqProveWithContext,
    dleqVerify,
    dleqVerifyWithContext,
    encodeDleqProof,
    encodeScalar,
    fromHex,
    rfc9497Context,
    toHex,
    withPrecomputedTable,
} from '@m2m-fabric/protocol';
import { SUITES, assertDecodeError, flipBit, hexToBigInt, randomScalar } from './helpers.js';
import { VOPRF_P256_SHA256, VOPRF_P384_SHA384 } from './vectors/rfc9497.js';

void describe('DLEQ: RFC 9497 VOPRF proof vectors', () => {
    for (const [suite, vectors] of [
        [P256_SHA256, VOPRF_P256_SHA256],
        [P384_SHA384, VOPRF_P384_SHA384],
    ] as const) {
        vectors.forEach((v, i) => {
            void it(`${suite.id} vector ${i + 1}: GenerateProof reproduces Proof, VerifyProof accepts it`, () => {
                const ctx = rfc9497Context(suite, 1);
                const G = suite.Point.BASE;
                const sk = hexToBigInt(v.skSm);
                const pk = decodePoint(suite, fromHex(v.pkSm));
                assert.ok(G.multiply(sk).equals(pk));
                const C = decodePoint(suite, fromHex(v.blindedElement));
                const D = decodePoint(suite, fromHex(v.evaluationElement));
                assert.ok(C.multiply(sk).equals(D));
                const proof = dleqProveWithContext(suite, ctx, sk, G, pk, C, D, hexToBigInt(v.proofRandomScalar));
                assert.equal(toHex(encodeDleqProof(suite, proof)), v.proof);
                const published = decodeDleqProof(suite, fromHex(v.proof));
                assert.ok(dleqVerifyWithContext(suite, ctx, G, pk, C, D, published));
                // The RFC proof is bound to the RFC context: not valid under the protocol's DST.
                assert.ok(!dleqVerify(suite, G, pk, C, D, published));
            });
        });
    }

    void it("agrees with noble's p256_oprf on fresh VOPRF evaluations", () => {
        const keys = p256_oprf.voprf.generateKeyPair();
        const blind = p256_oprf.voprf.blind(Uint8Array.of(1, 2, 3));
        const evaluated = p256_oprf.voprf.blindEvaluate(keys.secretKey, keys.publicKey, blind.blinded);
        const suite = P256_SHA256;
        const proof = decodeDleqProof(suite, evaluated.proof);
        const C = decodePoint(suite, blind.blinded);
        const D = decodePoint(suite, evaluated.evaluated);
        const pk = decodePoint(suite, keys.publicKey);
        assert.ok(dleqVerifyWithContext(suite, rfc9497Context(suite, 1), suite.Point.BASE, pk, C, D, proof));
    });
});

for (const suite of SUITES) {
    void describe(`DLEQ for primaryHash (${suite.id})`, () => {
        const G = suite.Point.BASE;
        const df = randomScalar(suite);
        const Qf = G.multiply(df);
        const idCert = G.multiply(randomScalar(suite));
        const P = idCert.multiply(df);

        void it('proves P = d_f*IDCert_i against Q_f = d_f*G', () => {
            const proof = dleqProve(suite, df, G, Qf, idCert, P);
            assert.ok(dleqVerify(suite, G, Qf, idCert, P, proof));
            const again = decodeDleqProof(suite, encodeDleqProof(suite, proof));
            assert.deepEqual(again, proof);
            assert.ok(dleqVerify(suite, G, Qf, idCert, P, again));
            // Same result with the fog key's precomputed table.
            const QfT = withPrecomputedTable(suite, Qf);
            assert.ok(dleqVerify(suite, G, QfT, idCert, P, proof));
            assert.ok(!dleqVerify(suite, G, QfT, idCert, G, proof));
            assert.equal(toHex(dleqContext(suite)), toHex(new TextEncoder().encode(`M2M-V1-DLEQ-${suite.id}`)));
        });

        void it('rejects a made-up P, a wrong key, swapped points and tweaked proofs', () => {
            const proof = dleqProve(suite, df, G, Qf, idCert, P);
            const other = G.multiply(randomScalar(suite));
            assert.ok(!dleqVerify(suite, G, Qf, idCert, other, proof));
            assert.ok(!dleqVerify(suite, G, other, idCert, P, proof));
            assert.ok(!dleqVerify(suite, G, Qf, other, P, proof));
            assert.ok(!dleqVerify(suite, other, Qf, idCert, P, proof));
            assert.ok(!dleqVerify(suite, idCert, P, G, Qf, proof));
            assert.ok(!dleqVerify(suite, G, Qf, idCert, P, { c: proof.c, s: (proof.s + 1n) % suite.n }));
            assert.ok(!dleqVerify(suite, G, Qf, idCert, P, { c: (proof.c + 1n) % suite.n, s: proof.s }));
            assert.ok(!dleqVerify(suite, G, Qf, idCert, P, { c: 0n, s: proof.s }));
            assert.ok(!dleqVerify(suite, G, Qf, idCert, P, { c: proof.c, s: suite.n }));
            // A fog that does not know log_G(Q_f) cannot prove: a proof made with another key fails.
            const wrongKey = dleqProve(suite, randomScalar(suite), G, Qf, idCert, P);
            assert.ok(!dleqVerify(suite, G, Qf, idCert, P, wrongKey));
        });

        void it('a fixed nonce gives a reproducible proof; no nonce gives fresh ones', () => {
            const r = randomScalar(suite);
            assert.deepEqual(dleqProve(suite, df, G, Qf, idCert, P, r), dleqProve(suite, df, G, Qf, idCert, P, r));
            assert.notDeepEqual(dleqProve(suite, df, G, Qf, idCert, P), dleqProve(suite, df, G, Qf, idCert, P));
            assert.throws(() => dleqProve(suite, 0n, G, Qf, idCert, P), RangeError);
            assert.throws(() => dleqProve(suite, df, G, Qf, idCert, P, suite.n), RangeError);
        });

        void it('proof decoding rejects malformed bytes', () => {
            const bytes = encodeDleqProof(suite, dleqProve(suite, df, G, Qf, idCert, P));
            assert.equal(bytes.length, 2 * suite.scalarBytes);
            assertDecodeError(() => decodeDleqProof(suite, bytes.subarray(0, -1)), 'truncated');
            assertDecodeError(() => decodeDleqProof(suite, concatBytes(bytes, Uint8Array.of(0))), 'trailingBytes');
            const zero = encodeScalar(suite, 0n);
            assertDecodeError(
                () => decodeDleqProof(suite, concatBytes(zero, bytes.subarray(suite.scalarBytes))),
                'scalarOutOfRange',
            );
            const big = new Uint8Array(suite.scalarBytes).fill(0xff);
            assertDecodeError(
                () => decodeDleqProof(suite, concatBytes(bytes.subarray(0, suite.scalarBytes), big)),
                'scalarOutOfRange',
            );
            assert.ok(!dleqVerify(suite, G, Qf, idCert, P, decodeDleqProof(suite, flipBit(bytes, 5))));
        });
    });
}
