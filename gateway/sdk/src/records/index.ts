/**
 * Communication records, SDK side: anchoring batches, fetching blocks, building and verifying
 * receipts offline (docs/records.md). The record encoding, Merkle log, envelope encryption and
 * the offline receipt verifier are in the protocol module (`@m2m-fabric/protocol`, receipt.ts:
 * the device agent verifies receipts with the same code); they are re-exported here.
 */
export {
    ANCHORS_CONTRACT,
    MAX_ANCHOR_PAGE_SIZE,
    anchorBatch,
    anchorsInRange,
    fetchBlockByTxId,
    getAnchor,
    listAnchors,
    type AnchorEntry,
    type AnchorPage,
    type AnchorWriter,
    type AnchoredBatch,
} from './anchoring.js';
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
} from '@m2m-fabric/protocol';
export {
    CHECKPOINTS_CONTRACT,
    checkpointProofFromBlock,
    exportCheckpoint,
    importCheckpoint,
    recordCheckpoint,
    registerCheckpointSource,
} from './checkpoint.js';
export { openSharedRecord, type SharedRecord } from './shared-record.js';
