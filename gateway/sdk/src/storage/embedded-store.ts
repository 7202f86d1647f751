/**
 * The default object store: an on-disk IPFS-style blockstore with no daemon to run, packed into
 * append-only segment files (format 2). Format 1 (one fsync'd file per object, blockstore-fs layout)
 * took a 4 KiB block per 200-byte object — 4.2 GB per million — and its lookups depended on the page
 * cache holding a million inodes; a format-1 store is migrated on open (legacy-store.ts).
 *
 * Directory layout:
 *   <dir>/store.json            format marker (format, version 2), written once
 *   <dir>/segments/<w>-<n>.seg  append-only entries of writer w (segment.ts); a new file at 64 MiB
 *   <dir>/segments/<w>-<n>.idx  the index of a sealed segment (segment-index.ts)
 *   <dir>/owners/<w>            the pid of writer w while it runs (removed on close)
 *   <dir>/tmp/                  staging for crash-safe small files (the marker)
 *
 * A writer is one open store instance: it appends only to its own files, so several processes (the
 * CSP and the fogs of `m2m peer`, which share M2M_STORE_DIR) can write one store at once. Each
 * process keeps an in-memory index (digest → segment, offset, pin bit; digest-index.ts) built at
 * open and refreshed from the others' new bytes when a lookup misses, so a get is one hash-table
 * lookup and one positional read whatever the population. A segment no one appends to any more (its
 * writer moved to a new file, closed, or crashed and was recovered) is sealed: a persisted index of
 * it is written, and an open reads that index instead of scanning and hashing every entry
 * (segment-index.ts says how an index is checked; one that fails a check is ignored, the segment
 * scanned and the index written again).
 *
 * Durability: a put resolves only after its entry's fdatasync; puts that arrive while a sync is in
 * flight are written and synced together by the next one (group commit). A torn tail (an append
 * interrupted by kill -9 or power loss: an incomplete or invalid entry with nothing valid after it)
 * of a writer that no longer runs is cut at open; a damaged entry followed by valid ones is skipped
 * and reported, never cut. Every get verifies the bytes against the CID.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { mkdir, open, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import { addressOf, checkObjectSize, multihashOf, verifiedObject } from './content.js';
import { DigestIndex } from './digest-index.js';
import { ensureDirectoryDurable, fsyncDirectory, writeFileDurable, writeTempFileSynced } from './durable-fs.js';
import {
    IntegrityError,
    NotFoundError,
    StorageError,
    StorageUnavailableError,
    StoreNotInitialisedError,
} from './errors.js';
import { legacyMarker, migrateLegacyStore } from './legacy-store.js';
import type { ObjectStore, PutOptions, StorageHealth, StoreOperationOptions } from './object-store.js';
import { encodeEntry, entryHeader, ENTRY_HEADER_BYTES, EntryType, scanSegment, type ScanResult } from './segment.js';
import {
    encodeSegmentIndex,
    indexNameOf,
    INDEX_RECORD_BYTES,
    loadSegmentIndex,
    SegmentIndexRejected,
} from './segment-index.js';

const FORMAT = 'm2m-fabric/embedded-object-store';
const FORMAT_VERSION = 2;
const RAW_CODEC = 0x55;
const SHA2_256 = 0x12;
/** A writer starts a new segment file once its current one reaches this size. */
const SEGMENT_BYTES = 64 * 1024 * 1024;
/** At most this many bytes go into one group commit, so an entry offset stays below 2^27. */
const GROUP_BYTES = 32 * 1024 * 1024;
/** Index values pack (segment number × 2^27 + offset) × 2 + pinned; exact in a double up to 2^25 segments. */
const OFFSET_SPAN = 2 ** 27;
/** One read covers the header and objects up to this size (certificate objects, records). */
const READ_AHEAD = 4096;

