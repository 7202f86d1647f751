/**
 * The fog's relay records through the Fabric client path (docs/records.md, "The fog's relay
 * records"): a fresh fog of FogAMSP, registered and approved, relays one record query through its
 * FogQueryHandler with FogRelayRecords over its RecordBatcher (writer fog:<id>); the batch holding
 * the query packet's and the answer's records is anchored with @hyperledger/fabric-gateway as the
 * fog, and a receipt built from the block qscc returns verifies offline against the channel's MSP
 * roots. Bad input: the fog's log anchored under another key, from the other fog organisation, and
 * a replayed batch. Each commit is awaited on every peer before the next organisation acts on it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
    DEFAULT_SUITE,
    ErrorCode,
    MerkleTree,
    PartyRole,
    RecordType,
    Responder,
    checkRelayRecord,
    createInformationPacket,
    createQueryPacket,
    decodeQueryPacket,
    encodePoint,
    fogWriter,
    partyKeyId,
    randomScalar,
    toHex,
    type Point,
} from '@m2m-fabric/protocol';
import {
    EndorseError,
    ReceiptVerifier,
    anchorBatch,
    buildReceipt,
    encodeReceipt,
    fetchBlockByTxId,
    waitForCommit,
    type AnchoredBatch,
} from '@m2m-fabric/sdk';
import { FogQueryHandler, FogRelayRecords, RecordBatcher } from '@m2m-fabric/services';

import { cspFogAddress, newFog, type CspActor, type FogActor } from '../chaincode/actors.js';
import { choice, openSuite, registeredCsp, skip, type OpenSuite } from './suite-setup.js';
import { MSP } from './targets.js';

const options = { skip };
const suite = DEFAULT_SUITE;

async function refused(call: Promise<unknown>, code: string): Promise<void> {
    await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof EndorseError, String(err));
        assert.equal(err.errorCode, code, err.chaincodeMessage);
        return true;
    });
}

void describe(`fog relay records through the ledger client (${typeof choice === 'string' ? choice : 'no target'})`, () => {
    let open: OpenSuite;
    let csp: CspActor;
    let fog: FogActor;
    let batcher: RecordBatcher;
    const anchored: AnchoredBatch[] = [];

    /** Waits until every organisation's peer has committed the transaction. */
    async function everywhere(status: { transactionId: string; blockNumber: bigint }): Promise<void> {
        await Promise.all(
            [...open.connections.values()].map((c) => waitForCommit(c, open.target.chaincodeName, status)),
        );
    }

    before(async () => {
        if (skip !== false) return;
        open = await openSuite();
        csp = await registeredCsp(open);
        // A fresh fog per run (a Fabric ledger keeps earlier runs' fogs and their logs).
        fog = await newFog(csp, `relay-${randomBytes(4).toString('hex')}`, MSP.foga);
        const registered = await (
            await open
                .contract('foga', 'registry')
                .submitAsync('registerFog', { arguments: [fog.id, fog.publicKeyHex, fog.addressHex] })
        ).getStatus();
        await everywhere(registered);
        const approved = await (
            await open
                .contract('csp', 'registry')
                .submitAsync('approveFog', { arguments: [fog.id, cspFogAddress(csp, fog)] })
        ).getStatus();
        await everywhere(approved);
        batcher = await RecordBatcher.open({
            dir: join(open.stateDir, 'records', fog.id),
            writer: { suite, writer: fogWriter(fog.id), secretKey: fog.d },
            anchors: open.contract('foga', 'anchors'),
            batchSize: 10_000,
            maxDelayMs: 600_000,
            onAnchored: (batch) => anchored.push(batch),
        });
    });
    after(async () => {
        await batcher?.close();
        await open?.close();
    });

    void it('anchors the relay records of one query as the fog; a receipt verifies offline', options, async () => {
        const machine = (): { secret: bigint; Q: Point } => {
            const secret = randomScalar(suite);
            return { secret, Q: suite.Point.BASE.multiply(secret) };
        };
        const asker = machine();
        const target = machine();
        const keys: Record<string, Point> = { asker: asker.Q, target: target.Q };
        const handler = new FogQueryHandler({
            suite,
            directory: {
                lookup: (id) =>
                    Promise.resolve(
                        keys[id] === undefined
                            ? undefined
                            : { equipmentId: id, status: 'online', publicKey: toHex(encodePoint(suite, keys[id])) },
                    ),
            },
            routes: {
                endpointsFor: () => [
                    {
                        kind: 'target',
                        deliver: async (packet) =>
                            (
                                await createInformationPacket(
                                    suite,
                                    decodeQueryPacket(suite, packet, 5),
                                    [],
                                    encodePoint(suite, asker.Q),
                                    Responder.Target,
                                    target.secret,
                                )
                            ).bytes,
                    },
                ],
            },
            relays: new FogRelayRecords({
                suite,
                secretKey: fog.d,
                cspPublicKey: csp.Q,
                sink: batcher,
                firstSequence: batcher.tree.size,
            }),
        });
        const now = Date.now();
        const packet = createQueryPacket(
            suite,
            {
                receiverId: 'target',
                senderId: 'asker',
                since: 0,
                until: now,
                kinds: [],
                nonce: randomBytes(16),
                issuedAt: now,
                expiresAt: now + 60_000,
            },
            asker.secret,
        );
        const reply = await handler.handle(packet.bytes);
        assert.equal(batcher.durableSize, 2);
        await batcher.drain();
        const batch = anchored.at(-1);
        assert.ok(batch !== undefined && batch.treeSize === 2, 'one batch holds both relay records');
        assert.equal(batch.writer, fogWriter(fog.id));
        const askerParty = { role: PartyRole.Device, keyId: partyKeyId(suite, asker.Q) };
        const targetParty = { role: PartyRole.Device, keyId: partyKeyId(suite, target.Q) };
        checkRelayRecord(await batcher.readRecord(0), packet.bytes, {
            relayer: fog.Q,
            sender: askerParty,
            receiver: targetParty,
        });
        checkRelayRecord(await batcher.readRecord(1), reply, {
            relayer: fog.Q,
            sender: targetParty,
            receiver: askerParty,
        });
        const block = await fetchBlockByTxId(open.connections.get('foga')!, batch.transactionId);
        const verifier = new ReceiptVerifier(await open.target.channelTrust());
        for (const leafIndex of [0, 1]) {
            const receipt = encodeReceipt(
                buildReceipt(
                    {
                        record: await batcher.readRecord(leafIndex),
                        writer: batch.writer,
                        sequence: batch.sequence,
                        leafIndex,
                        treeSize: batch.treeSize,
                        inclusionProof: batcher.tree.inclusionProof(leafIndex, batch.treeSize),
                        root: batch.root,
                        transactionId: batch.transactionId,
                    },
                    block,
                ),
            );
            assert.equal(verifier.verifyBytes(receipt).type, RecordType.Relay);
        }
    });

    void it(
        "refuses the fog's log under another key, from another organisation, and a replayed batch",
        options,
        async () => {
            const last = anchored.at(-1);
            assert.ok(last !== undefined, 'the first test anchored a batch');
            await everywhere({ transactionId: last.transactionId, blockNumber: last.blockNumber });
            const writer = { suite, writer: fogWriter(fog.id), secretKey: fog.d };
            // The fog's log plus one more record, so only the refusals below stand between it and an anchor.
            const tree = new MerkleTree();
            for (let leaf = 0; leaf < last.treeSize; leaf++) tree.append(await batcher.readRecord(leaf));
            tree.append(randomBytes(64));
            const impostor = { ...writer, secretKey: randomScalar(suite) };
            await refused(
                anchorBatch(open.contract('foga', 'anchors'), impostor, tree, last.sequence + 1, last.treeSize),
                ErrorCode.FailedSignatureVerification,
            );
            await refused(
                anchorBatch(open.contract('fogb', 'anchors'), writer, tree, last.sequence + 1, last.treeSize),
                ErrorCode.UnauthorisedMsp,
            );
            const previous = anchored.length > 1 ? anchored.at(-2)!.treeSize : 0;
            await refused(
                anchorBatch(open.contract('foga', 'anchors'), writer, tree, last.sequence, previous, last.treeSize),
                ErrorCode.DuplicateBatch,
            );
            const head = JSON.parse(
                new TextDecoder().decode(
                    await open
                        .contract('foga', 'anchors')
                        .evaluate('getWriterHead', { arguments: [fogWriter(fog.id)] }),
                ),
            ) as { sequence: number; treeSize: number };
            assert.deepEqual([head.sequence, head.treeSize], [last.sequence, last.treeSize], 'nothing was anchored');
        },
    );
});
