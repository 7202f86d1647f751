import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256, sha384 } from '@noble/hashes/sha2.js';
import {
    ByteWriter,
    DST,
    P256_SHA256,
    P384_SHA384,
    dstFor,
    encodePoint,
    hashBytes,
    hashToCurve,
    hashToScalar,
    rfc9380HashToCurve,
    rfc9380HashToField,
    rfc9380HashToScalar,
    toHex,
} from '@m2m-fabric/protocol';
import { SUITES, expandMessageXmd, hexToBigInt, utf8 } from './helpers.js';
import { P256_XMD_SHA256_SSWU_RO, P384_XMD_SHA384_SSWU_RO } from './vectors/rfc9380.js';

void describe('RFC 9380 known answers', () => {
    for (const [suite, set] of [
        [P256_SHA256, P256_XMD_SHA256_SSWU_RO],
        [P384_SHA384, P384_XMD_SHA384_SSWU_RO],
    ] as const) {
        for (const v of set.vectors) {
            void it(`${suite.id} hash_to_field and hash_to_curve, msg=${JSON.stringify(v.msg)}`, () => {
                const u = rfc9380HashToField(suite, utf8(v.msg), set.dst, 2, 'p');
                assert.deepEqual(u, [hexToBigInt(v.u0), hexToBigInt(v.u1)]);
                const P = rfc9380HashToCurve(suite, utf8(v.msg), set.dst).toAffine();
                assert.equal(P.x, hexToBigInt(v.px));
                assert.equal(P.y, hexToBigInt(v.py));
            });
        }
    }

    void it('hash-to-scalar is hash_to_field over GF(n) with L = 48 / 72 bytes (independent expand_message_xmd)', () => {
        for (const [suite, hash, L] of [
            [P256_SHA256, 'sha256', 48],
            [P384_SHA384, 'sha384', 72],
        ] as const) {
            const msg = utf8('scalar');
            const dst = utf8('TEST-DST');
            const expected = hexToBigInt(toHex(expandMessageXmd(hash, msg, dst, L))) % suite.n;
            assert.equal(rfc9380HashToScalar(suite, msg, 'TEST-DST'), expected);
            assert.deepEqual(rfc9380HashToField(suite, msg, 'TEST-DST', 1, 'n'), [expected]);
            // hash_to_field over GF(p) with count 2 reads two L-byte chunks of one expansion.
            const two = expandMessageXmd(hash, msg, dst, 2 * L);
            const p = suite.Point.Fp.ORDER;
            assert.deepEqual(rfc9380HashToField(suite, msg, 'TEST-DST', 2, 'p'), [
                hexToBigInt(toHex(two.subarray(0, L))) % p,
                hexToBigInt(toHex(two.subarray(L))) % p,
            ]);
            // The protocol wrapper is the same function on the length-prefixed parts and suite DST.
            const parts = new ByteWriter().bytes32(msg).finish();
            const dstBytes = utf8(dstFor(suite, 'SchnorrChallenge'));
            assert.equal(
                hashToScalar(suite, 'SchnorrChallenge', msg),
                hexToBigInt(toHex(expandMessageXmd(hash, parts, dstBytes, L))) % suite.n,
            );
        }
    });
});

void describe('protocol hashing wrappers', () => {
    void it('every DST is distinct and carries the suite id', () => {
        const names = Object.keys(DST) as (keyof typeof DST)[];
        const tags = new Set(names.map((n) => DST[n]));
        assert.equal(tags.size, names.length);
        assert.equal(dstFor(P256_SHA256, 'CounterProofBase'), 'M2M-V1-COUNTER-PROOF-BASE-P256-SHA256');
        assert.equal(dstFor(P384_SHA384, 'SchnorrNonce'), 'M2M-V1-SCHNORR-NONCE-P384-SHA384');
    });

    void it('hashToCurve / hashToScalar are the RFC 9380 functions on length-prefixed parts', () => {
        for (const suite of SUITES) {
            const a = utf8('ab');
            const b = utf8('c');
            const msg = new ByteWriter().bytes32(a).bytes32(b).finish();
            const dst = dstFor(suite, 'CounterProofBase');
            assert.ok(hashToCurve(suite, 'CounterProofBase', a, b).equals(rfc9380HashToCurve(suite, msg, dst)));
            assert.equal(
                hashToScalar(suite, 'CounterProofChallenge', a, b),
                rfc9380HashToScalar(suite, msg, dstFor(suite, 'CounterProofChallenge')),
            );
        }
    });

    void it('separates parts, DSTs and suites', () => {
        for (const suite of SUITES) {
            const h1 = hashToScalar(suite, 'SchnorrChallenge', utf8('ab'), utf8('c'));
            assert.notEqual(h1, hashToScalar(suite, 'SchnorrChallenge', utf8('a'), utf8('bc')));
            assert.notEqual(h1, hashToScalar(suite, 'SchnorrChallenge', utf8('abc')));
            assert.notEqual(h1, hashToScalar(suite, 'SchnorrNonce', utf8('ab'), utf8('c')));
            assert.ok(h1 > 0n && h1 < suite.n);
            const p1 = hashToCurve(suite, 'CounterProofBase', utf8('x'));
            assert.ok(!p1.equals(hashToCurve(suite, 'SecondaryHashPoint', utf8('x'))));
            p1.assertValidity();
            const b1 = hashBytes(suite, 'PrimaryHash', utf8('ab'), utf8('c'));
            assert.equal(b1.length, suite.hashBytes);
            assert.notEqual(toHex(b1), toHex(hashBytes(suite, 'PrimaryHash', utf8('a'), utf8('bc'))));
            assert.notEqual(toHex(b1), toHex(hashBytes(suite, 'SecondaryHash', utf8('ab'), utf8('c'))));
        }
        // Same input, different suites: different DSTs, so the P-256 scalar is not the P-384 one truncated.
        assert.notEqual(
            toHex(hashBytes(P256_SHA256, 'PrimaryHash', utf8('x'))),
            toHex(hashBytes(P384_SHA384, 'PrimaryHash', utf8('x')).subarray(0, 32)),
        );
    });

    void it('hashBytes is the suite hash of u16-prefixed DST and u32-prefixed parts (pinned encoding)', () => {
        const part = Uint8Array.of(1, 2, 3);
        for (const [suite, H] of [
            [P256_SHA256, sha256],
            [P384_SHA384, sha384],
        ] as const) {
            const dst = utf8(dstFor(suite, 'SymmetricKey'));
            const manual = new Uint8Array([0, dst.length, ...dst, 0, 0, 0, 3, 1, 2, 3]);
            assert.deepEqual(hashBytes(suite, 'SymmetricKey', part), H(manual));
        }
        // Regression value, so an accidental change to the encoding is caught.
        assert.equal(
            toHex(hashBytes(P256_SHA256, 'PublicKeyCommitment', encodePoint(P256_SHA256, P256_SHA256.Point.BASE))),
            toHex(
                sha256(
                    new ByteWriter()
                        .string('M2M-V1-PUBKEY-COMMITMENT-P256-SHA256')
                        .bytes32(P256_SHA256.Point.BASE.toBytes(true))
                        .finish(),
                ),
            ),
        );
    });
});
