import assert from 'node:assert/strict';
import { ECDH, createECDH, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
    ByteReader,
    ByteWriter,
    DEFAULT_SUITE,
    DecodeError,
    P256_SHA256,
    P384_SHA384,
    bigIntToBytes,
    concatBytes,
    decodePoint,
    decodeScalar,
    encodePoint,
    encodeScalar,
    equalBytes,
    fromBase64Url,
    fromHex,
    getSuite,
    mulAddPublic,
    withPrecomputedTable,
    suiteFromTag,
    toBase64Url,
    toHex,
    type Suite,
} from '@m2m-fabric/protocol';
import { SUITES, assertDecodeError, randomScalar } from './helpers.js';

const NODE_CURVE: Record<Suite['id'], string> = { 'P256-SHA256': 'prime256v1', 'P384-SHA384': 'secp384r1' };

/** Whether OpenSSL (through node:crypto) accepts `bytes` as a point on the suite's curve. */
function nodeAcceptsPoint(suite: Suite, bytes: Uint8Array): boolean {
    try {
        ECDH.convertKey(bytes, NODE_CURVE[suite.id], undefined, undefined, 'compressed');
        return true;
    } catch {
        return false;
    }
}

void describe('suites', () => {
    void it('has the standard parameters and tags', () => {
        assert.equal(P256_SHA256.n, 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n);
        assert.equal(
            P384_SHA384.n,
            0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
        );
        assert.equal(DEFAULT_SUITE, P256_SHA256);
        assert.deepEqual(
            SUITES.map((s) => [s.id, s.tag, s.scalarBytes, s.pointBytes, s.hashBytes, s.webCryptoCurve]),
            [
                ['P256-SHA256', 1, 32, 33, 32, 'P-256'],
                ['P384-SHA384', 2, 48, 49, 48, 'P-384'],
            ],
        );
        // The suite hash is the plain SHA-2 function: FIPS 180 "abc" vectors.
        assert.equal(
            toHex(P256_SHA256.hash(new TextEncoder().encode('abc'))),
            'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
        );
        assert.equal(
            toHex(P384_SHA384.hash(new TextEncoder().encode('abc'))),
            'cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7',
        );
    });

    void it('looks suites up by id and tag and rejects unknown ones', () => {
        assert.equal(getSuite('P256-SHA256'), P256_SHA256);
        assert.equal(getSuite('P384-SHA384'), P384_SHA384);
        assert.equal(suiteFromTag(1), P256_SHA256);
        assert.equal(suiteFromTag(2), P384_SHA384);
        for (const id of ['', 'p256-sha256', 'P521-SHA512', 'P256_SHA256'])
            assertDecodeError(() => getSuite(id), 'unknownSuite');
        for (const tag of [0, 3, 255, -1, 1.5]) assertDecodeError(() => suiteFromTag(tag), 'unknownSuite');
    });
});

