/**
 * Forward-secret traffic keys (chaincode/src/protocol/forward-secrecy.ts): the HKDF key schedule
 * against an independent HKDF and ECDH (@noble/hashes, @noble/curves), pinned known answers,
 * erasure of the ephemeral secrets, downgrade refusal, and a recorded session whose traffic stays
 * closed to someone who later holds d_c, w and everything the device keeps after the session.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256, sha384 } from '@noble/hashes/sha2.js';
import {
    EphemeralKey,
    ErrorCode,
    FrameType,
    P256_SHA256,
    ProtocolError,
    SessionChannel,
    computeSymKey,
    cspTrafficKey,
    createActivation,
    createCertificateRequest,
    createM1,
    createM4,
    decodeC2Plaintext,
    decodeFsConfirm,
    deriveTrafficKey,
    deviceTrafficKey,
    dynamicIdentity,
    ecqvRequestKey,
    encodeC2Plaintext,
    encodeCertificateObject,
    encodeFsConfirm,
    encodeM1,
    encodeM3,
    encodeM4,
    encodePoint,
    hpkeRecipientFromScalar,
    issueCertificates,
    openM1,
    openM4,
    processM2,
    symKeyCommitment,
    toHex,
    trafficKeyInfo,
    verifyActivation,
    type Point,
    type Suite,
} from '@m2m-fabric/protocol';
import { SUITES, hex, randomScalar } from './protocol-helpers.js';

const scalarBytes = (suite: Suite, k: bigint): Uint8Array => hex(k.toString(16).padStart(2 * suite.scalarBytes, '0'));
/** ECDH x-coordinate by noble (independent of the module's OpenSSL path). */
const nobleX = (suite: Suite, k: bigint, P: Point): Uint8Array =>
    P.multiply(k)
        .toBytes(false)
        .subarray(1, 1 + suite.scalarBytes);
const nobleHkdf = (suite: Suite, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, len: number): Uint8Array =>
    suite.hashBytes === 32 ? hkdf(sha256, ikm, salt, info, len) : hkdf(sha384, ikm, salt, info, len);

function isCode(code: ErrorCode) {
    return (e: unknown): boolean => {
        assert.ok(e instanceof ProtocolError, `expected ProtocolError, got ${String(e)}`);
        assert.equal(e.code, code, e.message);
        return true;
    };
}

