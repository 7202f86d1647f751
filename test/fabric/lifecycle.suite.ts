/**
 * Certificate lifecycle through the Fabric client path (issue 20): revocation of a device's unused
 * certificates by its owner (activation of a revoked certificate refused), decommissioning through
 * M-EB, the CSP ending an established session, and the CSP's key rotation (new certificates under
 * the new key, old ones working during the overlap and refused with cspKeyExpired after it).
 *
 * Written the real-Fabric way: after one organisation's commit, the next actor acts only once its
 * own peer has the block (`waitForCommit`); no fixed sleeps. The one wait on the clock is for the
 * old key's end date, which the chaincode compares with transaction timestamps.
 *
 * The rotation permanently changes the network's CA key, under which the other suites issue their
 * certificates (with the key in their state directory). It therefore runs on the embedded and
 * in-process targets always, and on a real Fabric network only with M2M_FABRIC_ROTATE=1, which
 * fabric-network/scripts/run-suite.sh sets for a last run of this one test after every other suite.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import {
    DEFAULT_SUITE,
    ErrorCode,
    decodeCertificateObject,
    encodePoint,
    encodeSchnorrSignature,
    fromHex,
    randomScalar,
    revocationSeed,
    revocationTags,
    signCspKeyRotation,
    signFogSuiteKey,
    suiteSecrets,
    toHex,
    P384_SHA384,
    type DeviceSecrets,
} from '@m2m-fabric/protocol';
import { EndorseError, waitForCommit, type LedgerConnection, type SubmittedTransaction } from '@m2m-fabric/sdk';
import { hpkeRecipientFromScalar } from '@m2m-fabric/protocol';

import {
    buildRequest,
    cspFogAddress,
    issuanceTransient,
    issueObjects,
    newDevice,
    newFog,
    prepareActivation,
    prepareSynchronisation,
    type CspActor,
    type FogActor,
} from '../chaincode/actors.js';
import { choice, grantCreditEverywhere, json, openSuite, registeredCsp, skip, type OpenSuite } from './suite-setup.js';
import { MSP, type Org } from './targets.js';

const suite = DEFAULT_SUITE;
const rotationSkip =
    skip !== false
        ? skip
        : choice === 'fabric' && process.env.M2M_FABRIC_ROTATE !== '1'
          ? 'rotation changes the network’s CA key for good: set M2M_FABRIC_ROTATE=1 on a fresh network'
          : false;

async function rejectsWith(call: Promise<unknown>, code: ErrorCode): Promise<void> {
    await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof EndorseError, `expected an EndorseError, got ${String(err)}`);
        assert.equal(err.errorCode, code, err.message);
        return true;
    });
}

void describe('certificate lifecycle through the ledger client', () => {
    let open: OpenSuite;
    let csp: CspActor;
    let fog: FogActor;
    /** The CA key the rotation test moved to (P-256, epoch k): the cross-suite rotation starts from it. */
    let rotatedTo: CspActor | undefined;
    const conn = (org: Org): LedgerConnection => open.connections.get(org)!;

    /** Submits as `org`, then waits until every peer named in `next` has the block. */
    async function commit(
        org: Org,
        contract: string,
        name: string,
        args: string[],
        transientData: Record<string, Uint8Array> = {},
        next: Org[] = [],
    ): Promise<Record<string, unknown>> {
        const submitted: SubmittedTransaction = await open
            .contract(org, contract)
            .submitAsync(name, { arguments: args, transientData });
        const status = await submitted.getStatus();
        assert.equal(status.code, 'VALID', `${name} ${status.transactionId}`);
        await Promise.all(next.map((o) => waitForCommit(conn(o), open.target.chaincodeName, status)));
        return json(submitted.getResult());
    }

    /** Alg. 1 with revocation tags, issued with `issuer`'s key; every org's peer has the issuance. */
    async function buy(device: DeviceSecrets, n: number, issuer: CspActor): Promise<Uint8Array[]> {
        const request = buildRequest(suite, device, 1n, n);
        await commit(
            'manufacturer',
            'certificates',
            'requestSessions',
            [String(n), request.cid],
            { request: request.bytes, revocationTags: revocationTags(suite, revocationSeed(suite, device), 1n, n) },
            ['csp'],
        );
        const objects = issueObjects(issuer, request);
        await commit('csp', 'certificates', 'issueCertificates', [request.cid], issuanceTransient(request, objects), [
            'foga',
            'manufacturer',
        ]);
        return objects;
    }

    const status = async (object: Uint8Array): Promise<string> =>
        String(
            json(
                await open.contract('foga', 'certificates').evaluate('getCertificate', {
                    arguments: [toHex(encodePoint(suite, decodeCertificateObject(object).idCert))],
                }),
            ).status,
        );

    before(async () => {
        if (skip !== false) return;
        open = await openSuite();
        csp = await registeredCsp(open);
        fog = await newFog(csp, `lifecycle-${randomBytes(4).toString('hex')}`, MSP.foga);
        await commit('foga', 'registry', 'registerFog', [fog.id, fog.publicKeyHex, fog.addressHex], {}, ['csp']);
        await commit('csp', 'registry', 'approveFog', [fog.id, cspFogAddress(csp, fog)], {}, ['foga']);
        await grantCreditEverywhere(open, MSP.manufacturer, 20);
    });
    after(async () => {
        if (skip === false) await open.close();
    });

    void it('the owner revokes a device: its unused certificates cannot be activated', { skip }, async () => {
        const device = newDevice(`lifecycle-r-${randomBytes(4).toString('hex')}`, suite);
        const objects = await buy(device, 2, csp);
        const revoked = await commit(
            'manufacturer',
            'revocation',
            'revokeDevice',
            ['1', '3'],
            { revocationSeed: revocationSeed(suite, device) },
            ['foga', 'csp'],
        );
        assert.equal(revoked.revoked, 2);
        assert.equal(await status(objects[0]!), 'revoked');
        const prepared = await prepareActivation(csp, fog, device, 1n, objects[0]!);
        await rejectsWith(
            open.contract('foga', 'sessions').submit('activateSession', {
                arguments: [fog.id],
                transientData: { activation: prepared.bytes },
            }),
            ErrorCode.CertificateRevoked,
        );
        // Revoking twice changes nothing.
        await rejectsWith(
            open.contract('manufacturer', 'revocation').submit('revokeDevice', {
                arguments: ['1', '3'],
                transientData: { revocationSeed: revocationSeed(suite, device) },
            }),
            ErrorCode.AlreadyRevoked,
        );
    });

    void it('decommissioning through M-EB revokes the remaining certificates', { skip }, async () => {
        const device = newDevice(`lifecycle-d-${randomBytes(4).toString('hex')}`, suite);
        const staticKey = toHex(encodePoint(suite, suite.Point.BASE.multiply(randomScalar(suite))));
        await commit('manufacturer', 'equipment', 'registerEquipment', [
            device.equipmentId,
            'hydraulic-press',
            'HP-200',
            'group-a',
            staticKey,
            '3',
            'upload-download',
            '06:00-22:00',
        ]);
        const objects = await buy(device, 2, csp);
        const out = await commit(
            'manufacturer',
            'equipment',
            'decommissionEquipment',
            [device.equipmentId, '1', '3'],
            { revocationSeed: revocationSeed(suite, device) },
            ['foga'],
        );
        assert.equal((out.equipment as { status: string }).status, 'decommissioned');
        for (const object of objects) assert.equal(await status(object), 'revoked');
    });

    void it('the CSP ends an established session; a fog cannot', { skip }, async () => {
        const device = newDevice(`lifecycle-e-${randomBytes(4).toString('hex')}`, suite);
        const [object] = await buy(device, 1, csp);
        const prepared = await prepareActivation(csp, fog, device, 1n, object!);
        const activated = await commit(
            'foga',
            'sessions',
            'activateSession',
            [fog.id],
            { activation: prepared.bytes },
            ['csp'],
        );
        const primaryHash = String(activated.primaryHash);
        const sync = await prepareSynchronisation(csp, fog, prepared, fromHex(primaryHash));
        await commit('csp', 'sessions', 'synchroniseSession', [], { synchronisation: sync.bytes }, ['foga']);
        await rejectsWith(
            open.contract('foga', 'revocation').submit('endSession', { arguments: [primaryHash] }),
            ErrorCode.UnauthorisedMsp,
        );
        await commit('csp', 'revocation', 'endSession', [primaryHash], {}, ['foga']);
        const session = json(
            await open.contract('foga', 'sessions').evaluate('getSession', { arguments: [primaryHash] }),
        );
        assert.equal(session.status, 'ended');
    });

    void it(
        'the CSP rotates its key: new certificates under it, old ones until the end date',
        { skip: rotationSkip },
        async () => {
            const record = json(await open.contract('csp', 'registry').evaluate('getCsp'));
            const keys = record.keys as { keyId: number; caPublicKey: string }[];
            const current = keys[keys.length - 1]!;
            assert.equal(current.caPublicKey, csp.publicKeyHex, 'the suite holds the current CA key');
            const device = newDevice(`lifecycle-k-${randomBytes(4).toString('hex')}`, suite);
            const oldObjects = await buy(device, 2, csp);

            const d = randomScalar(suite);
            const Q = suite.Point.BASE.multiply(d);
            const next: CspActor = {
                suite,
                d,
                Q,
                recipient: await hpkeRecipientFromScalar(suite, d),
                publicKeyHex: toHex(encodePoint(suite, Q)),
            };
            const overlapSeconds = 4;
            const sigs = signCspKeyRotation(
                {
                    suite,
                    previousKeyId: current.keyId,
                    previousKey: csp.Q,
                    keyId: current.keyId + 1,
                    newKey: Q,
                    overlapSeconds,
                },
                csp.d,
                d,
            );
            const args = [
                suite.id,
                next.publicKeyHex,
                String(overlapSeconds),
                toHex(encodeSchnorrSignature(suite, sigs.previousSignature)),
                toHex(encodeSchnorrSignature(suite, sigs.newSignature)),
            ];
            // Only the CSP role rotates.
            await rejectsWith(
                open.contract('foga', 'registry').submit('rotateCspKey', { arguments: args }),
                ErrorCode.UnauthorisedMsp,
            );
            const rotated = await commit('csp', 'registry', 'rotateCspKey', args, {}, ['foga', 'manufacturer']);
            rotatedTo = next;
            const epochs = rotated.keys as { keyId: number; validUntil?: string }[];
            const validUntil = epochs[epochs.length - 2]!.validUntil!;
            // Again: the key is registered now.
            await rejectsWith(
                open.contract('csp', 'registry').submit('rotateCspKey', { arguments: args }),
                ErrorCode.AlreadyExists,
            );

            // A certificate of the old key, activated during the overlap.
            const during = await prepareActivation(csp, fog, device, 1n, oldObjects[0]!);
            await commit('foga', 'sessions', 'activateSession', [fog.id], { activation: during.bytes });
            // New purchases are issued under the new key (old-key objects refused).
            const device2 = newDevice(`lifecycle-k2-${randomBytes(4).toString('hex')}`, suite);
            const request = buildRequest(suite, device2, 1n, 1);
            await commit(
                'manufacturer',
                'certificates',
                'requestSessions',
                ['1', request.cid],
                { request: request.bytes },
                ['csp'],
            );
            await rejectsWith(
                open.contract('csp', 'certificates').submit('issueCertificates', {
                    arguments: [request.cid],
                    transientData: issuanceTransient(request, issueObjects(csp, request)),
                }),
                ErrorCode.InvalidIssuance,
            );
            const fresh = issueObjects(next, request);
            await commit('csp', 'certificates', 'issueCertificates', [request.cid], issuanceTransient(request, fresh), [
                'foga',
            ]);
            const freshRecord = json(
                await open.contract('foga', 'certificates').evaluate('getCertificate', {
                    arguments: [toHex(encodePoint(suite, decodeCertificateObject(fresh[0]!).idCert))],
                }),
            );
            assert.equal(freshRecord.keyId, current.keyId + 1);
            await commit('foga', 'sessions', 'activateSession', [fog.id], {
                activation: (await prepareActivation(next, fog, device2, 1n, fresh[0]!)).bytes,
            });

            // After the end date the old key's certificate is refused by transaction timestamp.
            const after = await prepareActivation(csp, fog, device, 2n, oldObjects[1]!);
            while (Date.now() <= Date.parse(validUntil)) {
                await new Promise((r) => setTimeout(r, Date.parse(validUntil) - Date.now() + 20));
            }
            await rejectsWith(
                open.contract('foga', 'sessions').submit('activateSession', {
                    arguments: [fog.id],
                    transientData: { activation: after.bytes },
                }),
                ErrorCode.CspKeyExpired,
            );
            assert.equal(await status(oldObjects[1]!), 'unused', 'the refused activation wrote nothing');
        },
    );

    void it(
        'the CSP rotates its key to another suite: P-384 certificates and sessions, fog suite keys',
        { skip: rotationSkip },
        async () => {
            // Starts where the same-suite rotation left the CA: its new key, the overlap over.
            assert.ok(rotatedTo !== undefined, 'runs after the same-suite rotation');
            const from = rotatedTo;
            const record = json(await open.contract('csp', 'registry').evaluate('getCsp'));
            const keys = record.keys as { keyId: number; caPublicKey: string }[];
            const current = keys[keys.length - 1]!;
            assert.equal(current.caPublicKey, from.publicKeyHex);
            const p384 = P384_SHA384;
            const d = randomScalar(p384);
            const Q = p384.Point.BASE.multiply(d);
            const csp384: CspActor = {
                suite: p384,
                d,
                Q,
                recipient: await hpkeRecipientFromScalar(p384, d),
                publicKeyHex: toHex(encodePoint(p384, Q)),
            };
            const rotation = {
                suite,
                newSuite: p384,
                previousKeyId: current.keyId,
                previousKey: from.Q,
                keyId: current.keyId + 1,
                newKey: Q,
                overlapSeconds: 600,
            };
            const sigs = signCspKeyRotation(rotation, from.d, d);
            const args = [
                p384.id,
                csp384.publicKeyHex,
                '600',
                toHex(encodeSchnorrSignature(suite, sigs.previousSignature)),
                toHex(encodeSchnorrSignature(p384, sigs.newSignature)),
            ];
            // The new key's signature made in the old suite's width: refused, nothing written.
            await rejectsWith(
                open.contract('csp', 'registry').submit('rotateCspKey', {
                    arguments: [...args.slice(0, 4), toHex(encodeSchnorrSignature(suite, sigs.previousSignature))],
                }),
                ErrorCode.MalformedInput,
            );
            const rotated = await commit('csp', 'registry', 'rotateCspKey', args, {}, ['foga', 'manufacturer']);
            const epochs = rotated.keys as { keyId: number; suite?: string }[];
            assert.equal(epochs[epochs.length - 1]!.suite, p384.id);

            // The fog adds its P-384 key, signed by its identity key and by itself.
            const fog384 = await newFog(csp384, fog.id, fog.mspId);
            const fogSigs = signFogSuiteKey(
                { fogId: fog.id, identitySuite: suite, identityKey: fog.Q, suite: p384, key: fog384.Q },
                fog.d,
                fog384.d,
            );
            const fogArgs = [
                fog.id,
                p384.id,
                fog384.publicKeyHex,
                toHex(encodeSchnorrSignature(suite, fogSigs.identitySignature)),
                toHex(encodeSchnorrSignature(p384, fogSigs.newSignature)),
            ];
            await rejectsWith(
                open.contract('manufacturer', 'registry').submit('addFogSuiteKey', { arguments: fogArgs }),
                ErrorCode.UnauthorisedMsp,
            );
            await commit('foga', 'registry', 'addFogSuiteKey', fogArgs, {}, ['csp']);
            await rejectsWith(
                open.contract('foga', 'registry').submit('addFogSuiteKey', { arguments: fogArgs }),
                ErrorCode.AlreadyExists,
            );

            // A P-256 request is refused now; a P-384 one (the device's derived P-384 secret) is issued.
            const device = newDevice(`lifecycle-s-${randomBytes(4).toString('hex')}`, suite);
            const old = buildRequest(suite, device, 1n, 1);
            await rejectsWith(
                open.contract('manufacturer', 'certificates').submit('requestSessions', {
                    arguments: ['1', old.cid],
                    transientData: { request: old.bytes },
                }),
                ErrorCode.MalformedInput,
            );
            const device384 = suiteSecrets(suite, device, p384);
            const request = buildRequest(p384, device384, 1n, 1);
            await commit(
                'manufacturer',
                'certificates',
                'requestSessions',
                ['1', request.cid],
                { request: request.bytes, revocationTags: revocationTags(suite, revocationSeed(suite, device), 1n, 1) },
                ['csp'],
            );
            const objects = issueObjects(csp384, request);
            await commit(
                'csp',
                'certificates',
                'issueCertificates',
                [request.cid],
                issuanceTransient(request, objects),
                ['foga'],
            );
            const idCert = toHex(encodePoint(p384, decodeCertificateObject(objects[0]!).idCert));
            const certificate = json(
                await open.contract('foga', 'certificates').evaluate('getCertificate', { arguments: [idCert] }),
            );
            assert.equal(certificate.suite, p384.id);
            assert.equal(certificate.keyId, current.keyId + 1);

            // Algorithm 2 and 3 in P-384, with the fog's P-384 key and the P-384 CA key.
            const prepared = await prepareActivation(csp384, fog384, device384, 1n, objects[0]!);
            const activated = await commit(
                'foga',
                'sessions',
                'activateSession',
                [fog.id],
                {
                    activation: prepared.bytes,
                },
                ['csp'],
            );
            const primaryHash = String(activated.primaryHash);
            assert.equal(primaryHash.length, 2 * p384.hashBytes);
            const sync = await prepareSynchronisation(csp384, fog384, prepared, fromHex(primaryHash));
            await commit('csp', 'sessions', 'synchroniseSession', [], { synchronisation: sync.bytes }, ['foga']);
            const session = json(
                await open.contract('foga', 'sessions').evaluate('getSession', { arguments: [primaryHash] }),
            );
            assert.equal(session.status, 'synchronised');
            assert.equal(session.suite, p384.id);
        },
    );
});
