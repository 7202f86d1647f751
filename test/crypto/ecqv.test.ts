import assert from 'node:assert/strict';
import { createECDH } from 'node:crypto';
import { describe, it } from 'node:test';
import {
    ErrorCode,
    bigIntToBytes,
    P256_SHA256,
    VerificationError,
    concatBytes,
    decodeEcqvCertificate,
    decodePoint,
    ecqvExtractPublicKey,
    ecqvGenerateCertificate,
    ecqvHn,
    ecqvReconstructPrivateKey,
    ecqvRequestKey,
    ecqvVerifyIssuance,
    encodeEcqvCertificate,
    encodePoint,
    fromHex,
    toHex,
    type Point,
    type Suite,
} from '@m2m-fabric/protocol';
import { SUITES, assertDecodeError, flipBit, hexToBigInt, randomScalar, utf8 } from './helpers.js';
import { KISA_P256_ECQV_FULL_HASH as KISA, SCMS_P256_ECQV as V } from './vectors/ecqv.js';

function assertInvalidIssuance(fn: () => unknown): void {
    assert.throws(fn, (err: unknown) => err instanceof VerificationError && err.code === ErrorCode.InvalidIssuance);
}

void describe('ECQV known answers (SEC 4, SCMS P-256 vector)', () => {
    const suite = P256_SHA256;
    const G = suite.Point.BASE;
    const point = (x: string, y: string): Point => suite.Point.fromAffine({ x: hexToBigInt(x), y: hexToBigInt(y) });
    const QCA = point(V.QCAx, V.QCAy);
    const RU = point(V.RUx, V.RUy);
    const PU = point(V.PUx, V.PUy);
    const tbs = fromHex(V.tbsCert);
    const encode = (p: Point): Uint8Array => concatBytes(tbs, encodePoint(suite, p));

    void it('the vector is self-consistent (key pairs)', () => {
        assert.ok(G.multiply(hexToBigInt(V.dCA)).equals(QCA));
        assert.ok(G.multiply(hexToBigInt(V.kU)).equals(RU));
    });

    void it('Hn is the leftmost 255 bits of SHA-256(CertU)', () => {
        const digest = hexToBigInt(toHex(suite.hash(fromHex(V.certU))));
        assert.equal(ecqvHn(suite, fromHex(V.certU)), digest >> 1n);
    });

    void it('certificate generation reproduces P_U, CertU and r', () => {
        const out = ecqvGenerateCertificate(suite, RU, hexToBigInt(V.dCA), hexToBigInt(V.k), encode);
        assert.ok(out.cert.equals(PU));
        assert.equal(toHex(out.certU), V.certU);
        assert.equal(out.r, hexToBigInt(V.r));
    });

    void it('private-key reconstruction reproduces d_U and matches the extracted public key', () => {
        const certU = fromHex(V.certU);
        const dU = ecqvReconstructPrivateKey(suite, certU, PU, hexToBigInt(V.r), hexToBigInt(V.kU), QCA);
        assert.equal(dU, hexToBigInt(V.dU));
        assert.ok(ecqvExtractPublicKey(suite, certU, PU, QCA).equals(G.multiply(dU)));
        assert.ok(ecqvVerifyIssuance(suite, certU, RU, PU, hexToBigInt(V.r), QCA));
    });

    void it('the KISA vector (e = full hash mod n) is a different Hn and is rejected by ours', () => {
        const certU = fromHex(KISA.certU);
        const fullHash = hexToBigInt(toHex(suite.hash(certU)));
        assert.equal(fullHash, hexToBigInt(KISA.certUHash));
        // The KISA numbers satisfy SEC 4's equations with e = H mod n ...
        const eFull = fullHash % suite.n;
        assert.equal((eFull * hexToBigInt(V.k) + hexToBigInt(V.dCA)) % suite.n, hexToBigInt(KISA.r));
        assert.equal((eFull * hexToBigInt(V.kU) + hexToBigInt(KISA.r)) % suite.n, hexToBigInt(KISA.dU));
        // ... while ecqvHn keeps 255 bits, so its r differs and reconstruction from KISA's r fails.
        assert.notEqual(ecqvHn(suite, certU), eFull);
        assert.ok(!ecqvVerifyIssuance(suite, certU, RU, PU, hexToBigInt(KISA.r), QCA));
        assertInvalidIssuance(() =>
            ecqvReconstructPrivateKey(suite, certU, PU, hexToBigInt(KISA.r), hexToBigInt(V.kU), QCA),
        );
    });

    void it('the reconstructed key agrees with node:crypto (OpenSSL) key derivation', () => {
        const ecdh = createECDH('prime256v1');
        ecdh.setPrivateKey(fromHex(V.dU));
        const QU = ecqvExtractPublicKey(suite, fromHex(V.certU), PU, QCA);
        assert.equal(ecdh.getPublicKey('hex', 'compressed'), toHex(encodePoint(suite, QU)));
    });
});