void describe('forward secrecy: HKDF key schedule', () => {
    void it('noble HKDF (the reference) reproduces RFC 5869 A.1', () => {
        const okm = hkdf(
            sha256,
            hex('0b'.repeat(22)),
            hex('000102030405060708090a0b0c'),
            hex('f0f1f2f3f4f5f6f7f8f9'),
            42,
        );
        assert.equal(
            toHex(okm),
            '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
        );
    });

    for (const suite of SUITES) {
        void it(`${suite.id}: K_i = HKDF(salt symKey_i, IKM x(x_D*E_C), info) as an independent HKDF/ECDH computes it`, () => {
            const G = suite.Point.BASE;
            const xD = randomScalar(suite);
            const xC = randomScalar(suite);
            const ED = G.multiply(xD);
            const EC = G.multiply(xC);
            const idCert = G.multiply(randomScalar(suite));
            const symKey = suite.hash(new TextEncoder().encode('symKey'));
            const device = EphemeralKey.fromSecret(suite, scalarBytes(suite, xD));
            const key = deviceTrafficKey(suite, device, symKey, idCert, EC);
            const z = nobleX(suite, xC, ED);
            const info = new Uint8Array([
                ...new TextEncoder().encode('M2M-V1-FS-TRAFFIC-KEY'),
                0,
                ...new TextEncoder().encode(suite.id),
                0,
                ...encodePoint(suite, idCert),
                ...encodePoint(suite, ED),
                ...encodePoint(suite, EC),
            ]);
            assert.deepEqual(trafficKeyInfo(suite, idCert, ED, EC), info);
            assert.deepEqual(key, nobleHkdf(suite, z, symKey, info, suite.hashBytes));
            assert.equal(key.length, suite.hashBytes);
            // Both ends agree.
            const csp = EphemeralKey.fromSecret(suite, scalarBytes(suite, xC));
            assert.deepEqual(deviceTrafficKey(suite, csp, symKey, idCert, ED).length, suite.hashBytes);
        });
    }

    void it('pinned known answer (P-256): fixed x_D, x_C, symKey_i, IDCert_i', () => {
        const suite = P256_SHA256;
        const G = suite.Point.BASE;
        const xD = 0x1f3a6b2c9d8e7f60514233241506f7e8d9cab0a1b2c3d4e5f60718293a4b5c6dn;
        const xC = 0x2a4c6e8091b3d5f7092b4d6f8193a5c7e9f10213243546576879a0b1c2d3e4f5n;
        const idCert = G.multiply(7n);
        const symKey = hex('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff');
        const key = deviceTrafficKey(
            suite,
            EphemeralKey.fromSecret(suite, scalarBytes(suite, xD)),
            symKey,
            idCert,
            G.multiply(xC),
        );
        assert.equal(toHex(key), KAT_P256);
        assert.equal(toHex(encodePoint(suite, G.multiply(xD))), KAT_P256_ED);
        const other = deriveTrafficKey(
            suite,
            symKey,
            nobleX(suite, xD, G.multiply(xC)),
            idCert,
            G.multiply(xD),
            G.multiply(xC),
        );
        assert.deepEqual(other, key);
    });

    void it('every input changes K_i', () => {
        const suite = P256_SHA256;
        const G = suite.Point.BASE;
        const [a, b, c] = [G.multiply(3n), G.multiply(5n), G.multiply(11n)];
        const symKey = new Uint8Array(32).fill(9);
        const z = new Uint8Array(32).fill(4);
        const base = toHex(deriveTrafficKey(suite, symKey, z, a, b, c));
        const variants = [
            deriveTrafficKey(suite, new Uint8Array(32).fill(8), z, a, b, c),
            deriveTrafficKey(suite, symKey, new Uint8Array(32).fill(5), a, b, c),
            deriveTrafficKey(suite, symKey, z, b, a, c),
            deriveTrafficKey(suite, symKey, z, a, c, b),
            deriveTrafficKey(suite, symKey, z, a, b, a),
        ];
        for (const v of variants) assert.notEqual(toHex(v), base);
        assert.throws(() => deriveTrafficKey(suite, symKey.subarray(1), z, a, b, c), RangeError);
        assert.throws(() => deriveTrafficKey(suite, symKey, z.subarray(1), a, b, c), RangeError);
    });
});

