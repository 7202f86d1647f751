/**
 * The persisted index of a sealed segment (`segments/<w>-<n>.idx` beside `<w>-<n>.seg`): what a
 * scan of the segment found, so that an open reads 41 bytes per entry instead of reading every
 * object and hashing it (the entry check). A segment is sealed when its writer moves on to a new
 * file or closes — it is never appended to again — or, for a writer that crashed, at the next open
 * after its torn tail is cut.
 *
 * Format (big-endian):
 *   magic "M2IX" (4) | version 1 (1) | reserved 0 (3) | covered: segment bytes indexed (8)
 *   | entries (4) | damaged ranges (4) | segment name length (2) | segment name (UTF-8)
 *   | entries × (type (1) | offset (4) | length (4) | sha2-256 digest (32))
 *   | damaged × (from (4) | to (4))
 *   | SHA-256 of everything before (32)
 *
 * An index is only a shortcut, never the data: a missing one, or one that fails any check below, is
 * ignored and the segment scanned as before (and the index written again when its writer is gone).
 * Checks at load: the checksum; the format; the segment name; `covered` not beyond the file; the
 * entries and damaged ranges tiling [0, covered) in order with no gap or overlap; and, against the
 * segment itself, the first, the last and evenly spaced entries read back with their entry check
 * and compared (type, length, digest). An entry that still disagrees is found by the verifying get
 * (the header it reads names another digest), which then drops the index and rescans.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { ENTRY_OVERHEAD, entryAt, INDEX_RECORD_BYTES, type ScanResult } from './segment.js';

export { INDEX_RECORD_BYTES };

const MAGIC = Buffer.from('M2IX', 'latin1');
const VERSION = 1;
const FIXED_BYTES = 4 + 1 + 3 + 8 + 4 + 4 + 2;
const RANGE_BYTES = 8;
const CHECKSUM_BYTES = 32;
/** Entries read back from the segment at load (the first, the last, and evenly spaced ones between). */
export const SPOT_CHECKS = 16;

/** The index file of a segment file name. */
export function indexNameOf(segmentName: string): string {
    return `${segmentName.slice(0, -'.seg'.length)}.idx`;
}

/** Encodes the index of segment `name` from a scan of the whole file (base 0). */
export function encodeSegmentIndex(name: string, scan: ScanResult): Buffer {
    const nameBytes = Buffer.from(name, 'utf8');
    const bodyBytes = FIXED_BYTES + nameBytes.length + scan.records.length + scan.damaged.length * RANGE_BYTES;
    const out = Buffer.alloc(bodyBytes + CHECKSUM_BYTES);
    MAGIC.copy(out, 0);
    out[4] = VERSION;
    out.writeBigUInt64BE(BigInt(scan.end), 8);
    out.writeUInt32BE(scan.count, 16);
    out.writeUInt32BE(scan.damaged.length, 20);
    out.writeUInt16BE(nameBytes.length, 24);
    nameBytes.copy(out, FIXED_BYTES);
    let at = FIXED_BYTES + nameBytes.length;
    scan.records.copy(out, at);
    at += scan.records.length;
    for (const range of scan.damaged) {
        out.writeUInt32BE(range.from, at);
        out.writeUInt32BE(range.to, at + 4);
        at += RANGE_BYTES;
    }
    createHash('sha256').update(out.subarray(0, bodyBytes)).digest().copy(out, bodyBytes);
    return out;
}

/** A loaded index: records are read in place from `buf` (see readIndexRecord). */
export interface SegmentIndex {
    buf: Buffer;
    covered: number;
    entries: number;
    /** Offset in `buf` of the first entry record. */
    recordsAt: number;
    damaged: { from: number; to: number }[];
}

/** Why an index was not used. */
export class SegmentIndexRejected extends Error {
    constructor(reason: string) {
        super(reason);
        this.name = 'SegmentIndexRejected';
    }
}

/** Field access to record `i` of a loaded index. */
export function readIndexRecord(
    index: SegmentIndex,
    i: number,
): { type: number; offset: number; length: number; digestAt: number } {
    const at = index.recordsAt + i * INDEX_RECORD_BYTES;
    return {
        type: index.buf[at] as number,
        offset: index.buf.readUInt32BE(at + 1),
        length: index.buf.readUInt32BE(at + 5),
        digestAt: at + 9,
    };
}

