/**
 * Every rejection the chaincode can give, each reached by a real transaction on the embedded
 * ledger and followed by a check that the world state is exactly what it was. The last test
 * checks that every code the chaincode raises was reached here.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
    ErrorCode,
    P256_SHA256,
    contentAddress,
    decodeActivation,
    decodeCertificateObject,
    decodeSynchronisation,
    dleqProve,
    encodeActivation,
    encodeCertificateObject,
    encodeCertificateRequest,
    encodePoint,
    encodeSynchronisation,
    fromHex,
    CSP_WRITER,
    MerkleTree,
    SchnorrContext,
    batchHeadMessage,
    encodeSchnorrSignature,
    merkleLeafHash,
    schnorrSign,
    randomScalar,
    toHex,
} from '@m2m-fabric/protocol';
import type { DeviceSecrets } from '@m2m-fabric/protocol';

import {
    buildRequest,
    cspFogAddress,
    issuanceTransient,
    issueObjects,
    newDevice,
    newFog,
    prepareActivation,
    prepareSynchronisation,
} from './actors.js';
import type { FogActor, PreparedActivation, SessionRequest } from './actors.js';
import { startNetwork } from './network.js';
import type { Party, TestNetwork } from './network.js';
import { activate, assertRejectedUnchanged, bootstrap, evaluate, purchase, registerFog, submit } from './scenario.js';
import type { Call } from './scenario.js';

const suite = P256_SHA256;

/** Codes the chaincode never raises (used by the off-chain services). */
const OFF_CHAIN_CODES = new Set<string>([
    ErrorCode.CertificateAlreadyUsed,
    ErrorCode.DecryptionFailed,
    ErrorCode.ReplayDetected,
    // Communication records are verified by their readers (SDK), not by the chaincode.
    ErrorCode.RecordSignatureInvalid,
    ErrorCode.RecordSenderMismatch,
    ErrorCode.ReceiptInvalid,
    ErrorCode.JournalCorrupt,
    // Raised by the checkpoints contract; test/records/checkpoint.test.ts asserts each on two ledgers
    // and that the target's state is unchanged.
    ErrorCode.CheckpointInvalid,
    ErrorCode.CheckpointNotNewer,
    ErrorCode.UnknownCheckpointSource,
    ErrorCode.DuplicateCheckpointSource,
    ErrorCode.RecordMismatch,
    // Sharing a record the CSP never sealed (records/envelopes.ts, test/records/record-share.test.ts).
    ErrorCode.UnknownRecord,
    // Raised by the device and the CSP (forward-secrecy.ts), never by chaincode.
    ErrorCode.ForwardSecrecyRequired,
    // Raised by the revocation contract; test/chaincode/revocation.test.ts asserts each leaves the state unchanged.
    ErrorCode.CertificateRevoked,
    ErrorCode.AlreadyRevoked,
    ErrorCode.PublicKeyMismatch, // Algorithm 3 at the CSP (runAlgorithm3)
    // The record-query protocol's fog, target and asker (test/services/record-query.test.ts).
    ErrorCode.IncompletePacket,
    ErrorCode.UnknownTarget,
    ErrorCode.TargetUnreachable,
    ErrorCode.AnswerIncomplete,
    ErrorCode.QueryExpired,
    // The fog's relay records (test/records/relay-records.test.ts): a packet whose record is not journaled is not relayed.
    ErrorCode.RecordNotJournaled,
    // Raised by registry:rotateCspKey and activation; test/chaincode/csp-rotation.test.ts asserts
    // each leaves the state unchanged.
    ErrorCode.CspKeyExpired,
    ErrorCode.WeakKey,
    // Raised by activation after a rotation to another suite; test/chaincode/csp-rotation-suite.test.ts
    // asserts it leaves the state unchanged.
    ErrorCode.FogSuiteKeyMissing,
]);