void describe('forward secrecy: ephemeral keys and downgrade', () => {
    const suite = P256_SHA256;
    for (const suite of SUITES) {
        void it(`${suite.id}: exportSecret gives x_D as scalarBytes, and fromSecret of it the same E_D and Z_e (a retried certificate)`, () => {
            const G = suite.Point.BASE;
            for (const x of [randomScalar(suite), 1n, 0xffn]) {
                const first = EphemeralKey.fromSecret(suite, scalarBytes(suite, x));
                const exported = first.exportSecret();
                assert.equal(exported.length, suite.scalarBytes, 'left-padded to scalarBytes');
                assert.deepEqual(exported, scalarBytes(suite, x));
                const again = EphemeralKey.fromSecret(suite, exported);
                assert.ok(
                    exported.every((b) => b === 0),
                    'the caller buffer is zeroed',
                );
                assert.ok(again.share.equals(first.share) && again.share.equals(G.multiply(x)));
                const peer = G.multiply(randomScalar(suite));
                assert.deepEqual(first.agree(peer), again.agree(peer));
                assert.throws(() => first.exportSecret(), RangeError, 'nothing to export once erased');
            }
            const fresh = EphemeralKey.generate(suite);
            assert.ok(EphemeralKey.fromSecret(suite, fresh.exportSecret()).share.equals(fresh.share));
        });
    }

    void it('an ephemeral key works once, then is erased', () => {
        const a = EphemeralKey.generate(suite);
        const b = EphemeralKey.generate(suite);
        assert.ok(!a.erased);
        const z1 = a.agree(b.share);
        assert.ok(a.erased);
        assert.throws(() => a.agree(b.share), RangeError);
        assert.deepEqual(b.agree(a.share), z1);
        const c = EphemeralKey.generate(suite);
        c.erase();
        c.erase();
        assert.throws(() => c.agree(a.share), RangeError);
        const d = EphemeralKey.generate(suite);
        assert.throws(() => d.agree(suite.Point.ZERO), isCode(ErrorCode.MalformedInput));
        assert.ok(d.erased, 'a refused share still erases x');
    });

    void it('a Confirm without E_C, or a C2 without E_D, is a typed downgrade error', async () => {
        const frame = await (
            await SessionChannel.create(suite, new Uint8Array(32), 'csp', new Uint8Array(16))
        ).seal(FrameType.Confirm, new Uint8Array());
        assert.throws(() => decodeFsConfirm(suite, frame), isCode(ErrorCode.ForwardSecrecyRequired));
        assert.throws(() => decodeFsConfirm(suite, new Uint8Array()), isCode(ErrorCode.ForwardSecrecyRequired));
        const share = EphemeralKey.generate(suite).share;
        const wire = encodeFsConfirm(suite, share, frame);
        assert.ok(decodeFsConfirm(suite, wire).cspShare.equals(share));
        assert.deepEqual(decodeFsConfirm(suite, wire).frame, frame);
        assert.throws(
            () => decodeFsConfirm(suite, wire.subarray(0, wire.length - 1)),
            (e: unknown) => e instanceof ProtocolError,
        );
        // C2 of the paper's form (no E_D) still decodes, and the CSP refuses it.
        const c2 = decodeC2Plaintext(suite, encodeC2Plaintext(suite, { counter: 3n, dynamicId: new Uint8Array(32) }));
        assert.equal(c2.ephemeralShare, undefined);
        assert.throws(
            () => cspTrafficKey(suite, new Uint8Array(32), share, c2.ephemeralShare),
            isCode(ErrorCode.ForwardSecrecyRequired),
        );
    });
});

