/**
 * A CSP key rotation to another suite (docs/protocol.md#rotation-to-another-suite) on the embedded
 * ledger: a P-256 ledger whose CA moves to P-384. The fog adds a P-384 key signed by its identity
 * key (registry:addFogSuiteKey); new requests must be P-384 and are issued under the P-384 epoch;
 * their certificates and sessions are P-384 records; P-256 certificates keep working during the
 * overlap and fail with cspKeyExpired after it; a fog without a P-384 key cannot activate a P-384
 * certificate (fogSuiteKeyMissing); one revocation covers a device's certificates of both suites.
 * Every bad call is a typed error that leaves the state unchanged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
    ErrorCode,
    MessageType,
    P256_SHA256,
    P384_SHA384,
    P384_SHA384_IEEE1609,
    decodeCertificateObject,
    encodePoint,
    encodeSchnorrSignature,
    revocationSeed,
    revocationTags,
    signCspKeyRotation,
    signFogSuiteKey,
    suiteSecrets,
    toHex,
    type DeviceSecrets,
    type Suite,
} from '@m2m-fabric/protocol';

import {
    buildRequest,
    issuanceTransient,
    issueObjects,
    newCsp,
    newDevice,
    newFog,
    prepareActivation,
    prepareSynchronisation,
    type CspActor,
    type FogActor,
    type SessionRequest,
} from './actors.js';
import { startNetwork, type TestNetwork } from './network.js';
import { activate, assertRejectedUnchanged, bootstrap, evaluate, registerFog, submit, type Json } from './scenario.js';

const ledgerSuite = P256_SHA256;
const p384 = P384_SHA384;

/** The five rotateCspKey arguments from `from` (epoch `fromId`, its suite) to `to` (its suite). */
function rotationArgs(from: CspActor, fromId: number, to: CspActor, overlapSeconds: number): string[] {
    const sigs = signCspKeyRotation(
        {
            suite: from.suite,
            newSuite: to.suite,
            previousKeyId: fromId,
            previousKey: from.Q,
            keyId: fromId + 1,
            newKey: to.Q,
            overlapSeconds,
        },
        from.d,
        to.d,
    );
    return [
        to.suite.id,
        to.publicKeyHex,
        String(overlapSeconds),
        toHex(encodeSchnorrSignature(from.suite, sigs.previousSignature)),
        toHex(encodeSchnorrSignature(to.suite, sigs.newSignature)),
    ];
}

/** The five addFogSuiteKey arguments: `fog` (identity) vouches for `key` (a fog actor of another suite). */
function suiteKeyArgs(fog: FogActor, key: FogActor, signer: FogActor = fog): string[] {
    const sigs = signFogSuiteKey(
        { fogId: fog.id, identitySuite: signer.suite, identityKey: signer.Q, suite: key.suite, key: key.Q },
        signer.d,
        key.d,
    );
    return [
        fog.id,
        key.suite.id,
        key.publicKeyHex,
        toHex(encodeSchnorrSignature(signer.suite, sigs.identitySignature)),
        toHex(encodeSchnorrSignature(key.suite, sigs.newSignature)),
    ];
}

interface Bought {
    request: SessionRequest;
    objects: Uint8Array[];
}

/** Alg. 1 in `suite` with revocation tags of the provisioning suite; issued by `issuer`. */
async function buy(
    net: TestNetwork,
    suite: Suite,
    device: DeviceSecrets,
    issuer: CspActor,
    first: bigint,
    n: number,
): Promise<Bought> {
    const request = buildRequest(suite, suiteSecrets(ledgerSuite, device, suite), first, n);
    await submit(net.parties.manufacturer, 'certificates', 'requestSessions', {
        args: [String(n), request.cid],
        transient: {
            request: request.bytes,
            revocationTags: revocationTags(ledgerSuite, revocationSeed(ledgerSuite, device), first, n),
        },
    });
    const objects = issueObjects(issuer, request);
    await submit(net.parties.csp, 'certificates', 'issueCertificates', {
        args: [request.cid],
        transient: issuanceTransient(request, objects),
    });
    return { request, objects };
}

async function certificate(net: TestNetwork, suite: Suite, object: Uint8Array): Promise<Json> {
    const idCert = toHex(encodePoint(suite, decodeCertificateObject(object).idCert));
    return evaluate(net.parties.csp, 'certificates', 'getCertificate', { args: [idCert] });
}

