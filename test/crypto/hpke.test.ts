import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH } from 'node:crypto';
import {
    decodeHpkeCiphertext,
    encodeHpkeCiphertext,
    encodeScalar,
    ErrorCode,
    hpkeOpen,
    hpkeRecipientFromScalar,
    hpkeSeal,
    HpkeInfo,
    P256_SHA256,
    P384_SHA384,
    type HpkeCiphertext,
    type Suite,
} from '@m2m-fabric/protocol';
import { REF_P256, REF_P384, referenceDecap, referenceOpen, type ReferenceSuite } from './hpke-reference.js';
import {
    hex,
    randomScalar,
    rejectsDecode,
    rejectsWithCode,
    SUITES,
    throwsDecode,
    toHexString,
} from './protocol-helpers.js';

/**
 * RFC 9180 Appendix A.3.1: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, mode_base,
 * first encryption (sequence number 0, i.e. what a single-shot seal produces).
 * RFC 9180 has no P-384 vector (its appendix covers X25519, P-256 and P-521 only); P-384 is
 * cross-checked against the independent node:crypto implementation in hpke-reference.ts instead.
 */
const A31 = {
    info: '4f6465206f6e2061204772656369616e2055726e',
    ikmE: '4270e54ffd08d79d5928020af4686d8f6b7d35dbe470265f1f5aa22816ce860e',
    pkEm: '04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325ac98536d7b61a1af4b78e5b7f951c0900be863c403ce65c9bfcb9382657222d18c4',
    skEm: '4995788ef4b9d6132b249ce59a77281493eb39af373d236a1fe415cb0c2d7beb',
    pkRm: '04fe8c19ce0905191ebc298a9245792531f26f0cece2460639e8bc39cb7f706a826a779b4cf969b8a0e539c7f62fb3d30ad6aa8f80e30f1d128aafd68a2ce72ea0',
    skRm: 'f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2',
    sharedSecret: 'c0d26aeab536609a572b07695d933b589dcf363ff9d93c93adea537aeabb8cb8',
    key: '868c066ef58aae6dc589b6cfdd18f97e',
    baseNonce: '4e0bc5018beba4bf004cca59',
    pt: '4265617574792069732074727574682c20747275746820626561757479',
    aad: '436f756e742d30',
    ct: '5ad590bb8baa577f8619db35a36311226a896e7342a6d836d8b7bcd2f20b6c7f9076ac232e3ab2523f39513434',
};

/** The vector's info is not one of the protocol's labels; the module passes any label through as UTF-8. */
const vectorInfo = Buffer.from(A31.info, 'hex').toString('utf8') as HpkeInfo;

function refFor(suite: Suite): ReferenceSuite {
    return suite.id === 'P256-SHA256' ? REF_P256 : REF_P384;
}

void describe('HPKE: RFC 9180 A.3.1 known answers (P-256)', () => {
    void it('builds the recipient from skRm as a scalar and yields pkRm', async () => {
        const recipient = await hpkeRecipientFromScalar(P256_SHA256, BigInt(`0x${A31.skRm}`));
        assert.equal(toHexString(recipient.publicKey), A31.pkRm);
    });

    void it('opens the vector ciphertext', async () => {
        const recipient = await hpkeRecipientFromScalar(P256_SHA256, BigInt(`0x${A31.skRm}`));
        const pt = await hpkeOpen(recipient, vectorInfo, { enc: hex(A31.pkEm), ct: hex(A31.ct) }, hex(A31.aad));
        assert.equal(toHexString(pt), A31.pt);
    });

    void it('seals to the vector ciphertext with the fixed ephemeral ikmE', async () => {
        const c = await hpkeSeal(P256_SHA256, hex(A31.pkRm), vectorInfo, hex(A31.pt), hex(A31.aad), hex(A31.ikmE));
        assert.equal(toHexString(c.enc), A31.pkEm);
        assert.equal(toHexString(c.ct), A31.ct);
    });

    void it('the independent node:crypto reference reproduces the vector (shared secret, key, nonce)', () => {
        const ref = referenceOpen(REF_P256, hex(A31.skRm), hex(A31.pkEm), hex(A31.info), hex(A31.aad), hex(A31.ct));
        assert.equal(ref.sharedSecret.toString('hex'), A31.sharedSecret);
        assert.equal(ref.key.toString('hex'), A31.key);
        assert.equal(ref.baseNonce.toString('hex'), A31.baseNonce);
        assert.equal(ref.plaintext.toString('hex'), A31.pt);
    });

    void it('the DH step equals node:crypto ECDH from both sides', () => {
        const fromRecipient = referenceDecap(REF_P256, hex(A31.pkEm), hex(A31.skRm)).dh;
        const sender = createECDH('prime256v1');
        sender.setPrivateKey(Buffer.from(A31.skEm, 'hex'));
        assert.equal(sender.getPublicKey('hex'), A31.pkEm);
        assert.deepEqual(sender.computeSecret(Buffer.from(A31.pkRm, 'hex')), fromRecipient);
    });
});

