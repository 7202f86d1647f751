/**
 * The IEEE 1609.2 ECQV variant (suite P256-SHA256-IEEE1609.2): real 1609.2 implicit certificates and
 * the KISA V2X vectors reconstruct with it, SEC 4's Hn rejects them, and the project's own
 * certificates issue and reconstruct under both variants. Vectors: test/crypto/vectors/ieee1609.ts.
 */
import assert from 'node:assert/strict';
import { createECDH } from 'node:crypto';
import { describe, it } from 'node:test';
import {
    ErrorCode,
    P256_SHA256,
    P256_SHA256_IEEE1609,
    P384_SHA384_IEEE1609,
    VerificationError,
    createCertificateRequest,
    ecqvCertU,
    ecqvExtractPublicKey,
    ecqvHn,
    ecqvReconstructPrivateKey,
    ecqvRequestKey,
    ecqvVerifyIssuance,
    dynamicIdentity,
    encodeEcqvCertificate,
    encodeEcqvIssuer,
    fromHex,
    getSuite,
    ieee1609CertU,
    issueCertificates,
    suiteFromTag,
    toHex,
    verifyIssuedCertificate,
    type Point,
    type Suite,
} from '@m2m-fabric/protocol';
import { flipBit, hexToBigInt, randomScalar } from './helpers.js';
import { KISA_P256_ECQV_FULL_HASH as KISA1, SCMS_P256_ECQV as SCMS } from './vectors/ecqv.js';
import { GHS_1609_VECTORS, KISA_P256_VECTOR_2 as KISA2 } from './vectors/ieee1609.js';

const suite = P256_SHA256_IEEE1609;
const point = (s: Suite, hex: string): Point => s.Point.fromHex(hex);
const isInvalidIssuance = (err: unknown): boolean =>
    err instanceof VerificationError && err.code === ErrorCode.InvalidIssuance;

/** OpenSSL (node:crypto), an implementation independent of noble: the public key of d. */
function opensslPublicKey(d: bigint): string {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(Buffer.from(d.toString(16).padStart(64, '0'), 'hex'));
    return ecdh.getPublicKey('hex', 'uncompressed');
}

void describe('IEEE 1609.2 ECQV variant: suites', () => {
    void it('the 1609.2 suites are their own suites (id, tag) on the same curves', () => {
        assert.equal(getSuite('P256-SHA256-IEEE1609.2'), P256_SHA256_IEEE1609);
        assert.equal(suiteFromTag(3), P256_SHA256_IEEE1609);
        assert.equal(suiteFromTag(4), P384_SHA384_IEEE1609);
        assert.equal(P256_SHA256_IEEE1609.ecqv, 'ieee1609.2');
        assert.equal(P256_SHA256.ecqv, 'sec4');
        assert.equal(P256_SHA256_IEEE1609.n, P256_SHA256.n);
    });

    void it('e is the whole digest mod n under 1609.2, its leftmost 255 bits under SEC 4', () => {
        const certU = fromHex(KISA1.certU);
        const digest = hexToBigInt(KISA1.certUHash);
        assert.equal(ecqvHn(suite, certU), digest % suite.n);
        assert.equal(ecqvHn(P256_SHA256, certU), digest >> 1n);
    });
});

void describe('IEEE 1609.2 ECQV variant: KISA V2X vectors (CertU = tbsCert || P_U)', () => {
    const QCA = point(suite, KISA2.QCA);
    for (const v of [
        { name: 'KISA vector 1', kU: SCMS.kU, certU: KISA1.certU, r: KISA1.r, dU: KISA1.dU, PU: '02' + SCMS.PUx },
        { name: 'KISA vector 2', kU: KISA2.kU, certU: KISA2.certU, r: KISA2.r, dU: KISA2.dU, PU: KISA2.PU },
    ]) {
        void it(`${v.name}: reconstruction gives the vector's d_U; SEC 4's Hn rejects it`, () => {
            const certU = fromHex(v.certU);
            const PU = point(suite, v.PU);
            const dU = ecqvReconstructPrivateKey(suite, certU, PU, hexToBigInt(v.r), hexToBigInt(v.kU), QCA);
            assert.equal(dU, hexToBigInt(v.dU));
            const RU = suite.Point.BASE.multiply(hexToBigInt(v.kU));
            assert.ok(ecqvVerifyIssuance(suite, certU, RU, PU, hexToBigInt(v.r), QCA));
            assert.ok(!ecqvVerifyIssuance(P256_SHA256, certU, RU, PU, hexToBigInt(v.r), QCA));
            assert.throws(
                () => ecqvReconstructPrivateKey(P256_SHA256, certU, PU, hexToBigInt(v.r), hexToBigInt(v.kU), QCA),
                isInvalidIssuance,
            );
        });
    }

    void it("KISA vector 2: Q_U = e*P_U + Q_CA is the vector's, and OpenSSL derives it from d_U", () => {
        const QU = ecqvExtractPublicKey(suite, fromHex(KISA2.certU), point(suite, KISA2.PU), point(suite, KISA2.QCA));
        assert.equal(toHex(QU.toBytes(false)), KISA2.QU);
        assert.equal(opensslPublicKey(hexToBigInt(KISA2.dU)), KISA2.QU);
        assert.equal(toHex(suite.hash(fromHex(KISA2.certU))), KISA2.certUHash);
    });
});

