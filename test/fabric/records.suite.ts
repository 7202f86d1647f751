/**
 * Communication records through the Fabric client path (docs/records.md): the CSP's RecordBatcher
 * anchors a batch with @hyperledger/fabric-gateway, a record's receipt is built from the block qscc
 * returns, and the receipt is verified offline against the channel's MSP roots — on a real network
 * the orderer's and endorsing peers' signatures under the crypto material's cacerts; one record's
 * sealed payload is shared with an auditor and opened against that receipt. Bad input: an
 * anchor from a manufacturer identity, a replayed batch, a receipt with a flipped bit.
 *
 * The CSP's record log lives in the suite's state directory: on a real network the writer's head
 * outlives a run, and the next run's batches must extend the same log (the chaincode checks the
 * consistency proof), so M2M_FABRIC_TEST_STATE must stay the same between runs, as for suite.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';

import {
    CSP_WRITER,
    DEFAULT_SUITE,
    EncryptionType,
    ErrorCode,
    PartyRole,
    RecordSigner,
    RecordType,
    encodeRecord,
    encodeRecordShare,
    encodeSealedPayload,
    hpkeRecipientFromScalar,
    payloadDigest,
    randomScalar,
    sealRecordPayload,
    shareSealedPayload,
} from '@m2m-fabric/protocol';
import {
    EndorseError,
    ReceiptError,
    ReceiptVerifier,
    anchorBatch,
    buildReceipt,
    encodeReceipt,
    fetchBlockByTxId,
    openSharedRecord,
    type AnchoredBatch,
} from '@m2m-fabric/sdk';
import { RecordBatcher } from '@m2m-fabric/services';

import { choice, openSuite, registeredCsp, skip, type OpenSuite } from './suite-setup.js';
import { compareWithFabricProtos } from '../records/fabric-wire.js';

const options = { skip };
const suite = DEFAULT_SUITE;
const RECORDS = 40;

async function refused(call: Promise<unknown>, code: string): Promise<void> {
    await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof EndorseError, String(err));
        assert.equal(err.errorCode, code, err.chaincodeMessage);
        return true;
    });
}

void describe(`communication records through the ledger client (${typeof choice === 'string' ? choice : 'no target'})`, () => {
    let open: OpenSuite;
    let batcher: RecordBatcher;
    let d: bigint;
    const anchored: AnchoredBatch[] = [];
    const records: { leafIndex: number; bytes: Uint8Array }[] = [];

    before(async () => {
        if (skip !== false) return;
        open = await openSuite();
        d = (await registeredCsp(open)).d;
        batcher = await RecordBatcher.open({
            dir: join(open.stateDir, 'records', 'csp'),
            writer: { suite, writer: CSP_WRITER, secretKey: d },
            anchors: open.contract('csp', 'anchors'),
            batchSize: RECORDS,
            maxDelayMs: 60_000,
            onAnchored: (batch) => anchored.push(batch),
        });
        // A journal left by an earlier run is anchored first.
        await batcher.drain();
        anchored.length = 0;
    });
    after(async () => {
        await batcher?.close();
        await open?.close();
    });

    void it('anchors a batch and verifies a receipt offline against the MSP roots', options, async () => {
        const device = new RecordSigner(suite, randomScalar(suite));
        const csp = new RecordSigner(suite, d).party(PartyRole.Csp);
        const ingested = await Promise.all(
            Array.from({ length: RECORDS }, async (_, i) => {
                const payload = new TextEncoder().encode(`frame ${i} ${Date.now()}`);
                const bytes = encodeRecord(
                    device.sign({
                        suite,
                        type: RecordType.Upload,
                        encryption: EncryptionType.SessionChannel,
                        sender: device.party(PartyRole.Device),
                        receiver: csp,
                        sequence: BigInt(i),
                        timestamp: BigInt(Date.now()),
                        size: payload.length,
                        digest: payloadDigest(payload),
                    }),
                );
                const { leafIndex } = await batcher.ingest(bytes, payload);
                return { leafIndex, bytes, payload };
            }),
        );
        records.push(...ingested.map(({ leafIndex, bytes }) => ({ leafIndex, bytes })));
        await batcher.drain();
        const batch = anchored[anchored.length - 1];
        assert.ok(batch !== undefined, 'a batch was anchored');
        assert.equal(batch.treeSize, batcher.durableSize);
        const trust = await open.target.channelTrust();
        const verifier = new ReceiptVerifier(trust);
        const block = await fetchBlockByTxId(open.connections.get('csp')!, batch.transactionId);
        // The device-side wire reader reads the block Fabric wrote exactly as fabric-protos does.
        assert.ok(compareWithFabricProtos(block).endorserTransactions >= 1);
        // Envelope encryption: the first record's payload sealed for the CSP's storage key and shared
        // with an auditor, who opens it against its real-Fabric receipt (docs/records.md).
        const storage = await hpkeRecipientFromScalar(suite, randomScalar(suite));
        const auditor = await hpkeRecipientFromScalar(suite, randomScalar(suite));
        const cspSigner = new RecordSigner(suite, d);
        const payloads = new Map(ingested.map((r) => [r.leafIndex, r.payload]));
        let shared = 0;
        for (const { leafIndex, bytes } of records.filter((r) => r.leafIndex < batch.treeSize).slice(0, 5)) {
            const receipt = encodeReceipt(
                buildReceipt(
                    {
                        record: bytes,
                        writer: CSP_WRITER,
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
            const record = verifier.verifyBytes(receipt);
            assert.deepEqual(encodeRecord(record), bytes);
            const payload = payloads.get(leafIndex);
            if (payload !== undefined && shared++ === 0) {
                const sealed = encodeSealedPayload(
                    await sealRecordPayload(cspSigner, bytes, payload, [storage.publicKey]),
                );
                const share = await shareSealedPayload(sealed, storage, auditor.publicKey);
                const opened = await openSharedRecord(trust, receipt, encodeRecordShare(share), auditor);
                assert.deepEqual(opened.plaintext, payload);
            }
            // The same receipt with any one bit flipped is refused, by a cold verifier as well.
            for (const position of [0, 40, Math.floor(receipt.length / 2), receipt.length - 1]) {
                const flipped = new Uint8Array(receipt);
                flipped[position]! ^= 0x01;
                assert.throws(() => new ReceiptVerifier(trust).verifyBytes(flipped), ReceiptError);
            }
            // Another channel's roots do not vouch for it.
            const elsewhere = new ReceiptVerifier({ ...trust, channel: `${trust.channel}-other` });
            assert.throws(() => elsewhere.verifyBytes(receipt), ReceiptError);
        }
        assert.ok(shared > 0, 'one record was shared and opened against its receipt');
    });

    void it('refuses an anchor from a manufacturer identity and a replayed batch', options, async () => {
        const head = batcher.sequence;
        assert.ok(head >= 1, 'the first test anchored a batch');
        const writer = { suite, writer: CSP_WRITER, secretKey: d };
        await refused(
            anchorBatch(open.contract('manufacturer', 'anchors'), writer, batcher.tree, head + 1, batcher.anchoredSize),
            ErrorCode.UnauthorisedMsp,
        );
        // The CSP's own last batch again: the writer head (on the CSP's peer, where anchorBatch
        // waited for the commit) already holds it.
        const last = anchored[anchored.length - 1]!;
        const previous = anchored.length > 1 ? anchored[anchored.length - 2]!.treeSize : 0;
        await refused(
            anchorBatch(open.contract('csp', 'anchors'), writer, batcher.tree, last.sequence, previous, last.treeSize),
            ErrorCode.DuplicateBatch,
        );
        const after = JSON.parse(
            new TextDecoder().decode(
                await open.contract('csp', 'anchors').evaluate('getWriterHead', { arguments: [CSP_WRITER] }),
            ),
        ) as { sequence: number; treeSize: number };
        assert.equal(after.sequence, head, 'nothing was anchored');
        assert.equal(after.treeSize, batcher.anchoredSize);
    });
});
