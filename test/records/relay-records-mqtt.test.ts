/**
 * End to end over MQTT with records on: a 9-step record query from one machine's agent through
 * fog-1 to another's. Afterwards fog-1's batch holding the query's two relay records (the query
 * packet, step 4, and the sealed answer, step 8) is anchored as fog:fog-1, and the receipt of one
 * verifies offline with `m2m records verify` against the channel's MSP roots alone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
    EncryptionType,
    PartyRole,
    RecordType,
    Responder,
    checkRelayRecord,
    decodePoint,
    decodeRecord,
    encodePoint,
    fogWriter,
    fromHex,
    partyKeyId,
    randomScalar,
    recordPayloadAddress,
    signRecordReceipt,
    toHex,
    verifyRecordReceipt,
    type Point,
} from '@m2m-fabric/protocol';
import {
    MemoryReceiptBook,
    MemoryRecordHistory,
    QueryAsker,
    QueryResponder,
    type DeviceAgent,
} from '@m2m-fabric/device';
import { ChaincodeClient, DEFAULT_CHAINCODE_NAME, MaterialsClient, listAnchors, verifyReceipt } from '@m2m-fabric/sdk';
import { ledgerQueryAccess, loadOrCreateServiceKey } from '@m2m-fabric/services';
import { MANUFACTURER_MSP } from '@m2m-fabric/cli';

import { CLI } from '../services/helpers/process.js';
import { startTestBed, type TestBed } from '../services/helpers/setup.js';

const T0 = Date.parse('2026-03-01T00:00:00.000Z');

interface Machine {
    id: string;
    secret: bigint;
    Q: Point;
    agent: DeviceAgent;
}

void describe('fog relay records over MQTT (a 9-step query through fog-1, records on)', () => {
    let bed: TestBed;
    let lap: Machine;
    let card: Machine;
    let cspKey: Point;
    let cspSecret: bigint;
    let fogLedger: ChaincodeClient;

    before(async () => {
        // Batches are cut only by drain() here, so the query's two records land in one batch.
        bed = await startTestBed({ records: { maxDelayMs: 600_000 } });
        const suite = bed.net.suite;
        const key = await loadOrCreateServiceKey(join(bed.dataDir, 'keys', 'csp.json'), suite);
        cspKey = key.publicKey;
        cspSecret = key.privateKey;
        const machine = async (id: string): Promise<Machine> => {
            const secret = randomScalar(suite);
            const Q = suite.Point.BASE.multiply(secret);
            await bed.net.manufacturer.registerEquipment({
                equipmentId: id,
                kind: 'spinning machine',
                model: 'S-1',
                fogGroup: bed.net.fogId(0),
                privilegeLevel: 2,
                serviceType: 'upload-download',
                accessTime: 'always',
                publicKey: toHex(encodePoint(suite, Q)),
            });
            await bed.provision(id, 1);
            const agent = await bed.agent(id);
            await agent.connect();
            return { id, secret, Q, agent };
        };
        lap = await machine('lap-relay');
        card = await machine('card-relay');
        const enrol = async (mspId: string, name: string, role: string): Promise<ChaincodeClient> => {
            const e = await bed.net.ledger.loadOrEnrol(mspId, name, { attributes: { 'm2m.role': role } });
            return new ChaincodeClient(
                await bed.net.ledger.connect({ identity: e.identity, signer: e.signer }),
                DEFAULT_CHAINCODE_NAME,
                60_000,
            );
        };
        const owner = new MaterialsClient((await enrol(MANUFACTURER_MSP, 'mill', 'manufacturer')).connection);
        fogLedger = await enrol('FogAMSP', 'fog-relay-test', 'fog');
        await owner.grantQueryAccess(lap.id, card.id);
        const history = new MemoryRecordHistory();
        for (let k = 0; k < 2; k++) {
            const body = new TextEncoder().encode(`lap quality ${k}: SECRET-BODY-${k}`);
            const recordId = new Uint8Array(createHash('sha256').update(body).digest());
            history.add(lap.id, {
                recordId,
                kind: 'quality',
                time: T0 + k * 60_000,
                counterpart: 'csp',
                body,
                receipt: signRecordReceipt(suite, cspSecret, recordId, lap.id),
            });
        }
        const responder = new QueryResponder({
            suite,
            equipmentId: lap.id,
            responder: Responder.Target,
            signingSecret: lap.secret,
            access: ledgerQueryAccess(new MaterialsClient(fogLedger.connection)),
            history,
        });
        await lap.agent.serveQueries({ respond: (packet) => responder.respond(packet) }, lap.secret);
    });
    after(() => bed?.close());

    void it('anchors the batch holding the query packet’s and the answer’s relay records; a receipt verifies offline', async () => {
        const suite = bed.net.suite;
        const fog = bed.net.fogs[0]!;
        const asker = new QueryAsker({
            suite,
            equipmentId: card.id,
            secretKey: card.secret,
            keyOf: async (id) => decodePoint(suite, fromHex((await fogLedger.getEquipment(id)).publicKey)),
            cspKey,
            receipts: { verify: (t, r) => verifyRecordReceipt(suite, cspKey, r.recordId, t, r.receipt) },
            book: new MemoryReceiptBook(),
            send: (packet) => card.agent.sendQuery(packet),
        });
        const packet = asker.createQuery(lap.id, { since: new Date(T0), until: new Date(T0 + 3_600_000) });
        const reply = await card.agent.sendQuery(packet.bytes);
        const result = await asker.accept(packet, reply);
        assert.equal(result.responder, 'target');
        assert.equal(result.records.length, 2);

        const metrics = fog.metrics.render();
        assert.match(metrics, /m2m_fog_relay_records\{kind="query"\} 1\b/);
        assert.match(metrics, /m2m_fog_relay_records\{kind="answer"\} 1\b/);
        const relays = await bed.net.drainFogRecords();
        assert.equal(relays.journaled, 2);
        assert.equal(relays.anchored, 2);
        assert.ok(relays.allAnchored);
        const batch = bed.net.fogAnchoredBatches.at(-1)!;
        assert.equal(batch.writer, fogWriter(fog.fogId));
        assert.equal(batch.treeSize, 2, 'one batch holds both relay records');
        const batcher = bed.net.fogRecordBatchers[0]!;
        const fogKey = (await loadOrCreateServiceKey(join(bed.dataDir, 'keys', `${fog.fogId}.json`), suite)).publicKey;
        const askerParty = { role: PartyRole.Device, keyId: partyKeyId(suite, card.Q) };
        const targetParty = { role: PartyRole.Device, keyId: partyKeyId(suite, lap.Q) };
        const queryRecord = checkRelayRecord(await batcher.readRecord(0), packet.bytes, {
            relayer: fogKey,
            sender: askerParty,
            receiver: targetParty,
        });
        const answerRecord = checkRelayRecord(await batcher.readRecord(1), reply, {
            relayer: fogKey,
            sender: targetParty,
            receiver: askerParty,
        });
        assert.equal(queryRecord.encryption, EncryptionType.Cleartext);
        assert.equal(answerRecord.encryption, EncryptionType.Hpke);
        // The stored payload of the answer is the sealed packet: the fog never had the plaintext.
        const stored = await bed.net.store.get(recordPayloadAddress(reply));
        assert.deepEqual(new Uint8Array(stored), new Uint8Array(reply));
        assert.doesNotMatch(Buffer.from(stored).toString('latin1'), /SECRET-BODY/);

        // The anchor is listed for the fog writer (SDK pagination) and nothing else names a machine on-chain.
        const page = await listAnchors(
            fogLedger.connection.getContract(DEFAULT_CHAINCODE_NAME, 'anchors'),
            batch.writer,
        );
        assert.deepEqual(
            page.anchors.map((a) => [a.sequence, a.treeSize, a.root]),
            [[batch.sequence, 2, toHex(batch.root)]],
        );

        // The receipt of the answer's record, verified offline by the CLI against the MSP roots.
        const receipt = await bed.net.fogReceipt(0, batch, 1);
        verifyReceipt(bed.net.ledger.channelTrust(DEFAULT_CHAINCODE_NAME), receipt);
        const receiptFile = join(bed.dataDir, 'relay-receipt.bin');
        const trustFile = join(bed.dataDir, 'trust.json');
        await writeFile(receiptFile, receipt);
        const trust = spawnSync(
            process.execPath,
            [CLI, 'records', 'trust', '--data-dir', bed.dataDir, '--out', trustFile],
            {
                encoding: 'utf8',
            },
        );
        assert.equal(trust.status, 0, trust.stderr);
        const verified = spawnSync(process.execPath, [CLI, 'records', 'verify', receiptFile, '--trust', trustFile], {
            encoding: 'utf8',
        });
        assert.equal(verified.status, 0, verified.stderr);
        const printed = JSON.parse(verified.stdout) as {
            valid: boolean;
            type: number;
            encryption: number;
            sender: { role: number; keyId: string };
            digest: string;
        };
        assert.equal(printed.valid, true);
        assert.equal(printed.type, RecordType.Relay);
        assert.equal(printed.encryption, EncryptionType.Hpke);
        assert.deepEqual(printed.sender, { role: PartyRole.Device, keyId: toHex(partyKeyId(suite, lap.Q)) });
        assert.equal(printed.digest, toHex(decodeRecord(await batcher.readRecord(1)).digest));
        // One flipped bit in the receipt: the CLI refuses it.
        const flipped = new Uint8Array(receipt);
        flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
        await writeFile(receiptFile, flipped);
        const refused = spawnSync(process.execPath, [CLI, 'records', 'verify', receiptFile, '--trust', trustFile], {
            encoding: 'utf8',
        });
        assert.equal(refused.status, 1);
        assert.match(refused.stderr, /receiptInvalid/);
    });
});
