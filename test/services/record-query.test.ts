/**
 * Paper 000's 9-step record query over the embedded ledger: the fog (steps 2-4, 7-8) reads the
 * M-EB, the target (5-6) reads the access rule its owner set on the ledger, the asker (1, 9)
 * checks signatures and every record's Merkle receipt (anchored on this ledger, verified offline
 * against the channel's MSP roots). Every failure branch of Fig. 8 is a typed QueryError with the
 * paper's retry, the fog sees no plaintext, replays and late answers are refused.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
    ErrorCode,
    MerkleTree,
    P256_SHA256,
    QueryRetry,
    Responder,
    createQueryPacket,
    decodeFailurePacket,
    decodePoint,
    encodePoint,
    fromHex,
    ReceiptError,
    answeredRecordOfReceipt,
    randomScalar,
    toHex,
    type AnsweredRecord,
    type ChannelTrust,
    type FailurePacket,
    type Point,
    type QueryPacket,
} from '@m2m-fabric/protocol';
import type { LedgerConnection } from '@m2m-fabric/sdk';
import { ChaincodeClient } from '@m2m-fabric/sdk';
import { MaterialsClient } from '@m2m-fabric/sdk';
import { QueryAsker } from '@m2m-fabric/device';
import { QueryResponder } from '@m2m-fabric/device';
import { FileReceiptBook, MemoryReceiptBook, MemoryRecordHistory, MerkleReceiptCheck } from '@m2m-fabric/device';
import { PersistedFileError } from '@m2m-fabric/common';
import { FogQueryHandler, type QueryEndpoint } from '@m2m-fabric/services';
import { ledgerEquipmentDirectory, ledgerQueryAccess } from '@m2m-fabric/services';

import { assertQueryError } from './helpers/query.js';
import { tempDir } from './helpers/temp-dir.js';
import { anchoredRecords } from './helpers/receipts.js';
import { startNetwork, type TestNetwork } from '../chaincode/network.js';
import { bootstrap, submit } from '../chaincode/scenario.js';

const suite = P256_SHA256;
const T0 = Date.parse('2026-01-01T00:00:00.000Z');

interface Machine {
    id: string;
    secret: bigint;
    publicKey: Point;
}

function machine(id: string): Machine {
    const secret = randomScalar(suite);
    return { id, secret, publicKey: suite.Point.BASE.multiply(secret) };
}

/** A step-9 refusal caused by a receipt: answerIncomplete, and the ReceiptError names the check. */
async function assertReceiptRefused(call: Promise<unknown>, check: string): Promise<void> {
    await assertQueryError(call, ErrorCode.AnswerIncomplete, 9, QueryRetry.None);
    await call.catch((error: unknown) => {
        const cause = (error as Error).cause;
        assert.ok(cause instanceof ReceiptError, `cause ${String(cause)}`);
        assert.equal(cause.check, check, cause.message);
    });
}

