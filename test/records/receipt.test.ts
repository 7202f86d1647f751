/**
 * Receipts end to end on the embedded ledger: records signed by per-session keys, batched into
 * the CSP's log, anchored through the anchors contract, the block fetched with qscc, and each
 * receipt verified offline against the channel's MSP roots only. Any flipped bit of a receipt is
 * a ReceiptError. The verifier is the protocol package's (the one the device agent runs; the SDK
 * re-exports it), and its protobuf wire reader is cross-checked here against fabric-protos on
 * every block of the run, field by field.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
    CSP_WRITER,
    DecodeError,
    EncryptionType,
    MerkleTree,
    P256_SHA256,
    PartyRole,
    ReceiptError,
    ReceiptVerifier,
    RecordSigner,
    RecordType,
    WireMessage,
    buildReceipt,
    decodeReceipt,
    encodeReceipt,
    encodeRecord,
    parseChannelTrust,
    payloadDigest,
    readFields,
    verifyReceipt,
    type ChannelTrust,
    type Receipt,
} from '@m2m-fabric/protocol';
import * as sdk from '@m2m-fabric/sdk';
import { anchorBatch, fetchBlockByTxId, type LedgerConnection } from '@m2m-fabric/sdk';

import { randomScalar } from '../crypto/helpers.js';
import { compareWithFabricProtos } from './fabric-wire.js';
import { CHAINCODE, startNetwork } from '../chaincode/network.js';
import type { TestNetwork } from '../chaincode/network.js';
import { bootstrap } from '../chaincode/scenario.js';

const suite = P256_SHA256;

function throwsReceipt(fn: () => unknown, message: string, check?: string): void {
    assert.throws(fn, (e: unknown) => e instanceof ReceiptError && (check === undefined || e.check === check), message);
}

void describe('receipts', () => {
    let net: TestNetwork;
    let connection: LedgerConnection;
    let trust: ChannelTrust;
    const records: Uint8Array[] = [];
    const receipts: Receipt[] = [];
    const tree = new MerkleTree();

    before(async () => {
        net = await startNetwork(suite);
        await bootstrap(net, 0);
        const enrolment = await net.ledger.loadOrEnrol('ManufacturerMSP', 'auditor', {
            attributes: { 'm2m.role': 'manufacturer' },
        });
        connection = await net.ledger.connect({ identity: enrolment.identity, signer: enrolment.signer });
        trust = net.ledger.channelTrust(CHAINCODE);
        const csp = new RecordSigner(suite, randomScalar(suite));
        // Two device sessions: two unlinkable per-session keys.
        for (const session of [
            new RecordSigner(suite, randomScalar(suite)),
            new RecordSigner(suite, randomScalar(suite)),
        ]) {
            for (let i = 0; i < 6; i++) {
                const payload = randomBytes(256);
                const record = session.sign({
                    suite,
                    type: RecordType.Upload,
                    encryption: EncryptionType.SessionChannel,
                    sender: session.party(PartyRole.Device),
                    receiver: csp.party(PartyRole.Csp),
                    sequence: BigInt(i),
                    timestamp: BigInt(Date.now()),
                    size: payload.length,
                    digest: payloadDigest(payload),
                });
                records.push(encodeRecord(record));
                tree.append(records[records.length - 1]!);
            }
        }
        const writer = { suite, writer: CSP_WRITER, secretKey: net.csp.d };
        const contract = net.parties.csp.contract('anchors');
        // Two batches: 5 records, then the other 7.
        const first = await anchorBatch(contract, writer, tree, 1, 0, 5);
        const second = await anchorBatch(contract, writer, tree, 2, 5, tree.size);
        for (const [batch, from, to] of [
            [first, 0, 5],
            [second, 5, tree.size],
        ] as const) {
            const block = await fetchBlockByTxId(connection, batch.transactionId);
            assert.deepEqual(block, await net.ledger.getBlock(batch.blockNumber));
            for (let index = from; index < to; index++) {
                receipts.push(
                    buildReceipt(
                        {
                            record: records[index]!,
                            writer: CSP_WRITER,
                            sequence: batch.sequence,
                            leafIndex: index,
                            treeSize: batch.treeSize,
                            inclusionProof: tree.inclusionProof(index, batch.treeSize),
                            root: batch.root,
                            transactionId: batch.transactionId,
                        },
                        block,
                    ),
                );
            }
        }
    });
    after(async () => {
        connection.close();
        await net.close();
    });

    void it('is one implementation: the SDK re-exports the protocol package verifier', () => {
        assert.equal(sdk.ReceiptVerifier, ReceiptVerifier);
        assert.equal(sdk.verifyReceipt, verifyReceipt);
        assert.equal(sdk.buildReceipt, buildReceipt);
    });

    void it('reads every block of the run as fabric-protos does, field by field', async () => {
        let endorserTransactions = 0;
        let writes = 0;
        for (let n = 0n; n < net.ledger.height; n++) {
            const counts = compareWithFabricProtos((await net.ledger.getBlock(n))!, n);
            endorserTransactions += counts.endorserTransactions;
            writes += counts.writes;
        }
        assert.ok(endorserTransactions >= 2 && writes >= 2, `${endorserTransactions} transactions, ${writes} writes`);
    });

    void it('wire reader: refuses what Fabric never writes, skips unknown fields', () => {
        const decodes = (bytes: number[], why: string): void =>
            assert.throws(() => new WireMessage(Uint8Array.from(bytes)).bytes(1), DecodeError, why);
        decodes([0x0a, 0x01, 0x41, 0x0a, 0x01, 0x42], 'a singular field twice');
        decodes([0x0a, 0x05, 0x41], 'a length past the end');
        decodes([0x0b, 0x0c], 'a group');
        decodes([0x08, 0x01], 'bytes field given as a varint');
        decodes([0x02, 0x00], 'field number 0');
        decodes([0x08, ...Array<number>(10).fill(0xff), 0x01], 'varint longer than ten bytes');
        decodes([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], 'varint over 64 bits');
        decodes([0x08], 'a truncated varint');
        const m = new WireMessage(Uint8Array.from([0x0a, 0x02, 0x41, 0x42, 0x15, 1, 2, 3, 4, 0x18, 0x96, 0x01]));
        assert.equal(Buffer.from(m.bytes(1)).toString(), 'AB');
        assert.equal(m.uint(3), 150n);
        assert.equal(m.uint(9), 0n, 'absent: the proto3 default');
        assert.equal(readFields(Uint8Array.from([0x15, 1, 2, 3, 4])).length, 1, 'fixed32 skipped as unknown');
        assert.equal(
            new WireMessage(Uint8Array.from([0x08, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])).int32(
                1,
            ),
            -2,
        );
    });

    void it('verifies every record offline against the MSP roots alone', () => {
        const offline = parseChannelTrust(JSON.stringify(trust));
        const verifier = new ReceiptVerifier(offline);
        for (const [i, receipt] of receipts.entries()) {
            const bytes = encodeReceipt(receipt);
            assert.deepEqual(encodeReceipt(decodeReceipt(bytes)), bytes);
            const record = verifier.verifyBytes(bytes);
            assert.deepEqual(encodeRecord(record), records[i]);
            verifyReceipt(offline, bytes);
        }
    });

    void it('refuses a receipt under other roots, another policy, or for another channel', () => {
        const bytes = encodeReceipt(receipts[0]!);
        const otherRoot = net.ledger.organisation('OtherMSP').caCertificatePem;
        throwsReceipt(
            () =>
                verifyReceipt({ ...trust, orderers: [{ mspId: 'OrdererMSP', rootCertificates: [otherRoot] }] }, bytes),
            'foreign orderer root',
            'ordererSignature',
        );
        throwsReceipt(
            () => verifyReceipt({ ...trust, endorsementPolicy: 'ALL Endorsement' }, bytes),
            'policy',
            'policy',
        );
        throwsReceipt(() => verifyReceipt({ ...trust, channel: 'other' }, bytes), 'channel', 'transaction');
        throwsReceipt(() => verifyReceipt({ ...trust, chaincode: 'other' }, bytes), 'chaincode', 'writeSet');
        const swapped = {
            ...trust,
            organisations: trust.organisations.map((o) => ({ ...o, rootCertificates: [otherRoot] })),
        };
        throwsReceipt(() => verifyReceipt(swapped, bytes), 'foreign application roots');
    });

    void it('refuses a record moved into another batch, index or receipt', () => {
        const verifier = new ReceiptVerifier(trust);
        const [a, b] = [receipts[0]!, receipts[7]!];
        throwsReceipt(() => verifier.verify({ ...a, record: b.record }), 'other record', 'inclusion');
        throwsReceipt(() => verifier.verify({ ...a, leafIndex: 1 }), 'other index', 'inclusion');
        throwsReceipt(() => verifier.verify({ ...a, sequence: 2 }), 'other batch', 'writeSet');
        throwsReceipt(() => verifier.verify({ ...a, root: b.root }), 'other root', 'writeSet');
        throwsReceipt(() => verifier.verify({ ...a, treeSize: b.treeSize }), 'other size', 'writeSet');
        throwsReceipt(() => verifier.verify({ ...a, transactionId: b.transactionId }), 'other tx', 'transaction');
        throwsReceipt(() => verifier.verify({ ...a, block: b.block }), 'other block', 'transaction');
        throwsReceipt(
            () => verifier.verify({ ...a, block: { ...a.block, validationCode: 11 } }),
            'MVCC',
            'validationCode',
        );
        throwsReceipt(
            () => verifier.verify({ ...a, block: { ...a.block, signatures: new Uint8Array() } }),
            'unsigned',
            'ordererSignature',
        );
    });

    void it('gives a ReceiptError for a flipped bit at every byte position, and for a random sample of bits', () => {
        const bytes = encodeReceipt(receipts[3]!);
        const verifier = new ReceiptVerifier(trust);
        verifier.verifyBytes(bytes);
        const flip = (index: number, bit: number): void => {
            const flipped = bytes.slice();
            flipped[index]! ^= 1 << bit;
            throwsReceipt(() => verifier.verifyBytes(flipped), `byte ${index} bit ${bit} of ${bytes.length}`);
        };
        for (let index = 0; index < bytes.length; index++) flip(index, index % 8);
        for (let sample = 0; sample < 3000; sample++) flip(randomInt(bytes.length), randomInt(8));
        // Truncations and an appended byte.
        for (const length of [0, 1, 20, bytes.length >> 1, bytes.length - 1]) {
            throwsReceipt(() => verifier.verifyBytes(bytes.subarray(0, length)), `truncated to ${length}`, 'encoding');
        }
        throwsReceipt(() => verifier.verifyBytes(new Uint8Array([...bytes, 0])), 'trailing byte', 'encoding');
    });

    void it('m2m records verify: exit 0 and the record for a good receipt, exit 1 and the check for a bad one', () => {
        const dir = mkdtempSync(join(tmpdir(), 'm2m-receipt-'));
        try {
            const trustFile = join(dir, 'trust.json');
            writeFileSync(trustFile, JSON.stringify(trust));
            const good = join(dir, 'good.receipt');
            const bytes = encodeReceipt(receipts[2]!);
            writeFileSync(good, bytes);
            const flipped = bytes.slice();
            flipped[bytes.length - 40]! ^= 4;
            const bad = join(dir, 'bad.receipt');
            writeFileSync(bad, flipped);
            const run = (file: string): SpawnSyncReturns<string> =>
                spawnSync(
                    process.execPath,
                    ['gateway/cli/dist/main.js', 'records', 'verify', file, '--trust', trustFile],
                    {
                        encoding: 'utf8',
                    },
                );
            const ok = run(good);
            assert.equal(ok.status, 0, ok.stderr);
            const printed = JSON.parse(ok.stdout) as { valid: boolean; size: number };
            assert.equal(printed.valid, true);
            assert.equal(printed.size, 256);
            const refused = run(bad);
            assert.equal(refused.status, 1);
            assert.match(refused.stderr, /^receiptInvalid: /);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
