/**
 * The entry format of the embedded store's append-only segment files, and the scanner that reads
 * them back (at open, and when another process has appended). One file holds entries of one writer
 * (one open store instance), so a file is only ever appended to by one process.
 *
 * Entry (big-endian):
 *   magic "M2" (2) | type (1) | reserved 0 (1) | length (4) | sha2-256 digest of the object (32)
 *   | object bytes (length) | check: first 4 bytes of SHA-256(header ‖ object)
 *
 * Types: 1 object, 2 object pinned, 3 pin, 4 unpin (pin and unpin carry no bytes). The check makes a
 * header with a flipped type or length detectable without hashing against the CID; the object bytes
 * are verified against the CID on every read in any case.
 */
import { hash } from 'node:crypto';
import { MAX_OBJECT_BYTES } from './content.js';

export const ENTRY_HEADER_BYTES = 40;
export const ENTRY_CHECK_BYTES = 4;
export const ENTRY_OVERHEAD = ENTRY_HEADER_BYTES + ENTRY_CHECK_BYTES;
const MAGIC0 = 0x4d;
const MAGIC1 = 0x32;

export const EntryType = { object: 1, pinnedObject: 2, pin: 3, unpin: 4 } as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/**
 * One index record per valid entry: type (1) | offset of the entry in the file (4) | object bytes
 * (4; 0 for pin and unpin) | the object's sha2-256 digest (32). The same records make up a sealed
 * segment's index file (segment-index.ts). Records in one buffer, not an object per entry: a scan
 * of 10⁶ entries then leaves nothing behind for the GC to trace.
 */
export const INDEX_RECORD_BYTES = 1 + 4 + 4 + 32;

export interface ScanResult {
    /** Index records of the valid entries, in file order (`count` of them). */
    records: Buffer;
    count: number;
    /**
     * Where the valid data ends: the file length when the region ends with a complete entry, else the
     * offset of a torn tail (an incomplete or invalid entry with no valid entry after it).
     */
    end: number;
    /** Damaged ranges followed by valid entries (never cut: they may hide nothing but they are reported). */
    damaged: { from: number; to: number }[];
}

/** The check of an entry whose header and body are `headerAndBody` (contiguous, as in the file). */
function check(headerAndBody: Uint8Array): Buffer {
    // One-shot hash: no Hash object per entry (a scan at open hashes every entry).
    return hash('sha256', headerAndBody, 'buffer').subarray(0, ENTRY_CHECK_BYTES);
}

/** Encodes one entry. */
export function encodeEntry(type: EntryType, digest: Uint8Array, body: Uint8Array = new Uint8Array(0)): Buffer {
    const out = Buffer.allocUnsafe(ENTRY_OVERHEAD + body.length);
    out[0] = MAGIC0;
    out[1] = MAGIC1;
    out[2] = type;
    out[3] = 0;
    out.writeUInt32BE(body.length, 4);
    out.set(digest, 8);
    out.set(body, ENTRY_HEADER_BYTES);
    out.set(check(out.subarray(0, ENTRY_HEADER_BYTES + body.length)), ENTRY_HEADER_BYTES + body.length);
    return out;
}

/** The entry at `at` in `buf` if it is complete and valid (its check holds), else undefined. */
export function entryAt(buf: Buffer, at: number): { type: EntryType; length: number } | undefined {
    if (buf.length - at < ENTRY_OVERHEAD) return undefined;
    if (buf[at] !== MAGIC0 || buf[at + 1] !== MAGIC1 || buf[at + 3] !== 0) return undefined;
    const type = buf[at + 2] as number;
    if (type < 1 || type > 4) return undefined;
    const length = buf.readUInt32BE(at + 4);
    if (length > MAX_OBJECT_BYTES || (type >= 3 && length !== 0)) return undefined;
    const end = at + ENTRY_OVERHEAD + length;
    if (end > buf.length) return undefined;
    const expected = check(buf.subarray(at, end - ENTRY_CHECK_BYTES));
    for (let i = 0; i < ENTRY_CHECK_BYTES; i++) if (expected[i] !== buf[end - ENTRY_CHECK_BYTES + i]) return undefined;
    return { type: type as EntryType, length };
}

/**
 * Parses `buf`, the bytes of a segment file from offset `base`. A bad entry is a torn tail when no
 * valid entry follows it (what an interrupted append leaves), and a damaged range otherwise (the
 * scan resynchronises on the next valid entry, so one damaged entry never hides the ones after it).
 */
export function scanSegment(buf: Buffer, base: number): ScanResult {
    let records = Buffer.allocUnsafe(INDEX_RECORD_BYTES * Math.min(4096, Math.ceil(buf.length / ENTRY_OVERHEAD)));
    let count = 0;
    const damaged: { from: number; to: number }[] = [];
    const result = (end: number): ScanResult => ({
        records: records.subarray(0, count * INDEX_RECORD_BYTES),
        count,
        end,
        damaged,
    });
    let at = 0;
    while (at < buf.length) {
        const entry = entryAt(buf, at);
        if (entry !== undefined) {
            if ((count + 1) * INDEX_RECORD_BYTES > records.length) {
                const grown = Buffer.allocUnsafe(records.length * 2);
                records.copy(grown, 0, 0, count * INDEX_RECORD_BYTES);
                records = grown;
            }
            const r = count++ * INDEX_RECORD_BYTES;
            records[r] = entry.type;
            records.writeUInt32BE(base + at, r + 1);
            records.writeUInt32BE(entry.length, r + 5);
            buf.copy(records, r + 9, at + 8, at + ENTRY_HEADER_BYTES);
            at += ENTRY_OVERHEAD + entry.length;
            continue;
        }
        let next = -1;
        for (let q = buf.indexOf(MAGIC0, at + 1); q !== -1; q = buf.indexOf(MAGIC0, q + 1)) {
            if (buf[q + 1] === MAGIC1 && entryAt(buf, q) !== undefined) {
                next = q;
                break;
            }
        }
        if (next === -1) return result(base + at);
        damaged.push({ from: base + at, to: base + next });
        at = next;
    }
    return result(base + at);
}

/** Reads the header fields of the entry at the start of `buf` (at least ENTRY_HEADER_BYTES long). */
export function entryHeader(buf: Buffer): { type: number; length: number; digest: Buffer } | undefined {
    if (buf.length < ENTRY_HEADER_BYTES || buf[0] !== MAGIC0 || buf[1] !== MAGIC1) return undefined;
    return { type: buf[2] as number, length: buf.readUInt32BE(4), digest: buf.subarray(8, ENTRY_HEADER_BYTES) };
}