for (const suite of SUITES) {
    void describe(`points and scalars (${suite.id})`, () => {
        const G = suite.Point.BASE;

        void it('round-trips compressed points and matches node:crypto public keys', () => {
            for (let i = 0; i < 8; i++) {
                const d = randomScalar(suite);
                const P = G.multiply(d);
                const bytes = encodePoint(suite, P);
                assert.equal(bytes.length, suite.pointBytes);
                assert.ok(decodePoint(suite, bytes).equals(P));
                const ecdh = createECDH(NODE_CURVE[suite.id]);
                ecdh.setPrivateKey(bigIntToBytes(d, suite.scalarBytes));
                assert.deepEqual(new Uint8Array(ecdh.getPublicKey(null, 'compressed')), bytes);
            }
        });

        void it('noble d*Q agrees with node:crypto ECDH', () => {
            for (let i = 0; i < 4; i++) {
                const a = createECDH(NODE_CURVE[suite.id]);
                a.generateKeys();
                const b = randomScalar(suite);
                const Q = decodePoint(suite, new Uint8Array(a.getPublicKey(null, 'compressed')));
                const shared = Q.multiply(b).toBytes(true).subarray(1);
                const nodeShared = a.computeSecret(encodePoint(suite, G.multiply(b)));
                assert.deepEqual(shared, new Uint8Array(nodeShared));
            }
        });

        void it('accepts exactly the compressed points node:crypto accepts', () => {
            let accepted = 0;
            for (let i = 0; i < 64; i++) {
                const bytes = randomBytes(suite.pointBytes);
                bytes[0] = 0x02 | (i & 1);
                const ours = (() => {
                    try {
                        decodePoint(suite, bytes);
                        return true;
                    } catch (err) {
                        assert.ok(err instanceof DecodeError);
                        return false;
                    }
                })();
                assert.equal(ours, nodeAcceptsPoint(suite, bytes), toHex(bytes));
                if (ours) accepted++;
            }
            // About half of all x are on the curve; both branches must have been exercised.
            assert.ok(accepted > 8 && accepted < 56, `accepted ${accepted}/64`);
        });

        void it('precomputed tables: cached per key, equal points, same arithmetic', () => {
            const Q = G.multiply(randomScalar(suite));
            const T = withPrecomputedTable(suite, Q);
            assert.ok(T.equals(Q));
            assert.equal(withPrecomputedTable(suite, T), T);
            // Another instance of the same key (e.g. decoded again next transaction) hits the cache.
            assert.equal(withPrecomputedTable(suite, decodePoint(suite, encodePoint(suite, Q))), T);
            assert.equal(withPrecomputedTable(suite, G), G);
            const a = randomScalar(suite);
            const b = randomScalar(suite);
            const expected = G.multiply(a).add(Q.multiply(b));
            assert.ok(mulAddPublic(suite, G, a, T, b).equals(expected));
            assert.ok(mulAddPublic(suite, G, a, Q, b).equals(expected));
            assert.ok(mulAddPublic(suite, G, 0n, T, b).equals(Q.multiply(b)));
            assert.throws(() => withPrecomputedTable(suite, suite.Point.ZERO), RangeError);
        });

        void it('rejects malformed points with typed errors', () => {
            const good = encodePoint(suite, G.multiply(randomScalar(suite)));
            assertDecodeError(() => decodePoint(suite, good.subarray(0, -1)), 'wrongLength');
            assertDecodeError(() => decodePoint(suite, concatBytes(good, Uint8Array.of(0))), 'wrongLength');
            assertDecodeError(() => decodePoint(suite, new Uint8Array(0)), 'wrongLength');
            // Uncompressed form (valid point, non-canonical encoding) and its truncation.
            const uncompressed = G.toBytes(false);
            assert.ok(nodeAcceptsPoint(suite, uncompressed));
            assertDecodeError(() => decodePoint(suite, uncompressed), 'wrongLength');
            for (const prefix of [0x00, 0x01, 0x04, 0x06, 0x07, 0xff]) {
                const b = good.slice();
                b[0] = prefix;
                assertDecodeError(() => decodePoint(suite, b), 'nonCanonical');
            }
            // The identity's SEC1 encoding (a single 0x00) and an all-zero string of the right length.
            assertDecodeError(() => decodePoint(suite, Uint8Array.of(0)), 'wrongLength');
            assertDecodeError(() => decodePoint(suite, new Uint8Array(suite.pointBytes)), 'nonCanonical');
            // x = p (non-reduced) and x = p + small: refused as non-canonical before the curve check.
            const p = suite.Point.Fp.ORDER;
            for (const x of [p, p + 1n, (1n << BigInt(8 * (suite.pointBytes - 1))) - 1n]) {
                const b = concatBytes(Uint8Array.of(0x02), bigIntToBytes(x, suite.pointBytes - 1));
                assertDecodeError(() => decodePoint(suite, b), 'nonCanonical');
                assert.equal(nodeAcceptsPoint(suite, b), false);
            }
            // An x that is not on the curve.
            for (let x = 1n; ; x++) {
                const b = concatBytes(Uint8Array.of(0x03), bigIntToBytes(x, suite.pointBytes - 1));
                if (!nodeAcceptsPoint(suite, b)) {
                    assertDecodeError(() => decodePoint(suite, b), 'offCurve');
                    break;
                }
            }
            assert.throws(() => encodePoint(suite, suite.Point.ZERO), RangeError);
            const otherSuite = SUITES.find((s) => s !== suite);
            assert.ok(otherSuite);
            assert.throws(() => encodePoint(suite, otherSuite.Point.BASE), RangeError);
        });

        void it('encodes scalars at fixed width and rejects out-of-range values', () => {
            const n = suite.n;
            for (const s of [1n, 2n, n - 1n, randomScalar(suite)]) {
                const bytes = encodeScalar(suite, s);
                assert.equal(bytes.length, suite.scalarBytes);
                assert.equal(decodeScalar(suite, bytes), s);
            }
            assert.deepEqual(
                encodeScalar(suite, 1n),
                concatBytes(new Uint8Array(suite.scalarBytes - 1), Uint8Array.of(1)),
            );
            const zero = encodeScalar(suite, 0n);
            assert.equal(decodeScalar(suite, zero, true), 0n);
            assertDecodeError(() => decodeScalar(suite, zero), 'scalarOutOfRange');
            const nBytes = bigIntToBytes(n, suite.scalarBytes);
            assertDecodeError(() => decodeScalar(suite, nBytes), 'scalarOutOfRange');
            assertDecodeError(() => decodeScalar(suite, nBytes, true), 'scalarOutOfRange');
            assertDecodeError(
                () => decodeScalar(suite, new Uint8Array(suite.scalarBytes).fill(0xff)),
                'scalarOutOfRange',
            );
            assertDecodeError(() => decodeScalar(suite, new Uint8Array(suite.scalarBytes - 1).fill(1)), 'wrongLength');
            assertDecodeError(() => decodeScalar(suite, new Uint8Array(suite.scalarBytes + 1).fill(1)), 'wrongLength');
            assert.throws(() => encodeScalar(suite, n), RangeError);
            assert.throws(() => encodeScalar(suite, -1n), RangeError);
        });
    });
}