void describe('IEEE 1609.2 ECQV variant: real 1609.2 pseudonym certificates (GHS SCMS)', () => {
    for (const v of GHS_1609_VECTORS) {
        const certificate = fromHex(v.certificate);
        const tbs = certificate.subarray(v.tbsOffset);
        const issuer = fromHex(v.issuerCertificate);
        const PU = point(suite, v.PU);
        const QCA = point(suite, v.QCA);
        const certU = ieee1609CertU(suite, tbs, issuer);

        void it(`${v.name}: the certificate's fields are what the vector says`, () => {
            // The issuer digest is SHA-256 of the PCA certificate and its tail is the HashedId8 in the certificate.
            assert.equal(toHex(suite.hash(issuer)), v.issuerHash);
            assert.equal(toHex(certificate.subarray(4, 12)), v.issuerHash.slice(-16));
            // ToBeSignedCertificate ends with the reconstruction value: 81 (reconstructionValue) 82 (compressed-y-0) || x(P_U).
            assert.equal(toHex(tbs.subarray(-34)), '8182' + v.PU.slice(2, 66));
            assert.equal(PU.toAffine().y % 2n, 0n);
            // The PCA certificate carries Q_CA (compressed-y-0 verification key).
            assert.ok(v.issuerCertificate.includes('8082' + v.QCA.slice(2, 66)));
            assert.deepEqual(certU, ieee1609CertU(suite, tbs, fromHex(v.issuerHash), true));
        });

        void it(`${v.name}: d_U and Q_U reconstruct to the vector's; OpenSSL agrees`, () => {
            const dU = ecqvReconstructPrivateKey(suite, certU, PU, hexToBigInt(v.r), hexToBigInt(v.kU), QCA);
            assert.equal(dU, hexToBigInt(v.dU));
            const QU = ecqvExtractPublicKey(suite, certU, PU, QCA);
            assert.equal(toHex(QU.toBytes(false)), v.QU);
            assert.equal(opensslPublicKey(dU), v.QU);
        });

        void it(`${v.name}: SEC 4's Hn, another issuer or a changed tbs is rejected`, () => {
            const r = hexToBigInt(v.r);
            const kU = hexToBigInt(v.kU);
            assert.throws(() => ecqvReconstructPrivateKey(P256_SHA256, certU, PU, r, kU, QCA), isInvalidIssuance);
            const otherIssuer = ieee1609CertU(suite, tbs, flipBit(issuer, 20));
            assert.throws(() => ecqvReconstructPrivateKey(suite, otherIssuer, PU, r, kU, QCA), isInvalidIssuance);
            const otherTbs = ieee1609CertU(suite, flipBit(tbs, 3), issuer);
            assert.throws(() => ecqvReconstructPrivateKey(suite, otherTbs, PU, r, kU, QCA), isInvalidIssuance);
        });
    }

    void it('the issuer digest must have the hash length', () => {
        assert.throws(() => ieee1609CertU(suite, new Uint8Array(4), new Uint8Array(31), true), RangeError);
    });
});

for (const s of [P256_SHA256_IEEE1609, P384_SHA384_IEEE1609]) {
    void describe(`the project's certificates under ${s.id}`, () => {
        void it('issue, verify and reconstruct; e binds the issuing key; a SEC 4 suite rejects them', () => {
            const dc = randomScalar(s);
            const Qc = s.Point.BASE.multiply(dc);
            const secrets = { w: randomScalar(s), equipmentId: 'press-7' };
            const request = createCertificateRequest(s, secrets, 1n, 2);
            const [obj] = issueCertificates(s, dc, request);
            assert.ok(obj);
            verifyIssuedCertificate(s, obj, Qc);
            const certU = ecqvCertU(s, obj.idCert, obj.cert, Qc);
            const encoded = encodeEcqvCertificate(s, obj.idCert, obj.cert);
            assert.deepEqual(certU, ieee1609CertU(s, encoded, encodeEcqvIssuer(s, Qc)));
            const { k } = ecqvRequestKey(s, dynamicIdentity(s, secrets, 1n), 1n, secrets.w);
            const d = ecqvReconstructPrivateKey(s, certU, obj.cert, obj.rAux, k, Qc);
            assert.ok(s.Point.BASE.multiply(d).equals(ecqvExtractPublicKey(s, certU, obj.cert, Qc)));
            // The same numbers under the SEC 4 hash (the certificate encoding alone) do not verify.
            const sec4 = s.webCryptoCurve === 'P-256' ? P256_SHA256 : getSuite('P384-SHA384');
            assert.ok(!ecqvVerifyIssuance(sec4, encoded, obj.idCert, obj.cert, obj.rAux, Qc));
            // Another CA key changes e, so the issuance equation fails even with r adjusted for d_c alone.
            const other = s.Point.BASE.multiply(randomScalar(s));
            assert.throws(() => verifyIssuedCertificate(s, obj, other), isInvalidIssuance);
        });
    });
}
