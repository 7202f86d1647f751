/** Record batching for the CSP and the fogs (docs/records.md). */
export { RecordBatcher, type BatcherOptions, type Ingested } from './batcher.js';
export { readJournalRecords, parseJournalEntry, JOURNAL_FILE } from './journal.js';
export {
    RecordEnvelopes,
    type RecordEnvelopesOptions,
    ENVELOPE_INDEX_FILE,
    STORAGE_KEY_FILE,
    storageKeySuite,
} from './envelopes.js';
