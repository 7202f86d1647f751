/**
 * Real Merkle receipts for the record-query tests: communication records signed by a device
 * session key (to the CSP), appended to the CSP's log, anchored through the anchors contract of
 * the embedded ledger, each with its receipt built from the anchoring block (as the CSP builds
 * them; docs/records.md "Receipts").
 */
import {
    CSP_WRITER,
    EncryptionType,
    MerkleTree,
    PartyRole,
    RecordSigner,
    RecordType,
    buildReceipt,
    encodeReceipt,
    encodeRecord,
    payloadDigest,
    randomScalar,
    type Suite,
} from '@m2m-fabric/protocol';
import { anchorBatch, fetchBlockByTxId, type LedgerConnection, type LedgerContract } from '@m2m-fabric/sdk';

export interface AnchoredRecords {
    /** Encoded records, in log order. */
    records: Uint8Array[];
    /** Encoded Merkle receipts, one per record. */
    receipts: Uint8Array[];
}

/**
 * Signs one record per timestamp (a session of one device to the CSP), anchors them as one batch
 * and returns each record's receipt.
 */
export async function anchoredRecords(
    suite: Suite,
    anchors: LedgerContract,
    reader: LedgerConnection,
    cspSecret: bigint,
    timestamps: readonly number[],
    log: { tree: MerkleTree; sequence: number } = { tree: new MerkleTree(), sequence: 0 },
): Promise<AnchoredRecords> {
    const session = new RecordSigner(suite, randomScalar(suite));
    const csp = new RecordSigner(suite, cspSecret);
    const from = log.tree.size;
    const records = timestamps.map((time, i) => {
        const payload = new TextEncoder().encode(`quality ${i}: unevenness CV ${2 + i / 10}% SECRET-BODY-${i}`);
        const record = encodeRecord(
            session.sign({
                suite,
                type: RecordType.Upload,
                encryption: EncryptionType.SessionChannel,
                sender: session.party(PartyRole.Device),
                receiver: csp.party(PartyRole.Csp),
                sequence: BigInt(i),
                timestamp: BigInt(time),
                size: payload.length,
                digest: payloadDigest(payload),
            }),
        );
        log.tree.append(record);
        return record;
    });
    const batch = await anchorBatch(
        anchors,
        { suite, writer: CSP_WRITER, secretKey: cspSecret },
        log.tree,
        ++log.sequence,
        from,
        log.tree.size,
    );
    const block = await fetchBlockByTxId(reader, batch.transactionId);
    const receipts = records.map((record, k) =>
        encodeReceipt(
            buildReceipt(
                {
                    record,
                    writer: CSP_WRITER,
                    sequence: batch.sequence,
                    leafIndex: from + k,
                    treeSize: batch.treeSize,
                    inclusionProof: log.tree.inclusionProof(from + k, batch.treeSize),
                    root: batch.root,
                    transactionId: batch.transactionId,
                },
                block,
            ),
        ),
    );
    return { records, receipts };
}
