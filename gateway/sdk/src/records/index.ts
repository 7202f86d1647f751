/**
 * Communication records, SDK side: anchoring batches, fetching blocks, building and verifying
 * receipts offline (docs/records.md). The record encoding, Merkle log and envelope encryption
 * are in the protocol module (`@m2m-fabric/chaincode/protocol`).
 */
export { ANCHORS_CONTRACT, anchorBatch, fetchBlockByTxId, type AnchorWriter, type AnchoredBatch } from './anchoring.js';
export {
    RECEIPT_VERSION,
    ReceiptError,
    ReceiptVerifier,
    buildReceipt,
    decodeReceipt,
    encodeReceipt,
    parseChannelTrust,
    verifyReceipt,
    type ChannelTrust,
    type Receipt,
    type ReceiptCheck,
    type RecordPlacement,
} from './receipt.js';
export {
    CHECKPOINTS_CONTRACT,
    checkpointProofFromBlock,
    exportCheckpoint,
    importCheckpoint,
    recordCheckpoint,
    registerCheckpointSource,
} from './checkpoint.js';
export { openSharedRecord, type SharedRecord } from './shared-record.js';
