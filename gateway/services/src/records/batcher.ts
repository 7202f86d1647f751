/**
 * The record batcher of a writer (the CSP, or a fog for the records it relays): records are
 * verified, journaled on disk and acknowledged only once the journal is fsync'd (in groups, so
 * one fsync covers every record that arrived meanwhile); stripped payloads go to the object store
 * under their CID, one putMany per group, before the group's journal write and acknowledgement; batches are cut by size or by time and anchored one
 * at a time through the anchors contract (docs/records.md).
 *
 * Crash safety: the journal is the writer's log, in order. After a restart (kill -9 anywhere) the
 * batcher replays it, rebuilds the Merkle tree, asks the ledger for the writer's head and checks
 * that the journal reproduces the anchored root (journalCorrupt otherwise: a reordered or
 * rewritten journal is never anchored over); the records after the head are anchored next.
 * Because the ledger's head is the truth and the contract refuses a repeated sequence, nothing is
 * anchored twice. A torn entry at the journal's tail (a write the crash interrupted) was never
 * acknowledged and is cut off; a bad entry followed by good ones is corruption and fails loudly.
 *
 *   journal entry: u32 length | first 4 bytes of SHA-256(record) | record
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

import {
    ErrorCode,
    MerkleTree,
    ProtocolError,
    fromHex,
    merkleLeafHash,
    openRecord,
    recordPayloadAddress,
} from '@m2m-fabric/protocol';
import type { CommunicationRecord } from '@m2m-fabric/protocol';
import { anchorBatch, EndorseError } from '@m2m-fabric/sdk';
import type { AnchorWriter, AnchoredBatch, LedgerContract, ObjectStore } from '@m2m-fabric/sdk';
import {
    encodeJournalEntry,
    JOURNAL_FILE,
    JOURNAL_HEADER_BYTES,
    MAX_JOURNAL_RECORD_BYTES,
    parseJournalEntry,
} from './journal.js';

export interface BatcherOptions {
    /** Directory of the journal (created if missing). */
    readonly dir: string;
    readonly writer: AnchorWriter;
    /** The chaincode's anchors contract, as the writer's identity. */
    readonly anchors: LedgerContract;
    /** Where stripped payloads go; omit when payloads are stored elsewhere. */
    readonly store?: ObjectStore;
    /** Cut a batch at this many unanchored records; default 1000. */
    readonly batchSize?: number;
    /** Cut a batch this long after its first record; default 2000 ms (one default BatchTimeout). */
    readonly maxDelayMs?: number;
    /** Longest wait before a group fsync; default 2 ms. */
    readonly syncDelayMs?: number;
    /** Called after each anchored batch. */
    readonly onAnchored?: (batch: AnchoredBatch) => void;
}

/** Where an acknowledged record sits in the writer's log. */
export interface Ingested {
    readonly leafIndex: number;
    readonly record: CommunicationRecord;
}

function journalCorrupt(message: string): ProtocolError {
    return new ProtocolError(ErrorCode.JournalCorrupt, message);
}

interface Pending {
    entry: Buffer;
    /** The stripped payload, stored with the group before the journal write. */
    payload: Uint8Array | undefined;
    resolve: () => void;
    reject: (error: Error) => void;
}

export class RecordBatcher {
    readonly #options: BatcherOptions;
    readonly #batchSize: number;
    readonly #maxDelayMs: number;
    readonly #syncDelayMs: number;
    readonly #tree = new MerkleTree();
    #journal: FileHandle | undefined;
    #journalBytes = 0;
    /** Journal offset of each durable record's entry, by leaf index (for readRecord). */
    #offsets: number[] = [];
    #pending: Pending[] = [];
    #syncTimer: NodeJS.Timeout | undefined;
    #syncing: Promise<void> = Promise.resolve();
    #durableSize = 0;
    #anchoredSize = 0;
    #sequence = 0;
    #batchTimer: NodeJS.Timeout | undefined;
    #anchoring: Promise<void> | undefined;
    #failure: Error | undefined;
    #closed = false;
    readonly #anchoredListeners: ((batch: AnchoredBatch) => void)[] = [];

