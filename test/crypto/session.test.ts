import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
    computePrimaryHash,
    computeSecondaryHash,
    computeSymKey,
    contentAddress,
    createActivation,
    createCertificateRequest,
    createCounterProof,
    createM1,
    createM4,
    decodeActivation,
    decodeCertificateObject,
    decodeCertificateRequest,
    decodeM1,
    decodeM2,
    decodeM3,
    decodeM4,
    dleqProve,
    dynamicIdentity,
    ecqvExtractPublicKey,
    encodeActivation,
    encodeCertificateObject,
    encodeCertificateRequest,
    encodeEcqvCertificate,
    encodeM1,
    encodeM2,
    encodeM3,
    encodeM4,
    ErrorCode,
    FrameType,
    fogAddress,
    hashBytes,
    hpkeRecipientFromScalar,
    hpkeSeal,
    HpkeInfo,
    issueCertificates,
    matchesContentAddress,
    multiplySecret,
    openM1,
    encodePoint,
    openM4,
    processM2,
    runAlgorithm3,
    ProtocolError,
    publicKeyCommitment,
    schnorrSign,
    SchnorrContext,
    SessionChannel,
    symKeyCommitment,
    verifyActivation,
    verifyCounterCommitment,
    verifyIssuedCertificate,
    VerificationError,
    type Activation,
    type CertificateObject,
    type DeviceSecrets,
    type HpkeRecipient,
    type M1,
    type M4,
    type Point,
    type Suite,
} from '@m2m-fabric/protocol';
import { randomScalar, rejectsWithCode, SUITES } from './protocol-helpers.js';

const FOG_ID = 'fog-north-01';

function throwsCode(fn: () => unknown, code: ErrorCode, message?: string): void {
    assert.throws(
        fn,
        (e: unknown) => {
            assert.ok(e instanceof ProtocolError, `expected ProtocolError, got ${String(e)}`);
            assert.equal(e.code, code, `${message ?? ''}: ${e.message}`);
            return true;
        },
        message,
    );
}

interface Keys {
    dC: bigint;
    QC: Point;
    dF: bigint;
    QF: Point;
    fog: HpkeRecipient;
    csp: HpkeRecipient;
}

/** Everything one session produces, from request to M4. */
interface SessionRun {
    obj: CertificateObject;
    objBytes: Uint8Array;
    m1: M1;
    dynamicId: Uint8Array;
    device: ReturnType<typeof processM2>;
    activation: Activation;
    verified: ReturnType<typeof verifyActivation>;
    m4: M4;
}

async function runSession(suite: Suite, keys: Keys, secrets: DeviceSecrets, counter: bigint): Promise<SessionRun> {
    // Algorithm 1 (one certificate for this counter).
    const request = createCertificateRequest(suite, secrets, counter, 1);
    const [obj] = issueCertificates(suite, keys.dC, decodeCertificateRequest(encodeCertificateRequest(request)));
    assert.ok(obj);
    verifyIssuedCertificate(suite, obj, keys.QC);
    const objBytes = encodeCertificateObject(obj);
    // Algorithm 2.
    const { m1, session } = await createM1(suite, secrets, counter, FOG_ID, keys.QF, keys.QC);
    const m1Wire = decodeM1(suite, encodeM1(m1));
    const { idCert } = await openM1(suite, keys.fog, m1Wire);
    assert.ok(idCert.equals(obj.idCert));
    const m2 = decodeM2(suite, encodeM2({ suite, certificateObject: objBytes }));
    const device = processM2(session, m2.certificateObject, keys.QC, FOG_ID);
    const m3 = decodeM3(suite, encodeM3(device.m3));
    const activation = decodeActivation(
        suite,
        encodeActivation(createActivation(suite, keys.dF, objBytes, m1Wire, m3)),
    );
    const verified = verifyActivation(suite, activation, obj.counterProof.B, keys.QC, keys.QF, FOG_ID);
    const m4 = decodeM4(
        suite,
        encodeM4(await createM4(suite, FOG_ID, keys.dF, m1Wire, verified.primaryHash, keys.QC, idCert)),
    );
    return { obj, objBytes, m1: m1Wire, dynamicId: session.dynamicId, device, activation, verified, m4 };
}

