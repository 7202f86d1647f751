/** Record batching for the CSP and the fogs (docs/records.md). */
export { RecordBatcher, type BatcherOptions, type Ingested } from './batcher.js';
export { readJournalRecords, parseJournalEntry, JOURNAL_FILE } from './journal.js';