const fdatasync = promisify((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => fs.fdatasync(fd, cb));
const readAt = promisify(
    (fd: number, buf: Buffer, position: number, cb: (err: NodeJS.ErrnoException | null, n: number) => void) =>
        fs.read(fd, buf, 0, buf.length, position, cb),
);
const writeAt = promisify(
    (fd: number, buf: Buffer, position: number, cb: (err: NodeJS.ErrnoException | null, n: number) => void) =>
        fs.write(fd, buf, 0, buf.length, position, cb),
);

export interface EmbeddedStoreStats {
    objects: number;
    bytes: number;
    pinned: number;
}

/** What the last open found and did: torn tails cut, damaged ranges skipped, a format-1 migration. */
export interface EmbeddedStoreRecovery {
    /** Segments whose torn tail was cut, with the bytes removed. */
    cut: { segment: string; offset: number; bytes: number }[];
    /** Damaged ranges followed by valid entries (skipped, left in place). */
    damaged: { segment: string; from: number; to: number }[];
    /** Objects moved from a format-1 store (one file per object) at this open, if any. */
    migrated?: number;
    /**
     * Segment indexes (segment-index.ts): how many were read instead of scanning their segment, how
     * many this instance wrote (sealing a segment), and those found missing (for a writer that is
     * gone), damaged or disagreeing with their segment — at the open, or later by a get — which were
     * ignored and their segment scanned.
     */
    indexes: { loaded: number; written: number; rejected: { segment: string; reason: string }[] };
}

interface Segment {
    name: string;
    writer: string;
    fd: number;
    /** Bytes indexed so far (the valid end for files of others). */
    scanned: number;
    /** Whether the entries came from the segment's persisted index (not a scan). */
    indexed: boolean;
}

interface PendingWrite {
    buf: Buffer;
    entries: { type: EntryType; digest: Uint8Array; length: number; at: number }[];
    resolve: () => void;
    reject: (err: unknown) => void;
}

function errnoCode(err: unknown): string | undefined {
    return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
        ? err.code
        : undefined;
}

function processIsAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (err) {
        return errnoCode(err) === 'EPERM';
    }
}

const key = (bytes: Uint8Array, at = 0): string =>
    Buffer.from(bytes.buffer, bytes.byteOffset + at, 32).toString('latin1');

const emptyRecovery = (): EmbeddedStoreRecovery => ({
    cut: [],
    damaged: [],
    indexes: { loaded: 0, written: 0, rejected: [] },
});

export class EmbeddedObjectStore implements ObjectStore {
    readonly backend = 'embedded' as const;
    readonly directory: string;
    readonly segmentsDirectory: string;
    private readonly ownersDirectory: string;
    private readonly tmpDirectory: string;
    private readonly index = new DigestIndex();
    /** Pin entries met before their object (another writer's file scanned later). */
    private readonly orphanPins = new Set<string>();
    private readonly segments: Segment[] = [];
    private readonly segmentByName = new Map<string, Segment>();
    private counts = { objects: 0, bytes: 0, pinned: 0 };
    private lastRecovery: EmbeddedStoreRecovery = emptyRecovery();
    /** Seals of segments this writer moved on from, written in the background. */
    private sealing: Promise<void>[] = [];
    /** This instance's writer id and current segment, created at the first write. */
    private writer: { id: string; segment: Segment; size: number; next: number } | undefined;
    private readonly queue: PendingWrite[] = [];
    private flushing: Promise<void> | undefined;
    private closed = false;

    private constructor(directory: string) {
        this.directory = directory;
        this.segmentsDirectory = join(directory, 'segments');
        this.ownersDirectory = join(directory, 'owners');
        this.tmpDirectory = join(directory, 'tmp');
    }

    /**
     * Opens the store in `directory`, creating it there when missing unless `create` is false. A
     * format-1 store (one file per object) is migrated into segments first; the migration is
     * restartable (a crash leaves format 1 readable and the next open starts it again).
     *
     * @throws StoreNotInitialisedError when `create` is false and `directory` holds no store (nothing
     * is created then); StorageUnavailableError when the directory is unusable, not a store, or a
     * format-1 store holds a damaged object (nothing is migrated then).
     */
    static async open(directory: string, options: { create?: boolean } = {}): Promise<EmbeddedObjectStore> {
        const store = new EmbeddedObjectStore(directory);
        try {
            await store.initialise(options.create ?? true);
        } catch (err) {
            // Seals in flight read segment fds: let them finish before the fds (and their numbers) go.
            await store.sealed();
            await store.closeFiles();
            if (err instanceof StorageError) throw err;
            throw new StorageUnavailableError(`cannot open the embedded store in ${directory}: ${String(err)}`, {
                cause: err,
            });
        }
        return store;
    }

    /** What the open found: torn tails cut, damaged ranges, migrated objects. */
    get recovery(): EmbeddedStoreRecovery {
        return this.lastRecovery;
    }