for (const suite of SUITES) {
    void describe(`protocol session ${suite.id}`, () => {
        let keys: Keys;
        const secrets: DeviceSecrets = { w: 0n, equipmentId: 'press-17' };
        let run: SessionRun;
        let other: SessionRun;

        before(async () => {
            const dC = randomScalar(suite);
            const dF = randomScalar(suite);
            keys = {
                dC,
                QC: suite.Point.BASE.multiply(dC),
                dF,
                QF: suite.Point.BASE.multiply(dF),
                fog: await hpkeRecipientFromScalar(suite, dF),
                csp: await hpkeRecipientFromScalar(suite, dC),
            };
            secrets.w = randomScalar(suite);
            run = await runSession(suite, keys, secrets, 1n);
            other = await runSession(suite, keys, secrets, 2n);
        });

        void it('completes a full session: both sides derive the same key and the channel works', async () => {
            const { obj, device, verified, m4 } = run;
            // Chaincode's record.
            assert.ok(verified.idCert.equals(obj.idCert));
            assert.deepEqual(verified.primaryHash, computePrimaryHash(suite, obj.idCert.multiply(keys.dF)));
            assert.deepEqual(verified.publicKeyCommitment, publicKeyCommitment(suite, device.publicKey));
            assert.deepEqual(verified.symKeyCommitment, device.m3.symKeyCommitment);
            // Algorithm 3 at the CSP.
            const opened = await openM4(suite, keys.csp, keys.QF, m4);
            assert.deepEqual(opened.primaryHash, verified.primaryHash);
            assert.equal(opened.counter, 1n);
            assert.deepEqual(opened.dynamicId, run.dynamicId);
            assert.deepEqual(opened.dynamicId, dynamicIdentity(suite, secrets, 1n));
            assert.ok(opened.idCert.equals(obj.idCert));
            verifyCounterCommitment(suite, opened.counter, obj.counterProof.B);
            const secondary = computeSecondaryHash(suite, keys.dC, opened.dynamicId, opened.counter);
            assert.equal(secondary.length, suite.hashBytes);
            assert.notDeepEqual(secondary, computeSecondaryHash(suite, keys.dC, other.dynamicId, 2n));
            const Qi = ecqvExtractPublicKey(
                suite,
                encodeEcqvCertificate(suite, obj.idCert, obj.cert),
                obj.cert,
                keys.QC,
            );
            assert.ok(Qi.equals(device.publicKey));
            assert.ok(suite.Point.BASE.multiply(device.privateKey).equals(Qi));
            const cspSymKey = computeSymKey(suite, keys.dC, Qi);
            assert.deepEqual(cspSymKey, device.symKey);
            assert.deepEqual(symKeyCommitment(suite, cspSymKey), verified.symKeyCommitment);
            // Session channel under symKey_i, the session id being primaryHash_i.
            const dev = await SessionChannel.create(suite, device.symKey, 'device', verified.primaryHash);
            const csp = await SessionChannel.create(suite, cspSymKey, 'csp', opened.primaryHash);
            const confirm = await dev.open(await csp.seal(FrameType.Confirm, new Uint8Array([1])));
            assert.equal(confirm.type, FrameType.Confirm);
            const up = await csp.open(await dev.seal(FrameType.Upload, new TextEncoder().encode('temp=21.5')));
            assert.equal(new TextDecoder().decode(up.payload), 'temp=21.5');
        });

        void it('runAlgorithm3: the CSP derives the device key; each check fails with its own code', async () => {
            const opened = await openM4(suite, keys.csp, keys.QF, run.m4);
            const Qi = encodePoint(suite, run.device.publicKey);
            const record = {
                idCert: encodePoint(suite, run.obj.idCert),
                fogId: FOG_ID,
                publicKeyCommitment: publicKeyCommitment(suite, run.device.publicKey),
                counterCommitment: encodePoint(suite, run.obj.counterProof.B),
            };
            const result = runAlgorithm3(suite, keys.dC, FOG_ID, run.m4, opened, Qi, record);
            assert.deepEqual(result.symKey, run.device.symKey);
            assert.equal(result.counter, 1n);
            assert.deepEqual(result.primaryHash, run.verified.primaryHash);
            // 1. M4 forwarded by another fog than the one it names.
            throwsCode(
                () => runAlgorithm3(suite, keys.dC, 'fog-other', run.m4, opened, Qi, record),
                ErrorCode.FailedSignatureVerification,
                'M4 names another fog',
            );
            // 2. The ledger's record is another certificate's, or another fog's.
            const otherIdCert = encodePoint(suite, other.obj.idCert);
            throwsCode(
                () => runAlgorithm3(suite, keys.dC, FOG_ID, run.m4, opened, Qi, { ...record, idCert: otherIdCert }),
                ErrorCode.InvalidPrimaryHash,
                'record of another certificate',
            );
            throwsCode(
                () => runAlgorithm3(suite, keys.dC, FOG_ID, run.m4, opened, Qi, { ...record, fogId: 'fog-b' }),
                ErrorCode.InvalidPrimaryHash,
                'record of another fog',
            );
            // 3. A Q_i that is not the one the activation committed to (its own code, not symmetricKeyInvalid).
            throwsCode(
                () =>
                    runAlgorithm3(
                        suite,
                        keys.dC,
                        FOG_ID,
                        run.m4,
                        opened,
                        encodePoint(suite, other.device.publicKey),
                        record,
                    ),
                ErrorCode.PublicKeyMismatch,
                'another Q_i',
            );
            // 4. B_i of another counter.
            throwsCode(
                () =>
                    runAlgorithm3(suite, keys.dC, FOG_ID, run.m4, opened, Qi, {
                        ...record,
                        counterCommitment: encodePoint(suite, other.obj.counterProof.B),
                    }),
                ErrorCode.FailedChallenge,
                'B_i of another counter',
            );
        });

        void it('OpenSSL ECDH in computeSymKey equals the noble computation, from both sides', () => {
            const { device } = run;
            const xNoble = device.publicKey.multiply(keys.dC).toBytes(true).subarray(1);
            assert.deepEqual(computeSymKey(suite, keys.dC, device.publicKey), hashBytes(suite, 'SymmetricKey', xNoble));
            const xDevice = keys.QC.multiply(device.privateKey).toBytes(true).subarray(1);
            assert.deepEqual(xDevice, xNoble);
        });

        void it('multiplySecret (OpenSSL, full point) equals noble k*Q, including the edge cases', () => {
            const G = suite.Point.BASE;
            const points = [G, G.negate(), G.double(), keys.QC, run.obj.idCert];
            for (let k = 0; k < 10; k++) points.push(G.multiply(randomScalar(suite)));
            for (const Q of points) {
                for (const d of [randomScalar(suite), 1n, suite.n - 1n]) {
                    const { product, publicKey } = multiplySecret(suite, d, Q);
                    assert.ok(product.equals(Q.multiply(d)));
                    assert.ok(publicKey.equals(G.multiply(d)));
                }
            }
            assert.throws(() => multiplySecret(suite, 0n, G), RangeError);
            assert.throws(() => multiplySecret(suite, suite.n, G), RangeError);
        });

        void it('fog address agrees from both sides (d_f*Q_c == d_c*Q_f)', () => {
            assert.deepEqual(
                fogAddress(suite, FOG_ID, keys.QC.multiply(keys.dF)),
                fogAddress(suite, FOG_ID, keys.QF.multiply(keys.dC)),
            );
            assert.notDeepEqual(
                fogAddress(suite, FOG_ID, keys.QC.multiply(keys.dF)),
                fogAddress(suite, 'fog-other', keys.QC.multiply(keys.dF)),
            );
        });

        void it('issues a batch of certificates, each verifiable, with distinct IDCert_i', () => {
            const request = createCertificateRequest(suite, secrets, 10n, 3);
            const objs = issueCertificates(suite, keys.dC, request);
            assert.equal(objs.length, 3);
            for (const obj of objs) verifyIssuedCertificate(suite, obj, keys.QC);
            assert.ok(!objs[0]!.idCert.equals(objs[1]!.idCert));
            assert.ok(objs[2]!.counterProof.B.equals(suite.Point.BASE.multiply(12n)));
            assert.deepEqual(decodeCertificateObject(encodeCertificateObject(objs[1]!)).rAux, objs[1]!.rAux);
        });

        void it('wrong fog key: C1 does not open, and a DLEQ by another fog fails', async () => {
            const otherFog = randomScalar(suite);
            const { m1 } = await createM1(suite, secrets, 1n, FOG_ID, suite.Point.BASE.multiply(otherFog), keys.QC);
            await rejectsWithCode(() => openM1(suite, keys.fog, m1), ErrorCode.DecryptionFailed);
            const forged = createActivation(suite, otherFog, run.objBytes, run.m1, run.activation.m3);
            throwsCode(
                () => verifyActivation(suite, forged, run.obj.counterProof.B, keys.QC, keys.QF, FOG_ID),
                ErrorCode.InvalidDleqProof,
            );
        });

        void it('wrong CSP key: issuance, reconstruction, M3 key and M4 decryption all fail', async () => {
            const wrongQc = suite.Point.BASE.multiply(randomScalar(suite));
            throwsCode(() => verifyIssuedCertificate(suite, run.obj, wrongQc), ErrorCode.InvalidIssuance);
            const { session } = await createM1(suite, secrets, 1n, FOG_ID, keys.QF, keys.QC);
            throwsCode(() => processM2(session, run.objBytes, wrongQc, FOG_ID), ErrorCode.InvalidIssuance);
            throwsCode(
                () => verifyActivation(suite, run.activation, run.obj.counterProof.B, wrongQc, keys.QF, FOG_ID),
                ErrorCode.FailedSignatureVerification,
            );
            const wrongCsp = await hpkeRecipientFromScalar(suite, randomScalar(suite));
            await rejectsWithCode(() => openM4(suite, wrongCsp, keys.QF, run.m4), ErrorCode.DecryptionFailed);
        });

        void it('tampered certificate object: new content address, issuance and reconstruction fail', async () => {
            const cid = contentAddress(run.objBytes);
            const tamperedR: CertificateObject = { ...run.obj, rAux: (run.obj.rAux + 1n) % suite.n };
            const tamperedBytes = encodeCertificateObject(tamperedR);
            assert.ok(!matchesContentAddress(cid, tamperedBytes));
            throwsCode(() => verifyIssuedCertificate(suite, tamperedR, keys.QC), ErrorCode.InvalidIssuance);
            const { session } = await createM1(suite, secrets, 1n, FOG_ID, keys.QF, keys.QC);
            throwsCode(() => processM2(session, tamperedBytes, keys.QC, FOG_ID), ErrorCode.InvalidIssuance);
            // A different Cert_i implies a different Q_i, so the device's M3 no longer matches.
            const tamperedCert: CertificateObject = { ...run.obj, cert: run.obj.cert.add(suite.Point.BASE) };
            throwsCode(() => verifyIssuedCertificate(suite, tamperedCert, keys.QC), ErrorCode.InvalidIssuance);
            const activation = { ...run.activation, certificateObject: encodeCertificateObject(tamperedCert) };
            throwsCode(
                () => verifyActivation(suite, activation, run.obj.counterProof.B, keys.QC, keys.QF, FOG_ID),
                ErrorCode.FailedSignatureVerification,
            );
            // A certificate object for another IDCert_i is refused by the device.
            throwsCode(() => processM2(session, other.objBytes, keys.QC, FOG_ID), ErrorCode.InvalidIssuance);
        });

        void it('counter proof moved to another certificate fails (FailedChallenge)', () => {
            const moved: CertificateObject = { ...run.obj, counterProof: other.obj.counterProof };
            throwsCode(() => verifyIssuedCertificate(suite, moved, keys.QC), ErrorCode.FailedChallenge);
            const activation = { ...run.activation, certificateObject: encodeCertificateObject(moved) };
            // Even when the ledger's B_i is the moved proof's own B_i, the proof is bound to IDCert_i.
            throwsCode(
                () => verifyActivation(suite, activation, other.obj.counterProof.B, keys.QC, keys.QF, FOG_ID),
                ErrorCode.FailedChallenge,
            );
            // A correct proof for IDCert_i but for another counter than the ledger's B_i.
            const wrongCounter: CertificateObject = {
                ...run.obj,
                counterProof: createCounterProof(suite, run.obj.idCert, 5n),
            };
            verifyIssuedCertificate(suite, wrongCounter, keys.QC);
            const activation2 = { ...run.activation, certificateObject: encodeCertificateObject(wrongCounter) };
            throwsCode(
                () => verifyActivation(suite, activation2, run.obj.counterProof.B, keys.QC, keys.QF, FOG_ID),
                ErrorCode.FailedChallenge,
            );
            throwsCode(() => verifyCounterCommitment(suite, 2n, run.obj.counterProof.B), ErrorCode.FailedChallenge);
        });

        void it('made-up P (not d_f*IDCert_i) fails the DLEQ check', () => {
            const fake = suite.Point.BASE.multiply(randomScalar(suite));
            throwsCode(
                () =>
                    verifyActivation(
                        suite,
                        { ...run.activation, P: fake },
                        run.obj.counterProof.B,
                        keys.QC,
                        keys.QF,
                        FOG_ID,
                    ),
                ErrorCode.InvalidDleqProof,
            );
            // A consistent proof for a made-up exponent, against the registered Q_f.
            const k = randomScalar(suite);
            const P = run.obj.idCert.multiply(k);
            const proof = dleqProve(suite, k, suite.Point.BASE, suite.Point.BASE.multiply(k), run.obj.idCert, P);
            throwsCode(
                () =>
                    verifyActivation(
                        suite,
                        { ...run.activation, P, dleqProof: proof },
                        run.obj.counterProof.B,
                        keys.QC,
                        keys.QF,
                        FOG_ID,
                    ),
                ErrorCode.InvalidDleqProof,
            );
            // The real P of another session with this session's proof.
            throwsCode(
                () =>
                    verifyActivation(
                        suite,
                        { ...run.activation, P: other.activation.P },
                        run.obj.counterProof.B,
                        keys.QC,
                        keys.QF,
                        FOG_ID,
                    ),
                ErrorCode.InvalidDleqProof,
            );
        });

        void it('proof of possession by a wrong key, or for another fog, fails', () => {
            const idCertBytes = run.obj.idCert.toBytes(true);
            const popByOther = schnorrSign(suite, SchnorrContext.ProofOfPossession, randomScalar(suite), idCertBytes);
            throwsCode(
                () =>
                    verifyActivation(
                        suite,
                        { ...run.activation, proofOfPossession: popByOther },
                        run.obj.counterProof.B,
                        keys.QC,
                        keys.QF,
                        FOG_ID,
                    ),
                ErrorCode.InvalidProofOfPossession,
            );
            // Another session's valid PoP.
            throwsCode(
                () =>
                    verifyActivation(
                        suite,
                        { ...run.activation, proofOfPossession: other.activation.proofOfPossession },
                        run.obj.counterProof.B,
                        keys.QC,
                        keys.QF,
                        FOG_ID,
                    ),
                ErrorCode.InvalidProofOfPossession,
            );
            // The PoP names the fog; another fog id (checked before the DLEQ) fails it.
            throwsCode(
                () => verifyActivation(suite, run.activation, run.obj.counterProof.B, keys.QC, keys.QF, 'fog-other'),
                ErrorCode.InvalidProofOfPossession,
            );
        });

        void it('M3 signed by a wrong key, or another session M3, fails', () => {
            const { m3 } = run.activation;
            const wrongKey = randomScalar(suite);
            const forgedSig = { ...m3, signature: schnorrSign(suite, SchnorrContext.M3, wrongKey, new Uint8Array(8)) };
            throwsCode(
                () =>
                    verifyActivation(
                        suite,
                        { ...run.activation, m3: forgedSig },
                        run.obj.counterProof.B,
                        keys.QC,
                        keys.QF,
                        FOG_ID,
                    ),
                ErrorCode.FailedSignatureVerification,
            );
            const ownKey = { ...m3, publicKey: suite.Point.BASE.multiply(wrongKey) };
            throwsCode(
                () =>
                    verifyActivation(
                        suite,
                        { ...run.activation, m3: ownKey },
                        run.obj.counterProof.B,
                        keys.QC,
                        keys.QF,
                        FOG_ID,
                    ),
                ErrorCode.FailedSignatureVerification,
            );
            throwsCode(
                () =>
                    verifyActivation(
                        suite,
                        { ...run.activation, m3: other.activation.m3 },
                        run.obj.counterProof.B,
                        keys.QC,
                        keys.QF,
                        FOG_ID,
                    ),
                ErrorCode.FailedSignatureVerification,
            );
            // A changed H(symKey_i) breaks the signature.
            const commitment = m3.symKeyCommitment.slice();
            commitment[0]! ^= 1;
            throwsCode(
                () =>
                    verifyActivation(
                        suite,
                        { ...run.activation, m3: { ...m3, symKeyCommitment: commitment } },
                        run.obj.counterProof.B,
                        keys.QC,
                        keys.QF,
                        FOG_ID,
                    ),
                ErrorCode.FailedSignatureVerification,
            );
        });

        void it('checks run in the order of docs/design.md: the first failing check names the error', () => {
            const badCounter = encodeCertificateObject({ ...run.obj, counterProof: other.obj.counterProof });
            const badPop = other.activation.proofOfPossession;
            const badP = other.activation.P;
            const badM3 = other.activation.m3;
            const B = run.obj.counterProof.B;
            const check = (a: Partial<Activation>, code: ErrorCode): void =>
                throwsCode(
                    () => verifyActivation(suite, { ...run.activation, ...a }, B, keys.QC, keys.QF, FOG_ID),
                    code,
                );
            check(
                { certificateObject: badCounter, proofOfPossession: badPop, P: badP, m3: badM3 },
                ErrorCode.FailedChallenge,
            );
            check({ proofOfPossession: badPop, P: badP, m3: badM3 }, ErrorCode.InvalidProofOfPossession);
            check({ P: badP, m3: badM3 }, ErrorCode.InvalidDleqProof);
            check({ m3: badM3 }, ErrorCode.FailedSignatureVerification);
            assert.ok(
                (() => {
                    try {
                        verifyActivation(suite, { ...run.activation, m3: badM3 }, B, keys.QC, keys.QF, FOG_ID);
                    } catch (e) {
                        return e instanceof VerificationError;
                    }
                    return false;
                })(),
            );
        });

        void it('M4 with a forged or stale signature fails (failedSignatureVerification)', async () => {
            const forged = {
                ...run.m4,
                signature: schnorrSign(suite, SchnorrContext.FogM4, randomScalar(suite), new Uint8Array(1)),
            };
            await rejectsWithCode(
                () => openM4(suite, keys.csp, keys.QF, forged),
                ErrorCode.FailedSignatureVerification,
            );
            // Signed by the real fog but then altered: another fog id or another C3.
            await rejectsWithCode(
                () => openM4(suite, keys.csp, keys.QF, { ...run.m4, fogId: 'fog-other' }),
                ErrorCode.FailedSignatureVerification,
            );
            await rejectsWithCode(
                () => openM4(suite, keys.csp, keys.QF, { ...run.m4, c3: other.m4.c3 }),
                ErrorCode.FailedSignatureVerification,
            );
            // Verified against another fog's key.
            await rejectsWithCode(
                () => openM4(suite, keys.csp, suite.Point.BASE.multiply(randomScalar(suite)), run.m4),
                ErrorCode.FailedSignatureVerification,
            );
        });

        void it('C2/C3 swapped between sessions: a network swap breaks s_f, a fog swap breaks C2', async () => {
            // On the wire (fog signature kept): s_f no longer matches.
            await rejectsWithCode(
                () => openM4(suite, keys.csp, keys.QF, { ...run.m4, c2: other.m4.c2 }),
                ErrorCode.FailedSignatureVerification,
            );
            // A fog that re-signs the mix: C2 of session 2 does not open under session 1's IDCert_i.
            const mixed = await createM4(
                suite,
                FOG_ID,
                keys.dF,
                { ...run.m1, c2: other.m1.c2 },
                run.verified.primaryHash,
                keys.QC,
                run.obj.idCert,
            );
            await rejectsWithCode(() => openM4(suite, keys.csp, keys.QF, mixed), ErrorCode.DecryptionFailed);
            // If the fog names session 2's IDCert_i to open its C2 with session 1's primaryHash, openM4
            // returns that IDCert_i, which is not the one the ledger holds for primaryHash (the
            // CSP's invalidPrimaryHash check).
            const relabelled = await createM4(
                suite,
                FOG_ID,
                keys.dF,
                { ...run.m1, c2: other.m1.c2 },
                run.verified.primaryHash,
                keys.QC,
                other.obj.idCert,
            );
            const opened = await openM4(suite, keys.csp, keys.QF, relabelled);
            assert.deepEqual(opened.primaryHash, run.verified.primaryHash);
            assert.ok(!opened.idCert.equals(run.verified.idCert));
            // C2 can be opened only as a C2 (distinct HPKE info per message kind).
            const c2AsC3 = { ...run.m4, c3: run.m4.c2 };
            const resigned = {
                ...c2AsC3,
                signature: (
                    await createM4(
                        suite,
                        FOG_ID,
                        keys.dF,
                        { ...run.m1 },
                        run.verified.primaryHash,
                        keys.QC,
                        run.obj.idCert,
                    )
                ).signature,
            };
            await rejectsWithCode(
                () => openM4(suite, keys.csp, keys.QF, resigned),
                ErrorCode.FailedSignatureVerification,
            );
        });

        void it('createM4 recovers IDCert_i from C1 when not given', async () => {
            const m4 = await createM4(suite, FOG_ID, keys.dF, run.m1, run.verified.primaryHash, keys.QC);
            const opened = await openM4(suite, keys.csp, keys.QF, m4);
            assert.ok(opened.idCert.equals(run.obj.idCert));
            assert.equal(opened.counter, 1n);
        });

        void it('a C2 sealed without the IDCert_i binding is refused', async () => {
            const c2 = await hpkeSeal(
                suite,
                keys.QC.toBytes(false),
                HpkeInfo.C2,
                new Uint8Array(3 + 8 + suite.hashBytes),
            );
            const m4 = await createM4(
                suite,
                FOG_ID,
                keys.dF,
                { ...run.m1, c2 },
                run.verified.primaryHash,
                keys.QC,
                run.obj.idCert,
            );
            await rejectsWithCode(() => openM4(suite, keys.csp, keys.QF, m4), ErrorCode.DecryptionFailed);
        });
    });
}
