/**
 * Revocation of a device's unused certificates (chaincode/contract/src/revocation.ts) on the
 * embedded ledger: by the owner, by the CSP, through M-EB decommissioning; typed refusals that
 * change nothing; no linkage before revocation; and a revocation racing an activation of the same
 * certificate, where Fabric's MVCC check lets exactly one commit.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
    ErrorCode,
    P256_SHA256,
    decodeCertificateObject,
    encodePoint,
    revocationId,
    revocationSeed,
    revocationTags,
    toHex,
    type DeviceSecrets,
} from '@m2m-fabric/protocol';
import { CommitError, EndorseError } from '@m2m-fabric/sdk';

import { buildRequest, issuanceTransient, issueObjects, newDevice, prepareActivation } from './actors.js';
import { CHAINCODE, startNetwork } from './network.js';
import type { StateEntry } from './inspect-contract.js';
import type { Party, TestNetwork } from './network.js';
import { activate, assertRejectedUnchanged, bootstrap, evaluate, fogParty, runSession, submit } from './scenario.js';

const suite = P256_SHA256;
// A second manufacturer organisation: OtherMSP gets the manufacturer role for this file.
process.env.M2M_MANUFACTURER_MSPS = 'ManufacturerMSP,OtherMSP';

async function purchaseTagged(
    net: TestNetwork,
    owner: Party,
    device: DeviceSecrets,
    first: bigint,
    n: number,
): Promise<Uint8Array[]> {
    const request = buildRequest(suite, device, first, n);
    await submit(owner, 'certificates', 'requestSessions', {
        args: [String(n), request.cid],
        transient: {
            request: request.bytes,
            revocationTags: revocationTags(suite, revocationSeed(suite, device), first, n),
        },
    });
    const objects = issueObjects(net.csp, request);
    await submit(net.parties.csp, 'certificates', 'issueCertificates', {
        args: [request.cid],
        transient: issuanceTransient(request, objects),
    });
    return objects;
}

const idCertOf = (object: Uint8Array): string => toHex(encodePoint(suite, decodeCertificateObject(object).idCert));
const seedOf = (device: DeviceSecrets): Record<string, Uint8Array> => ({
    revocationSeed: revocationSeed(suite, device),
});

/** Whether a dumped state entry's key or value holds `hex` (as hex bytes or as text). */
function holds(entry: StateEntry, hex: string): boolean {
    const value = Buffer.from(entry.value, 'base64');
    return entry.key.includes(hex) || value.toString('hex').includes(hex) || value.toString('utf8').includes(hex);
}

async function statusOf(net: TestNetwork, object: Uint8Array): Promise<string> {
    return (await evaluate(net.parties.csp, 'certificates', 'getCertificate', { args: [idCertOf(object)] }))
        .status as string;
}