/**
 * Parses and checks the index `buf` of segment `name` (open as `fd`, `size` bytes long).
 *
 * @throws {SegmentIndexRejected} naming the first check that failed; the caller scans instead.
 */
export function loadSegmentIndex(buf: Buffer, name: string, fd: number, size: number): SegmentIndex {
    if (buf.length < FIXED_BYTES + CHECKSUM_BYTES) throw new SegmentIndexRejected('truncated');
    const bodyBytes = buf.length - CHECKSUM_BYTES;
    const checksum = createHash('sha256').update(buf.subarray(0, bodyBytes)).digest();
    if (!checksum.equals(buf.subarray(bodyBytes))) throw new SegmentIndexRejected('checksum mismatch');
    if (!buf.subarray(0, 4).equals(MAGIC) || buf[4] !== VERSION) throw new SegmentIndexRejected('unknown format');
    const covered = Number(buf.readBigUInt64BE(8));
    const entries = buf.readUInt32BE(16);
    const damagedCount = buf.readUInt32BE(20);
    const nameLength = buf.readUInt16BE(24);
    const recordsAt = FIXED_BYTES + nameLength;
    if (recordsAt + entries * INDEX_RECORD_BYTES + damagedCount * RANGE_BYTES !== bodyBytes)
        throw new SegmentIndexRejected('inconsistent lengths');
    if (buf.toString('utf8', FIXED_BYTES, recordsAt) !== name) throw new SegmentIndexRejected('names another segment');
    if (covered > size) throw new SegmentIndexRejected(`covers ${covered} bytes of a ${size}-byte segment`);
    const damaged: { from: number; to: number }[] = [];
    for (let k = 0, at = recordsAt + entries * INDEX_RECORD_BYTES; k < damagedCount; k++, at += RANGE_BYTES) {
        damaged.push({ from: buf.readUInt32BE(at), to: buf.readUInt32BE(at + 4) });
    }
    const index: SegmentIndex = { buf, covered, entries, recordsAt, damaged };
    // Entries and damaged ranges must tile [0, covered), as the scan that wrote them found them.
    let position = 0;
    let next = 0;
    for (let i = 0, at = recordsAt; i < entries; i++, at += INDEX_RECORD_BYTES) {
        while (next < damaged.length && (damaged[next] as { from: number }).from === position) {
            const range = damaged[next++] as { from: number; to: number };
            if (range.to <= range.from) throw new SegmentIndexRejected('malformed damaged range');
            position = range.to;
        }
        const type = buf[at] as number;
        const length = buf.readUInt32BE(at + 5);
        if (buf.readUInt32BE(at + 1) !== position || type < 1 || type > 4 || (type >= 3 && length !== 0))
            throw new SegmentIndexRejected(`entry ${i} does not follow its predecessor`);
        position += ENTRY_OVERHEAD + length;
    }
    while (next < damaged.length && (damaged[next] as { from: number }).from === position) {
        position = (damaged[next++] as { to: number }).to;
    }
    if (position !== covered || next !== damaged.length)
        throw new SegmentIndexRejected('entries do not tile the covered bytes');
    // Read a sample of entries back from the segment: a stale or foreign index fails here.
    const samples = new Set<number>();
    if (entries > 0) {
        for (let k = 0; k < SPOT_CHECKS; k++) samples.add(Math.round((k * (entries - 1)) / (SPOT_CHECKS - 1)));
    }
    for (const i of samples) {
        const record = readIndexRecord(index, i);
        const entryBytes = Buffer.allocUnsafe(ENTRY_OVERHEAD + record.length);
        const n = fs.readSync(fd, entryBytes, 0, entryBytes.length, record.offset);
        const found = n === entryBytes.length ? entryAt(entryBytes, 0) : undefined;
        if (
            found === undefined ||
            found.type !== record.type ||
            found.length !== record.length ||
            !entryBytes.subarray(8, 40).equals(buf.subarray(record.digestAt, record.digestAt + 32))
        )
            throw new SegmentIndexRejected(`entry ${i} (offset ${record.offset}) disagrees with the segment`);
    }
    return index;
}
