/**
 * CSP key rotation (registry:rotateCspKey, docs/protocol.md#csp-key-rotation) on the embedded
 * ledger: a rotation signed by the old and the new key; new certificates under the new key;
 * certificates under the old key working during the overlap and failing with cspKeyExpired after
 * its end date (by transaction timestamp); bad keys and bad signatures refused with the ledger
 * unchanged; access by role.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
    ErrorCode,
    P256_SHA256,
    decodeCertificateObject,
    encodePoint,
    encodeSchnorrSignature,
    signCspKeyRotation,
    toHex,
    type DeviceSecrets,
} from '@m2m-fabric/protocol';

import {
    buildRequest,
    issuanceTransient,
    issueObjects,
    newCsp,
    newDevice,
    prepareActivation,
    prepareSynchronisation,
    type CspActor,
    type SessionRequest,
} from './actors.js';
import { startNetwork, type Party, type TestNetwork } from './network.js';
import {
    activate,
    assertRejected,
    assertRejectedUnchanged,
    bootstrap,
    evaluate,
    submit,
    type Json,
} from './scenario.js';

const suite = P256_SHA256;

/** The five rotateCspKey arguments for a rotation from `from` (epoch `fromId`) to `to`. */
function rotationArgs(from: CspActor, fromId: number, to: CspActor, overlapSeconds: number): string[] {
    const sigs = signCspKeyRotation(
        { suite, previousKeyId: fromId, previousKey: from.Q, keyId: fromId + 1, newKey: to.Q, overlapSeconds },
        from.d,
        to.d,
    );
    return [
        suite.id,
        to.publicKeyHex,
        String(overlapSeconds),
        toHex(encodeSchnorrSignature(suite, sigs.previousSignature)),
        toHex(encodeSchnorrSignature(suite, sigs.newSignature)),
    ];
}

/** Algorithm 1 with the CA key of `issuer`. */
interface Bought {
    request: SessionRequest;
    objects: Uint8Array[];
}

async function buy(
    net: TestNetwork,
    issuer: CspActor,
    device: DeviceSecrets,
    first: bigint,
    n: number,
): Promise<Bought> {
    const request = buildRequest(suite, device, first, n);
    await submit(net.parties.manufacturer, 'certificates', 'requestSessions', {
        args: [String(n), request.cid],
        transient: { request: request.bytes },
    });
    const objects = issueObjects(issuer, request);
    return { request, objects };
}

async function issue(net: TestNetwork, request: Bought): Promise<Json> {
    return submit(net.parties.csp, 'certificates', 'issueCertificates', {
        args: [request.request.cid],
        transient: issuanceTransient(request.request, request.objects),
    });
}

async function certificateKeyId(net: TestNetwork, object: Uint8Array): Promise<number> {
    const idCert = toHex(encodePoint(suite, decodeCertificateObject(object).idCert));
    return (await evaluate(net.parties.csp, 'certificates', 'getCertificate', { args: [idCert] })).keyId as number;
}

async function waitUntil(iso: string): Promise<void> {
    // The expiry is by transaction timestamp, which the client takes from its clock: wait for the
    // clock to pass the end date (a deadline, not a synchronisation sleep).
    while (Date.now() <= Date.parse(iso)) await new Promise((r) => setTimeout(r, Date.parse(iso) - Date.now() + 5));
}