    private constructor(options: BatcherOptions) {
        this.#options = options;
        this.#batchSize = options.batchSize ?? 1000;
        this.#maxDelayMs = options.maxDelayMs ?? 2000;
        this.#syncDelayMs = options.syncDelayMs ?? 2;
    }

    /** Opens (or recovers) the journal and reconciles it with the ledger's head for the writer. @throws journalCorrupt */
    static async open(options: BatcherOptions): Promise<RecordBatcher> {
        const batcher = new RecordBatcher(options);
        await batcher.#recover();
        return batcher;
    }

    get writer(): string {
        return this.#options.writer.writer;
    }
    /** Records durable in the journal (acknowledged). */
    get durableSize(): number {
        return this.#durableSize;
    }
    /** Records covered by the last anchored batch. */
    get anchoredSize(): number {
        return this.#anchoredSize;
    }
    get sequence(): number {
        return this.#sequence;
    }
    /** Also calls `listener` after each batch this batcher anchors (the CSP's receipt delivery). */
    onAnchoredBatch(listener: (batch: AnchoredBatch) => void): void {
        this.#anchoredListeners.push(listener);
    }
    /** The writer's log (for inclusion proofs and receipts). */
    get tree(): MerkleTree {
        return this.#tree;
    }

    async #recover(): Promise<void> {
        const { mkdir } = await import('node:fs/promises');
        await mkdir(this.#options.dir, { recursive: true, mode: 0o700 });
        const path = join(this.#options.dir, JOURNAL_FILE);
        this.#journal = await open(path, 'a+');
        const { size } = await this.#journal.stat();
        const bytes = Buffer.alloc(size);
        if (size > 0) await this.#journal.read(bytes, 0, size, 0);
        let offset = 0;
        while (offset < size) {
            const end = this.#readEntry(bytes, offset);
            if (end === undefined) {
                // A torn tail: cut it off if nothing valid follows, else the journal is corrupt.
                if (this.#anyValidEntryAfter(bytes, offset + 1)) {
                    throw journalCorrupt(`journal entry at byte ${offset} is damaged and later entries exist`);
                }
                await this.#journal.truncate(offset);
                await this.#journal.sync();
                break;
            }
            this.#offsets.push(offset);
            offset = end;
        }
        this.#journalBytes = offset;
        this.#durableSize = this.#tree.size;
        // The ledger's head is the truth about what is anchored.
        try {
            const head = await this.#options.anchors.evaluate('getWriterHead', { arguments: [this.writer] });
            const json = JSON.parse(new TextDecoder().decode(head)) as {
                sequence: number;
                treeSize: number;
                root: string;
            };
            if (json.treeSize > this.#tree.size) {
                throw journalCorrupt(
                    `the ledger anchors ${json.treeSize} records of ${this.writer}; the journal has ${this.#tree.size}`,
                );
            }
            if (!Buffer.from(this.#tree.root(json.treeSize)).equals(fromHex(json.root))) {
                throw journalCorrupt('the journal does not reproduce the anchored root (reordered or rewritten)');
            }
            this.#sequence = json.sequence;
            this.#anchoredSize = json.treeSize;
        } catch (error) {
            if (!(error instanceof EndorseError && error.errorCode === ErrorCode.UnknownBatch)) throw error;
        }
        if (this.#tree.size > this.#anchoredSize) this.#scheduleBatch(true);
    }

    /** Parses one entry at `offset` into the tree; the end offset, or undefined when it is not a whole valid entry. */
    #readEntry(bytes: Buffer, offset: number): number | undefined {
        const entry = parseJournalEntry(bytes, offset);
        if (entry === undefined) return undefined;
        try {
            openRecord(entry.record);
        } catch {
            return undefined;
        }
        this.#tree.appendLeafHash(merkleLeafHash(entry.record));
        return entry.end;
    }

    #anyValidEntryAfter(bytes: Buffer, from: number): boolean {
        for (let offset = from; offset + JOURNAL_HEADER_BYTES < bytes.length; offset++) {
            if (parseJournalEntry(bytes, offset) !== undefined) return true;
        }
        return false;
    }

    /**
     * Verifies a record (and its payload's CID, when given), stores the payload, journals the
     * record and resolves once it is durable — the acknowledgement. Rejects with the record's
     * DecodeError / VerificationError and journals nothing for a bad record.
     * @throws {Error} when: the batcher is closed; the store returned …
     * @throws {RangeError} when: record too large
     * @throws {ProtocolError} `contentAddressMismatch` when: the payload is not the one the record names
     */
    async ingest(recordBytes: Uint8Array, payload?: Uint8Array): Promise<Ingested> {
        if (this.#closed) throw new Error('the batcher is closed');
        if (this.#failure !== undefined) throw this.#failure;
        if (recordBytes.length > MAX_JOURNAL_RECORD_BYTES) throw new RangeError('record too large');
        const record = openRecord(recordBytes);
        if (payload !== undefined) {
            if (
                payload.length !== record.size ||
                !Buffer.from(createHash('sha256').update(payload).digest()).equals(record.digest)
            ) {
                throw new ProtocolError(
                    ErrorCode.ContentAddressMismatch,
                    'the payload is not the one the record names',
                );
            }
        }
        const entry = encodeJournalEntry(recordBytes);
        // The leaf index is fixed by the order entries enter the journal buffer.
        const leafIndex = this.#tree.appendLeafHash(merkleLeafHash(recordBytes));
        await new Promise<void>((resolve, reject) => {
            this.#pending.push({ entry, payload, resolve, reject });
            this.#syncTimer ??= setTimeout(() => {
                this.#syncTimer = undefined;
                void this.#flush();
            }, this.#syncDelayMs);
        });
        return { leafIndex, record };
    }

    /**
     * Group commit, pipelined: the pending group's payloads go to the store in one putMany at once
     * (so several groups' payloads are written concurrently), and its journal entries are written
     * and fsync'd in one write after the previous group's and after its own payloads are stored —
     * so a journaled record's payload is always in the store, and the journal keeps leaf order.
     * Then the group is acknowledged.
     */
    #flush(): Promise<void> {
        const group = this.#pending;
        this.#pending = [];
        if (group.length === 0) return this.#syncing;
        const store = this.#options.store;
        const payloads = group.flatMap((p) => (p.payload === undefined ? [] : [p.payload]));
        const stored =
            store === undefined || payloads.length === 0
                ? Promise.resolve()
                : store.putMany(payloads).then((cids) => {
                      for (let i = 0; i < payloads.length; i++) {
                          if (cids[i] !== recordPayloadAddress(payloads[i]!))
                              throw new Error(`the store returned ${cids[i]}`);
                      }
                  });
        stored.catch(() => undefined); // handled in #commit
        this.#syncing = this.#syncing.then(() => this.#commit(group, stored));
        return this.#syncing;
    }

    async #commit(group: Pending[], stored: Promise<void>): Promise<void> {
        try {
            if (this.#failure !== undefined) throw this.#failure;
            await stored;
            const data = Buffer.concat(group.map((p) => p.entry));
            await this.#journal!.write(data, 0, data.length, this.#journalBytes);
            await this.#journal!.datasync();
            for (const p of group) {
                this.#offsets.push(this.#journalBytes);
                this.#journalBytes += p.entry.length;
            }
            this.#durableSize += group.length;
        } catch (error) {
            this.#failure ??= error instanceof Error ? error : new Error(String(error));
            for (const p of group) p.reject(this.#failure);
            return;
        }
        for (const p of group) p.resolve();
        this.#scheduleBatch(false);
    }

    #scheduleBatch(now: boolean): void {
        const unanchored = this.#durableSize - this.#anchoredSize;
        if (unanchored <= 0 || this.#closed) return;
        if (now || unanchored >= this.#batchSize) {
            clearTimeout(this.#batchTimer);
            this.#batchTimer = undefined;
            void this.#anchorNext();
        } else {
            this.#batchTimer ??= setTimeout(() => {
                this.#batchTimer = undefined;
                void this.#anchorNext();
            }, this.#maxDelayMs);
        }
    }

    async #anchorNext(): Promise<void> {
        if (this.#anchoring !== undefined) return;
        const size = Math.min(this.#durableSize, this.#anchoredSize + Math.max(this.#batchSize, 1));
        if (size <= this.#anchoredSize) return;
        this.#anchoring = (async () => {
            try {
                const batch = await anchorBatch(
                    this.#options.anchors,
                    this.#options.writer,
                    this.#tree,
                    this.#sequence + 1,
                    this.#anchoredSize,
                    size,
                );
                this.#sequence = batch.sequence;
                this.#anchoredSize = batch.treeSize;
                this.#options.onAnchored?.(batch);
                for (const listener of this.#anchoredListeners) listener(batch);
            } catch (error) {
                if (error instanceof EndorseError && error.errorCode === ErrorCode.DuplicateBatch) {
                    // Anchored by an earlier run whose answer was lost: adopt the ledger's head.
                    const head = await this.#options.anchors.evaluate('getWriterHead', { arguments: [this.writer] });
                    const value = JSON.parse(new TextDecoder().decode(head)) as { sequence: number; treeSize: number };
                    this.#sequence = value.sequence;
                    this.#anchoredSize = value.treeSize;
                } else if (!this.#closed) {
                    // Transient (MVCC, deadline, peer down): retry on the next cut.
                    await new Promise((resolve) => setTimeout(resolve, 100));
                }
            } finally {
                this.#anchoring = undefined;
            }
            if (!this.#closed && this.#durableSize > this.#anchoredSize) {
                this.#scheduleBatch(this.#durableSize - this.#anchoredSize >= this.#batchSize);
            }
        })();
        return this.#anchoring;
    }

    /**
     * The encoded record at a leaf of the writer's log (a durable one), read back from the journal:
     * what a receipt for that record carries. @throws RangeError for a leaf not durable yet
     */
    async readRecord(leafIndex: number): Promise<Uint8Array> {
        const offset = this.#offsets[leafIndex];
        if (offset === undefined || this.#journal === undefined) throw new RangeError(`no durable record ${leafIndex}`);
        const header = Buffer.alloc(JOURNAL_HEADER_BYTES);
        await this.#journal.read(header, 0, JOURNAL_HEADER_BYTES, offset);
        const record = Buffer.alloc(header.readUInt32BE(0));
        await this.#journal.read(record, 0, record.length, offset + JOURNAL_HEADER_BYTES);
        return new Uint8Array(record);
    }

    /**
     * Resolves when every acknowledged record is anchored.
     * @throws {Error} when a group commit or an anchor fails for good
     */
    async drain(): Promise<void> {
        for (;;) {
            await this.#syncing;
            if (this.#failure !== undefined) throw this.#failure;
            if (this.#pending.length === 0 && this.#anchoredSize >= this.#durableSize && this.#anchoring === undefined)
                return;
            if (this.#anchoring === undefined && this.#durableSize > this.#anchoredSize) void this.#anchorNext();
            await (this.#anchoring ?? new Promise((resolve) => setTimeout(resolve, 5)));
        }
    }

    /** Stops cutting batches and closes the journal (acknowledged records stay journaled for the next open). */
    async close(): Promise<void> {
        this.#closed = true;
        clearTimeout(this.#batchTimer);
        clearTimeout(this.#syncTimer);
        await this.#syncing;
        await this.#flush();
        await this.#anchoring;
        await this.#journal?.close();
        this.#journal = undefined;
    }
}