void describe('ByteWriter / ByteReader', () => {
    const suite = P256_SHA256;
    const P = suite.Point.BASE.multiply(7n);

    function sample(): Uint8Array {
        return new ByteWriter()
            .u8(0xab)
            .u16(0x1234)
            .u32(0xdeadbeef)
            .u64(0x0102030405060708n)
            .raw(Uint8Array.of(9, 9))
            .bytes16(Uint8Array.of(1, 2, 3))
            .bytes32(new Uint8Array(300).fill(5))
            .string('héllo \u{1F600}')
            .point(suite, P)
            .scalar(suite, 42n)
            .finish();
    }

    void it('writes big-endian, length-prefixed fields and reads them back', () => {
        const bytes = sample();
        assert.equal(toHex(bytes.subarray(0, 15)), 'ab1234deadbeef0102030405060708');
        const r = new ByteReader(bytes);
        assert.equal(r.u8(), 0xab);
        assert.equal(r.u16(), 0x1234);
        assert.equal(r.u32(), 0xdeadbeef);
        assert.equal(r.u64(), 0x0102030405060708n);
        assert.deepEqual(r.raw(2), Uint8Array.of(9, 9));
        assert.deepEqual(r.bytes16(), Uint8Array.of(1, 2, 3));
        assert.deepEqual(r.bytes32(), new Uint8Array(300).fill(5));
        assert.equal(r.string(), 'héllo \u{1F600}');
        assert.ok(r.point(suite).equals(P));
        assert.equal(r.scalar(suite), 42n);
        r.end();
    });

    void it('rejects every truncation and trailing bytes', () => {
        const bytes = sample();
        const readAll = (b: Uint8Array): void => {
            const r = new ByteReader(b);
            r.u8();
            r.u16();
            r.u32();
            r.u64();
            r.raw(2);
            r.bytes16();
            r.bytes32();
            r.string();
            r.point(suite);
            r.scalar(suite);
            r.end();
        };
        readAll(bytes);
        for (let len = 0; len < bytes.length; len++)
            assertDecodeError(() => readAll(bytes.subarray(0, len)), 'truncated');
        assertDecodeError(() => readAll(concatBytes(bytes, Uint8Array.of(0))), 'trailingBytes');
    });

    void it('rejects invalid UTF-8 and refuses to write unencodable values', () => {
        for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
            const b = new ByteWriter().bytes16(Uint8Array.from(bad)).finish();
            assertDecodeError(() => new ByteReader(b).string(), 'nonCanonical');
        }
        // A BOM is kept, so decoding is the exact inverse of encoding.
        const bom = new ByteWriter().string('\uFEFFx').finish();
        assert.equal(new ByteReader(bom).string(), '\uFEFFx');
        const w = new ByteWriter();
        assert.throws(() => w.u8(256), RangeError);
        assert.throws(() => w.u16(-1), RangeError);
        assert.throws(() => w.u32(2 ** 32), RangeError);
        assert.throws(() => w.u32(1.5), RangeError);
        assert.throws(() => w.u64(1n << 64n), RangeError);
        assert.throws(() => w.bytes16(new Uint8Array(65536)), RangeError);
        assert.throws(() => w.string('\uD800'), RangeError);
    });

    void it('returns copies, not views of the input', () => {
        const bytes = new ByteWriter().bytes16(Uint8Array.of(1, 2)).finish();
        const got = new ByteReader(bytes).bytes16();
        bytes[2] = 99;
        assert.deepEqual(got, Uint8Array.of(1, 2));
    });
});