    private async initialise(create: boolean): Promise<void> {
        const markerPath = join(this.directory, 'store.json');
        let marker: string | undefined;
        try {
            marker = await readFile(markerPath, 'utf8');
        } catch (err) {
            if (errnoCode(err) !== 'ENOENT') throw err;
        }
        if (marker === undefined && !create) throw new StoreNotInitialisedError(this.directory);
        await ensureDirectoryDurable(this.directory);
        await ensureDirectoryDurable(this.tmpDirectory);
        await ensureDirectoryDurable(this.segmentsDirectory);
        await ensureDirectoryDurable(this.ownersDirectory);
        let legacy = false;
        if (marker === undefined) {
            const content = { format: FORMAT, version: FORMAT_VERSION, layout: 'append-only segments, segment.ts' };
            await writeFileDurable(this.tmpDirectory, markerPath, Buffer.from(JSON.stringify(content, null, 4)));
        } else {
            let parsed: unknown;
            try {
                parsed = JSON.parse(marker);
            } catch {
                parsed = undefined;
            }
            const version =
                typeof parsed === 'object' && parsed !== null && (parsed as { format?: unknown }).format === FORMAT
                    ? (parsed as { version?: unknown }).version
                    : undefined;
            if (version === 1) legacy = true;
            else if (version !== FORMAT_VERSION) {
                throw new StorageUnavailableError(
                    `${markerPath} does not describe a version-${FORMAT_VERSION} (or version-1) embedded object store`,
                );
            }
        }
        await this.removeStaleTempFiles();
        await this.refresh(true);
        if (legacy) {
            const migrated = await migrateLegacyStore(this.directory, (objects) => this.appendObjects(objects));
            const content = { format: FORMAT, version: FORMAT_VERSION, layout: 'append-only segments, segment.ts' };
            await writeFileDurable(this.tmpDirectory, markerPath, Buffer.from(JSON.stringify(content, null, 4)));
            await legacyMarker.remove(this.directory);
            this.lastRecovery.migrated = migrated;
        } else {
            // A migration that crashed after switching the marker leaves format-1 directories behind.
            await legacyMarker.remove(this.directory);
        }
    }

    /** Temp files left by a crashed process (its pid no longer runs) are garbage. */
    private async removeStaleTempFiles(): Promise<void> {
        for (const name of await readdir(this.tmpDirectory)) {
            const pid = Number.parseInt(name.split('-')[0] ?? '', 10);
            if (Number.isInteger(pid) && pid !== process.pid && !processIsAlive(pid)) {
                await unlink(join(this.tmpDirectory, name)).catch(() => undefined);
            }
        }
    }

    /** Whether writer `id` still runs (its owner file names a live process). */
    private async writerIsLive(id: string): Promise<boolean> {
        if (this.writer?.id === id) return true;
        try {
            const pid = Number.parseInt(await readFile(join(this.ownersDirectory, id), 'utf8'), 10);
            return Number.isInteger(pid) && processIsAlive(pid);
        } catch (err) {
            if (errnoCode(err) === 'ENOENT') return false;
            throw err;
        }
    }

    /**
     * Indexes what other writers appended since the last look: new segment files (from their
     * persisted index when they have a good one) and new bytes of known ones. At open (`atOpen`) the
     * torn tails of writers that no longer run are cut, and their segments that had no usable index
     * are sealed (the index written from the scan just done).
     */
    private async refresh(atOpen = false): Promise<void> {
        const listing = await readdir(this.segmentsDirectory);
        const names = listing.filter((n) => n.endsWith('.seg')).sort();
        if (atOpen) {
            // Size the in-memory index once from the index files (each ~41 bytes per entry), so it
            // does not grow and rehash segment after segment.
            let bytes = 0;
            for (const n of listing) if (n.endsWith('.idx')) bytes += fs.statSync(join(this.segmentsDirectory, n)).size;
            this.index.reserve(this.index.size + Math.floor(bytes / INDEX_RECORD_BYTES));
        }
        for (const name of names) {
            let segment = this.segmentByName.get(name);
            let rejected: string | undefined;
            if (segment === undefined) {
                const fd = fs.openSync(join(this.segmentsDirectory, name), 'r');
                segment = { name, writer: name.slice(0, name.lastIndexOf('-')), fd, scanned: 0, indexed: false };
                this.addSegment(segment);
                rejected = this.loadIndex(segment, fs.fstatSync(fd).size);
                if (rejected === undefined) this.lastRecovery.indexes.loaded++;
            }
            if (segment === this.writer?.segment) continue;
            const from = segment.scanned;
            const scanned = this.scanFrom(segment, fs.fstatSync(segment.fd).size);
            if (!atOpen) continue;
            const gone =
                (rejected !== undefined || scanned !== undefined) && !(await this.writerIsLive(segment.writer));
            if (rejected !== undefined && (rejected !== 'missing' || gone))
                this.lastRecovery.indexes.rejected.push({ segment: name, reason: rejected });
            if (scanned === undefined || !gone) continue;
            if (scanned.torn) {
                // A torn tail of a writer that is gone: nothing acknowledged lies there (its fdatasync
                // never returned), so cut it, as the batcher journal does.
                const cutBytes = scanned.size - scanned.scan.end;
                const handle = await open(join(this.segmentsDirectory, name), 'r+');
                try {
                    await handle.truncate(scanned.scan.end);
                    await handle.datasync();
                } finally {
                    await handle.close();
                }
                this.lastRecovery.cut.push({ segment: name, offset: scanned.scan.end, bytes: cutBytes });
            }
            // No one appends to a gone writer's files again: seal the segment, so the next open reads
            // its index. In the background (close and gc wait for it), and best effort: without the
            // index the next open scans, as this one did.
            const sealing = from === 0 ? this.writeIndex(segment, scanned.scan) : this.seal(segment);
            this.sealing.push(sealing.catch(() => undefined));
        }
        if (atOpen) {
            // Owner files of writers that are gone.
            for (const id of await readdir(this.ownersDirectory)) {
                if (!(await this.writerIsLive(id))) await unlink(join(this.ownersDirectory, id)).catch(() => undefined);
            }
        }
    }