void describe('record query (paper 000 Figs. 6-8)', () => {
    let net: TestNetwork;
    const lap = machine('lap-former-1');
    const card = machine('carding-1');
    const stranger = machine('drawing-1');
    const retired = machine('blowroom-old');
    let fog: FogQueryHandler;
    let history: MemoryRecordHistory;
    let book: MemoryReceiptBook;
    let materials: MaterialsClient;
    let targetOnline = true;
    const seenByFog: Uint8Array[] = [];
    let targetResponder: QueryResponder;
    let trust: ChannelTrust;
    /** lap's three anchored records (T0, T0 + 1 min, T0 + 2 min), and one of another machine. */
    const answered: AnsweredRecord[] = [];
    let foreign: AnsweredRecord;
    const record = (k: number): AnsweredRecord => answered[k]!;

    before(async () => {
        net = await startNetwork(suite);
        await bootstrap(net, 0);
        for (const m of [lap, card, stranger, retired]) {
            await submit(net.parties.manufacturer, 'equipment', 'registerEquipment', {
                args: [
                    m.id,
                    'spinning machine',
                    'S-1',
                    'line-a',
                    toHex(encodePoint(suite, m.publicKey)),
                    '2',
                    'upload-download',
                    'always',
                ],
            });
        }
        await submit(net.parties.manufacturer, 'equipment', 'updateEquipmentStatus', {
            args: [retired.id, 'decommissioned'],
        });
        await submit(net.parties.manufacturer, 'queryAccess', 'grantQueryAccess', { args: [lap.id, card.id] });

        const connect = async (mspId: string, label: string, role: string): Promise<LedgerConnection> => {
            const e = await net.ledger.enrol(mspId, label, { attributes: { 'm2m.role': role } });
            return net.ledger.connect({ identity: e.identity, signer: e.signer });
        };
        const fogConnection = await connect('FogAMSP', 'fog-query', 'fog');
        const ownerConnection = await connect('ManufacturerMSP', 'owner-query', 'manufacturer');
        materials = new MaterialsClient(ownerConnection, 'm2m');

        // lap's records with the CSP, and one of another machine, anchored by the CSP in two batches.
        trust = net.ledger.channelTrust('m2m');
        const anchors = net.parties.csp.contract('anchors');
        const log = { tree: new MerkleTree(), sequence: 0 };
        const lapLog = await anchoredRecords(
            suite,
            anchors,
            fogConnection,
            net.csp.d,
            [0, 1, 2].map((k) => T0 + k * 60_000),
            log,
        );
        answered.push(...lapLog.receipts.map((r) => answeredRecordOfReceipt('quality', 'csp', r)));
        const other = await anchoredRecords(suite, anchors, fogConnection, net.csp.d, [T0 + 30_000], log);
        foreign = answeredRecordOfReceipt('quality', 'csp', other.receipts[0]!);
        history = new MemoryRecordHistory();
        for (let k = 0; k < 3; k++) history.add(lap.id, record(k));
        // The asker was handed the receipt of lap's record 1 (with the lot it received).
        book = new MemoryReceiptBook();
        book.holdReceipt(lap.id, 'quality', record(1).receipt, new MerkleReceiptCheck(trust).verifier);

        targetResponder = new QueryResponder({
            suite,
            equipmentId: lap.id,
            responder: Responder.Target,
            signingSecret: lap.secret,
            access: ledgerQueryAccess(materials),
            history,
        });
        const cspResponder = new QueryResponder({
            suite,
            equipmentId: lap.id,
            responder: Responder.Csp,
            signingSecret: net.csp.d,
            access: ledgerQueryAccess(materials),
            history,
        });
        const endpoints: QueryEndpoint[] = [
            {
                kind: 'target',
                deliver: async (packet) => {
                    if (!targetOnline) throw new Error('device offline');
                    const reply = await targetResponder.respond(packet);
                    seenByFog.push(reply);
                    return reply;
                },
            },
            { kind: 'csp', deliver: (packet) => cspResponder.respond(packet) },
        ];
        fog = new FogQueryHandler({
            suite,
            directory: ledgerEquipmentDirectory(new ChaincodeClient(fogConnection, 'm2m')),
            routes: { endpointsFor: (id) => (id === lap.id ? endpoints : []) },
        });
    });
    after(async () => net.close());

    function asker(m: Machine, overrides: Partial<ConstructorParameters<typeof QueryAsker>[0]> = {}): QueryAsker {
        return new QueryAsker({
            suite,
            equipmentId: m.id,
            secretKey: m.secret,
            keyOf: async (id) =>
                decodePoint(
                    suite,
                    fromHex((await new ChaincodeClient(materials.connection, 'm2m').getEquipment(id)).publicKey),
                ),
            cspKey: net.csp.Q,
            receipts: new MerkleReceiptCheck(trust),
            book,
            send: (packet) => fog.handle(packet),
            retryDelayMs: 5,
            ...overrides,
        });
    }
    const range = { since: new Date(T0), until: new Date(T0 + 3_600_000) };

    void it('answers through the fog with every record, signed by the target, opaque to the fog', async () => {
        const result = await asker(card).query(lap.id, range);
        assert.equal(result.responder, 'target');
        assert.equal(result.records.length, 3);
        assert.deepEqual(
            result.records.map((r) => toHex(r.body)),
            answered.map((r) => toHex(r.body)),
        );
        assert.deepEqual(
            result.records.map((r) => r.time),
            [0, 1, 2].map((k) => T0 + k * 60_000),
            "the records' signed timestamps",
        );
        const visible = Buffer.concat(seenByFog.map((b) => Buffer.from(b)));
        assert.ok(visible.length > 0);
        for (const r of answered) {
            assert.equal(visible.indexOf(Buffer.from(r.body)), -1, 'the fog saw a record');
            assert.equal(visible.indexOf(Buffer.from(r.receipt.subarray(0, 200))), -1, 'the fog saw a receipt');
        }
        const narrow = await asker(card).query(lap.id, { since: new Date(T0 + 60_000), until: new Date(T0 + 60_000) });
        assert.equal(narrow.records.length, 1);
    });

    void it('refuses unsigned, wrongly signed, tampered and replayed query packets at step 2', async () => {
        const make = (secret: bigint): QueryPacket =>
            createQueryPacket(
                suite,
                {
                    receiverId: lap.id,
                    senderId: card.id,
                    since: T0,
                    until: T0 + 1,
                    kinds: [],
                    nonce: new Uint8Array(16).fill(Math.floor(Math.random() * 255)),
                    issuedAt: Date.now(),
                    expiresAt: Date.now() + 10_000,
                },
                secret,
            );
        const failure = async (bytes: Uint8Array): Promise<FailurePacket> =>
            decodeFailurePacket(await fog.handle(bytes));
        // Signed by another machine's key.
        let f = await failure(make(stranger.secret).bytes);
        assert.deepEqual([f.code, f.step, f.retry], [ErrorCode.FailedSignatureVerification, 2, QueryRetry.ResendQuery]);
        // Unsigned: the signature field zeroed (inspection recomputed cannot help: the signature does not parse).
        const good = make(card.secret);
        const unsigned = new Uint8Array(good.bytes);
        unsigned.fill(0, unsigned.length - suite.hashBytes - 2 * suite.scalarBytes, unsigned.length - suite.hashBytes);
        f = await failure(unsigned);
        assert.deepEqual([f.code, f.step, f.retry], [ErrorCode.IncompletePacket, 2, QueryRetry.ResendQuery]);
        // One flipped bit: the inspection information does not match.
        const tampered = new Uint8Array(good.bytes);
        tampered[10] = (tampered[10] ?? 0) ^ 1;
        f = await failure(tampered);
        assert.equal(f.code, ErrorCode.IncompletePacket);
        // Truncated.
        f = await failure(good.bytes.subarray(0, 20));
        assert.equal(f.code, ErrorCode.IncompletePacket);
        // The good packet passes once; its replay is refused.
        assert.notEqual((await fog.handle(good.bytes))[1], 0x53);
        f = await failure(good.bytes);
        assert.deepEqual([f.code, f.step], [ErrorCode.ReplayDetected, 2]);
        // Expired.
        const old = createQueryPacket(
            suite,
            {
                receiverId: lap.id,
                senderId: card.id,
                since: T0,
                until: T0,
                kinds: [],
                nonce: new Uint8Array(16).fill(7),
                issuedAt: Date.now() - 20_000,
                expiresAt: Date.now() - 10_000,
            },
            card.secret,
        );
        f = await failure(old.bytes);
        assert.equal(f.code, ErrorCode.QueryExpired);
    });

    void it('gives the null answer for an unregistered target and refuses a decommissioned one (step 3)', async () => {
        await assertQueryError(asker(card).query('lap-former-404', range), ErrorCode.UnknownTarget, 3, QueryRetry.None);
        await assertQueryError(asker(card).query(retired.id, range), ErrorCode.EquipmentRetired, 3, QueryRetry.None);
        // A decommissioned asker cannot ask either.
        await assertQueryError(asker(retired).query(lap.id, range), ErrorCode.FailedSignatureVerification, 2);
    });

    void it('denies an asker the owner did not grant (step 5, ledger rule), until it grants', async () => {
        await assertQueryError(asker(stranger).query(lap.id, range), ErrorCode.QueryDenied, 5, QueryRetry.None);
        await materials.grantQueryAccess(lap.id, stranger.id);
        const result = await asker(stranger, { book: new MemoryReceiptBook() }).query(lap.id, range);
        assert.equal(result.records.length, 3);
        await materials.revokeQueryAccess(lap.id, stranger.id);
        await assertQueryError(asker(stranger).query(lap.id, range), ErrorCode.QueryDenied, 5);
    });

    void it('routes to the CSP while the target is offline (step 4), and fails when nobody answers', async () => {
        targetOnline = false;
        try {
            const result = await asker(card).query(lap.id, range);
            assert.equal(result.responder, 'csp');
            assert.equal(result.records.length, 3);
        } finally {
            targetOnline = true;
        }
        const lonely = new FogQueryHandler({
            suite,
            directory: {
                lookup: async (id) => ({
                    equipmentId: id,
                    status: 'online',
                    publicKey: toHex(encodePoint(suite, id === card.id ? card.publicKey : lap.publicKey)),
                }),
            },
            routes: { endpointsFor: () => [] },
        });
        await assertQueryError(
            asker(card, { send: (p) => lonely.handle(p), attempts: 2 }).query(lap.id, range),
            ErrorCode.TargetUnreachable,
            4,
            QueryRetry.Later,
        );
    });

    void it('rejects an answer signed by the wrong machine (step 9), retrying as the paper says', async () => {
        const impostor = new QueryResponder({
            suite,
            equipmentId: lap.id,
            responder: Responder.Target,
            signingSecret: stranger.secret,
            access: ledgerQueryAccess(materials),
            history,
        });
        let asked = 0;
        const viaImpostor = new FogQueryHandler({
            suite,
            directory: ledgerEquipmentDirectory(new ChaincodeClient(materials.connection, 'm2m')),
            routes: {
                endpointsFor: () => [
                    {
                        kind: 'target',
                        deliver: (p) => {
                            asked++;
                            return impostor.respond(p);
                        },
                    },
                ],
            },
        });
        await assertQueryError(
            asker(card, { send: (p) => viaImpostor.handle(p), attempts: 3 }).query(lap.id, range),
            ErrorCode.FailedSignatureVerification,
            9,
            QueryRetry.ResendAnswer,
        );
        assert.equal(asked, 3, 'each resend reached the target again');
    });

    /** An asker whose answers come from `records` (signed by the real target) instead of lap's history. */
    function askerOfTarget(
        records: readonly AnsweredRecord[],
        overrides: Parameters<typeof asker>[1] = {},
    ): QueryAsker {
        const h = new MemoryRecordHistory();
        for (const r of records) h.add(lap.id, r);
        const responder = new QueryResponder({
            suite,
            equipmentId: lap.id,
            responder: Responder.Target,
            signingSecret: lap.secret,
            access: ledgerQueryAccess(materials),
            history: h,
        });
        const viaTarget = new FogQueryHandler({
            suite,
            directory: ledgerEquipmentDirectory(new ChaincodeClient(materials.connection, 'm2m')),
            routes: { endpointsFor: () => [{ kind: 'target', deliver: (p) => responder.respond(p) }] },
        });
        return asker(card, { send: (p) => viaTarget.handle(p), ...overrides });
    }

    void it('rejects an answer that omits a record the asker holds a receipt for (step 9)', async () => {
        const before = book.receiptsOf(lap.id).length;
        await assertQueryError(
            askerOfTarget([record(0), record(2)]).query(lap.id, range),
            ErrorCode.AnswerIncomplete,
            9,
            QueryRetry.None,
        );
        // A fresh asker without the receipt accepts the same answer: the book is what catches it.
        const result = await askerOfTarget([record(0), record(2)], { book: new MemoryReceiptBook() }).query(
            lap.id,
            range,
        );
        assert.equal(result.records.length, 2);
        assert.equal(book.receiptsOf(lap.id).length, before, 'the book is unchanged');
    });

    void it('rejects a receipt with a flipped bit, for another record, without a receipt, or under other roots', async () => {
        const flipped = (at: number): AnsweredRecord => {
            const receipt = record(2).receipt.slice();
            receipt[at]! ^= 0x10;
            return { ...record(2), receipt };
        };
        // A flipped bit: in the record inside the receipt, in the Merkle path, in the block.
        const r2 = record(2).receipt;
        for (const at of [40, 200, Math.floor(r2.length / 2), r2.length - 30]) {
            await assertQueryError(
                askerOfTarget([record(0), record(1), flipped(at)]).query(lap.id, range),
                ErrorCode.AnswerIncomplete,
                9,
                QueryRetry.None,
            );
        }
        // The receipt of another machine's record presented with lap's record 2.
        await assertReceiptRefused(
            askerOfTarget([record(0), record(1), { ...record(2), receipt: foreign.receipt }]).query(lap.id, range),
            'record',
        );
        // Another machine's anchored record passed off as lap's record 2's id (its receipt is valid).
        await assertReceiptRefused(
            askerOfTarget([record(0), record(1), { ...foreign, recordId: record(2).recordId }]).query(lap.id, range),
            'record',
        );
        // A record at a time other than its signed timestamp (moved into the range asked for).
        await assertReceiptRefused(
            askerOfTarget([record(0), record(1), { ...record(2), time: T0 + 150_000 }]).query(lap.id, range),
            'record',
        );
        // A record without a receipt.
        await assertReceiptRefused(
            askerOfTarget([record(0), record(1), { ...record(2), receipt: new Uint8Array() }]).query(lap.id, range),
            'encoding',
        );
        // Good receipts, but the asker trusts another channel's roots: nothing verifies.
        const otherRoot = net.ledger.organisation('OtherMSP').caCertificatePem;
        const otherChannel: ChannelTrust = {
            ...trust,
            channel: 'other-channel',
            orderers: trust.orderers.map((o) => ({ ...o, rootCertificates: [otherRoot] })),
        };
        await assertReceiptRefused(
            asker(card, { receipts: new MerkleReceiptCheck(otherChannel), book: new MemoryReceiptBook() }).query(
                lap.id,
                range,
            ),
            'ordererSignature',
        );
        await assertReceiptRefused(
            asker(card, {
                receipts: new MerkleReceiptCheck({ ...trust, channel: 'other-channel' }),
                book: new MemoryReceiptBook(),
            }).query(lap.id, range),
            'transaction',
        );
    });

    void it('the receipt book holds only receipts that verify, and is unchanged by a bad one', () => {
        const held = new MemoryReceiptBook();
        const verifier = new MerkleReceiptCheck(trust).verifier;
        const receipt = record(0).receipt.slice();
        receipt[receipt.length - 30]! ^= 1;
        assert.throws(() => held.holdReceipt(lap.id, 'quality', receipt, verifier), ReceiptError);
        assert.throws(
            () =>
                held.holdReceipt(
                    lap.id,
                    'quality',
                    record(0).receipt,
                    new MerkleReceiptCheck({ ...trust, chaincode: 'x' }).verifier,
                ),
            ReceiptError,
        );
        assert.equal(held.receiptsOf(lap.id).length, 0);
        held.holdReceipt(lap.id, 'quality', record(0).receipt, verifier);
        held.holdReceipt(lap.id, 'quality', record(0).receipt, verifier);
        assert.deepEqual(
            held.receiptsOf(lap.id).map((r) => toHex(r.recordId)),
            [toHex(record(0).recordId)],
            'held once',
        );
        assert.deepEqual(held.heldFor(lap.id, T0, T0, ['quality']).map(toHex), [toHex(record(0).recordId)]);
        assert.equal(held.heldFor(lap.id, T0 + 1, T0 + 3_600_000, []).length, 0);
    });

    void it('a receipt book on disk keeps receipts across restarts and refuses a damaged file at load', async () => {
        const dir = await tempDir('m2m-receipt-book-');
        const verifier = new MerkleReceiptCheck(trust).verifier;
        const book1 = await FileReceiptBook.open(dir, verifier);
        await book1.keep(lap.id, 'quality', record(0).receipt);
        await book1.keep(lap.id, 'quality', record(2).receipt);
        const bad = record(1).receipt.slice();
        bad[bad.length - 30]! ^= 1;
        await assert.rejects(book1.keep(lap.id, 'quality', bad), ReceiptError);
        const files = (await readdir(dir, { recursive: true })).sort();
        const book2 = await FileReceiptBook.open(dir, verifier);
        // A set of record ids: a reopened book holds them in file-name order, not the order kept.
        assert.deepEqual(
            book2
                .heldFor(lap.id, T0, T0 + 3_600_000, ['quality'])
                .map(toHex)
                .sort(),
            [record(0), record(2)].map((r) => toHex(r.recordId)).sort(),
        );
        assert.deepEqual((await readdir(dir, { recursive: true })).sort(), files, 'the refused receipt left no file');
        // A file damaged on disk, or one renamed to another record, is refused at load naming the file.
        const [first] = files.filter((f) => f.endsWith('.receipt'));
        const path = join(dir, first!);
        const good = await readFile(path);
        const damaged = Buffer.from(good);
        damaged[damaged.length - 30]! ^= 1;
        await writeFile(path, damaged);
        await assert.rejects(
            FileReceiptBook.open(dir, verifier),
            (e: unknown) => e instanceof PersistedFileError && e.path === path,
        );
        await writeFile(path, record(1).receipt);
        await assert.rejects(FileReceiptBook.open(dir, verifier), /another record/);
        await writeFile(path, good);
        await FileReceiptBook.open(dir, verifier);
    });

    void it('refuses late answers and answers replayed into another query (step 9)', async () => {
        const a = asker(card);
        const first = a.createQuery(lap.id, range);
        const reply = await fog.handle(first.bytes);
        // The same answer presented for a second query.
        const second = a.createQuery(lap.id, range);
        await assertQueryError(a.accept(second, reply), ErrorCode.ReplayDetected, 9);
        // The answer after the query's deadline.
        let clock = Date.now();
        const slow = asker(card, { now: () => clock, lifetimeMs: 1_000 });
        const q = slow.createQuery(lap.id, range);
        const late = await fog.handle(q.bytes);
        clock += 5_000;
        await assertQueryError(slow.accept(q, late), ErrorCode.QueryExpired, 9);
        // Accepted once in time; the query is then no longer in flight, so a second delivery is a replay.
        const ok = await a.accept(first, reply);
        assert.equal(ok.records.length, 3);
        await assertQueryError(a.accept(first, reply), ErrorCode.ReplayDetected, 9);
    });
});