void describe('CSP key rotation to another suite (P-256 ledger, CA to P-384)', () => {
    let net: TestNetwork;
    let csp256: CspActor;
    let csp384: CspActor;
    let fogA384: FogActor;
    let fogB384: FogActor;
    const device = newDevice('press-mig-1', ledgerSuite);
    let old: Bought;
    let validUntil: string;

    before(async () => {
        net = await startNetwork(ledgerSuite);
        await bootstrap(net, 1000);
        csp256 = net.csp;
        csp384 = await newCsp(p384);
        // The fogs' P-384 keys (same fog ids and organisations, keys of the new suite).
        fogA384 = await newFog(csp384, net.fogA.id, net.fogA.mspId);
        fogB384 = await newFog(csp384, net.fogB.id, net.fogB.mspId);
    });
    after(async () => net.close());

    void it('bad fog suite keys are typed errors and change nothing', async () => {
        const add =
            (party = net.parties.fogA, args = suiteKeyArgs(net.fogA, fogA384)) =>
            () =>
                submit(party, 'registry', 'addFogSuiteKey', { args });
        // Another organisation's fog, or not a fog role at all.
        await assertRejectedUnchanged(net, add(net.parties.fogB), ErrorCode.UnauthorisedMsp);
        await assertRejectedUnchanged(net, add(net.parties.manufacturer), ErrorCode.UnauthorisedMsp);
        // A fog that is not approved.
        const pending = await newFog(csp256, 'fog-a-pending', net.fogA.mspId);
        await registerFog(net.parties.fogA, pending);
        const pending384 = await newFog(csp384, pending.id, pending.mspId);
        await assertRejectedUnchanged(
            net,
            add(net.parties.fogA, suiteKeyArgs(pending, pending384)),
            ErrorCode.FogNotApproved,
        );
        // The ledger's own suite needs no suite key (it is Q_f).
        await assertRejectedUnchanged(
            net,
            add(net.parties.fogA, [
                net.fogA.id,
                ledgerSuite.id,
                net.fogA.publicKeyHex,
                '11'.repeat(64),
                '11'.repeat(64),
            ]),
            ErrorCode.MalformedInput,
        );
        const good = suiteKeyArgs(net.fogA, fogA384);
        // Weak keys: the identity, ±k*G.
        await assertRejectedUnchanged(
            net,
            add(net.parties.fogA, [good[0]!, good[1]!, '00', ...good.slice(3)]),
            ErrorCode.WeakKey,
        );
        const threeG = toHex(encodePoint(p384, p384.Point.BASE.multiply(3n)));
        await assertRejectedUnchanged(
            net,
            add(net.parties.fogA, [good[0]!, good[1]!, threeG, ...good.slice(3)]),
            ErrorCode.WeakKey,
        );
        // Not a P-384 point (a P-256 key named as P-384), malformed hex, an unknown suite.
        await assertRejectedUnchanged(
            net,
            add(net.parties.fogA, [good[0]!, good[1]!, net.fogA.publicKeyHex, ...good.slice(3)]),
            ErrorCode.MalformedInput,
        );
        await assertRejectedUnchanged(
            net,
            add(net.parties.fogA, [...good.slice(0, 3), 'zz', good[4]!]),
            ErrorCode.MalformedInput,
        );
        await assertRejectedUnchanged(
            net,
            add(net.parties.fogA, [good[0]!, 'P521-SHA512', ...good.slice(2)]),
            ErrorCode.MalformedInput,
        );
        // Signed by another key than the fog's identity key; the new key's possession missing.
        const stranger = await newFog(csp256, net.fogA.id, net.fogA.mspId);
        const forged = suiteKeyArgs(net.fogA, fogA384, stranger);
        await assertRejectedUnchanged(
            net,
            add(net.parties.fogA, [...good.slice(0, 3), forged[3]!, good[4]!]),
            ErrorCode.FailedSignatureVerification,
        );
        const other384 = await newFog(csp384, net.fogA.id, net.fogA.mspId);
        const noPossession = suiteKeyArgs(net.fogA, other384);
        await assertRejectedUnchanged(
            net,
            add(net.parties.fogA, [...good.slice(0, 4), noPossession[4]!]),
            ErrorCode.InvalidProofOfPossession,
        );
        const fog = await evaluate(net.parties.fogA, 'registry', 'getFog', { args: [net.fogA.id] });
        assert.equal(fog.suiteKeys, undefined);
    });

    void it('a fog adds its P-384 key ahead of the rotation; a second one is refused', async () => {
        const added = await submit(net.parties.fogA, 'registry', 'addFogSuiteKey', {
            args: suiteKeyArgs(net.fogA, fogA384),
        });
        const keys = added.suiteKeys as Json[];
        assert.equal(keys.length, 1);
        assert.equal(keys[0]!.suite, p384.id);
        assert.equal(keys[0]!.publicKey, fogA384.publicKeyHex);
        const again = await newFog(csp384, net.fogA.id, net.fogA.mspId);
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.fogA, 'registry', 'addFogSuiteKey', { args: suiteKeyArgs(net.fogA, again) }),
            ErrorCode.AlreadyExists,
        );
    });

    void it('bad rotations to another suite are typed errors and change nothing', async () => {
        old = await buy(net, ledgerSuite, device, csp256, 1n, 4);
        const good = rotationArgs(csp256, 0, csp384, 3);
        const rotate = (args: string[]) => () => submit(net.parties.csp, 'registry', 'rotateCspKey', { args });
        // The old key's signature in the new suite's width, the new key's in the old suite's.
        await assertRejectedUnchanged(
            net,
            rotate([...good.slice(0, 3), '11'.repeat(96), good[4]!]),
            ErrorCode.MalformedInput,
        );
        await assertRejectedUnchanged(net, rotate([...good.slice(0, 4), '11'.repeat(64)]), ErrorCode.MalformedInput);
        // A same-suite statement presented for a cross-suite rotation (the suites are signed).
        const sameSuite = signCspKeyRotation(
            { suite: p384, previousKeyId: 0, previousKey: csp384.Q, keyId: 1, newKey: csp384.Q, overlapSeconds: 3 },
            csp384.d,
            csp384.d,
        );
        await assertRejectedUnchanged(
            net,
            rotate([...good.slice(0, 4), toHex(encodeSchnorrSignature(p384, sameSuite.newSignature))]),
            ErrorCode.InvalidProofOfPossession,
        );
        // Not signed by the current key.
        const stranger = await newCsp(ledgerSuite);
        const forged = rotationArgs(stranger, 0, csp384, 3);
        await assertRejectedUnchanged(
            net,
            rotate([...good.slice(0, 3), forged[3]!, good[4]!]),
            ErrorCode.FailedSignatureVerification,
        );
        // A weak P-384 key.
        const twoG = toHex(encodePoint(p384, p384.Point.BASE.multiply(2n)));
        await assertRejectedUnchanged(net, rotate([p384.id, twoG, ...good.slice(2)]), ErrorCode.WeakKey);
        const record = await evaluate(net.parties.csp, 'registry', 'getCsp');
        assert.equal((record.keys as Json[]).length, 1);
    });

    void it('rotates to P-384: the new epoch names its suite', async () => {
        const record = await submit(net.parties.csp, 'registry', 'rotateCspKey', {
            args: rotationArgs(csp256, 0, csp384, 3),
        });
        const keys = record.keys as Json[];
        assert.equal(keys.length, 2);
        assert.equal(keys[0]!.suite, undefined, "epoch 0 is of the ledger's suite");
        assert.equal(keys[1]!.suite, p384.id);
        assert.equal(keys[1]!.caPublicKey, csp384.publicKeyHex);
        assert.equal(record.suite, ledgerSuite.id, "the ledger's suite is unchanged");
        validUntil = keys[0]!.validUntil as string;
    });

    let fresh: Bought;

    void it('requests must be P-384 now; they are issued under the P-384 epoch', async () => {
        const request = buildRequest(ledgerSuite, device, 100n, 1);
        await assertRejectedUnchanged(
            net,
            () =>
                submit(net.parties.manufacturer, 'certificates', 'requestSessions', {
                    args: ['1', request.cid],
                    transient: { request: request.bytes },
                }),
            ErrorCode.MalformedInput,
        );
        fresh = await buy(net, p384, device, csp384, 10n, 3);
        const record = await certificate(net, p384, fresh.objects[0]!);
        assert.equal(record.suite, p384.id);
        assert.equal(record.keyId, 1);
        assert.equal(record.status, 'unused');
        assert.equal((record.idCert as string).length, 2 * p384.pointBytes);
        // A P-384 object issued under the P-256 key: not under the newest P-384 key.
        const wrongIssuer = await newCsp(p384);
        const stray = buildRequest(p384, suiteSecrets(ledgerSuite, device, p384), 20n, 1);
        await submit(net.parties.manufacturer, 'certificates', 'requestSessions', {
            args: ['1', stray.cid],
            transient: { request: stray.bytes },
        });
        await assertRejectedUnchanged(
            net,
            () =>
                submit(net.parties.csp, 'certificates', 'issueCertificates', {
                    args: [stray.cid],
                    transient: issuanceTransient(stray, issueObjects(wrongIssuer, stray)),
                }),
            ErrorCode.InvalidIssuance,
        );
    });

    void it('a P-384 session: activation with the fog’s P-384 key, synchronisation, P-384 records', async () => {
        const own = suiteSecrets(ledgerSuite, device, p384);
        // At fog B, which has no P-384 key: refused.
        const atB = await prepareActivation(csp384, fogB384, own, 10n, fresh.objects[0]!);
        await assertRejectedUnchanged(net, () => activate(net, net.fogB, atB), ErrorCode.FogSuiteKeyMissing);
        // With the device's P-256 secret the certificate does not reconstruct (wrong k_i).
        await assert.rejects(prepareActivation(csp384, fogA384, device, 10n, fresh.objects[0]!));
        const prepared = await prepareActivation(csp384, fogA384, own, 10n, fresh.objects[0]!);
        const activated = await activate(net, net.fogA, prepared);
        const primaryHash = activated.primaryHash as string;
        assert.equal(primaryHash.length, 2 * p384.hashBytes);
        const sync = await prepareSynchronisation(csp384, fogA384, prepared, Buffer.from(primaryHash, 'hex'));
        await submit(net.parties.csp, 'sessions', 'synchroniseSession', { transient: { synchronisation: sync.bytes } });
        const session = await evaluate(net.parties.csp, 'sessions', 'getSession', { args: [primaryHash] });
        assert.equal(session.status, 'synchronised');
        assert.equal(session.suite, p384.id);
        assert.equal(session.keyId, 1);
        assert.equal((await certificate(net, p384, fresh.objects[0]!)).status, 'used');
    });

    void it('an activation or synchronisation in a suite no epoch uses is refused', async () => {
        const prepared = await prepareActivation(
            csp384,
            fogA384,
            suiteSecrets(ledgerSuite, device, p384),
            11n,
            fresh.objects[1]!,
        );
        const relabelled = Uint8Array.from(prepared.bytes);
        relabelled[2] = P384_SHA384_IEEE1609.tag; // the header's suite byte
        await assertRejectedUnchanged(
            net,
            () =>
                submit(net.parties.fogA, 'sessions', 'activateSession', {
                    args: [net.fogA.id],
                    transient: { activation: relabelled },
                }),
            ErrorCode.MalformedInput,
        );
        assert.equal(MessageType.Activation, prepared.bytes[1]);
    });

    void it('P-256 certificates work during the overlap and fail with cspKeyExpired after it', async () => {
        const during = await prepareActivation(csp256, net.fogA, device, 1n, old.objects[0]!);
        const activated = await activate(net, net.fogA, during);
        const sync = await prepareSynchronisation(
            csp256,
            net.fogA,
            during,
            Buffer.from(activated.primaryHash as string, 'hex'),
        );
        await submit(net.parties.csp, 'sessions', 'synchroniseSession', { transient: { synchronisation: sync.bytes } });
        const session = await evaluate(net.parties.csp, 'sessions', 'getSession', {
            args: [activated.primaryHash as string],
        });
        assert.equal(session.suite, undefined);
        assert.equal(session.keyId, 0);
        const later = await prepareActivation(csp256, net.fogA, device, 2n, old.objects[1]!);
        while (Date.now() <= Date.parse(validUntil))
            await new Promise((r) => setTimeout(r, Date.parse(validUntil) - Date.now() + 5));
        await assertRejectedUnchanged(net, () => activate(net, net.fogA, later), ErrorCode.CspKeyExpired);
        // The P-384 epoch is current and unaffected.
        const p384Later = await prepareActivation(
            csp384,
            fogA384,
            suiteSecrets(ledgerSuite, device, p384),
            11n,
            fresh.objects[1]!,
        );
        await activate(net, net.fogA, p384Later);
    });

    void it('one revocation covers the device’s certificates of both suites', async () => {
        // Used: P-256 counter 1, P-384 counters 10 and 11. Unused: P-256 2 (expired), 3, 4; P-384 12.
        const result = await submit(net.parties.manufacturer, 'revocation', 'revokeDevice', {
            args: ['1', '20'],
            transient: { revocationSeed: revocationSeed(ledgerSuite, device) },
        });
        assert.equal(result.revoked, 4);
        assert.equal(result.used, 3);
        assert.equal((await certificate(net, ledgerSuite, old.objects[3]!)).status, 'revoked');
        assert.equal((await certificate(net, p384, fresh.objects[2]!)).status, 'revoked');
        const revoked = await prepareActivation(
            csp384,
            fogA384,
            suiteSecrets(ledgerSuite, device, p384),
            12n,
            fresh.objects[2]!,
        );
        await assertRejectedUnchanged(net, () => activate(net, net.fogA, revoked), ErrorCode.CertificateRevoked);
    });
});