void describe('revocation of a device', () => {
    let net: TestNetwork;
    let other: Party;
    before(async () => {
        net = await startNetwork(suite, { batchTimeoutMs: 20 });
        await bootstrap(net, 1000);
        const enrolment = await net.ledger.enrol('OtherMSP', 'manufacturer-2', {
            attributes: { 'm2m.role': 'manufacturer' },
        });
        const connection = await net.ledger.connect({ identity: enrolment.identity, signer: enrolment.signer });
        other = {
            label: 'manufacturer-2',
            mspId: 'OtherMSP',
            contract: (name) => connection.getContract(CHAINCODE, name),
        };
        await submit(net.parties.csp, 'registry', 'grantCredit', { args: ['OtherMSP', '100'] });
    });
    after(async () => net.close());

    void it('the owner revokes: unused certificates become revoked, used ones stay, activation fails typed', async () => {
        const device = newDevice('press-r1', suite);
        const objects = await purchaseTagged(net, net.parties.manufacturer, device, 1n, 4);
        const first = objects[0]!;
        await runSession(net, net.fogA, device, 1n, first);
        // Prepared before the revocation: the activation is valid in every other respect.
        const pending = await prepareActivation(net.csp, net.fogA, device, 2n, objects[1]!);
        const events = await net.recordEvents();
        const result = await submit(net.parties.manufacturer, 'revocation', 'revokeDevice', {
            args: ['1', '6'],
            transient: seedOf(device),
        });
        assert.equal(result.revoked, 3);
        assert.equal(result.used, 1);
        assert.equal(result.owner, 'ManufacturerMSP');
        assert.equal(result.revocationId, toHex(revocationId(suite, revocationSeed(suite, device))));
        assert.equal(await statusOf(net, first), 'used');
        for (const object of objects.slice(1)) assert.equal(await statusOf(net, object), 'revoked');
        await assertRejectedUnchanged(net, () => activate(net, net.fogA, pending), ErrorCode.CertificateRevoked);
        // Revoking twice: typed, nothing changes (the first revocation stands).
        await assertRejectedUnchanged(
            net,
            () =>
                submit(net.parties.manufacturer, 'revocation', 'revokeDevice', {
                    args: ['1', '6'],
                    transient: seedOf(device),
                }),
            ErrorCode.AlreadyRevoked,
        );
        const recorded = await evaluate(net.parties.manufacturer, 'revocation', 'getRevocation', {
            args: [String(result.revocationId)],
        });
        assert.equal(recorded.revoked, 3);
        // The event names the owner and a count, never the equipment; the seed never reaches the ledger.
        const seen = await events.drain();
        const revokedEvent = seen.find((e) => e.eventName === 'DeviceRevoked');
        assert.ok(revokedEvent);
        const payload = new TextDecoder().decode(revokedEvent.payload);
        assert.ok(!payload.includes(device.equipmentId));
        const state = JSON.stringify(await net.dumpState());
        assert.ok(!state.includes(toHex(revocationSeed(suite, device))), 'rs_α is not on the ledger');
    });

    void it("before revocation nothing links a device's certificates; tags of one device look unrelated", async () => {
        const device = newDevice('press-r2', suite);
        const objects = await purchaseTagged(net, net.parties.manufacturer, device, 1n, 3);
        const state = await net.dumpState();
        const tags = state.filter((entry) => entry.type === 'revtag');
        const mine = tags.filter((entry) => objects.some((o) => holds(entry, idCertOf(o))));
        assert.equal(mine.length, 3, 'one tag per certificate');
        // A tag record holds its certificate and owner only: no seed, no counter, no shared value.
        for (const entry of mine) {
            assert.ok(!holds(entry, device.equipmentId));
            assert.ok(!holds(entry, toHex(revocationSeed(suite, device))));
            assert.ok(!holds(entry, toHex(revocationId(suite, revocationSeed(suite, device)))));
        }
        assert.equal(
            state.filter(
                (entry) => entry.type === 'revocation' && JSON.stringify(entry).includes(idCertOf(objects[0]!)),
            ).length,
            0,
        );
    });

    void it("the CSP revokes with the seed; another owner's device, an outsider or bad input are refused unchanged", async () => {
        const device = newDevice('press-r3', suite);
        const objects = await purchaseTagged(net, net.parties.manufacturer, device, 1n, 2);
        await assertRejectedUnchanged(
            net,
            () => submit(other, 'revocation', 'revokeDevice', { args: ['1', '3'], transient: seedOf(device) }),
            ErrorCode.UnauthorisedMsp,
        );
        await assertRejectedUnchanged(
            net,
            () =>
                submit(net.parties.outsider, 'revocation', 'revokeDevice', {
                    args: ['1', '3'],
                    transient: seedOf(device),
                }),
            ErrorCode.UnauthorisedMsp,
        );
        for (const [args, transient] of [
            [['3', '1'], seedOf(device)],
            [['1', '2000'], seedOf(device)],
            [['1', '3'], { revocationSeed: new Uint8Array(31).fill(1) }],
            [['1', '3'], {}],
        ] as const) {
            await assertRejectedUnchanged(
                net,
                () => submit(net.parties.manufacturer, 'revocation', 'revokeDevice', { args: [...args], transient }),
                ErrorCode.MalformedInput,
            );
        }
        // A seed whose tags name no certificate (a device never bought, or wrong range).
        await assertRejectedUnchanged(
            net,
            () =>
                submit(net.parties.manufacturer, 'revocation', 'revokeDevice', {
                    args: ['1', '3'],
                    transient: seedOf(newDevice('never-bought', suite)),
                }),
            ErrorCode.UnknownCertificate,
        );
        const result = await submit(net.parties.csp, 'revocation', 'revokeDevice', {
            args: ['1', '3'],
            transient: seedOf(device),
        });
        assert.equal(result.revoked, 2);
        assert.equal(result.revokedBy, 'CSPMSP');
        for (const object of objects) assert.equal(await statusOf(net, object), 'revoked');
    });

    void it('decommissioning equipment through M-EB revokes its remaining certificates', async () => {
        const device = newDevice('press-r4', suite);
        const staticKey = toHex(encodePoint(suite, suite.Point.BASE.multiply(12345n)));
        await submit(net.parties.manufacturer, 'equipment', 'registerEquipment', {
            args: [
                device.equipmentId,
                'hydraulic-press',
                'HP-200',
                'group-a',
                staticKey,
                '3',
                'upload-download',
                '06:00-22:00',
            ],
        });
        const objects = await purchaseTagged(net, net.parties.manufacturer, device, 1n, 2);
        await assertRejectedUnchanged(
            net,
            () =>
                submit(other, 'equipment', 'decommissionEquipment', {
                    args: [device.equipmentId, '1', '3'],
                    transient: seedOf(device),
                }),
            ErrorCode.UnauthorisedMsp,
        );
        const out = await submit(net.parties.manufacturer, 'equipment', 'decommissionEquipment', {
            args: [device.equipmentId, '1', '3'],
            transient: seedOf(device),
        });
        assert.equal((out.equipment as { status: string }).status, 'decommissioned');
        assert.equal((out.revocation as { revoked: number }).revoked, 2);
        for (const object of objects) assert.equal(await statusOf(net, object), 'revoked');
        await assertRejectedUnchanged(
            net,
            () =>
                submit(net.parties.manufacturer, 'equipment', 'decommissionEquipment', {
                    args: [device.equipmentId, '1', '3'],
                    transient: seedOf(device),
                }),
            ErrorCode.InvalidStateTransition,
        );
    });

    void it('the CSP ends an established session; nobody else can', async () => {
        const device = newDevice('press-r5', suite);
        const objects = await purchaseTagged(net, net.parties.manufacturer, device, 1n, 1);
        const { primaryHash } = await runSession(net, net.fogB, device, 1n, objects[0]!);
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.manufacturer, 'revocation', 'endSession', { args: [primaryHash] }),
            ErrorCode.UnauthorisedMsp,
        );
        const ended = await submit(net.parties.csp, 'revocation', 'endSession', { args: [primaryHash] });
        assert.equal(ended.status, 'ended');
        assert.equal(
            (await evaluate(net.parties.csp, 'sessions', 'getSession', { args: [primaryHash] })).status,
            'ended',
        );
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.csp, 'revocation', 'endSession', { args: ['00'.repeat(32)] }),
            ErrorCode.InvalidPrimaryHash,
        );
    });

    void it('a revocation racing an activation of the same certificate: exactly one commits', async () => {
        let activationsWon = 0;
        let revocationsWon = 0;
        for (let round = 0; round < 6; round++) {
            const device = newDevice(`press-race-${round}`, suite);
            const objects = await purchaseTagged(net, net.parties.manufacturer, device, 1n, 1);
            const object = objects[0]!;
            const prepared = await prepareActivation(net.csp, net.fogA, device, 1n, object);
            const racers = [
                fogParty(net, net.fogA)
                    .contract('sessions')
                    .submit('activateSession', {
                        arguments: [net.fogA.id],
                        transientData: { activation: prepared.bytes },
                    }),
                net.parties.manufacturer
                    .contract('revocation')
                    .submit('revokeDevice', { arguments: ['1', '2'], transientData: seedOf(device) }),
            ];
            // Alternate which is submitted first so both orders are exercised.
            if (round % 2 === 1) void racers.reverse();
            const outcomes = await Promise.allSettled(racers);
            const won = outcomes.filter((o) => o.status === 'fulfilled');
            assert.equal(won.length, 1, `round ${round}: exactly one of activation and revocation commits`);
            for (const o of outcomes) {
                if (o.status === 'fulfilled') continue;
                const error: unknown = o.reason;
                assert.ok(
                    (error instanceof CommitError && error.code === 'MVCC_READ_CONFLICT') ||
                        (error instanceof EndorseError &&
                            (error.errorCode === ErrorCode.CertificateRevoked ||
                                error.errorCode === ErrorCode.AlreadyRevoked)),
                    `round ${round}: unexpected ${String(error)}`,
                );
            }
            const status = await statusOf(net, object);
            assert.ok(status === 'used' || status === 'revoked');
            if (status === 'used') activationsWon++;
            else revocationsWon++;
            const sessions = (await net.dumpState()).filter((e) => e.type === 'session' && holds(e, idCertOf(object)));
            assert.equal(sessions.length, status === 'used' ? 1 : 0, 'a revoked certificate has no session');
        }
        console.log(`# revocation race: ${activationsWon} activations won, ${revocationsWon} revocations won`);
    });
});
