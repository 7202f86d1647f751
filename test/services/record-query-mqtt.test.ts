/**
 * Paper 000's 9-step record query over the real MQTT path: the asker's device agent sends a Query
 * envelope to the fog's embedded broker; the fog (handlers/query.ts) checks the packet and the M-EB
 * and delivers it to the target's agent (its signed listen notice made that connection the
 * machine's private area) or, while the target is offline, over the signed link to the CSP; the
 * answer comes back the same way. Every failure branch reaches the asker as a typed QueryError with
 * the paper's retry; replays and late answers are refused; the fog relays only sealed bytes. The
 * records are anchored on the ledger and each carries its Merkle receipt, which the asker checks
 * against the channel trust roots its state file was provisioned with.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
    ErrorCode,
    QueryRetry,
    Responder,
    decodeFailurePacket,
    decodePoint,
    encodeListenNotice,
    encodePoint,
    fromHex,
    MerkleTree,
    answeredRecordOfReceipt,
    randomScalar,
    toHex,
    type AnsweredRecord,
    type ListenNotice,
    type Point,
} from '@m2m-fabric/protocol';
import { EnvelopeKind, MqttConnection, RequestClient, ServiceError } from '@m2m-fabric/common';
import {
    MemoryReceiptBook,
    MemoryRecordHistory,
    MerkleReceiptCheck,
    QueryAsker,
    QueryResponder,
    runDevice,
    type DeviceAgent,
    type QueryPrivateArea,
} from '@m2m-fabric/device';
import { ChaincodeClient, DEFAULT_CHAINCODE_NAME, MaterialsClient } from '@m2m-fabric/sdk';
import { ledgerQueryAccess, loadOrCreateServiceKey } from '@m2m-fabric/services';
import { MANUFACTURER_MSP } from '@m2m-fabric/cli';

import { assertQueryError } from './helpers/query.js';
import { anchoredRecords } from './helpers/receipts.js';
import { startTestBed, type TestBed } from './helpers/setup.js';

const T0 = Date.parse('2026-03-01T00:00:00.000Z');

interface Machine {
    id: string;
    secret: bigint;
    agent: DeviceAgent;
}

void describe('record query over MQTT (paper 000 Figs. 6-8)', () => {
    let bed: TestBed;
    let lap: Machine;
    let card: Machine;
    let stranger: Machine;
    let cspSecret: bigint;
    let cspKey: Point;
    let fogLedger: ChaincodeClient;
    let owner: MaterialsClient;
    const history = new MemoryRecordHistory();
    const book = new MemoryReceiptBook();
    /** Every reply the target's private area handed the fog. */
    const seenByFog: Uint8Array[] = [];
    let lapArea: QueryPrivateArea;

    /** Registers a machine in the M-EB with the static key of `secret`. */
    const register = async (id: string, kind: string, secret: bigint): Promise<void> => {
        const suite = bed.net.suite;
        await bed.net.manufacturer.registerEquipment({
            equipmentId: id,
            kind,
            model: 'S-1',
            fogGroup: bed.net.fogId(0),
            privilegeLevel: 2,
            serviceType: 'upload-download',
            accessTime: 'always',
            publicKey: toHex(encodePoint(suite, suite.Point.BASE.multiply(secret))),
        });
    };

    /** lap's anchored records at T0 + k minutes (k = 0, 1, 2, 7, 8), with their Merkle receipts. */
    const anchored = new Map<number, AnsweredRecord>();
    const record = (k: number): AnsweredRecord => anchored.get(k)!;

    before(async () => {
        bed = await startTestBed();
        const suite = bed.net.suite;
        const key = await loadOrCreateServiceKey(join(bed.dataDir, 'keys', 'csp.json'), suite);
        cspSecret = key.privateKey;
        cspKey = key.publicKey;
        const machine = async (id: string): Promise<Machine> => {
            const secret = randomScalar(suite);
            await register(id, 'spinning machine', secret);
            await bed.provision(id, 1);
            const agent = await bed.agent(id);
            await agent.connect();
            return { id, secret, agent };
        };
        lap = await machine('lap-mqtt');
        card = await machine('card-mqtt');
        stranger = await machine('stranger-mqtt');
        const enrol = async (mspId: string, name: string, role: string): Promise<ChaincodeClient> => {
            const e = await bed.net.ledger.loadOrEnrol(mspId, name, { attributes: { 'm2m.role': role } });
            return new ChaincodeClient(
                await bed.net.ledger.connect({ identity: e.identity, signer: e.signer }),
                DEFAULT_CHAINCODE_NAME,
                60_000,
            );
        };
        owner = new MaterialsClient((await enrol(MANUFACTURER_MSP, 'mill', 'manufacturer')).connection);
        fogLedger = await enrol('FogAMSP', 'fog-query-test', 'fog');
        await owner.grantQueryAccess(lap.id, card.id);
        const cspIdentity = await bed.net.ledger.loadOrEnrol('CSPMSP', 'csp-anchors-test', {
            attributes: { 'm2m.role': 'csp' },
        });
        const cspConnection = await bed.net.ledger.connect({
            identity: cspIdentity.identity,
            signer: cspIdentity.signer,
        });
        const minutes = [0, 1, 2, 7, 8];
        const { receipts } = await anchoredRecords(
            suite,
            cspConnection.getContract(DEFAULT_CHAINCODE_NAME, 'anchors'),
            cspConnection,
            cspSecret,
            minutes.map((k) => T0 + k * 60_000),
            { tree: new MerkleTree(), sequence: 0 },
        );
        minutes.forEach((k, i) => anchored.set(k, answeredRecordOfReceipt('quality', 'csp', receipts[i]!)));
        for (let k = 0; k < 3; k++) history.add(lap.id, record(k));
        // card holds the receipt of lap's record 1, checked against its provisioned trust roots.
        assert.ok(card.agent.channelTrust !== undefined, 'provisioning gave the device the channel trust roots');
        book.holdReceipt(
            lap.id,
            'quality',
            record(1).receipt,
            new MerkleReceiptCheck(card.agent.channelTrust).verifier,
        );

        const access = ledgerQueryAccess(new MaterialsClient(fogLedger.connection));
        const responder = new QueryResponder({
            suite,
            equipmentId: lap.id,
            responder: Responder.Target,
            signingSecret: lap.secret,
            access,
            history,
        });
        lapArea = {
            respond: async (packet) => {
                const reply = await responder.respond(packet);
                seenByFog.push(reply);
                return reply;
            },
        };
        await lap.agent.serveQueries(lapArea, lap.secret);
        const cspArea = new QueryResponder({
            suite,
            equipmentId: lap.id,
            responder: Responder.Csp,
            signingSecret: cspSecret,
            access,
            history,
        });
        bed.net.csp.serveQueries((id) => (id === lap.id ? cspArea : undefined));
    });
    after(() => bed.close());

    function asker(m: Machine, overrides: Partial<ConstructorParameters<typeof QueryAsker>[0]> = {}): QueryAsker {
        const suite = bed.net.suite;
        return new QueryAsker({
            suite,
            equipmentId: m.id,
            secretKey: m.secret,
            keyOf: async (id) => decodePoint(suite, fromHex((await fogLedger.getEquipment(id)).publicKey)),
            cspKey,
            receipts: new MerkleReceiptCheck(m.agent.channelTrust!),
            book,
            send: (packet) => m.agent.sendQuery(packet),
            retryDelayMs: 5,
            ...overrides,
        });
    }
    const range = { since: new Date(T0), until: new Date(T0 + 3_600_000) };

    void it('the target agent answers through the fog; the fog relays only sealed bytes', async () => {
        const before = seenByFog.length;
        const result = await asker(card).query(lap.id, range);
        assert.equal(result.responder, 'target');
        assert.equal(result.records.length, 3);
        assert.equal(toHex(result.records[2]!.body), toHex(record(2).body));
        assert.ok(seenByFog.length > before, 'the answer went through the target’s MQTT private area');
        const relayed = Buffer.concat(seenByFog.map((b) => Buffer.from(b)));
        for (const k of [0, 1, 2])
            assert.equal(relayed.indexOf(Buffer.from(record(k).body)), -1, 'the fog saw a record');
    });

    void it('refuses a listen notice signed by another key, and keeps routing to the real target', async () => {
        await assert.rejects(
            stranger.agent.serveQueries(lapArea, stranger.secret + 1n),
            (e: unknown) => e instanceof ServiceError && e.code === ErrorCode.FailedSignatureVerification,
        );
        const result = await asker(card).query(lap.id, range);
        assert.equal(result.responder, 'target');
    });

    void it('step 2: a query signed by the wrong key, and a replayed packet', async () => {
        await assertQueryError(
            asker(card, { secretKey: card.secret + 1n, attempts: 1 }).query(lap.id, range),
            ErrorCode.FailedSignatureVerification,
            2,
            QueryRetry.ResendQuery,
        );
        const a = asker(card);
        const packet = a.createQuery(lap.id, range);
        await a.accept(packet, await card.agent.sendQuery(packet.bytes));
        const again = decodeFailurePacket(await card.agent.sendQuery(packet.bytes));
        assert.equal(again.code, ErrorCode.ReplayDetected);
        assert.equal(again.step, 2);
    });

    void it('refuses a listen notice for another connection or fog, a stale one, an older one, a malformed one', async () => {
        const suite = bed.net.suite;
        const fog = bed.net.fogs[0]!;
        const clientId = 'probe-listen';
        const conn = await MqttConnection.connect(fog.deviceBrokerUrl, { clientId });
        try {
            const rpc = await RequestClient.create(
                conn,
                fog.topics.fogRequest(fog.fogId, clientId),
                fog.topics.fogReply(fog.fogId, clientId),
            );
            const notice = (over: Partial<ListenNotice>): Uint8Array =>
                encodeListenNotice(
                    suite,
                    { equipmentId: lap.id, fogId: fog.fogId, clientId, issuedAt: Date.now(), listening: true, ...over },
                    lap.secret,
                );
            const refused = async (body: Uint8Array, code: string): Promise<void> => {
                await assert.rejects(
                    rpc.request(EnvelopeKind.QueryListen, body, 10_000),
                    (e: unknown) => e instanceof ServiceError && e.code === code,
                );
            };
            await refused(notice({ clientId: 'someone-else' }), ErrorCode.ReplayDetected);
            await refused(notice({ fogId: 'fog-9' }), ErrorCode.ReplayDetected);
            await refused(notice({ issuedAt: Date.now() - 10 * 60_000 }), ErrorCode.ReplayDetected);
            // Signed by the machine and fresh, but older than the notice its agent sent: a replay.
            await refused(notice({ issuedAt: Date.now() - 100_000 }), ErrorCode.ReplayDetected);
            await refused(new Uint8Array([1, 2, 3]), ErrorCode.MalformedInput);
        } finally {
            await conn.close();
        }
        // The machine's own connection still answers its queries.
        assert.equal((await asker(card).query(lap.id, range)).responder, 'target');
    });

    void it('step 3: an unregistered target, a decommissioned one', async () => {
        await assertQueryError(asker(card).query('nobody-mqtt', range), ErrorCode.UnknownTarget, 3, QueryRetry.None);
        await bed.net.manufacturer.decommission(stranger.id);
        await assertQueryError(asker(card).query(stranger.id, range), ErrorCode.EquipmentRetired, 3, QueryRetry.None);
    });

    void it('step 5: no access rule for the asker', async () => {
        const other = await (async () => {
            const suite = bed.net.suite;
            const secret = randomScalar(suite);
            await register('draw-mqtt', 'drawing frame', secret);
            return { id: 'draw-mqtt', secret, agent: card.agent };
        })();
        await assertQueryError(asker(other).query(lap.id, range), ErrorCode.QueryDenied, 5, QueryRetry.None);
    });

    void it('step 9: a late answer and a replayed answer are refused', async () => {
        let skew = 0;
        const a = asker(card, { now: () => Date.now() + skew });
        const packet = a.createQuery(lap.id, range);
        const reply = await card.agent.sendQuery(packet.bytes);
        skew = 60_000;
        await assertQueryError(a.accept(packet, reply), ErrorCode.QueryExpired, 9);
        skew = 0;
        const b = asker(card);
        const second = b.createQuery(lap.id, range);
        const answer = await card.agent.sendQuery(second.bytes);
        await b.accept(second, answer);
        await assertQueryError(b.accept(second, answer), ErrorCode.ReplayDetected, 9);
    });

    void it('step 9: an answer omitting a receipted record, one with a forged receipt, one signed by another machine', async () => {
        const hidden = record(7);
        book.holdReceipt(lap.id, 'quality', hidden.receipt, new MerkleReceiptCheck(card.agent.channelTrust!).verifier);
        await assertQueryError(asker(card).query(lap.id, range), ErrorCode.AnswerIncomplete, 9, QueryRetry.None);
        history.add(lap.id, hidden);
        const forged = { ...record(8), receipt: new Uint8Array(64).fill(7) };
        history.add(lap.id, forged);
        await assertQueryError(asker(card).query(lap.id, range), ErrorCode.AnswerIncomplete, 9, QueryRetry.None);
        await assertQueryError(
            asker(card, { keyOf: () => Promise.resolve(cspKey) }).query(lap.id, {
                since: range.since,
                until: new Date(T0 + 4 * 60_000),
            }),
            ErrorCode.FailedSignatureVerification,
            9,
            QueryRetry.ResendAnswer,
        );
    });

    void it('`m2m device query` runs the same path from the command line', async () => {
        const suite = bed.net.suite;
        const secret = randomScalar(suite);
        const id = 'ring-mqtt';
        await register(id, 'ring frame', secret);
        await bed.provision(id, 1);
        await owner.grantQueryAccess(lap.id, id);
        const keyFile = join(bed.dataDir, 'ring-static.key');
        await writeFile(keyFile, secret.toString(16), { mode: 0o600 });
        const queryArgs = async (targetKey: string): Promise<string[]> => [
            'query',
            lap.id,
            '--device.state',
            bed.statePath(id),
            '--mqtt.url',
            bed.net.fogs[0]!.deviceBrokerUrl,
            '--static-key',
            keyFile,
            '--target-key',
            targetKey,
            '--since',
            new Date(T0).toISOString(),
            '--until',
            new Date(T0 + 4 * 60_000).toISOString(),
        ];
        const lines: string[] = [];
        const log = console.log;
        console.log = (line: string) => lines.push(line);
        try {
            await runDevice([...(await queryArgs((await fogLedger.getEquipment(lap.id)).publicKey)), '--json']);
        } finally {
            console.log = log;
        }
        const out = JSON.parse(lines.at(-1)!) as { responder: string; records: { id: string }[] };
        assert.equal(out.responder, 'target');
        assert.deepEqual(
            out.records.map((r) => r.id),
            [0, 1, 2].map((k) => toHex(record(k).recordId)),
        );
        // Receipts the machine holds (`--receipts dir`) are checked at load and looked for in the answer.
        const held = join(bed.dataDir, 'ring-receipts');
        await mkdir(held, { recursive: true });
        await writeFile(join(held, 'lap-1.receipt'), record(1).receipt);
        const targetKey = (await fogLedger.getEquipment(lap.id)).publicKey;
        console.log = () => undefined;
        try {
            await runDevice([...(await queryArgs(targetKey)), '--receipts', held, '--json']);
            const bad = record(1).receipt.slice();
            bad[bad.length - 30]! ^= 1;
            await writeFile(join(held, 'lap-1.receipt'), bad);
            await assert.rejects(
                runDevice([...(await queryArgs(targetKey)), '--receipts', held]),
                (e: unknown) => e instanceof ServiceError && e.code === ErrorCode.ReceiptInvalid,
            );
        } finally {
            console.log = log;
        }
        // A key that is not the target's: the answer's signature fails at step 9.
        await assert.rejects(
            runDevice(await queryArgs(toHex(encodePoint(suite, cspKey)))),
            (e: unknown) => e instanceof ServiceError && e.code === ErrorCode.FailedSignatureVerification,
        );
    });

    void it('step 4: an offline target is answered by the CSP over the link', async () => {
        await lap.agent.stopServingQueries();
        const result = await asker(card).query(lap.id, { since: range.since, until: new Date(T0 + 4 * 60_000) });
        assert.equal(result.responder, 'csp');
        assert.equal(result.records.length, 3);
        // The CSP answers only for machines it acts for: anyone else is unreachable (try later).
        await assertQueryError(
            asker(lap, { attempts: 1 }).query(card.id, range),
            ErrorCode.TargetUnreachable,
            4,
            QueryRetry.Later,
        );
    });
});