function issue(suite: Suite): {
    dc: bigint;
    Qc: Point;
    k: bigint;
    R: Point;
    cert: Point;
    certU: Uint8Array;
    r: bigint;
} {
    const dc = randomScalar(suite);
    const Qc = suite.Point.BASE.multiply(dc);
    const { k, idCert: R } = ecqvRequestKey(suite, utf8('ID_i'), 5n, randomScalar(suite));
    const out = ecqvGenerateCertificate(suite, R, dc, randomScalar(suite), (P) => encodeEcqvCertificate(suite, R, P));
    return { dc, Qc, k, R, ...out };
}

for (const suite of SUITES) {
    void describe(`ECQV properties (${suite.id})`, () => {
        const G = suite.Point.BASE;

        void it('Hn keeps floor(log2 n) bits', () => {
            const certU = utf8('x');
            const digest = hexToBigInt(toHex(suite.hash(certU)));
            assert.equal(ecqvHn(suite, certU), digest >> 1n);
            assert.ok(ecqvHn(suite, certU) < suite.n);
        });

        void it('for random inputs, d_U*G equals the extracted Q_U and issuance verifies', () => {
            for (let i = 0; i < 4; i++) {
                const c = issue(suite);
                const d = ecqvReconstructPrivateKey(suite, c.certU, c.cert, c.r, c.k, c.Qc);
                const Q = ecqvExtractPublicKey(suite, c.certU, c.cert, c.Qc);
                assert.ok(G.multiply(d).equals(Q));
                assert.ok(ecqvVerifyIssuance(suite, c.certU, c.R, c.cert, c.r, c.Qc));
                // Paper eq. 12 spelled out: d_i = e*k_i + r_aux.
                assert.equal(d, (ecqvHn(suite, c.certU) * c.k + c.r) % suite.n);
                // OpenSSL derives the same public key from d_U.
                const ecdh = createECDH(suite.id === 'P256-SHA256' ? 'prime256v1' : 'secp384r1');
                ecdh.setPrivateKey(bigIntToBytes(d, suite.scalarBytes));
                assert.equal(ecdh.getPublicKey('hex', 'compressed'), toHex(encodePoint(suite, Q)));
            }
        });

        void it('issuance check rejects every tweaked field', () => {
            const c = issue(suite);
            const other = G.multiply(randomScalar(suite));
            assert.ok(ecqvVerifyIssuance(suite, c.certU, c.R, c.cert, c.r, c.Qc));
            assert.ok(!ecqvVerifyIssuance(suite, flipBit(c.certU, c.certU.length - 1), c.R, c.cert, c.r, c.Qc));
            assert.ok(!ecqvVerifyIssuance(suite, c.certU, other, c.cert, c.r, c.Qc));
            assert.ok(!ecqvVerifyIssuance(suite, c.certU, c.R, other, c.r, c.Qc));
            assert.ok(!ecqvVerifyIssuance(suite, c.certU, c.R, c.cert, (c.r + 1n) % suite.n, c.Qc));
            assert.ok(!ecqvVerifyIssuance(suite, c.certU, c.R, c.cert, c.r, other));
            assert.ok(!ecqvVerifyIssuance(suite, c.certU, c.R, c.cert, 0n, c.Qc));
            assert.ok(!ecqvVerifyIssuance(suite, c.certU, c.R, c.cert, suite.n, c.Qc));
            assert.ok(!ecqvVerifyIssuance(suite, c.certU, c.R, c.cert, -1n, c.Qc));
            assert.ok(!ecqvVerifyIssuance(suite, c.certU, c.R, c.cert, c.r, suite.Point.ZERO));
            // P_U == R_U (r_c = 0) would make r = d_c public: refused even though the equation holds.
            const e = ecqvHn(suite, c.certU);
            assert.ok(G.multiply(c.dc).equals(c.R.subtract(c.R).multiplyUnsafe(e).add(c.Qc)));
            assert.ok(!ecqvVerifyIssuance(suite, c.certU, c.R, c.R, c.dc, c.Qc));
        });

        void it('private-key reconstruction rejects a wrong r, key, CertU or CA key', () => {
            const c = issue(suite);
            assertInvalidIssuance(() =>
                ecqvReconstructPrivateKey(suite, c.certU, c.cert, (c.r + 1n) % suite.n, c.k, c.Qc),
            );
            assertInvalidIssuance(() => ecqvReconstructPrivateKey(suite, c.certU, c.cert, c.r, c.k + 1n, c.Qc));
            assertInvalidIssuance(() => ecqvReconstructPrivateKey(suite, flipBit(c.certU, 3), c.cert, c.r, c.k, c.Qc));
            assertInvalidIssuance(() => ecqvReconstructPrivateKey(suite, c.certU, c.cert, c.r, c.k, G));
            assertInvalidIssuance(() => ecqvReconstructPrivateKey(suite, c.certU, c.cert, suite.n, c.k, c.Qc));
        });

        void it('request key is H(ID_i, i*w): deterministic and sensitive to every input', () => {
            const w = randomScalar(suite);
            const a = ecqvRequestKey(suite, utf8('ID'), 3n, w);
            assert.equal(a.k, ecqvRequestKey(suite, utf8('ID'), 3n, w).k);
            assert.ok(G.multiply(a.k).equals(a.idCert));
            assert.notEqual(a.k, ecqvRequestKey(suite, utf8('ID'), 4n, w).k);
            assert.notEqual(a.k, ecqvRequestKey(suite, utf8('Id'), 3n, w).k);
            assert.notEqual(a.k, ecqvRequestKey(suite, utf8('ID'), 3n, (w + 1n) % suite.n).k);
            assert.throws(() => ecqvRequestKey(suite, utf8('ID'), 3n, 0n), RangeError);
        });

        void it('CertU encoding round-trips and rejects malformed input', () => {
            const c = issue(suite);
            const decoded = decodeEcqvCertificate(suite, c.certU);
            assert.ok(decoded.idCert.equals(c.R) && decoded.cert.equals(c.cert));
            assert.equal(c.certU.length, 2 + 2 * suite.pointBytes);
            assert.deepEqual(c.certU.subarray(0, 2), Uint8Array.of(1, suite.tag));
            assertDecodeError(() => decodeEcqvCertificate(suite, flipBit(c.certU, 0, 1)), 'unknownVersion');
            const otherSuite = SUITES.find((s) => s !== suite);
            assert.ok(otherSuite);
            const wrongTag = c.certU.slice();
            wrongTag[1] = otherSuite.tag;
            assertDecodeError(() => decodeEcqvCertificate(suite, wrongTag), 'unknownSuite');
            wrongTag[1] = 9;
            assertDecodeError(() => decodeEcqvCertificate(suite, wrongTag), 'unknownSuite');
            assertDecodeError(() => decodeEcqvCertificate(suite, c.certU.subarray(0, -1)), 'truncated');
            assertDecodeError(
                () => decodeEcqvCertificate(suite, concatBytes(c.certU, Uint8Array.of(0))),
                'trailingBytes',
            );
            const badPrefix = c.certU.slice();
            badPrefix[2] = 0x04;
            assertDecodeError(() => decodeEcqvCertificate(suite, badPrefix), 'nonCanonical');
            assert.ok(decodePoint(suite, c.certU.subarray(2, 2 + suite.pointBytes)).equals(c.R));
        });

        void it('generation refuses out-of-range keys', () => {
            const R = G.multiply(randomScalar(suite));
            const enc = (P: Point): Uint8Array => encodePoint(suite, P);
            assert.throws(() => ecqvGenerateCertificate(suite, R, 0n, 1n, enc), RangeError);
            assert.throws(() => ecqvGenerateCertificate(suite, R, 1n, suite.n, enc), RangeError);
            // r_c = -k_U makes P_U the identity: SEC 4 requires another r_c.
            const k = randomScalar(suite);
            assert.throws(() => ecqvGenerateCertificate(suite, G.multiply(k), 1n, suite.n - k, enc), RangeError);
        });
    });
}