void describe('CSP key rotation', () => {
    let net: TestNetwork;
    let csp: Party;
    let oldKey: CspActor;
    let newKey: CspActor;
    const device = newDevice('press-rot-1', suite);

    before(async () => {
        net = await startNetwork(suite);
        await bootstrap(net, 1000);
        csp = net.parties.csp;
        oldKey = net.csp;
        newKey = await newCsp(suite);
    });
    after(async () => net.close());

    void it('getCsp lists epoch 0 after registration', async () => {
        const record = await evaluate(csp, 'registry', 'getCsp');
        const keys = record.keys as Json[];
        assert.equal(keys.length, 1);
        assert.equal(keys[0]!.keyId, 0);
        assert.equal(keys[0]!.caPublicKey, oldKey.publicKeyHex);
        assert.equal(keys[0]!.validUntil, undefined);
    });

    let oldBatch: Bought;
    let pendingBeforeRotation: Bought;

    void it('bad rotations are typed errors and change nothing', async () => {
        oldBatch = await buy(net, oldKey, device, 1n, 4);
        await issue(net, oldBatch);
        assert.equal(await certificateKeyId(net, oldBatch.objects[0]!), 0);
        pendingBeforeRotation = await buy(net, oldKey, device, 100n, 1);

        const good = rotationArgs(oldKey, 0, newKey, 3);
        const rotate = (party: Party, args: string[]) => () => submit(party, 'registry', 'rotateCspKey', { args });
        // Access by role: only the CSP role rotates.
        await assertRejectedUnchanged(net, rotate(net.parties.fogA, good), ErrorCode.UnauthorisedMsp);
        await assertRejectedUnchanged(net, rotate(net.parties.manufacturer, good), ErrorCode.UnauthorisedMsp);
        await assertRejectedUnchanged(net, rotate(net.parties.outsider, good), ErrorCode.UnauthorisedMsp);
        // A P-256 key named as a P-384 one, a point off the curve, the identity, a tiny multiple of
        // G, the same key. (A real rotation to another suite: csp-rotation-suite.test.ts.)
        await assertRejectedUnchanged(net, rotate(csp, ['P384-SHA384', ...good.slice(1)]), ErrorCode.MalformedInput);
        const offCurve = '02' + 'ff'.repeat(32);
        await assertRejectedUnchanged(
            net,
            rotate(csp, [suite.id, offCurve, ...good.slice(2)]),
            ErrorCode.MalformedInput,
        );
        await assertRejectedUnchanged(net, rotate(csp, [suite.id, '00', ...good.slice(2)]), ErrorCode.WeakKey);
        const twoG = toHex(encodePoint(suite, suite.Point.BASE.multiply(2n)));
        await assertRejectedUnchanged(net, rotate(csp, [suite.id, twoG, ...good.slice(2)]), ErrorCode.WeakKey);
        const minusG = toHex(encodePoint(suite, suite.Point.BASE.negate()));
        await assertRejectedUnchanged(net, rotate(csp, [suite.id, minusG, ...good.slice(2)]), ErrorCode.WeakKey);
        await assertRejectedUnchanged(net, rotate(csp, rotationArgs(oldKey, 0, oldKey, 3)), ErrorCode.AlreadyExists);
        // Signatures: not by the old key (an outsider's key signs), not by the new key, swapped,
        // for another overlap than the one submitted, malformed.
        const stranger = await newCsp(suite);
        const forged = rotationArgs(stranger, 0, newKey, 3);
        await assertRejectedUnchanged(
            net,
            rotate(csp, [...good.slice(0, 3), forged[3]!, good[4]!]),
            ErrorCode.FailedSignatureVerification,
        );
        const noPossession = rotationArgs(oldKey, 0, newKey, 3);
        await assertRejectedUnchanged(
            net,
            rotate(csp, [...good.slice(0, 4), noPossession[3]!]),
            ErrorCode.InvalidProofOfPossession,
        );
        await assertRejectedUnchanged(
            net,
            rotate(csp, [...good.slice(0, 2), '4', ...good.slice(3)]),
            ErrorCode.FailedSignatureVerification,
        );
        await assertRejectedUnchanged(
            net,
            rotate(csp, [...good.slice(0, 3), '00'.repeat(64), good[4]!]),
            ErrorCode.MalformedInput,
        );
        await assertRejectedUnchanged(
            net,
            rotate(csp, [...good.slice(0, 2), '-1', ...good.slice(3)]),
            ErrorCode.MalformedInput,
        );
        const record = await evaluate(csp, 'registry', 'getCsp');
        assert.equal((record.keys as Json[]).length, 1);
    });

    let validUntil: string;

    void it('rotates: the old key gets an end date, the new one is current, the event is emitted', async () => {
        const recorder = await net.recordEvents();
        const record = await submit(csp, 'registry', 'rotateCspKey', { args: rotationArgs(oldKey, 0, newKey, 3) });
        const keys = record.keys as Json[];
        assert.equal(keys.length, 2);
        assert.equal(keys[1]!.keyId, 1);
        assert.equal(keys[1]!.caPublicKey, newKey.publicKeyHex);
        assert.equal(keys[1]!.validUntil, undefined);
        validUntil = keys[0]!.validUntil as string;
        assert.equal(Date.parse(validUntil) - Date.parse(keys[1]!.activeFrom as string), 3000);
        assert.equal(record.caPublicKey, oldKey.publicKeyHex, 'epoch 0 stays the registered identity key');
        const events = await recorder.drain();
        const rotated = events.find((e) => e.eventName === 'CspKeyRotated');
        assert.ok(rotated !== undefined);
        assert.equal((JSON.parse(new TextDecoder().decode(rotated.payload)) as Json).keyId, 1);
    });

    void it('a second rotation while the overlap is open is refused', async () => {
        const third = await newCsp(suite);
        await assertRejectedUnchanged(
            net,
            () => submit(csp, 'registry', 'rotateCspKey', { args: rotationArgs(newKey, 1, third, 0) }),
            ErrorCode.InvalidStateTransition,
        );
    });

    let newBatch: Bought;
    let reissued: Bought;

    void it('issuance uses the newest key: old-key objects are refused, new-key ones carry keyId 1', async () => {
        await assertRejectedUnchanged(net, () => issue(net, pendingBeforeRotation), ErrorCode.InvalidIssuance);
        reissued = { ...pendingBeforeRotation, objects: issueObjects(newKey, pendingBeforeRotation.request) };
        await issue(net, reissued);
        assert.equal(await certificateKeyId(net, reissued.objects[0]!), 1);
        newBatch = await buy(net, newKey, device, 200n, 2);
        await issue(net, newBatch);
        assert.equal(await certificateKeyId(net, newBatch.objects[0]!), 1);
    });

    void it('during the overlap both keys work; activation reconstructs under the certificate’s key', async () => {
        // An old certificate, reconstructed under the old key; Alg. 3 with the old d_c.
        const old = await prepareActivation(oldKey, net.fogA, device, 1n, oldBatch.objects[0]!);
        const activated = await activate(net, net.fogA, old);
        const sync = await prepareSynchronisation(
            oldKey,
            net.fogA,
            old,
            Buffer.from(activated.primaryHash as string, 'hex'),
        );
        await submit(csp, 'sessions', 'synchroniseSession', { transient: { synchronisation: sync.bytes } });
        const session = await evaluate(csp, 'sessions', 'getSession', { args: [activated.primaryHash as string] });
        assert.equal(session.keyId, 0);
        // A new certificate under the new key.
        const fresh = await prepareActivation(newKey, net.fogA, device, 200n, newBatch.objects[0]!);
        const second = await activate(net, net.fogA, fresh);
        assert.equal(
            (await evaluate(csp, 'sessions', 'getSession', { args: [second.primaryHash as string] })).keyId,
            1,
        );
        // The device reconstructing a new certificate under the old key fails already off-chain
        // (d_i*G != e*Cert_i + Q_c): it has to use the certificate's key.
        await assert.rejects(
            prepareActivation(oldKey, net.fogA, device, 201n, newBatch.objects[1]!),
            (e: unknown) => (e as { code?: string }).code === ErrorCode.InvalidIssuance,
        );
    });

    void it('after the old key’s end date its certificates fail with cspKeyExpired; new ones still work', async () => {
        const old = await prepareActivation(oldKey, net.fogA, device, 2n, oldBatch.objects[1]!);
        await waitUntil(validUntil);
        await assertRejectedUnchanged(net, () => activate(net, net.fogA, old), ErrorCode.CspKeyExpired);
        const fresh = await prepareActivation(newKey, net.fogA, device, 201n, newBatch.objects[1]!);
        await activate(net, net.fogA, fresh);
    });

    void it('once the overlap has closed, the next rotation is accepted (chain 0 → 1 → 2)', async () => {
        const third = await newCsp(suite);
        // Signed by the old key instead of the current one: refused.
        await assertRejected(
            submit(csp, 'registry', 'rotateCspKey', { args: rotationArgs(oldKey, 1, third, 0) }),
            ErrorCode.FailedSignatureVerification,
        );
        const record = await submit(csp, 'registry', 'rotateCspKey', { args: rotationArgs(newKey, 1, third, 0) });
        const keys = record.keys as Json[];
        assert.deepEqual(
            keys.map((k) => k.keyId),
            [0, 1, 2],
        );
        assert.equal(keys[0]!.validUntil, validUntil, 'an ended epoch keeps its end date');
        // With no overlap, epoch 1 ended at the rotation itself.
        const stillNew = await buy(net, newKey, device, 300n, 1);
        await assertRejected(issue(net, stillNew), ErrorCode.InvalidIssuance);
        const device2 = newDevice('press-rot-2', suite);
        const b = await buy(net, third, device2, 1n, 1);
        await issue(net, b);
        assert.equal(await certificateKeyId(net, b.objects[0]!), 2);
        await activate(net, net.fogA, await prepareActivation(third, net.fogA, device2, 1n, b.objects[0]!));
        // Epoch 1's unused certificate is dead at once (overlap 0).
        const epoch1 = await prepareActivation(newKey, net.fogA, device, 100n, reissued.objects[0]!);
        await assertRejectedUnchanged(net, () => activate(net, net.fogA, epoch1), ErrorCode.CspKeyExpired);
    });
});