for (const suite of SUITES) {
    void describe(`HPKE ${suite.id}`, () => {
        void it('recipient public key equals d*G computed by noble', async () => {
            const d = randomScalar(suite);
            const recipient = await hpkeRecipientFromScalar(suite, d);
            assert.deepEqual(recipient.publicKey, suite.Point.BASE.multiply(d).toBytes(false));
            assert.equal(recipient.suite, suite);
            assert.ok(!JSON.stringify(recipient).includes(d.toString(16)), 'the secret never serialises');
        });

        void it('round trips with every info label, with and without aad, compressed or not', async () => {
            const d = randomScalar(suite);
            const recipient = await hpkeRecipientFromScalar(suite, d);
            const compressed = suite.Point.BASE.multiply(d).toBytes(true);
            for (const info of Object.values(HpkeInfo)) {
                const pt = new TextEncoder().encode(`plaintext for ${info}`);
                const c = await hpkeSeal(suite, recipient.publicKey, info, pt);
                assert.deepEqual(await hpkeOpen(recipient, info, c), pt);
                const aad = new Uint8Array([1, 2, 3]);
                const c2 = await hpkeSeal(suite, compressed, info, pt, aad);
                assert.deepEqual(await hpkeOpen(recipient, info, c2, aad), pt);
                assert.equal(c.enc.length, 1 + 2 * suite.scalarBytes);
            }
        });

        void it('the independent reference opens what the module sealed (DH by node:crypto ECDH)', async () => {
            const d = randomScalar(suite);
            const recipient = await hpkeRecipientFromScalar(suite, d);
            const pt = new Uint8Array([9, 8, 7, 6, 5]);
            const aad = new Uint8Array([0xaa]);
            const c = await hpkeSeal(suite, recipient.publicKey, HpkeInfo.C2, pt, aad);
            const ref = referenceOpen(
                refFor(suite),
                encodeScalar(suite, d),
                c.enc,
                new TextEncoder().encode(HpkeInfo.C2),
                aad,
                c.ct,
            );
            assert.deepEqual(new Uint8Array(ref.plaintext), pt);
        });

        void it('a ciphertext for one label does not open under another (C1 is never a C2)', async () => {
            const recipient = await hpkeRecipientFromScalar(suite, randomScalar(suite));
            const c = await hpkeSeal(suite, recipient.publicKey, HpkeInfo.C1, new Uint8Array([1]));
            await rejectsWithCode(() => hpkeOpen(recipient, HpkeInfo.C2, c), ErrorCode.DecryptionFailed);
            await rejectsWithCode(() => hpkeOpen(recipient, HpkeInfo.C3, c), ErrorCode.DecryptionFailed);
        });

        void it('wrong recipient, wrong aad, tampered ct or enc: DecryptionFailed', async () => {
            const recipient = await hpkeRecipientFromScalar(suite, randomScalar(suite));
            const other = await hpkeRecipientFromScalar(suite, randomScalar(suite));
            const aad = new Uint8Array([7]);
            const c = await hpkeSeal(suite, recipient.publicKey, HpkeInfo.C3, new Uint8Array(32).fill(5), aad);
            await rejectsWithCode(() => hpkeOpen(other, HpkeInfo.C3, c, aad), ErrorCode.DecryptionFailed);
            await rejectsWithCode(() => hpkeOpen(recipient, HpkeInfo.C3, c), ErrorCode.DecryptionFailed);
            await rejectsWithCode(
                () => hpkeOpen(recipient, HpkeInfo.C3, c, new Uint8Array([8])),
                ErrorCode.DecryptionFailed,
            );
            for (const pos of [0, c.ct.length - 17, c.ct.length - 1]) {
                const ct = c.ct.slice();
                ct[pos]! ^= 0x01;
                await rejectsWithCode(
                    () => hpkeOpen(recipient, HpkeInfo.C3, { enc: c.enc, ct }, aad),
                    ErrorCode.DecryptionFailed,
                );
            }
            // A different valid point as enc, an off-curve enc, and a wrong-length enc.
            const enc2 = suite.Point.BASE.multiply(randomScalar(suite)).toBytes(false);
            await rejectsWithCode(
                () => hpkeOpen(recipient, HpkeInfo.C3, { enc: enc2, ct: c.ct }, aad),
                ErrorCode.DecryptionFailed,
            );
            const offCurve = c.enc.slice();
            offCurve[offCurve.length - 1]! ^= 0x01;
            await rejectsWithCode(
                () => hpkeOpen(recipient, HpkeInfo.C3, { enc: offCurve, ct: c.ct }, aad),
                ErrorCode.DecryptionFailed,
            );
            await rejectsWithCode(
                () => hpkeOpen(recipient, HpkeInfo.C3, { enc: c.enc.subarray(1), ct: c.ct }, aad),
                ErrorCode.DecryptionFailed,
            );
        });

        void it('refuses out-of-range recipient scalars and invalid recipient public keys', async () => {
            await rejectsDecode(() => hpkeRecipientFromScalar(suite, 0n), 'scalarOutOfRange');
            await rejectsDecode(() => hpkeRecipientFromScalar(suite, suite.n), 'scalarOutOfRange');
            const bad = suite.Point.BASE.toBytes(false);
            bad[bad.length - 1]! ^= 1;
            await rejectsDecode(() => hpkeSeal(suite, bad, HpkeInfo.C1, new Uint8Array(1)), 'offCurve');
        });

        void it('canonical ciphertext encoding round trips and rejects malformed bytes', async () => {
            const recipient = await hpkeRecipientFromScalar(suite, randomScalar(suite));
            const c = await hpkeSeal(suite, recipient.publicKey, HpkeInfo.C1, new Uint8Array(suite.pointBytes));
            const bytes = encodeHpkeCiphertext(suite, c);
            const back: HpkeCiphertext = decodeHpkeCiphertext(suite, bytes);
            assert.deepEqual(encodeHpkeCiphertext(suite, back), bytes);
            assert.deepEqual(await hpkeOpen(recipient, HpkeInfo.C1, back), new Uint8Array(suite.pointBytes));

            const encLen = 1 + 2 * suite.scalarBytes;
            throwsDecode(() => decodeHpkeCiphertext(suite, bytes.subarray(0, bytes.length - 1)), 'truncated');
            throwsDecode(() => decodeHpkeCiphertext(suite, bytes.subarray(0, encLen - 1)), 'truncated');
            throwsDecode(() => decodeHpkeCiphertext(suite, new Uint8Array([...bytes, 0])), 'trailingBytes');
            const compressedPrefix = bytes.slice();
            compressedPrefix[0] = 0x02;
            throwsDecode(() => decodeHpkeCiphertext(suite, compressedPrefix), 'nonCanonical');
            const offCurve = bytes.slice();
            offCurve[encLen - 1]! ^= 0x01;
            throwsDecode(() => decodeHpkeCiphertext(suite, offCurve), 'offCurve');
            // A length prefix shorter than the AEAD tag.
            const shortCt = new Uint8Array([...bytes.subarray(0, encLen), 0, 15, ...new Uint8Array(15)]);
            throwsDecode(() => decodeHpkeCiphertext(suite, shortCt), 'invalidValue');
            // The other suite's encoding is the wrong size for this one.
            const otherSuite = suite === P256_SHA256 ? P384_SHA384 : P256_SHA256;
            assert.throws(() => decodeHpkeCiphertext(otherSuite, bytes));
        });
    });
}
