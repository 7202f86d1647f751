/**
 * The fog's records of the packets it relays (docs/records.md, "The fog's relay records"): the
 * fog query handler with a FogRelayRecords over a real RecordBatcher (writer fog:fog-a) on the
 * embedded ledger. Each query packet is journaled before it is delivered and each answer before it
 * is handed back; a record that cannot be journaled stops the relay with recordNotJournaled; the
 * batch is anchored as the fog and its records carry the relayed bytes' digests, never plaintext.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import {
    EncryptionType,
    ErrorCode,
    P256_SHA256,
    PartyRole,
    QueryRetry,
    RecordType,
    Responder,
    checkRelayRecord,
    createInformationPacket,
    createQueryPacket,
    decodeFailurePacket,
    decodeQueryPacket,
    decodeRecord,
    encodeFailurePacket,
    encodePoint,
    fogWriter,
    merkleLeafHash,
    partyKeyId,
    recordPayloadAddress,
    relayerKeyId,
    toHex,
    verifyInclusion,
    type Point,
} from '@m2m-fabric/protocol';
import {
    EndorseError,
    anchorsInRange,
    getAnchor,
    listAnchors,
    openObjectStore,
    type ObjectStore,
} from '@m2m-fabric/sdk';
import {
    FogQueryHandler,
    FogRelayRecords,
    RecordBatcher,
    type EquipmentEntry,
    type QueryEndpoint,
} from '@m2m-fabric/services';

import { randomScalar } from '../crypto/helpers.js';
import { startNetwork, type TestNetwork } from '../chaincode/network.js';
import { bootstrap } from '../chaincode/scenario.js';
import { tempDir } from '../services/helpers/temp-dir.js';

const suite = P256_SHA256;

interface Machine {
    id: string;
    secret: bigint;
    Q: Point;
}

function machine(id: string): Machine {
    const secret = randomScalar(suite);
    return { id, secret, Q: suite.Point.BASE.multiply(secret) };
}

void describe("the fog's relay records", () => {
    let net: TestNetwork;
    let store: ObjectStore;
    let batcher: RecordBatcher;
    let relays: FogRelayRecords;
    const asker = machine('card-relay');
    const target = machine('lap-relay');
    const directory = {
        lookup: (id: string): Promise<EquipmentEntry | undefined> => {
            const m = [asker, target].find((x) => x.id === id);
            return Promise.resolve(
                m === undefined
                    ? undefined
                    : { equipmentId: id, status: 'online', publicKey: toHex(encodePoint(suite, m.Q)) },
            );
        },
    };
    /** Packets the target's private area received, and how many relay records were durable then. */
    const delivered: { packet: Uint8Array; durable: number }[] = [];
    const targetArea = (responder: Responder = Responder.Target, secret = target.secret): QueryEndpoint => ({
        kind: responder === Responder.Target ? 'target' : 'csp',
        deliver: async (packet) => {
            delivered.push({ packet, durable: batcher.durableSize });
            const query = decodeQueryPacket(suite, packet, 5);
            const info = await createInformationPacket(
                suite,
                query,
                [],
                encodePoint(suite, asker.Q),
                responder,
                secret,
            );
            return info.bytes;
        },
    });
    const handler = (endpoints: QueryEndpoint[], recorder = relays): FogQueryHandler =>
        new FogQueryHandler({ suite, directory, routes: { endpointsFor: () => endpoints }, relays: recorder });
    const query = (): Uint8Array => {
        const now = Date.now();
        return createQueryPacket(
            suite,
            {
                receiverId: target.id,
                senderId: asker.id,
                since: 0,
                until: now,
                kinds: [],
                nonce: randomBytes(16),
                issuedAt: now,
                expiresAt: now + 60_000,
            },
            asker.secret,
        ).bytes;
    };
    const party = (role: PartyRole, Q: Point): { role: PartyRole; keyId: Uint8Array } => ({
        role,
        keyId: partyKeyId(suite, Q),
    });

    before(async () => {
        net = await startNetwork(suite);
        await bootstrap(net, 0);
        store = await openObjectStore({ backend: 'embedded', directory: await tempDir('m2m-relay-store-') });
        batcher = await RecordBatcher.open({
            dir: await tempDir('m2m-relay-journal-'),
            writer: { suite, writer: fogWriter(net.fogA.id), secretKey: net.fogA.d },
            anchors: net.parties.fogA.contract('anchors'),
            store,
            // Anchored only by drain(): the tests look at the journal first.
            batchSize: 10_000,
            maxDelayMs: 3_600_000,
        });
        relays = new FogRelayRecords({
            suite,
            secretKey: net.fogA.d,
            cspPublicKey: net.csp.Q,
            sink: batcher,
            firstSequence: batcher.tree.size,
        });
    });
    after(async () => {
        await batcher?.close();
        await store?.close();
        await net?.close();
    });

    void it('journals the query packet before delivering it and the answer before handing it back', async () => {
        const packet = query();
        const start = batcher.durableSize;
        const reply = await handler([targetArea()]).handle(packet);
        assert.equal(delivered.at(-1)?.durable, start + 1, 'the query record was durable before the delivery');
        assert.equal(batcher.durableSize, start + 2);
        const [queryRecord, answerRecord] = [
            decodeRecord(await batcher.readRecord(start)),
            decodeRecord(await batcher.readRecord(start + 1)),
        ];
        const askerParty = party(PartyRole.Device, asker.Q);
        const targetParty = party(PartyRole.Device, target.Q);
        checkRelayRecord(await batcher.readRecord(start), packet, {
            relayer: net.fogA.Q,
            sender: askerParty,
            receiver: targetParty,
        });
        checkRelayRecord(await batcher.readRecord(start + 1), reply, {
            relayer: net.fogA.Q,
            sender: targetParty,
            receiver: askerParty,
        });
        assert.equal(queryRecord.type, RecordType.Relay);
        assert.equal(queryRecord.encryption, EncryptionType.Cleartext);
        assert.equal(answerRecord.encryption, EncryptionType.Hpke);
        assert.equal(answerRecord.sequence, queryRecord.sequence + 1n);
        assert.deepEqual(relayerKeyId(answerRecord), partyKeyId(suite, net.fogA.Q));
        // The stripped payloads are the relayed bytes, under the records' CIDs.
        assert.deepEqual(await store.get(recordPayloadAddress(packet)), packet);
        assert.deepEqual(await store.get(recordPayloadAddress(reply)), reply);
        assert.equal(relays.counts.queries, 1);
        assert.equal(relays.counts.answers, 1);
    });

    void it('names the CSP as the answer’s sender when it answers for an offline machine', async () => {
        const start = batcher.durableSize;
        const packet = query();
        const unreachable: QueryEndpoint = { kind: 'target', deliver: () => Promise.reject(new Error('offline')) };
        const reply = await handler([unreachable, targetArea(Responder.Csp, net.csp.d)]).handle(packet);
        // One record per delivery: to the offline agent, then to the CSP; then the CSP's answer.
        assert.equal(batcher.durableSize, start + 3);
        const cspParty = party(PartyRole.Csp, net.csp.Q);
        const askerParty = party(PartyRole.Device, asker.Q);
        checkRelayRecord(await batcher.readRecord(start + 1), packet, {
            relayer: net.fogA.Q,
            sender: askerParty,
            receiver: cspParty,
        });
        checkRelayRecord(await batcher.readRecord(start + 2), reply, {
            relayer: net.fogA.Q,
            sender: cspParty,
            receiver: askerParty,
        });
    });

    void it("records a target's denial as a cleartext relay, and nothing for the fog's own failures", async () => {
        const start = batcher.durableSize;
        const packet = query();
        const denying: QueryEndpoint = {
            kind: 'target',
            deliver: (p) =>
                Promise.resolve(
                    encodeFailurePacket({
                        queryDigest: decodeQueryPacket(suite, p).digest,
                        step: 5,
                        code: ErrorCode.QueryDenied,
                        retry: QueryRetry.None,
                        detail: 'no access rule',
                    }),
                ),
        };
        const fog = handler([denying]);
        const denial = await fog.handle(packet);
        assert.equal(decodeFailurePacket(denial).code, ErrorCode.QueryDenied);
        assert.equal(batcher.durableSize, start + 2);
        assert.equal(decodeRecord(await batcher.readRecord(start + 1)).encryption, EncryptionType.Cleartext);
        // A replay is refused by the fog itself at step 2: nothing is relayed, nothing recorded.
        const replay = decodeFailurePacket(await fog.handle(packet));
        assert.equal(replay.code, ErrorCode.ReplayDetected);
        assert.equal(batcher.durableSize, start + 2);
    });

    void it('does not relay a query whose record fails to journal (recordNotJournaled to the asker)', async () => {
        const before = delivered.length;
        const durable = batcher.durableSize;
        const broken = new FogRelayRecords({
            suite,
            secretKey: net.fogA.d,
            cspPublicKey: net.csp.Q,
            sink: { ingest: () => Promise.reject(new Error('no space left on device')) },
        });
        const failure = decodeFailurePacket(await handler([targetArea()], broken).handle(query()));
        assert.equal(failure.code, ErrorCode.RecordNotJournaled);
        assert.equal(failure.step, 4);
        assert.equal(failure.retry, QueryRetry.Later);
        assert.equal(delivered.length, before, 'the packet never reached the target');
        assert.equal(batcher.durableSize, durable);
        assert.equal(broken.counts.failed, 1);
    });

    void it('does not hand back an answer whose record fails to journal (step 8)', async () => {
        let calls = 0;
        const second = new FogRelayRecords({
            suite,
            secretKey: net.fogA.d,
            cspPublicKey: net.csp.Q,
            sink: {
                ingest: (record, payload) =>
                    ++calls === 2 ? Promise.reject(new Error('fsync failed')) : batcher.ingest(record, payload),
            },
        });
        const reply = await handler([targetArea()], second).handle(query());
        const failure = decodeFailurePacket(reply);
        assert.equal(failure.code, ErrorCode.RecordNotJournaled);
        assert.equal(failure.step, 8);
        assert.equal(second.counts.queries, 1);
        assert.equal(second.counts.answers, 0);
    });

    void it('stops relaying when the store under the journal fails (a real batcher fault)', async () => {
        const faulty: ObjectStore = Object.create(store) as ObjectStore;
        faulty.putMany = () => Promise.reject(new Error('store offline'));
        const other = await RecordBatcher.open({
            dir: await tempDir('m2m-relay-faulty-'),
            writer: { suite, writer: fogWriter(net.fogB.id), secretKey: net.fogB.d },
            anchors: net.parties.fogB.contract('anchors'),
            store: faulty,
        });
        try {
            const recorder = new FogRelayRecords({
                suite,
                secretKey: net.fogB.d,
                cspPublicKey: net.csp.Q,
                sink: other,
            });
            const before = delivered.length;
            const failure = decodeFailurePacket(await handler([targetArea()], recorder).handle(query()));
            assert.equal(failure.code, ErrorCode.RecordNotJournaled);
            assert.equal(delivered.length, before);
            assert.equal(other.durableSize, 0);
        } finally {
            await other.close();
        }
    });

    void it('anchors the relay records as the fog; each has an inclusion proof under the anchored root', async () => {
        await batcher.drain();
        assert.equal(batcher.anchoredSize, batcher.durableSize);
        const head = JSON.parse(
            new TextDecoder().decode(
                await net.parties.manufacturer
                    .contract('anchors')
                    .evaluate('getWriterHead', { arguments: [fogWriter(net.fogA.id)] }),
            ),
        ) as { treeSize: number; root: string };
        assert.equal(head.treeSize, batcher.durableSize);
        for (let leaf = 0; leaf < head.treeSize; leaf++) {
            const bytes = await batcher.readRecord(leaf);
            assert.equal(decodeRecord(bytes).type, RecordType.Relay);
            verifyInclusion(
                merkleLeafHash(bytes),
                leaf,
                head.treeSize,
                batcher.tree.inclusionProof(leaf, head.treeSize),
                batcher.tree.root(head.treeSize),
            );
        }
        assert.equal(toHex(batcher.tree.root(head.treeSize)), head.root);
        // No record's bytes name a machine id: only keyIds (hashes of keys).
        for (let leaf = 0; leaf < head.treeSize; leaf++) {
            const text = Buffer.from(await batcher.readRecord(leaf)).toString('latin1');
            assert.ok(!text.includes(asker.id) && !text.includes(target.id));
        }
    });

    void it("pages the fog's anchors by writer and time range through the SDK (listAnchors, anchorsInRange, getAnchor)", async () => {
        const anchors = net.parties.manufacturer.contract('anchors');
        const writer = fogWriter(net.fogA.id);
        // Four more batches, one query each.
        for (let i = 0; i < 4; i++) {
            await handler([targetArea()]).handle(query());
            await batcher.drain();
        }
        const all: number[] = [];
        const bookmarks: string[] = [];
        let bookmark = '';
        do {
            const page = await listAnchors(anchors, writer, { pageSize: 2, bookmark });
            assert.ok(page.anchors.length <= 2);
            all.push(...page.anchors.map((a) => a.sequence));
            bookmark = page.bookmark;
            bookmarks.push(bookmark);
        } while (bookmark !== '');
        assert.equal(all.length, batcher.sequence);
        assert.deepEqual(
            all,
            Array.from({ length: batcher.sequence }, (_, i) => i + 1),
        );
        assert.equal(bookmarks.length, Math.ceil(batcher.sequence / 2));
        const streamed: number[] = [];
        for await (const a of anchorsInRange(anchors, writer, { pageSize: 1 })) streamed.push(a.sequence);
        assert.deepEqual(streamed, all);
        // A time range from the third batch on: the binary search skips the earlier ones.
        const third = await getAnchor(anchors, writer, 3);
        const later: { sequence: number; anchoredAt: string }[] = [];
        for await (const a of anchorsInRange(anchors, writer, { from: new Date(third.anchoredAt), pageSize: 2 }))
            later.push(a);
        assert.ok(later.length >= 1 && later.length <= batcher.sequence - 2 + 1);
        assert.ok(later.every((a) => Date.parse(a.anchoredAt) >= Date.parse(third.anchoredAt)));
        assert.ok(later.some((a) => a.sequence === 3) && later.at(-1)!.sequence === batcher.sequence);
        const none = await listAnchors(anchors, writer, { from: new Date(Date.now() + 60_000) });
        assert.deepEqual(none, { anchors: [], bookmark: '' });
        await assert.rejects(getAnchor(anchors, writer, batcher.sequence + 1), (e: unknown) => {
            assert.ok(e instanceof EndorseError);
            assert.equal(e.errorCode, ErrorCode.UnknownBatch);
            return true;
        });
        await assert.rejects(listAnchors(anchors, writer, { pageSize: 101 }), (e: unknown) => {
            assert.ok(e instanceof EndorseError);
            assert.equal(e.errorCode, ErrorCode.MalformedInput);
            return true;
        });
    });
});
