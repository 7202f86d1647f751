/**
 * CSP key rotation in the protocol module (chaincode/protocol/src/csp-key-rotation.ts): the exact
 * rotation statement, both signatures (each field bound), weak keys, the relayed chain's encoding,
 * the device's chain walk (forged, truncated, contradicting, skipped links), M4 opening under any
 * epoch, and the replay of a Confirm keyed under the old CA key into a new-key session.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
    ErrorCode,
    ProtocolError,
    VerificationError,
    acceptFsConfirm,
    computeSymKey,
    createCertificateRequest,
    createM1,
    createM4,
    cspKeyRotationMessage,
    cspTrafficKey,
    decodeCspKeyChain,
    encodeCertificateObject,
    encodeCspKeyChain,
    encodeFsConfirm,
    encodePoint,
    extendTrustedCspKeys,
    hpkeRecipientFromScalar,
    isWeakCspKey,
    issueCertificates,
    openM4,
    processM2,
    signCspKeyRotation,
    verifyCspKeyRotation,
    FrameType,
    P256_SHA256,
    P256_SHA256_IEEE1609,
    P384_SHA384,
    P384_SHA384_IEEE1609,
    SessionChannel,
    type CspKeyLink,
    type CspKeyRotation,
    type Point,
    type Suite,
} from '@m2m-fabric/protocol';
import { SUITES, randomScalar } from './protocol-helpers.js';

function keyPair(suite: Suite): { d: bigint; Q: Point } {
    const d = randomScalar(suite);
    return { d, Q: suite.Point.BASE.multiply(d) };
}

function rotation(suite: Suite, from: Point, fromId: number, to: Point, overlapSeconds = 60): CspKeyRotation {
    return { suite, previousKeyId: fromId, previousKey: from, keyId: fromId + 1, newKey: to, overlapSeconds };
}

function link(suite: Suite, r: CspKeyRotation, sigs: ReturnType<typeof signCspKeyRotation>): CspKeyLink {
    return {
        keyId: r.keyId,
        suite,
        caPublicKey: encodePoint(suite, r.newKey),
        rotation: { previousSuite: suite, overlapSeconds: r.overlapSeconds, signatures: sigs },
    };
}

for (const suite of SUITES) {
    void describe(`CSP key rotation (${suite.id})`, () => {
        const k0 = keyPair(suite);
        const k1 = keyPair(suite);
        const k2 = keyPair(suite);
        const r01 = rotation(suite, k0.Q, 0, k1.Q);
        const s01 = signCspKeyRotation(r01, k0.d, k1.d);
        const r12 = rotation(suite, k1.Q, 1, k2.Q, 0);
        const s12 = signCspKeyRotation(r12, k1.d, k2.d);

        void it('the statement is the documented byte string', () => {
            const m = cspKeyRotationMessage(r01);
            const label = Buffer.from('M2M-V1-CSP-KEY-ROTATION');
            assert.deepEqual(Buffer.from(m.subarray(0, label.length)), label);
            assert.equal(m[label.length], 0);
            assert.equal(m[label.length + 1], suite.tag);
            assert.equal(m.length, label.length + 2 + 4 + suite.pointBytes + 4 + suite.pointBytes + 4);
            assert.throws(() => cspKeyRotationMessage({ ...r01, keyId: 2 }), RangeError);
            assert.throws(() => cspKeyRotationMessage({ ...r01, overlapSeconds: -1 }), RangeError);
            assert.throws(() => signCspKeyRotation(r01, k1.d, k0.d), RangeError);
        });

        void it('both signatures verify and each field is bound', () => {
            verifyCspKeyRotation(r01, s01);
            const code = (r: CspKeyRotation, s = s01): ErrorCode | undefined => {
                try {
                    verifyCspKeyRotation(r, s);
                    return undefined;
                } catch (err) {
                    return (err as VerificationError).code;
                }
            };
            assert.equal(code({ ...r01, overlapSeconds: 61 }), ErrorCode.FailedSignatureVerification);
            assert.equal(code({ ...r01, previousKeyId: 1, keyId: 2 }), ErrorCode.FailedSignatureVerification);
            assert.equal(code({ ...r01, newKey: k2.Q }), ErrorCode.FailedSignatureVerification);
            assert.equal(code({ ...r01, previousKey: k2.Q }), ErrorCode.FailedSignatureVerification);
            // The new key's signature missing (the old key's given twice): no proof of possession.
            assert.equal(
                code(r01, { previousSignature: s01.previousSignature, newSignature: s01.previousSignature }),
                ErrorCode.InvalidProofOfPossession,
            );
            // The old key's signature replaced by the new key's: no authority.
            assert.equal(
                code(r01, { previousSignature: s01.newSignature, newSignature: s01.newSignature }),
                ErrorCode.FailedSignatureVerification,
            );
        });

        void it('weak keys: ±k*G for small k; a random key is not weak', () => {
            for (const k of [1n, 2n, 16n, suite.n - 1n, suite.n - 16n])
                assert.ok(isWeakCspKey(suite, suite.Point.BASE.multiply(k)), `k = ${k}`);
            assert.ok(!isWeakCspKey(suite, suite.Point.BASE.multiply(17n)));
            assert.ok(!isWeakCspKey(suite, k1.Q));
        });

        void it('the relayed chain round-trips and refuses malformed bytes', () => {
            const chain = [link(suite, r01, s01), link(suite, r12, s12)];
            const bytes = encodeCspKeyChain([{ keyId: 0, suite, caPublicKey: encodePoint(suite, k0.Q) }, ...chain]);
            assert.deepEqual(decodeCspKeyChain(bytes), chain);
            assert.throws(() => decodeCspKeyChain(bytes.subarray(0, bytes.length - 1)));
            assert.throws(() => decodeCspKeyChain(Uint8Array.of(...bytes, 0)));
            assert.deepEqual(decodeCspKeyChain(Uint8Array.of(0)), []);
        });

        void it('a device extends its trust only along the signed chain', () => {
            const trusted = new Map([[0, { suite, key: k0.Q }]]);
            const full = extendTrustedCspKeys(trusted, [link(suite, r12, s12), link(suite, r01, s01)]);
            assert.deepEqual([...full.keys()].sort(), [0, 1, 2]);
            assert.ok(full.get(2)!.key.equals(k2.Q));
            // Epoch 1 withheld: epoch 2 cannot be reached.
            assert.deepEqual([...extendTrustedCspKeys(trusted, [link(suite, r12, s12)]).keys()], [0]);
            // A fog inventing a rotation to its own key: signed by the fog key, not the trusted one.
            const fog = keyPair(suite);
            const forged = rotation(suite, k0.Q, 0, fog.Q);
            const forgedSigs = signCspKeyRotation({ ...forged, previousKey: fog.Q }, fog.d, fog.d);
            assert.deepEqual([...extendTrustedCspKeys(trusted, [link(suite, forged, forgedSigs)]).keys()], [0]);
            // The right signatures relayed with another key or overlap: refused.
            assert.deepEqual(
                [
                    ...extendTrustedCspKeys(trusted, [
                        { ...link(suite, r01, s01), caPublicKey: encodePoint(suite, k2.Q) },
                    ]).keys(),
                ],
                [0],
            );
            assert.deepEqual(
                [
                    ...extendTrustedCspKeys(trusted, [
                        {
                            ...link(suite, r01, s01),
                            rotation: { previousSuite: suite, overlapSeconds: 1, signatures: s01 },
                        },
                    ]).keys(),
                ],
                [0],
            );
            // A relayed epoch contradicting a trusted one is an error, not silently replaced.
            assert.throws(
                () => extendTrustedCspKeys(full, [{ ...link(suite, r01, s01), caPublicKey: encodePoint(suite, k2.Q) }]),
                (err: unknown) =>
                    err instanceof VerificationError && err.code === ErrorCode.FailedSignatureVerification,
            );
        });

        void it('M4 opens under whichever epoch C2 and C3 were sealed to; the Confirm of the old key is refused', async () => {
            const fog = keyPair(suite);
            const device = { w: randomScalar(suite), equipmentId: 'rot-device' };
            const request = createCertificateRequest(suite, device, 1n, 1);
            // Issued under the new key k1; the device seals C2 to the old key k0 (it has not learnt k1).
            const object = encodeCertificateObject(issueCertificates(suite, k1.d, request)[0]!);
            const { m1, session } = await createM1(suite, device, 1n, 'fog-r', fog.Q, k0.Q);
            assert.throws(
                () => processM2(session, object, k0.Q, 'fog-r'),
                (err: unknown) => err instanceof VerificationError && err.code === ErrorCode.InvalidIssuance,
            );
            const { symKey, publicKey } = processM2(session, object, k1.Q, 'fog-r');
            const m4 = await createM4(suite, 'fog-r', fog.d, m1, new Uint8Array(suite.hashBytes), k1.Q, session.idCert);
            const recipients = [await hpkeRecipientFromScalar(suite, k1.d), await hpkeRecipientFromScalar(suite, k0.d)];
            const opened = await openM4(suite, recipients, fog.Q, m4);
            assert.equal(opened.counter, 1n);
            await assert.rejects(
                openM4(suite, [await hpkeRecipientFromScalar(suite, k2.d)], fog.Q, m4),
                (err: unknown) => err instanceof ProtocolError && err.code === ErrorCode.DecryptionFailed,
            );
            // The CSP answers with symKey_i under the certificate's key: the device accepts it.
            const sessionId = new Uint8Array(16).fill(7);
            const confirmUnder = async (d: bigint): Promise<Uint8Array> => {
                const { cspShare, trafficKey } = cspTrafficKey(
                    suite,
                    computeSymKey(suite, d, publicKey),
                    session.idCert,
                    opened.ephemeralShare,
                );
                const channel = await SessionChannel.create(suite, trafficKey, 'csp', sessionId);
                return encodeFsConfirm(suite, cspShare, await channel.seal(FrameType.Confirm, new Uint8Array()));
            };
            assert.deepEqual(symKey, computeSymKey(suite, k1.d, publicKey));
            // A Confirm keyed under the OLD key (a replay from an old-key session, or a CSP using the
            // wrong epoch) does not open: decryptionFailed. x_D is used up by the attempt, so the
            // genuine Confirm is checked with a fresh copy of the session's ephemeral.
            const ephemeral = session.ephemeral.exportSecret();
            await assert.rejects(
                acceptFsConfirm(suite, session.ephemeral, symKey, session.idCert, sessionId, await confirmUnder(k0.d)),
                (err: unknown) => err instanceof ProtocolError && err.code === ErrorCode.DecryptionFailed,
            );
            const { EphemeralKey } = await import('@m2m-fabric/protocol');
            await acceptFsConfirm(
                suite,
                EphemeralKey.fromSecret(suite, ephemeral),
                symKey,
                session.idCert,
                sessionId,
                await confirmUnder(k1.d),
            );
        });
    });
}

/** Rotations that move the CA to another suite (docs/protocol.md#rotation-to-another-suite). */
for (const [from, to] of [
    [P256_SHA256, P384_SHA384],
    [P384_SHA384, P256_SHA256],
] as const) {
    void describe(`CSP key rotation across suites (${from.id} -> ${to.id})`, () => {
        const k0 = keyPair(from);
        const k1 = keyPair(to);
        const k2 = keyPair(to);
        const r01: CspKeyRotation = { ...rotation(from, k0.Q, 0, k1.Q), newSuite: to };
        const s01 = signCspKeyRotation(r01, k0.d, k1.d);
        const r12 = rotation(to, k1.Q, 1, k2.Q, 0);
        const s12 = signCspKeyRotation(r12, k1.d, k2.d);
        const crossLink: CspKeyLink = {
            keyId: 1,
            suite: to,
            caPublicKey: encodePoint(to, k1.Q),
            rotation: { previousSuite: from, overlapSeconds: r01.overlapSeconds, signatures: s01 },
        };
        const laterLink = link(to, r12, s12);

        void it('the statement names both suites and encodes each key in its own', () => {
            const m = cspKeyRotationMessage(r01);
            const label = Buffer.from('M2M-V1-CSP-KEY-ROTATION');
            assert.deepEqual(Buffer.from(m.subarray(0, label.length)), label);
            assert.deepEqual([...m.subarray(label.length, label.length + 3)], [1, from.tag, to.tag]);
            assert.equal(m.length, label.length + 3 + 4 + from.pointBytes + 4 + to.pointBytes + 4);
            // The same keys as a same-suite statement would be other bytes (form 0, one tag).
            assert.notDeepEqual(m, cspKeyRotationMessage({ ...r01, newSuite: from, newKey: k0.Q }));
            // The private keys must match the keys in their own suites.
            assert.throws(() => signCspKeyRotation(r01, k1.d, k0.d), RangeError);
        });

        void it('the old key signs in the old suite, the new key in the new one; each field is bound', () => {
            verifyCspKeyRotation(r01, s01);
            const code = (r: CspKeyRotation, s = s01): ErrorCode | undefined => {
                try {
                    verifyCspKeyRotation(r, s);
                    return undefined;
                } catch (err) {
                    return (err as VerificationError).code;
                }
            };
            assert.equal(code({ ...r01, overlapSeconds: 61 }), ErrorCode.FailedSignatureVerification);
            assert.equal(code({ ...r01, newKey: k2.Q }), ErrorCode.FailedSignatureVerification);
            // The same signatures read as a rotation to a third suite: the tags are signed.
            const third = from.tag === P256_SHA256.tag ? P384_SHA384_IEEE1609 : P256_SHA256_IEEE1609;
            assert.notEqual(third.tag, to.tag);
            const asThird = { ...r01, newSuite: { ...to, tag: third.tag, id: third.id } as Suite };
            assert.equal(code(asThird), ErrorCode.FailedSignatureVerification);
            // The new key's signature missing (the old one's given twice): no proof of possession.
            assert.equal(
                code(r01, { previousSignature: s01.previousSignature, newSignature: s01.previousSignature }),
                ErrorCode.InvalidProofOfPossession,
            );
        });

        void it('the chain round-trips with each link’s suites', () => {
            const chain = [crossLink, laterLink];
            const bytes = encodeCspKeyChain([
                { keyId: 0, suite: from, caPublicKey: encodePoint(from, k0.Q) },
                ...chain,
            ]);
            const decoded = decodeCspKeyChain(bytes);
            assert.deepEqual(
                decoded.map((l) => [l.keyId, l.suite.id, l.rotation?.previousSuite.id]),
                [
                    [1, to.id, from.id],
                    [2, to.id, to.id],
                ],
            );
            assert.deepEqual(decoded, chain);
            assert.throws(() => decodeCspKeyChain(bytes.subarray(0, bytes.length - 1)));
            // An unknown suite tag in a link.
            const bad = Uint8Array.from(bytes);
            bad[1 + 4] = 99;
            assert.throws(() => decodeCspKeyChain(bad));
        });

        void it('a device walks the chain across the suite change, and only along it', () => {
            const trusted = new Map([[0, { suite: from, key: k0.Q }]]);
            const full = extendTrustedCspKeys(trusted, [laterLink, crossLink]);
            assert.deepEqual([...full.keys()].sort(), [0, 1, 2]);
            assert.equal(full.get(1)!.suite.id, to.id);
            assert.ok(full.get(2)!.key.equals(k2.Q));
            // A link that says its predecessor is of another suite than the trusted one: refused.
            const wrongPrevious = { ...crossLink, rotation: { ...crossLink.rotation!, previousSuite: to } };
            assert.deepEqual([...extendTrustedCspKeys(trusted, [wrongPrevious]).keys()], [0]);
            // The cross-suite link withheld: the later one cannot be reached.
            assert.deepEqual([...extendTrustedCspKeys(trusted, [laterLink]).keys()], [0]);
            // A relayed epoch that re-announces a trusted key id in another suite is an error.
            assert.throws(
                () => extendTrustedCspKeys(full, [{ ...crossLink, suite: from, caPublicKey: encodePoint(from, k0.Q) }]),
                (err: unknown) =>
                    err instanceof VerificationError && err.code === ErrorCode.FailedSignatureVerification,
            );
        });
    });
}