void describe('every chaincode rejection leaves the state unchanged', () => {
    let net: TestNetwork;
    const reached = new Set<string>();

    async function expectCode(code: ErrorCode, call: () => Promise<unknown>): Promise<void> {
        await assertRejectedUnchanged(net, call, code);
        reached.add(code);
    }

    function tx(party: Party, contract: string, transaction: string, call: Call = {}): () => Promise<unknown> {
        return () => submit(party, contract, transaction, call);
    }

    let device: DeviceSecrets;
    let bought: { request: SessionRequest; objects: Uint8Array[] };
    let pendingFog: FogActor;

    before(async () => {
        net = await startNetwork(suite);
    });
    after(async () => net.close());

    void it('notConfigured before the CSP registers Q_c', async () => {
        const { parties } = net;
        await expectCode(
            ErrorCode.NotConfigured,
            tx(parties.fogA, 'registry', 'registerFog', {
                args: [net.fogA.id, net.fogA.publicKeyHex, net.fogA.addressHex],
            }),
        );
        const request = buildRequest(suite, newDevice('early', suite), 1n, 1);
        await expectCode(
            ErrorCode.NotConfigured,
            tx(parties.manufacturer, 'certificates', 'requestSessions', {
                args: ['1', request.cid],
                transient: { request: request.bytes },
            }),
        );
        await expectCode(ErrorCode.NotConfigured, () => evaluate(parties.fogA, 'registry', 'getCsp'));
        await bootstrap(net, 20);
        device = newDevice('mill-7', suite);
        bought = await purchase(net, device, 1n, 4);
    });

    void it('registry rejections', async () => {
        const { parties, csp } = net;
        await expectCode(
            ErrorCode.AlreadyExists,
            tx(parties.csp, 'registry', 'registerCsp', { args: [suite.id, csp.publicKeyHex] }),
        );
        await expectCode(
            ErrorCode.MalformedInput,
            tx(parties.csp, 'registry', 'registerCsp', { args: ['P999-SHA1', csp.publicKeyHex] }),
        );
        await expectCode(ErrorCode.AlreadyExists, () => registerFog(parties.fogA, net.fogA));
        await expectCode(
            ErrorCode.UnknownFog,
            tx(parties.csp, 'registry', 'approveFog', { args: ['fog-x', net.fogA.addressHex] }),
        );
        await expectCode(ErrorCode.UnknownFog, () => evaluate(parties.csp, 'registry', 'getFog', { args: ['fog-x'] }));
        pendingFog = await newFog(csp, 'fog-c', parties.fogA.mspId);
        await registerFog(parties.fogA, pendingFog);
        // The fog registered an addr_f it cannot back with d_f.
        await expectCode(
            ErrorCode.InvalidProofOfPossession,
            tx(parties.csp, 'registry', 'approveFog', {
                args: [pendingFog.id, cspFogAddress(csp, net.fogB)],
            }),
        );
        await expectCode(
            ErrorCode.InvalidStateTransition,
            tx(parties.csp, 'registry', 'approveFog', {
                args: [net.fogA.id, cspFogAddress(csp, net.fogA)],
            }),
        );
        await expectCode(
            ErrorCode.MalformedInput,
            tx(parties.csp, 'registry', 'grantCredit', { args: [parties.fogA.mspId, '5'] }),
        );
        await expectCode(
            ErrorCode.MalformedInput,
            tx(parties.csp, 'registry', 'grantCredit', { args: [parties.manufacturer.mspId, '0'] }),
        );
        await expectCode(
            ErrorCode.MalformedInput,
            tx(parties.csp, 'registry', 'grantCredit', { args: [parties.manufacturer.mspId, '1e3'] }),
        );
        await expectCode(ErrorCode.MalformedInput, tx(parties.csp, 'registry', 'noSuchTransaction'));
    });

    void it('Algorithm 1: session requests', async () => {
        const m = net.parties.manufacturer;
        // Balance is 16 after buying 4: 17 sessions cannot be paid.
        const tooMany = buildRequest(suite, newDevice('drill-1', suite), 1n, 17);
        await expectCode(
            ErrorCode.FailedPayment,
            tx(m, 'certificates', 'requestSessions', {
                args: ['17', tooMany.cid],
                transient: { request: tooMany.bytes },
            }),
        );
        // Counter proofs swapped between two entries: each is bound to its own IDCert_i.
        const honest = buildRequest(suite, newDevice('drill-2', suite), 1n, 2);
        const [e0, e1] = honest.request.entries;
        assert.ok(e0 !== undefined && e1 !== undefined);
        const swappedBytes = encodeCertificateRequest({
            suite,
            entries: [
                { idCert: e0.idCert, counterProof: e1.counterProof },
                { idCert: e1.idCert, counterProof: e0.counterProof },
            ],
        });
        await expectCode(
            ErrorCode.FailedChallenge,
            tx(m, 'certificates', 'requestSessions', {
                args: ['2', contentAddress(swappedBytes)],
                transient: { request: swappedBytes },
            }),
        );
        await expectCode(
            ErrorCode.ContentAddressMismatch,
            tx(m, 'certificates', 'requestSessions', {
                args: ['2', bought.request.cid],
                transient: { request: honest.bytes },
            }),
        );
        await expectCode(
            ErrorCode.MalformedInput,
            tx(m, 'certificates', 'requestSessions', {
                args: ['3', honest.cid],
                transient: { request: honest.bytes },
            }),
        );
        await expectCode(
            ErrorCode.MalformedInput,
            tx(m, 'certificates', 'requestSessions', { args: ['2', honest.cid] }),
        );
        await expectCode(
            ErrorCode.MalformedInput,
            tx(m, 'certificates', 'requestSessions', {
                args: ['2', honest.cid],
                transient: { request: honest.bytes, equipment: new TextEncoder().encode('mill-7') },
            }),
        );
        const garbage = new TextEncoder().encode('not a certificate request');
        await expectCode(
            ErrorCode.MalformedInput,
            tx(m, 'certificates', 'requestSessions', {
                args: ['1', contentAddress(garbage)],
                transient: { request: garbage },
            }),
        );
        await expectCode(
            ErrorCode.MalformedInput,
            tx(m, 'certificates', 'requestSessions', {
                args: ['0', honest.cid],
                transient: { request: honest.bytes },
            }),
        );
        await expectCode(
            ErrorCode.AlreadyExists,
            tx(m, 'certificates', 'requestSessions', {
                args: ['4', bought.request.cid],
                transient: { request: bought.request.bytes },
            }),
        );
        // Counters 4 and 5: the IDCert_i of counter 4 is already on the ledger.
        const overlapping = buildRequest(suite, device, 4n, 2);
        await expectCode(
            ErrorCode.AlreadyExists,
            tx(m, 'certificates', 'requestSessions', {
                args: ['2', overlapping.cid],
                transient: { request: overlapping.bytes },
            }),
        );
    });

    void it('Algorithm 1: payment from named credit lots', async () => {
        const m = net.parties.manufacturer;
        type Credit = { balance: number; lots: { lotId: string; remaining: number }[] };
        const credit = async (): Promise<Credit> =>
            (await evaluate(m, 'registry', 'getCredit', { args: [m.mspId] })) as unknown as Credit;
        const start = await credit();
        const [lot, other] = start.lots;
        assert.ok(lot !== undefined && other !== undefined, 'the grant made several lots');
        const request = buildRequest(suite, newDevice('lathe-1', suite), 1n, 1);
        const fromLots = (lots: unknown, r: SessionRequest = request, n = 1): (() => Promise<unknown>) =>
            tx(m, 'certificates', 'requestSessionsFromLots', {
                args: [String(n), r.cid, typeof lots === 'string' ? lots : JSON.stringify(lots)],
                transient: { request: r.bytes },
            });
        await expectCode(ErrorCode.MalformedInput, fromLots('not json'));
        await expectCode(ErrorCode.MalformedInput, fromLots({ lot: lot.lotId }));
        await expectCode(ErrorCode.MalformedInput, fromLots([lot.lotId, lot.lotId]));
        await expectCode(ErrorCode.MalformedInput, fromLots(['../credit']));
        await expectCode(ErrorCode.FailedPayment, fromLots([]));
        // A lot that does not exist (spent, or never granted) pays nothing.
        await expectCode(ErrorCode.FailedPayment, fromLots([`${'ab'.repeat(32)}.000`]));
        // One lot cannot pay more than it holds, even when the account could.
        const big = buildRequest(suite, newDevice('lathe-2', suite), 1n, lot.remaining + 1);
        await expectCode(ErrorCode.FailedPayment, fromLots([lot.lotId], big, lot.remaining + 1));
        // Paid from the named lot only; every other lot is untouched.
        await submit(m, 'certificates', 'requestSessionsFromLots', {
            args: ['1', request.cid, JSON.stringify([lot.lotId])],
            transient: { request: request.bytes },
        });
        const after = await credit();
        assert.equal(after.balance, start.balance - 1);
        assert.equal(after.lots.find((l) => l.lotId === lot.lotId)?.remaining ?? 0, lot.remaining - 1);
        assert.deepEqual(
            after.lots.filter((l) => l.lotId !== lot.lotId),
            start.lots.filter((l) => l.lotId !== lot.lotId),
        );
    });

    void it('Algorithm 1: certificate issuance', async () => {
        const { parties, csp } = net;
        const request = buildRequest(suite, newDevice('saw-3', suite), 1n, 2);
        await submit(parties.manufacturer, 'certificates', 'requestSessions', {
            args: ['2', request.cid],
            transient: { request: request.bytes },
        });
        const objects = issueObjects(csp, request);
        const [o0, o1] = objects;
        assert.ok(o0 !== undefined && o1 !== undefined);
        const issue = (transient: Record<string, Uint8Array>, id = request.cid): (() => Promise<unknown>) =>
            tx(parties.csp, 'certificates', 'issueCertificates', { args: [id], transient });

        const unknown = buildRequest(suite, newDevice('saw-4', suite), 1n, 1);
        await expectCode(
            ErrorCode.UnknownRequest,
            issue(issuanceTransient(unknown, issueObjects(csp, unknown)), unknown.cid),
        );
        await expectCode(ErrorCode.UnknownRequest, () =>
            evaluate(parties.csp, 'certificates', 'getRequest', { args: [unknown.cid] }),
        );
        // r_aux altered: the ECQV issuance equation fails.
        const wrongR = decodeCertificateObject(o0);
        await expectCode(
            ErrorCode.InvalidIssuance,
            issue(
                issuanceTransient(request, [
                    encodeCertificateObject({ ...wrongR, rAux: (wrongR.rAux + 1n) % suite.n }),
                    o1,
                ]),
            ),
        );
        // A counter proof moved from entry 1 onto entry 0's certificate.
        const moved = { ...decodeCertificateObject(o0), counterProof: decodeCertificateObject(o1).counterProof };
        await expectCode(
            ErrorCode.FailedChallenge,
            issue(issuanceTransient(request, [encodeCertificateObject(moved), o1])),
        );
        await expectCode(ErrorCode.MalformedInput, issue(issuanceTransient(request, [o1, o0])));
        await expectCode(ErrorCode.MalformedInput, issue({ request: request.bytes, 'certificate:0': o0 }));
        await expectCode(
            ErrorCode.MalformedInput,
            issue({ ...issuanceTransient(request, objects), 'certificate:2': o0 }),
        );
        await expectCode(
            ErrorCode.ContentAddressMismatch,
            issue({ ...issuanceTransient(request, objects), request: bought.request.bytes }),
        );
        await expectCode(
            ErrorCode.UnauthorisedMsp,
            tx(parties.manufacturer, 'certificates', 'issueCertificates', {
                args: [request.cid],
                transient: issuanceTransient(request, objects),
            }),
        );

        // Not issued yet: the Table II record is only reserved.
        const idCert0 = toHex(encodePoint(suite, decodeCertificateObject(o0).idCert));
        assert.equal(
            (await evaluate(parties.fogA, 'certificates', 'getCertificate', { args: [idCert0] })).status,
            'requested',
        );

        await submit(parties.csp, 'certificates', 'issueCertificates', {
            args: [request.cid],
            transient: issuanceTransient(request, objects),
        });
        // Resubmitting other objects (fresh r_c) for an issued request changes nothing.
        await expectCode(
            ErrorCode.ContentAddressMismatch,
            issue(issuanceTransient(request, issueObjects(csp, request))),
        );
    });

    void it('Algorithm 2: activation', async () => {
        const { parties, csp } = net;
        const [o1, o2, o3] = bought.objects;
        assert.ok(o1 !== undefined && o2 !== undefined && o3 !== undefined);
        const good = await prepareActivation(csp, net.fogA, device, 1n, o1);
        const activateAs = (party: Party, fogId: string, bytes: Uint8Array): (() => Promise<unknown>) =>
            tx(party, 'sessions', 'activateSession', { args: [fogId], transient: { activation: bytes } });
        const withActivation = (
            prepared: PreparedActivation,
            change: (a: ReturnType<typeof decodeActivation>) => void,
        ): Uint8Array => {
            const activation = decodeActivation(suite, prepared.bytes);
            change(activation);
            return encodeActivation(activation);
        };

        await expectCode(ErrorCode.UnknownFog, activateAs(parties.fogA, 'fog-x', good.bytes));
        await expectCode(ErrorCode.UnauthorisedMsp, activateAs(parties.fogB, net.fogA.id, good.bytes));
        await expectCode(
            ErrorCode.MalformedInput,
            tx(parties.fogA, 'sessions', 'activateSession', { args: [net.fogA.id] }),
        );
        await expectCode(ErrorCode.MalformedInput, activateAs(parties.fogA, net.fogA.id, good.bytes.slice(0, -1)));

        // A certificate the CSP-CA made off the ledger: no Table II record.
        const strayObject = issueObjects(csp, buildRequest(suite, newDevice('stray', suite), 1n, 1))[0];
        assert.ok(strayObject !== undefined);

        // Tampered certificate object (another r_aux): not the object the ledger points to.
        await expectCode(
            ErrorCode.ContentAddressMismatch,
            activateAs(
                parties.fogA,
                net.fogA.id,
                withActivation(good, (a) => {
                    const object = decodeCertificateObject(a.certificateObject);
                    a.certificateObject = encodeCertificateObject({ ...object, rAux: (object.rAux + 1n) % suite.n });
                }),
            ),
        );
        // A pending, then revoked, fog.
        const atPending = await prepareActivation(csp, pendingFog, device, 1n, o1);
        await expectCode(ErrorCode.FogNotApproved, activateAs(parties.fogA, pendingFog.id, atPending.bytes));
        await submit(parties.csp, 'registry', 'revokeFog', { args: [pendingFog.id] });
        await expectCode(ErrorCode.FogNotApproved, activateAs(parties.fogA, pendingFog.id, atPending.bytes));
        await expectCode(
            ErrorCode.InvalidStateTransition,
            tx(parties.csp, 'registry', 'revokeFog', { args: [pendingFog.id] }),
        );

        // Proof of possession taken from another session of the same device.
        const other = await prepareActivation(csp, net.fogA, device, 2n, o2);
        await expectCode(
            ErrorCode.InvalidProofOfPossession,
            activateAs(
                parties.fogA,
                net.fogA.id,
                withActivation(good, (a) => {
                    a.proofOfPossession = decodeActivation(suite, other.bytes).proofOfPossession;
                }),
            ),
        );
        // A made-up P with the fog's real proof, and a P proved under a key that is not Q_f.
        await expectCode(
            ErrorCode.InvalidDleqProof,
            activateAs(
                parties.fogA,
                net.fogA.id,
                withActivation(good, (a) => {
                    a.P = suite.Point.BASE.multiply(randomScalar(suite));
                }),
            ),
        );
        await expectCode(
            ErrorCode.InvalidDleqProof,
            activateAs(
                parties.fogA,
                net.fogA.id,
                withActivation(good, (a) => {
                    const idCert = decodeCertificateObject(a.certificateObject).idCert;
                    const fake = randomScalar(suite);
                    a.P = idCert.multiply(fake);
                    a.dleqProof = dleqProve(
                        suite,
                        fake,
                        suite.Point.BASE,
                        suite.Point.BASE.multiply(fake),
                        idCert,
                        a.P,
                    );
                }),
            ),
        );
        // M3 altered: the device's signature by d_i no longer covers it.
        await expectCode(
            ErrorCode.FailedSignatureVerification,
            activateAs(
                parties.fogA,
                net.fogA.id,
                withActivation(good, (a) => {
                    a.m3 = { ...a.m3, symKeyCommitment: new Uint8Array(suite.hashBytes).fill(7) };
                }),
            ),
        );

        // The honest activation goes through once; its replay is a double use.
        await activate(net, net.fogA, good);
        await expectCode(ErrorCode.FailedDoubleSpendingCheck1, activateAs(parties.fogA, net.fogA.id, good.bytes));
        const atB = await prepareActivation(csp, net.fogB, device, 1n, o1);
        await expectCode(ErrorCode.FailedDoubleSpendingCheck1, activateAs(parties.fogB, net.fogB.id, atB.bytes));
        await expectCode(ErrorCode.UnknownCertificate, () =>
            evaluate(parties.fogA, 'certificates', 'getCertificate', {
                args: [toHex(encodePoint(suite, decodeCertificateObject(strayObject).idCert))],
            }),
        );
    });

    void it('Algorithm 2: certificates not on the ledger or not yet issued', async () => {
        const { parties, csp } = net;
        // Requested but not issued.
        const waiting = newDevice('press-9', suite);
        const request = buildRequest(suite, waiting, 1n, 1);
        await submit(parties.manufacturer, 'certificates', 'requestSessions', {
            args: ['1', request.cid],
            transient: { request: request.bytes },
        });
        const object = issueObjects(csp, request)[0];
        assert.ok(object !== undefined);
        const early = await prepareActivation(csp, net.fogA, waiting, 1n, object);
        await expectCode(
            ErrorCode.UnknownCertificate,
            tx(parties.fogA, 'sessions', 'activateSession', {
                args: [net.fogA.id],
                transient: { activation: early.bytes },
            }),
        );
        // Never requested: the CSP-CA issued it off the ledger.
        const stray = newDevice('press-10', suite);
        const strayRequest = buildRequest(suite, stray, 1n, 1);
        const strayObject = issueObjects(csp, strayRequest)[0];
        assert.ok(strayObject !== undefined);
        const strayActivation = await prepareActivation(csp, net.fogA, stray, 1n, strayObject);
        await expectCode(
            ErrorCode.UnknownCertificate,
            tx(parties.fogA, 'sessions', 'activateSession', {
                args: [net.fogA.id],
                transient: { activation: strayActivation.bytes },
            }),
        );
    });

    void it('Algorithm 3: synchronisation', async () => {
        const { parties, csp } = net;
        const [, o2, o3] = bought.objects;
        assert.ok(o2 !== undefined && o3 !== undefined);
        const first = await prepareActivation(csp, net.fogB, device, 2n, o2);
        const firstHash = (await activate(net, net.fogB, first)).primaryHash as string;
        const second = await prepareActivation(csp, net.fogA, device, 3n, o3);
        const secondHash = (await activate(net, net.fogA, second)).primaryHash as string;
        const firstSync = await prepareSynchronisation(csp, net.fogB, first, fromHex(firstHash));
        const secondSync = await prepareSynchronisation(csp, net.fogA, second, fromHex(secondHash));
        const sync = (bytes: Uint8Array): (() => Promise<unknown>) =>
            tx(parties.csp, 'sessions', 'synchroniseSession', { transient: { synchronisation: bytes } });
        const altered = (
            bytes: Uint8Array,
            change: (s: ReturnType<typeof decodeSynchronisation>) => void,
        ): Uint8Array => {
            const s = decodeSynchronisation(suite, bytes);
            change(s);
            return encodeSynchronisation(s);
        };

        await expectCode(
            ErrorCode.InvalidPrimaryHash,
            sync(altered(firstSync.bytes, (s) => (s.primaryHash = new Uint8Array(suite.hashBytes).fill(3)))),
        );
        await expectCode(ErrorCode.InvalidPrimaryHash, () =>
            evaluate(parties.csp, 'sessions', 'getSession', { args: ['03'.repeat(suite.hashBytes)] }),
        );
        await expectCode(
            ErrorCode.SymmetricKeyInvalid,
            sync(altered(firstSync.bytes, (s) => (s.symKeyCommitment = new Uint8Array(suite.hashBytes).fill(4)))),
        );
        await expectCode(ErrorCode.MalformedInput, tx(parties.csp, 'sessions', 'synchroniseSession'));
        await expectCode(
            ErrorCode.UnauthorisedMsp,
            tx(parties.fogA, 'sessions', 'synchroniseSession', { transient: { synchronisation: firstSync.bytes } }),
        );

        await submit(parties.csp, 'sessions', 'synchroniseSession', {
            transient: { synchronisation: firstSync.bytes },
        });
        // Replay of a recorded synchronisation.
        await expectCode(ErrorCode.InvalidPrimaryHash, sync(firstSync.bytes));
        // Another session submitted with a secondaryHash already used.
        await expectCode(
            ErrorCode.FailedDoubleSpendingCheck2,
            sync(altered(secondSync.bytes, (s) => (s.secondaryHash = firstSync.secondaryHash))),
        );
        await submit(parties.csp, 'sessions', 'synchroniseSession', {
            transient: { synchronisation: secondSync.bytes },
        });
        assert.equal(
            (await evaluate(parties.fogA, 'sessions', 'getSession', { args: [secondHash] })).status,
            'synchronised',
        );
        // A fog reads only the sessions its organisation activated.
        await expectCode(ErrorCode.UnauthorisedMsp, () =>
            evaluate(parties.fogA, 'sessions', 'getSession', { args: [firstHash] }),
        );
    });

    void it('Machine-Equipment Blockchain lookups', async () => {
        await expectCode(ErrorCode.UnknownEquipment, () =>
            evaluate(net.parties.csp, 'equipment', 'getEquipment', { args: ['eq-404'] }),
        );
    });

    void it('anchors: duplicate, out-of-order and inconsistent batches, unknown batches', async () => {
        const { parties } = net;
        const tree = new MerkleTree(Array.from({ length: 9 }, (_, i) => merkleLeafHash(Uint8Array.of(i))));
        const args = (sequence: number, size: number, proof: Uint8Array[]): string[] => {
            const root = tree.root(size);
            const signature = schnorrSign(
                suite,
                SchnorrContext.BatchHead,
                net.csp.d,
                batchHeadMessage(CSP_WRITER, sequence, size, root),
            );
            return [
                CSP_WRITER,
                String(sequence),
                String(size),
                toHex(root),
                proof.map(toHex).join(''),
                toHex(encodeSchnorrSignature(suite, signature)),
            ];
        };
        await submit(parties.csp, 'anchors', 'anchorBatch', { args: args(1, 4, []) });
        await expectCode(ErrorCode.DuplicateBatch, tx(parties.csp, 'anchors', 'anchorBatch', { args: args(1, 4, []) }));
        await expectCode(
            ErrorCode.BatchOutOfOrder,
            tx(parties.csp, 'anchors', 'anchorBatch', { args: args(3, 9, tree.consistencyProof(4, 9)) }),
        );
        await expectCode(
            ErrorCode.MerkleProofInvalid,
            tx(parties.csp, 'anchors', 'anchorBatch', { args: args(2, 9, tree.consistencyProof(5, 9)) }),
        );
        await expectCode(ErrorCode.UnknownBatch, tx(parties.csp, 'anchors', 'getAnchor', { args: [CSP_WRITER, '7'] }));
    });

    void it('material traceability and query access', async () => {
        const owner = net.parties.manufacturer;
        const key = (): string => toHex(encodePoint(suite, suite.Point.BASE.multiply(randomScalar(suite))));
        for (const id of ['mat-carder', 'mat-old']) {
            await submit(owner, 'equipment', 'registerEquipment', {
                args: [id, 'carding machine', 'C-70', 'line-a', key(), '2', 'upload-download', 'always'],
            });
        }
        await submit(owner, 'equipment', 'updateEquipmentStatus', { args: ['mat-old', 'decommissioned'] });
        await submit(owner, 'materials', 'registerLot', { args: ['mat-bale', 'cotton bale', '10', 'g', 'farm'] });
        const step = (id: string, equipmentId: string, input: string, quantity: number, output: string): string =>
            JSON.stringify({
                transformationId: id,
                kind: 'process',
                equipmentId,
                step: 'carding',
                inputs: [{ lotId: input, quantity }],
                outputs: [{ lotId: output, kind: 'sliver', quantity: 1, unit: 'g' }],
                parameters: {},
                qualityRefs: [],
            });
        await submit(owner, 'materials', 'recordTransformation', {
            args: [step('mat-t1', 'mat-carder', 'mat-bale', 5, 'mat-sliver')],
        });
        await submit(owner, 'materials', 'recordTransformation', {
            args: [step('mat-t5', 'mat-carder', 'mat-sliver', 1, 'mat-yarn')],
        });
        await expectCode(ErrorCode.UnknownLot, () => evaluate(owner, 'materials', 'getLot', { args: ['mat-404'] }));
        await expectCode(ErrorCode.UnknownTransformation, () =>
            evaluate(owner, 'materials', 'getTransformation', { args: ['mat-t404'] }),
        );
        await expectCode(
            ErrorCode.LotOverConsumed,
            tx(owner, 'materials', 'recordTransformation', {
                args: [step('mat-t2', 'mat-carder', 'mat-bale', 6, 'mat-x')],
            }),
        );
        await expectCode(
            ErrorCode.LotCycle,
            tx(owner, 'materials', 'recordTransformation', {
                args: [step('mat-t3', 'mat-carder', 'mat-yarn', 1, 'mat-bale')],
            }),
        );
        await expectCode(
            ErrorCode.EquipmentRetired,
            tx(owner, 'materials', 'recordTransformation', {
                args: [step('mat-t4', 'mat-old', 'mat-bale', 1, 'mat-y')],
            }),
        );
        await expectCode(ErrorCode.TraceDepthExceeded, () =>
            evaluate(owner, 'materials', 'traceForward', { args: ['mat-bale', '1', '10', ''] }),
        );
        await expectCode(ErrorCode.TraceTooLarge, () =>
            evaluate(owner, 'materials', 'traceForward', { args: ['mat-bale', '5', '10', '5000'] }),
        );
        await expectCode(
            ErrorCode.QueryDenied,
            tx(owner, 'queryAccess', 'revokeQueryAccess', { args: ['mat-carder', 'mat-old'] }),
        );
    });

    void it('reached every code the chaincode raises', () => {
        const expected = Object.values(ErrorCode).filter((code) => !OFF_CHAIN_CODES.has(code));
        assert.deepEqual([...reached].sort(), [...expected].sort());
    });
});