    /**
     * Applies the persisted index of a segment not yet looked at; returns why it was not used
     * ('missing', or the check that failed), or undefined when its entries were applied.
     */
    private loadIndex(segment: Segment, size: number): string | undefined {
        let buf: Buffer;
        try {
            buf = fs.readFileSync(join(this.segmentsDirectory, indexNameOf(segment.name)));
        } catch (err) {
            // A shortcut that cannot be read is no reason to refuse the store: scan instead.
            return errnoCode(err) === 'ENOENT' ? 'missing' : `unreadable (${errnoCode(err) ?? String(err)})`;
        }
        let loaded;
        try {
            loaded = loadSegmentIndex(buf, segment.name, segment.fd, size);
        } catch (err) {
            if (err instanceof SegmentIndexRejected) return err.message;
            throw err;
        }
        this.applyRecords(segment, buf, loaded.recordsAt, loaded.entries);
        for (const range of loaded.damaged) this.lastRecovery.damaged.push({ segment: segment.name, ...range });
        segment.scanned = loaded.covered;
        segment.indexed = true;
        return undefined;
    }

    /**
     * Scans and applies the bytes of `segment` from what is indexed up to `size`; undefined when
     * there were none. `torn` when the region ends in a torn tail (the scan stopped short).
     */
    private scanFrom(segment: Segment, size: number): { scan: ScanResult; size: number; torn: boolean } | undefined {
        if (size <= segment.scanned) return undefined;
        const buf = Buffer.allocUnsafe(size - segment.scanned);
        const read = fs.readSync(segment.fd, buf, 0, buf.length, segment.scanned);
        const regionEnd = segment.scanned + read;
        const scan = scanSegment(buf.subarray(0, read), segment.scanned);
        this.applyRecords(segment, scan.records, 0, scan.count);
        for (const range of scan.damaged) this.lastRecovery.damaged.push({ segment: segment.name, ...range });
        segment.scanned = scan.end;
        return { scan, size, torn: scan.end < regionEnd };
    }

    /** Writes the index of `segment` from a scan of the whole file (base 0). */
    private async writeIndex(segment: Segment, scan: ScanResult): Promise<void> {
        const target = join(this.segmentsDirectory, indexNameOf(segment.name));
        await writeFileDurable(this.tmpDirectory, target, encodeSegmentIndex(segment.name, scan));
        this.lastRecovery.indexes.written++;
    }

    /**
     * Seals a segment no one appends to any more: scans the whole file again (what is on disk, not
     * what this process meant to write, so damage found now is reported at every open) and writes
     * its index.
     */
    private async seal(segment: Segment): Promise<void> {
        const size = fs.fstatSync(segment.fd).size;
        const buf = Buffer.allocUnsafe(size);
        let read = 0;
        while (read < size) {
            const n = await readAt(segment.fd, buf.subarray(read), read);
            if (n === 0) break;
            read += n;
        }
        await this.writeIndex(segment, scanSegment(buf.subarray(0, read), 0));
    }

    /**
     * Rebuilds the in-memory index from the files, without the index of `distrusted` (removed: it
     * disagreed with its segment). Synchronous, so no group commit applies entries halfway through.
     */
    private rebuildIndex(distrusted: Segment, reason: string): void {
        try {
            fs.unlinkSync(join(this.segmentsDirectory, indexNameOf(distrusted.name)));
        } catch {
            // already gone; the file is ignored below in any case
        }
        this.lastRecovery.indexes.rejected.push({ segment: distrusted.name, reason });
        this.resetIndex();
        const damaged = this.lastRecovery.damaged;
        this.lastRecovery.damaged = [];
        for (const segment of this.segments) {
            segment.scanned = 0;
            segment.indexed = false;
            if (segment !== distrusted) this.loadIndex(segment, fs.fstatSync(segment.fd).size);
            const size = segment === this.writer?.segment ? this.writer.size : fs.fstatSync(segment.fd).size;
            this.scanFrom(segment, size);
        }
        // The ranges found again are those already reported.
        this.lastRecovery.damaged = damaged;
        // The segment's writer, if gone, gets its index back at the next open ('missing').
    }

