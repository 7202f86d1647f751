/**
 * The batcher's journal format, one place for the writer (batcher.ts) and its readers (the
 * console's records view): `journal.log` in the batcher's directory, a sequence of entries
 * `u32 length | first 4 bytes of SHA-256(record) | record`, appended and fsync'd in groups.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const JOURNAL_FILE = 'journal.log';
export const JOURNAL_HEADER_BYTES = 8;
/** The largest record a journal entry may hold (an encoded record is far smaller). */
export const MAX_JOURNAL_RECORD_BYTES = 4096;

export function journalChecksum(record: Uint8Array): Buffer {
    return createHash('sha256').update(record).digest().subarray(0, 4);
}

/** One journal entry's bytes for `record`. */
export function encodeJournalEntry(record: Uint8Array): Buffer {
    const entry = Buffer.alloc(JOURNAL_HEADER_BYTES + record.length);
    entry.writeUInt32BE(record.length, 0);
    journalChecksum(record).copy(entry, 4);
    entry.set(record, JOURNAL_HEADER_BYTES);
    return entry;
}

/**
 * The entry at `offset`: its record and where the next entry starts; undefined when the bytes
 * there are not one whole entry with a matching checksum (a torn tail, or damage).
 */
export function parseJournalEntry(bytes: Buffer, offset: number): { record: Buffer; end: number } | undefined {
    if (bytes.length - offset < JOURNAL_HEADER_BYTES) return undefined;
    const length = bytes.readUInt32BE(offset);
    if (length === 0 || length > MAX_JOURNAL_RECORD_BYTES || bytes.length - offset - JOURNAL_HEADER_BYTES < length)
        return undefined;
    const record = bytes.subarray(offset + JOURNAL_HEADER_BYTES, offset + JOURNAL_HEADER_BYTES + length);
    if (!journalChecksum(record).equals(bytes.subarray(offset + 4, offset + JOURNAL_HEADER_BYTES))) return undefined;
    return { record, end: offset + JOURNAL_HEADER_BYTES + length };
}

/**
 * The whole, valid entries of the journal in `dir`, in order, up to the first that is not (a torn
 * tail is the batcher's to cut; a reader stops before it). No journal: none.
 * @throws {Error} when: the file exists but cannot be read
 */
export async function readJournalRecords(dir: string): Promise<Buffer[]> {
    let bytes: Buffer;
    try {
        bytes = await readFile(join(dir, JOURNAL_FILE));
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
    }
    const out: Buffer[] = [];
    for (let entry = parseJournalEntry(bytes, 0); entry !== undefined; entry = parseJournalEntry(bytes, entry.end))
        out.push(entry.record);
    return out;
}