void describe('byte helpers', () => {
    void it('concatenates and compares', () => {
        assert.deepEqual(concatBytes(), new Uint8Array(0));
        assert.deepEqual(concatBytes(Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3)), Uint8Array.of(1, 2, 3));
        assert.ok(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2)));
        assert.ok(!equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 3)));
        assert.ok(!equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0)));
        assert.ok(equalBytes(new Uint8Array(0), new Uint8Array(0)));
    });

    void it('hex is lowercase, canonical and strict', () => {
        const b = Uint8Array.of(0, 0xab, 0xff, 0x10);
        assert.equal(toHex(b), '00abff10');
        assert.deepEqual(fromHex('00abff10'), b);
        assert.deepEqual(fromHex(''), new Uint8Array(0));
        for (const bad of ['0', '00AB', 'zz', '0x00', ' 00', '00 ', 'abc'])
            assertDecodeError(() => fromHex(bad), 'nonCanonical');
    });

    void it('base64url is unpadded and canonical', () => {
        for (let len = 0; len < 8; len++) {
            const b = randomBytes(len);
            const s = toBase64Url(b);
            assert.ok(!s.includes('=') && !s.includes('+') && !s.includes('/'));
            assert.deepEqual(fromBase64Url(s), new Uint8Array(b));
        }
        assert.equal(toBase64Url(Uint8Array.of(0xfb, 0xff)), '-_8');
        // 'AB' and 'AA' differ only in the unused low bits: only 'AA' is canonical for [0x00].
        assert.deepEqual(fromBase64Url('AA'), Uint8Array.of(0));
        for (const bad of ['AB', 'AA==', 'A', 'AAAAA', '+/8', 'A A', 'AA\n', 'ÿÿ'])
            assertDecodeError(() => fromBase64Url(bad), 'nonCanonical');
    });
});