    private addSegment(segment: Segment): void {
        if (this.segments.length >= 2 ** 25) throw new StorageUnavailableError('too many segment files');
        this.segments.push(segment);
        this.segmentByName.set(segment.name, segment);
    }

    /** Applies `count` index records (segment.ts) from `records[at..]`, entries of `segment`. */
    private applyRecords(segment: Segment, records: Buffer, at: number, count: number): void {
        const number = this.segments.indexOf(segment);
        this.index.reserve(this.index.size + count);
        for (let i = 0, r = at; i < count; i++, r += INDEX_RECORD_BYTES) {
            this.apply(
                number,
                records[r] as EntryType,
                records.readUInt32BE(r + 1),
                records.readUInt32BE(r + 5),
                records,
                r + 9,
            );
        }
    }

    /** Applies one entry (its digest at `digest[at..at+32)`) to the index. */
    private apply(
        segmentNumber: number,
        type: EntryType,
        offset: number,
        length: number,
        digest: Uint8Array,
        at: number,
    ): void {
        const entry = this.index.find(digest, at);
        const existing = entry === -1 ? undefined : this.index.valueAt(entry);
        const wasPinned = existing !== undefined && existing % 2 === 1;
        if (type === EntryType.object || type === EntryType.pinnedObject) {
            const pinned =
                wasPinned ||
                type === EntryType.pinnedObject ||
                (this.orphanPins.size > 0 && this.orphanPins.delete(key(digest, at)));
            if (existing === undefined) {
                this.counts.objects++;
                this.counts.bytes += length;
            }
            if (pinned && !wasPinned) this.counts.pinned++;
            const value = (segmentNumber * OFFSET_SPAN + offset) * 2 + (pinned ? 1 : 0);
            if (entry === -1) this.index.set(digest, at, value);
            else this.index.setValueAt(entry, value);
        } else if (type === EntryType.pin) {
            if (existing === undefined) this.orphanPins.add(key(digest, at));
            else if (!wasPinned) {
                this.index.setValueAt(entry, existing + 1);
                this.counts.pinned++;
            }
        } else {
            if (this.orphanPins.size > 0) this.orphanPins.delete(key(digest, at));
            if (existing !== undefined && wasPinned) {
                this.index.setValueAt(entry, existing - 1);
                this.counts.pinned--;
            }
        }
    }

    private checkOpen(): void {
        if (this.closed) throw new StorageUnavailableError(`the embedded store in ${this.directory} is closed`);
    }

    private wrap(what: string, err: unknown): StorageError {
        if (err instanceof StorageError) return err;
        return new StorageUnavailableError(`embedded store ${this.directory}: ${what} failed: ${String(err)}`, {
            cause: err,
        });
    }

    /** The sha2-256 digest a content address names (InvalidAddressError for anything else). */
    private digestOf(cid: string): Uint8Array {
        return multihashOf(cid).subarray(2);
    }

    /**
     * Reads the object at an index value: the entry's bytes, or IntegrityError when the file no longer
     * holds the entry the index recorded (damaged header) — the bytes are checked against the CID by
     * the caller in every other case.
     */
    private segmentOf(value: number): Segment {
        return this.segments[Math.floor(Math.floor(value / 2) / OFFSET_SPAN)] as Segment;
    }

    private readEntry(cid: string, digest: Uint8Array, value: number): Uint8Array {
        const segment = this.segmentOf(value);
        const offset = Math.floor(value / 2) % OFFSET_SPAN;
        let buf = Buffer.allocUnsafe(READ_AHEAD);
        let n = fs.readSync(segment.fd, buf, 0, buf.length, offset);
        const header = entryHeader(buf.subarray(0, n));
        if (header === undefined || !header.digest.equals(digest) || header.type > 2) {
            throw new IntegrityError(
                cid,
                undefined,
                `embedded store: the entry of ${cid} in ${segment.name} is damaged`,
            );
        }
        const length = Math.min(header.length, 2 ** 21);
        if (ENTRY_HEADER_BYTES + length > n) {
            buf = Buffer.allocUnsafe(ENTRY_HEADER_BYTES + length);
            n = fs.readSync(segment.fd, buf, 0, buf.length, offset);
        }
        const bytes = buf.subarray(ENTRY_HEADER_BYTES, Math.min(n, ENTRY_HEADER_BYTES + length));
        return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }

    /** The index value of `digest`, looking at other writers' new entries on a miss. */
    private async lookup(digest: Uint8Array): Promise<number | undefined> {
        const value = this.index.get(digest);
        if (value !== undefined) return value;
        await this.refresh();
        return this.index.get(digest);
    }

