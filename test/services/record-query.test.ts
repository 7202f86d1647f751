/**
 * Paper 000's 9-step record query over the embedded ledger: the fog (steps 2-4, 7-8) reads the
 * M-EB, the target (5-6) reads the access rule its owner set on the ledger, the asker (1, 9)
 * checks signatures and receipts. Every failure branch of Fig. 8 is a typed QueryError with the
 * paper's retry, the fog sees no plaintext, replays and late answers are refused.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { p256 } from '@noble/curves/nist.js';

import {
    ErrorCode,
    P256_SHA256,
    QueryRetry,
    Responder,
    createQueryPacket,
    decodeFailurePacket,
    decodePoint,
    encodePoint,
    fromHex,
    randomScalar,
    recordReceiptMessage,
    signRecordReceipt,
    toHex,
    verifyRecordReceipt,
    type AnsweredRecord,
    type FailurePacket,
    type Point,
    type QueryPacket,
} from '@m2m-fabric/protocol';
import type { LedgerConnection } from '@m2m-fabric/sdk';
import { ChaincodeClient } from '@m2m-fabric/sdk';
import { MaterialsClient } from '@m2m-fabric/sdk';
import { QueryAsker } from '@m2m-fabric/device';
import { QueryResponder } from '@m2m-fabric/device';
import { MemoryReceiptBook, MemoryRecordHistory } from '@m2m-fabric/device';
import { FogQueryHandler, type QueryEndpoint } from '@m2m-fabric/services';
import { ledgerEquipmentDirectory, ledgerQueryAccess } from '@m2m-fabric/services';

import { assertQueryError } from './helpers/query.js';
import { startNetwork, type TestNetwork } from '../chaincode/network.js';
import { bootstrap, submit } from '../chaincode/scenario.js';

const suite = P256_SHA256;
const encodeScalarHex = (k: bigint): Uint8Array => fromHex(k.toString(16).padStart(64, '0'));
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

function record(k: number, cspSecret: bigint, machineId: string): AnsweredRecord {
    const body = new TextEncoder().encode(`quality lap-${k}: unevenness CV ${2 + k / 10}% SECRET-BODY-${k}`);
    const recordId = new Uint8Array(createHash('sha256').update(body).digest());
    return {
        recordId,
        kind: 'quality',
        time: T0 + k * 60_000,
        counterpart: 'csp',
        body,
        receipt: signRecordReceipt(suite, cspSecret, recordId, machineId),
    };
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

        history = new MemoryRecordHistory();
        for (let k = 0; k < 3; k++) history.add(lap.id, record(k, net.csp.d, lap.id));
        book = new MemoryReceiptBook();
        const held = record(1, net.csp.d, lap.id);
        book.hold(lap.id, { recordId: held.recordId, time: held.time, kind: held.kind });

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
            receipts: { verify: (target, r) => verifyRecordReceipt(suite, net.csp.Q, r.recordId, target, r.receipt) },
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
        assert.match(new TextDecoder().decode(result.records[1]?.body), /lap-1/);
        const visible = Buffer.concat(seenByFog.map((b) => Buffer.from(b))).toString('latin1');
        assert.ok(visible.length > 0);
        assert.ok(!visible.includes('SECRET-BODY'), 'the fog saw plaintext');
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

    void it('rejects an answer that omits a record the asker holds a receipt for, or carries a forged one', async () => {
        const hiding = new MemoryRecordHistory();
        hiding.add(lap.id, record(0, net.csp.d, lap.id));
        hiding.add(lap.id, record(2, net.csp.d, lap.id));
        const forged = new MemoryRecordHistory();
        for (let k = 0; k < 3; k++)
            forged.add(lap.id, {
                ...record(k, net.csp.d, lap.id),
                ...(k === 2
                    ? { receipt: signRecordReceipt(suite, lap.secret, record(2, net.csp.d, lap.id).recordId, lap.id) }
                    : {}),
            });
        for (const [name, h] of [
            ['hiding', hiding],
            ['forged', forged],
        ] as const) {
            const responder = new QueryResponder({
                suite,
                equipmentId: lap.id,
                responder: Responder.Target,
                signingSecret: lap.secret,
                access: ledgerQueryAccess(materials),
                history: h,
            });
            const viaLiar = new FogQueryHandler({
                suite,
                directory: ledgerEquipmentDirectory(new ChaincodeClient(materials.connection, 'm2m')),
                routes: { endpointsFor: () => [{ kind: 'target', deliver: (p) => responder.respond(p) }] },
            });
            await assertQueryError(
                asker(card, { send: (p) => viaLiar.handle(p) }).query(lap.id, range),
                ErrorCode.AnswerIncomplete,
                9,
                QueryRetry.None,
            ).catch((e: unknown) => {
                throw new Error(`${name}: ${String(e)}`);
            });
        }
    });

    void it('record receipts are P-256 ECDSA that an independent implementation (noble) agrees with', () => {
        const secret = randomScalar(suite);
        const key = suite.Point.BASE.multiply(secret);
        const id = new Uint8Array(32).fill(9);
        const message = recordReceiptMessage(id, lap.id);
        const receipt = signRecordReceipt(suite, secret, id, lap.id);
        assert.ok(p256.verify(receipt, message, encodePoint(suite, key), { lowS: false }));
        const byNoble = p256.sign(message, encodeScalarHex(secret));
        assert.ok(verifyRecordReceipt(suite, key, id, lap.id, byNoble));
        assert.ok(!verifyRecordReceipt(suite, key, id, card.id, receipt), 'bound to the machine');
        assert.ok(!verifyRecordReceipt(suite, net.csp.Q, id, lap.id, receipt), 'bound to the key');
        const flipped = new Uint8Array(receipt);
        flipped[5] = (flipped[5] ?? 0) ^ 1;
        assert.ok(!verifyRecordReceipt(suite, key, id, lap.id, flipped));
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