for (const suite of SUITES) {
    void describe(`forward secrecy: a recorded session stays closed after compromise (${suite.id})`, () => {
        void it('d_c, w and the device state after the session do not give the traffic key', async () => {
            const G = suite.Point.BASE;
            const dC = randomScalar(suite);
            const dF = randomScalar(suite);
            const QC = G.multiply(dC);
            const QF = G.multiply(dF);
            const fogId = 'fog-1';
            const secrets = { w: randomScalar(suite), equipmentId: 'press-9' };
            const [obj] = issueCertificates(suite, dC, createCertificateRequest(suite, secrets, 1n, 1));
            assert.ok(obj);
            const objBytes = encodeCertificateObject(obj);

            // ---- The session; `transcript` is everything that crossed a network, `ledger` what chaincode saw.
            const { m1, session } = await createM1(suite, secrets, 1n, fogId, QF, QC);
            await openM1(suite, await hpkeRecipientFromScalar(suite, dF), m1);
            const device = processM2(session, objBytes, QC, fogId);
            const activation = createActivation(suite, dF, objBytes, m1, device.m3);
            const verified = verifyActivation(suite, activation, obj.counterProof.B, QC, QF, fogId);
            const m4 = await createM4(suite, fogId, dF, m1, verified.primaryHash, QC, obj.idCert);
            const opened = await openM4(suite, await hpkeRecipientFromScalar(suite, dC), QF, m4);
            const cspSymKey = computeSymKey(suite, dC, device.publicKey);
            assert.deepEqual(symKeyCommitment(suite, cspSymKey), verified.symKeyCommitment, 'the ledger check holds');
            const csp = cspTrafficKey(suite, cspSymKey, opened.idCert, opened.ephemeralShare);
            const routeId = new Uint8Array(16).fill(1);
            const cspChannel = await SessionChannel.create(suite, csp.trafficKey, 'csp', routeId);
            const confirm = encodeFsConfirm(suite, csp.cspShare, await cspChannel.seal(FrameType.Confirm, routeId));
            // Device: E_C from the Confirm, K_i, the Confirm opens.
            const fsConfirm = decodeFsConfirm(suite, confirm);
            const deviceKey = deviceTrafficKey(
                suite,
                session.ephemeral,
                device.symKey,
                session.idCert,
                fsConfirm.cspShare,
            );
            assert.deepEqual(deviceKey, csp.trafficKey);
            const deviceChannel = await SessionChannel.create(suite, deviceKey, 'device', routeId);
            assert.equal((await deviceChannel.open(fsConfirm.frame)).type, FrameType.Confirm);
            const secret = new TextEncoder().encode('recipe: 210 C for 14 min');
            const upload = await deviceChannel.seal(FrameType.Upload, secret);
            assert.deepEqual((await cspChannel.open(upload)).payload, secret);
            const transcript = {
                m1: encodeM1(m1),
                m2: objBytes,
                m3: encodeM3(device.m3),
                m4: encodeM4(m4),
                confirm,
                upload,
            };
            assert.ok(transcript.m1.length > 0 && transcript.m4.length > 0);
            // Both ephemeral secrets are gone.
            assert.ok(session.ephemeral.erased);
            assert.throws(() => session.ephemeral.agree(csp.cspShare), RangeError);

            // ---- Later compromise: d_c, w, the equipment id and the counter (the device state file
            // after the session keeps w, its id and the next counter; no session key, no x_D).
            const attacker = { dC, w: secrets.w, equipmentId: secrets.equipmentId, counter: 1n };
            // The attacker recovers everything static: C2's plaintext (with E_D), k_i, d_i, symKey_i.
            const c2 = await openM4(suite, await hpkeRecipientFromScalar(suite, attacker.dC), QF, m4);
            const ED = c2.ephemeralShare;
            assert.ok(ED);
            const ids = dynamicIdentity(suite, { w: attacker.w, equipmentId: attacker.equipmentId }, attacker.counter);
            const { k } = ecqvRequestKey(suite, ids, attacker.counter, attacker.w);
            assert.equal(k, session.requestKey);
            const symKey = computeSymKey(suite, attacker.dC, device.publicKey);
            assert.deepEqual(symKey, device.symKey, 'the paper key is recovered, as §V says');
            const EC = decodeFsConfirm(suite, transcript.confirm).cspShare;
            // Every key the attacker can form from what it holds fails to open the recorded traffic:
            // the paper's key itself, and K_i with Z_e replaced by each DH it can compute.
            const candidates: Uint8Array[] = [symKey];
            for (const scalar of [attacker.dC, attacker.w, k, device.privateKey]) {
                for (const P of [ED, EC]) {
                    candidates.push(deriveTrafficKey(suite, symKey, nobleX(suite, scalar, P), session.idCert, ED, EC));
                }
            }
            candidates.push(deriveTrafficKey(suite, symKey, new Uint8Array(suite.scalarBytes), session.idCert, ED, EC));
            for (const candidate of candidates) {
                const channel = await SessionChannel.create(suite, candidate, 'csp', routeId);
                await assert.rejects(channel.open(transcript.upload), isCode(ErrorCode.DecryptionFailed));
            }
            // Only Z_e = x(x_D*x_C*G) opens it, and that needs an erased ephemeral secret.
            assert.notDeepEqual(toHex(candidates[0] ?? new Uint8Array()), toHex(deviceKey));
        });
    });
}

/**
 * Pinned outputs of the P-256 known-answer test, computed with @noble/curves ECDH and
 * @noble/hashes HKDF-SHA256 (not the module's OpenSSL path): IKM = x(x_D*x_C*G), salt = symKey_i,
 * info = trafficKeyInfo(P256-SHA256, 7*G, E_D, E_C), L = 32.
 */
const KAT_P256 = '0585eb02fb950a1cf6856f36932948b3235367aed2403653ac62e6421d522092';
const KAT_P256_ED = '03e88fb5f2923c749a32009ec2cd42239330dfa114238452ceeca4c16d65ea0fd0';