    async put(bytes: Uint8Array, options?: PutOptions): Promise<string> {
        const [cid] = await this.putMany([bytes], options);
        return cid as string;
    }

    /**
     * @throws the error this.wrap builds
     */
    async putMany(objects: readonly Uint8Array[], options?: PutOptions): Promise<string[]> {
        this.checkOpen();
        // Validate the whole batch before the first write.
        for (const bytes of objects) checkObjectSize(bytes);
        const cids = objects.map((bytes) => addressOf(bytes));
        const pin = options?.pin ?? true;
        try {
            options?.signal?.throwIfAborted();
            const unique = new Map<string, Uint8Array>();
            cids.forEach((cid, i) => unique.set(cid, objects[i] as Uint8Array));
            const writes: { type: EntryType; digest: Uint8Array; bytes?: Uint8Array }[] = [];
            for (const [cid, bytes] of unique) {
                const digest = this.digestOf(cid);
                // No refresh on a miss: a copy another writer stored meanwhile only makes a duplicate.
                const value = this.index.get(digest);
                if (value !== undefined && this.holdsIntact(cid, digest, value)) {
                    if (pin && value % 2 === 0) writes.push({ type: EntryType.pin, digest });
                    continue;
                }
                // Missing, or damaged on disk: a put of the right bytes stores a good copy.
                writes.push({ type: pin ? EntryType.pinnedObject : EntryType.object, digest, bytes });
            }
            await this.append(writes);
        } catch (err) {
            throw this.wrap('put', err);
        }
        return cids;
    }

    private holdsIntact(cid: string, digest: Uint8Array, value: number): boolean {
        try {
            verifiedObject(cid, this.readEntry(cid, digest, value), 'embedded store');
            return true;
        } catch (err) {
            if (err instanceof IntegrityError) return false;
            throw err;
        }
    }

    /** Appends objects (used by the format-1 migration): `pinned` per object. */
    private async appendObjects(objects: { bytes: Uint8Array; pinned: boolean }[]): Promise<void> {
        await this.append(
            objects.map(({ bytes, pinned }) => ({
                type: pinned ? EntryType.pinnedObject : EntryType.object,
                digest: this.digestOf(addressOf(bytes)),
                bytes,
            })),
        );
    }

    /** Queues entries for the next group commit; resolves once they are durable and indexed. */
    private append(writes: { type: EntryType; digest: Uint8Array; bytes?: Uint8Array }[]): Promise<void> {
        if (writes.length === 0) return Promise.resolve();
        const parts = writes.map((w) => encodeEntry(w.type, w.digest, w.bytes));
        let at = 0;
        const entries = writes.map((w, i) => {
            const entry = { type: w.type, digest: w.digest, length: w.bytes?.length ?? 0, at };
            at += (parts[i] as Buffer).length;
            return entry;
        });
        return new Promise<void>((resolve, reject) => {
            this.queue.push({ buf: Buffer.concat(parts), entries, resolve, reject });
            this.flushing ??= this.flush().finally(() => {
                this.flushing = undefined;
            });
        });
    }

    /** Writes and syncs whatever is queued, one group at a time (group commit). */
    private async flush(): Promise<void> {
        while (this.queue.length > 0) {
            const group: PendingWrite[] = [];
            let bytes = 0;
            while (
                this.queue.length > 0 &&
                (group.length === 0 || bytes + (this.queue[0] as PendingWrite).buf.length <= GROUP_BYTES)
            ) {
                const next = this.queue.shift() as PendingWrite;
                group.push(next);
                bytes += next.buf.length;
            }
            try {
                const writer = await this.writerSegment();
                const base = writer.size;
                const buf =
                    group.length === 1 ? (group[0] as PendingWrite).buf : Buffer.concat(group.map((g) => g.buf));
                let written = 0;
                while (written < buf.length) {
                    written += await writeAt(writer.segment.fd, buf.subarray(written), base + written);
                }
                await fdatasync(writer.segment.fd);
                writer.size += buf.length;
                writer.segment.scanned = writer.size;
                const number = this.segments.indexOf(writer.segment);
                let offset = base;
                for (const pending of group) {
                    for (const e of pending.entries) {
                        this.apply(number, e.type, offset + e.at, e.length, e.digest, 0);
                    }
                    offset += pending.buf.length;
                }
                for (const pending of group) pending.resolve();
            } catch (err) {
                // The entries may be partly on disk; unacknowledged, they are a torn tail or harmless
                // duplicates. Later writes go to a fresh segment so nothing follows a partial entry.
                this.writer = this.writer === undefined ? undefined : { ...this.writer, size: SEGMENT_BYTES };
                for (const pending of group) pending.reject(err);
            }
        }
    }

    /** This instance's current segment, creating the writer (owner file) or rolling to a new file. */
    private async writerSegment(): Promise<{ id: string; segment: Segment; size: number; next: number }> {
        if (this.writer === undefined) {
            const id = `${Date.now().toString(36).padStart(9, '0')}${randomBytes(4).toString('hex')}`;
            await writeFile(join(this.ownersDirectory, id), String(process.pid));
            this.writer = { id, segment: undefined as unknown as Segment, size: SEGMENT_BYTES, next: 0 };
        }
        if (this.writer.size >= SEGMENT_BYTES) {
            const name = `${this.writer.id}-${String(this.writer.next).padStart(6, '0')}.seg`;
            const fd = fs.openSync(join(this.segmentsDirectory, name), 'wx+', 0o644);
            const segment: Segment = { name, writer: this.writer.id, fd, scanned: 0, indexed: false };
            this.addSegment(segment);
            // The new file's name must survive a crash before anything in it is acknowledged.
            await fsyncDirectory(this.segmentsDirectory);
            const sealed = this.writer.segment as Segment | undefined;
            this.writer = { ...this.writer, segment, size: 0, next: this.writer.next + 1 };
            // The old file is never appended to again: seal it in the background (best effort; without
            // its index the next open scans it).
            if (sealed !== undefined) this.sealing.push(this.seal(sealed).catch(() => undefined));
        }
        return this.writer;
    }

    /**
     * @throws {NotFoundError}
     * @throws the error this.wrap builds
     */
    async get(cid: string, options?: StoreOperationOptions): Promise<Uint8Array> {
        this.checkOpen();
        const digest = this.digestOf(cid);
        options?.signal?.throwIfAborted();
        let bytes: Uint8Array;
        try {
            let value = await this.lookup(digest);
            if (value === undefined) throw new NotFoundError(cid);
            // A synchronous positional read on purpose: one pread from the page cache takes
            // microseconds, less than a thread-pool round trip, whose latency dominates under load.
            try {
                bytes = this.readEntry(cid, digest, value);
            } catch (err) {
                const segment = this.segmentOf(value);
                if (!(err instanceof IntegrityError) || !segment.indexed) throw err;
                // The entry header names another object: the segment's index disagrees with it (a spot
                // check at open passed). Drop that index, rebuild from the files, and look again.
                this.rebuildIndex(segment, `entry of ${cid} disagrees with the segment`);
                value = this.index.get(digest);
                if (value === undefined) throw new NotFoundError(cid);
                bytes = this.readEntry(cid, digest, value);
            }
        } catch (err) {
            throw this.wrap('get', err);
        }
        return verifiedObject(cid, bytes, 'embedded store');
    }

    /**
     * @throws the error this.wrap builds
     */
    async has(cid: string): Promise<boolean> {
        this.checkOpen();
        const digest = this.digestOf(cid);
        try {
            return (await this.lookup(digest)) !== undefined;
        } catch (err) {
            throw this.wrap('has', err);
        }
    }

    /**
     * @throws {NotFoundError} when: cannot pin …: not in the store
     * @throws the error this.wrap builds
     */
    async pin(cid: string): Promise<void> {
        this.checkOpen();
        const digest = this.digestOf(cid);
        try {
            const value = await this.lookup(digest);
            if (value === undefined) throw new NotFoundError(cid, `cannot pin ${cid}: not in the store`);
            if (value % 2 === 0) await this.append([{ type: EntryType.pin, digest }]);
        } catch (err) {
            throw this.wrap('pin', err);
        }
    }

    /**
     * @throws the error this.wrap builds
     */
    async unpin(cid: string): Promise<void> {
        this.checkOpen();
        const digest = this.digestOf(cid);
        try {
            await this.refresh();
            const value = this.index.get(digest);
            if (value !== undefined && value % 2 === 1) await this.append([{ type: EntryType.unpin, digest }]);
        } catch (err) {
            throw this.wrap('unpin', err);
        }
    }

    /**
     * @throws the error this.wrap builds
     */
    async isPinned(cid: string): Promise<boolean> {
        this.checkOpen();
        const digest = this.digestOf(cid);
        try {
            await this.refresh();
            const value = this.index.get(digest);
            return value !== undefined && value % 2 === 1;
        } catch (err) {
            throw this.wrap('isPinned', err);
        }
    }

    private cidOf(digests: Uint8Array, entry: number): string {
        return CID.createV1(RAW_CODEC, Digest.create(SHA2_256, digests.slice(entry * 32, entry * 32 + 32))).toString();
    }

    /** Every object's content address (index order: first stored first). */
    async *objects(): AsyncGenerator<string> {
        this.checkOpen();
        await this.refresh();
        const { digests, values } = this.index.snapshot();
        for (let entry = 0; entry < values.length; entry++) yield this.cidOf(digests, entry);
    }

    /** Every pinned object's content address. */
    async *pinned(): AsyncGenerator<string> {
        this.checkOpen();
        await this.refresh();
        const { digests, values } = this.index.snapshot();
        for (let entry = 0; entry < values.length; entry++) {
            if ((values[entry] as number) % 2 === 1) yield this.cidOf(digests, entry);
        }
    }

    /**
     * Deletes unpinned objects (IPFS garbage collection) by copying the pinned ones into fresh
     * segments and removing the old files; returns how many objects were removed. Needs the store to
     * itself: with another writer running it throws StorageUnavailableError and changes nothing. A
     * crash midway leaves duplicates (harmless), never a lost pinned object.
     *
     * @throws StorageUnavailableError when another process has the store open for writing.
     */
    async gc(): Promise<number> {
        this.checkOpen();
        try {
            await this.refresh();
            for (const id of await readdir(this.ownersDirectory)) {
                if (id !== this.writer?.id && (await this.writerIsLive(id)))
                    throw new StorageUnavailableError(`gc needs the store to itself; writer ${id} is running`);
            }
            const { digests, values } = this.index.snapshot();
            const kept: number[] = [];
            for (let entry = 0; entry < values.length; entry++)
                if ((values[entry] as number) % 2 === 1) kept.push(entry);
            const removed = values.length - kept.length;
            if (removed === 0) return 0;
            // The copies go to a new writer's files, which are not among those about to be deleted.
            await this.retireWriter();
            const old = [...this.segments];
            for (let i = 0; i < kept.length; i += 1000) {
                await this.appendObjects(
                    kept.slice(i, i + 1000).map((entry) => {
                        const cid = this.cidOf(digests, entry);
                        const digest = digests.subarray(entry * 32, entry * 32 + 32);
                        const bytes = this.readEntry(cid, digest, values[entry] as number);
                        return { bytes: verifiedObject(cid, bytes, 'embedded store'), pinned: true };
                    }),
                );
            }
            await this.retireWriter();
            await this.closeFiles();
            for (const segment of old) {
                // The index first: a crash between the two leaves a segment without one (scanned).
                await unlink(join(this.segmentsDirectory, indexNameOf(segment.name))).catch((err: unknown) => {
                    if (errnoCode(err) !== 'ENOENT') throw err;
                });
                await unlink(join(this.segmentsDirectory, segment.name));
            }
            await fsyncDirectory(this.segmentsDirectory);
            this.resetIndex();
            await this.refresh();
            return removed;
        } catch (err) {
            throw this.wrap('gc', err);
        }
    }

    private resetIndex(): void {
        this.index.clear();
        this.orphanPins.clear();
        this.counts = { objects: 0, bytes: 0, pinned: 0 };
    }

    private async retireWriter(): Promise<void> {
        await this.flushing;
        if (this.writer !== undefined) {
            this.writer.segment.scanned = this.writer.size;
            // Seal while the owner file still names this process, so no opener seals it at once.
            this.sealing.push(this.seal(this.writer.segment).catch(() => undefined));
            await this.sealed();
            await unlink(join(this.ownersDirectory, this.writer.id)).catch(() => undefined);
            this.writer = undefined;
        }
        await this.sealed();
    }

    /** Waits for the segment indexes being written in the background. */
    private async sealed(): Promise<void> {
        while (this.sealing.length > 0) await Promise.all(this.sealing.splice(0));
    }

    async stats(): Promise<EmbeddedStoreStats> {
        this.checkOpen();
        await this.refresh();
        return { ...this.counts };
    }

    async health(): Promise<StorageHealth> {
        const started = performance.now();
        const detail = `embedded store in ${this.directory}`;
        try {
            this.checkOpen();
            // A write probe: the store is healthy only if a durable put would succeed now.
            await mkdir(this.tmpDirectory, { recursive: true });
            const probe = await writeTempFileSynced(this.tmpDirectory, new Uint8Array([0]));
            await rm(probe, { force: true });
            return { backend: this.backend, ok: true, detail, latencyMs: performance.now() - started };
        } catch (err) {
            const error = this.wrap('health check', err);
            return {
                backend: this.backend,
                ok: false,
                detail,
                latencyMs: performance.now() - started,
                error: { kind: error.kind, message: error.message },
            };
        }
    }

    private async closeFiles(): Promise<void> {
        for (const segment of this.segments) {
            try {
                fs.closeSync(segment.fd);
            } catch {
                // already closed
            }
        }
        this.segments.length = 0;
        this.segmentByName.clear();
    }

    /** Waits for queued puts, closes the files and gives up the writer id. */
    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        await this.flushing?.catch(() => undefined);
        await this.retireWriter();
        await this.closeFiles();
    }
}
