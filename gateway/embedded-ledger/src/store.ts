/**
 * The peer's persistent stores in one LevelDB (classic-level): world state with versions, key
 * history, the block store, a transaction index and the chain's tip. A block and everything it
 * changes are written in one atomic batch, so after a crash the database holds every block whose
 * commit was reported and nothing of a block whose commit was not — no recovery step is needed.
 *
 * Key layout (bytes; namespaces never contain 0x00, so prefixes cannot collide):
 *   's' ns 0x00 key                          → version(16) value       world state
 *   'h' ns 0x00 len(key)u32 key block u64 tx u64 → history record      newest-first via reverse scan
 *   'b' block u64                            → serialized common.Block
 *   't' txId                                 → block u64, tx u32, validation code u8
 *   'm' name                                 → chain metadata (height, tip hash, configuration)
 * Keys of the state are compared as UTF-8 bytes, which is Fabric's order.
 *
 * Point reads (state, transaction index) use LevelDB's synchronous get: a lookup served from the
 * memtable or block cache takes microseconds, far less than the thread-pool round trip of an
 * asynchronous get, and every transaction does several of them (duplicate-id checks at endorsement
 * and validation, the chaincode's reads). Range scans stay asynchronous.
 */
import { ClassicLevel } from 'classic-level';

import type { Version } from './rwset.js';

type Db = ClassicLevel<Buffer, Buffer>;
type Snapshot = ReturnType<Db['snapshot']>;

const PREFIX_STATE = 0x73; // 's'
const PREFIX_HISTORY = 0x68; // 'h'
const PREFIX_BLOCK = 0x62; // 'b'
const PREFIX_TX = 0x74; // 't'
const PREFIX_META = 0x6d; // 'm'

const META_HEIGHT = metaKey('height');
const META_TIP_HASH = metaKey('tipHash');
const META_CONFIG = metaKey('config');

/**
 * LevelDB's memtable size. A block of 500 transactions writes about 2 MB (block, state, history,
 * index); with LevelDB's 4 MiB default every other block switches memtables and triggers a
 * level-0 compaction that stalls the next commit.
 */
const WRITE_BUFFER_SIZE = 32 * 1024 * 1024;

/** Query results are fetched in batches of this size, like the peer's chaincode handler. */
export const QUERY_BATCH_SIZE = 100;

export interface StateEntry {
    readonly value: Uint8Array;
    readonly version: Version;
}

export interface StateKV extends StateEntry {
    readonly key: string;
}

export interface HistoryEntry {
    readonly txId: string;
    readonly isDelete: boolean;
    readonly value: Uint8Array;
    /** The transaction's timestamp (channel header), seconds and nanoseconds. */
    readonly seconds: number;
    readonly nanos: number;
    readonly version: Version;
}

export interface TxLocation {
    readonly blockNum: number;
    readonly txNum: number;
    readonly code: number;
}

/** A state update of one valid transaction: a put or a delete, at that transaction's version. */
export interface StateUpdate {
    readonly namespace: string;
    readonly key: string;
    readonly isDelete: boolean;
    readonly value: Uint8Array;
    readonly version: Version;
}

/** Everything one block changes, written atomically. */
export interface BlockCommit {
    readonly blockNum: number;
    readonly blockBytes: Uint8Array;
    readonly headerHash: Uint8Array;
    readonly updates: readonly StateUpdate[];
    readonly history: readonly { namespace: string; key: string; entry: HistoryEntry }[];
    readonly transactions: readonly { txId: string; location: TxLocation }[];
}

function metaKey(name: string): Buffer {
    return Buffer.concat([Buffer.from([PREFIX_META]), Buffer.from(name, 'utf8')]);
}

function u64(value: number): Buffer {
    const buffer = Buffer.allocUnsafe(8);
    buffer.writeUInt32BE(Math.floor(value / 0x1_0000_0000), 0);
    buffer.writeUInt32BE(value >>> 0, 4);
    return buffer;
}

function readU64(buffer: Buffer, offset: number): number {
    return buffer.readUInt32BE(offset) * 0x1_0000_0000 + buffer.readUInt32BE(offset + 4);
}

function statePrefix(namespace: string): Buffer {
    return Buffer.concat([Buffer.from([PREFIX_STATE]), Buffer.from(namespace, 'utf8'), Buffer.from([0])]);
}

function stateKey(namespace: string, key: string): Buffer {
    return Buffer.concat([statePrefix(namespace), Buffer.from(key, 'utf8')]);
}

function encodeState(value: Uint8Array, version: Version): Buffer {
    return Buffer.concat([u64(version.blockNum), u64(version.txNum), value]);
}

function decodeState(buffer: Buffer): StateEntry {
    return { version: { blockNum: readU64(buffer, 0), txNum: readU64(buffer, 8) }, value: buffer.subarray(16) };
}

function historyPrefix(namespace: string, key: string): Buffer {
    const keyBytes = Buffer.from(key, 'utf8');
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(keyBytes.length, 0);
    return Buffer.concat([
        Buffer.from([PREFIX_HISTORY]),
        Buffer.from(namespace, 'utf8'),
        Buffer.from([0]),
        length,
        keyBytes,
    ]);
}

function encodeHistory(entry: HistoryEntry): Buffer {
    const txId = Buffer.from(entry.txId, 'utf8');
    const header = Buffer.allocUnsafe(14);
    header.writeUInt8(entry.isDelete ? 1 : 0, 0);
    header.writeUInt32BE(Math.floor(entry.seconds / 0x1_0000_0000), 1);
    header.writeUInt32BE(entry.seconds >>> 0, 5);
    header.writeUInt32BE(entry.nanos, 9);
    header.writeUInt8(txId.length, 13);
    return Buffer.concat([header, txId, entry.value]);
}

function decodeHistory(buffer: Buffer, version: Version): HistoryEntry {
    const txIdLength = buffer.readUInt8(13);
    return {
        isDelete: buffer.readUInt8(0) === 1,
        seconds: readU64(buffer, 1),
        nanos: buffer.readUInt32BE(9),
        txId: buffer.subarray(14, 14 + txIdLength).toString('utf8'),
        value: buffer.subarray(14 + txIdLength),
        version,
    };
}

function txKey(txId: string): Buffer {
    return Buffer.concat([Buffer.from([PREFIX_TX]), Buffer.from(txId, 'utf8')]);
}

function blockKey(blockNum: number): Buffer {
    return Buffer.concat([Buffer.from([PREFIX_BLOCK]), u64(blockNum)]);
}

/** Bounds of a state range [startKey, endKey) in one namespace; '' as endKey is unbounded. */
function stateRangeBounds(
    namespace: string,
    startKey: string,
    endKey: string,
    includeEnd: boolean,
): { gte: Buffer; lt?: Buffer; lte?: Buffer } {
    const gte = stateKey(namespace, startKey);
    if (endKey === '') {
        const prefix = statePrefix(namespace);
        const end = Buffer.from(prefix);
        end[end.length - 1] = 1; // just past every key of the namespace
        return { gte, lt: end };
    }
    return includeEnd ? { gte, lte: stateKey(namespace, endKey) } : { gte, lt: stateKey(namespace, endKey) };
}

/** A consistent read-only view of committed state, as a transaction simulation needs. */
export class StateSnapshot {
    readonly #db: Db;
    readonly #snapshot: Snapshot;
    #closed = false;

    constructor(db: Db) {
        this.#db = db;
        this.#snapshot = db.snapshot();
    }

    // async so that a closed database rejects rather than throws (true of every getSync use here).
    async get(namespace: string, key: string): Promise<StateEntry | undefined> {
        const raw = this.#db.getSync(stateKey(namespace, key), { snapshot: this.#snapshot });
        return raw === undefined ? undefined : decodeState(raw);
    }

    /** Iterates [startKey, endKey) in key order, fetching in batches. */
    async *range(namespace: string, startKey: string, endKey: string): AsyncGenerator<StateKV> {
        const prefixLength = statePrefix(namespace).length;
        const iterator = this.#db.iterator({
            ...stateRangeBounds(namespace, startKey, endKey, false),
            snapshot: this.#snapshot,
        });
        try {
            for (;;) {
                const batch = await iterator.nextv(QUERY_BATCH_SIZE);
                if (batch.length === 0) return;
                for (const [key, value] of batch) {
                    yield { key: key.subarray(prefixLength).toString('utf8'), ...decodeState(value) };
                }
            }
        } finally {
            await iterator.close();
        }
    }

    async close(): Promise<void> {
        if (this.#closed) return;
        this.#closed = true;
        await this.#snapshot.close();
    }
}

export class LedgerStore {
    readonly #db: Db;
    readonly #sync: boolean;
    #height = 0;
    #tipHash: Uint8Array = new Uint8Array();

    private constructor(db: Db, sync: boolean) {
        this.#db = db;
        this.#sync = sync;
    }

    /** Opens (creating if needed) the store in `dir`. `sync` fsyncs every block commit. */
    static async open(dir: string, options: { sync: boolean }): Promise<LedgerStore> {
        const db: Db = new ClassicLevel<Buffer, Buffer>(dir, {
            keyEncoding: 'buffer',
            valueEncoding: 'buffer',
            writeBufferSize: WRITE_BUFFER_SIZE,
        });
        await db.open();
        const store = new LedgerStore(db, options.sync);
        const height = await db.get(META_HEIGHT);
        const tip = await db.get(META_TIP_HASH);
        if (height !== undefined) store.#height = readU64(height, 0);
        if (tip !== undefined) store.#tipHash = new Uint8Array(tip);
        return store;
    }

    /** Number of committed blocks; the next block's number. */
    get height(): number {
        return this.#height;
    }

    /** Header hash of the last committed block (empty before the genesis block). */
    get tipHash(): Uint8Array {
        return this.#tipHash;
    }

    snapshot(): StateSnapshot {
        return new StateSnapshot(this.#db);
    }

    async getState(namespace: string, key: string): Promise<StateEntry | undefined> {
        const raw = this.#db.getSync(stateKey(namespace, key));
        return raw === undefined ? undefined : decodeState(raw);
    }

    /** Committed state in a range; `includeEnd` makes `endKey` inclusive (phantom validation needs it). */
    async getStateRange(namespace: string, startKey: string, endKey: string, includeEnd: boolean): Promise<StateKV[]> {
        const prefixLength = statePrefix(namespace).length;
        const results: StateKV[] = [];
        for await (const [key, value] of this.#db.iterator(stateRangeBounds(namespace, startKey, endKey, includeEnd))) {
            results.push({ key: key.subarray(prefixLength).toString('utf8'), ...decodeState(value) });
        }
        return results;
    }

    /** Every committed modification of a key, newest first (Fabric ≥ 2.0 order). */
    async getHistory(namespace: string, key: string): Promise<HistoryEntry[]> {
        const prefix = historyPrefix(namespace, key);
        const end = Buffer.concat([prefix, Buffer.alloc(16, 0xff)]);
        const entries: HistoryEntry[] = [];
        for await (const [k, v] of this.#db.iterator({ gte: prefix, lte: end, reverse: true })) {
            const version = { blockNum: readU64(k, prefix.length), txNum: readU64(k, prefix.length + 8) };
            entries.push(decodeHistory(v, version));
        }
        return entries;
    }

    async getBlock(blockNum: number): Promise<Uint8Array | undefined> {
        const raw = await this.#db.get(blockKey(blockNum));
        return raw === undefined ? undefined : new Uint8Array(raw);
    }

    async getTransaction(txId: string): Promise<TxLocation | undefined> {
        return this.getTransactionSync(txId);
    }

    /** Where a transaction id was committed, or undefined; synchronous, for per-transaction checks. */
    getTransactionSync(txId: string): TxLocation | undefined {
        const raw = this.#db.getSync(txKey(txId));
        if (raw === undefined) return undefined;
        return { blockNum: readU64(raw, 0), txNum: raw.readUInt32BE(8), code: raw.readUInt8(12) };
    }

    async getConfig(): Promise<string | undefined> {
        return (await this.#db.get(META_CONFIG))?.toString('utf8');
    }

    /**
     * Writes a block and all its effects in one atomic batch. Blocks must come in order: the
     * number must equal the height.
     */
    async commitBlock(commit: BlockCommit, config?: string): Promise<void> {
        if (commit.blockNum !== this.#height) {
            throw new Error(`block ${commit.blockNum} out of order: height is ${this.#height}`);
        }
        const batch = this.#db.batch();
        batch.put(blockKey(commit.blockNum), Buffer.from(commit.blockBytes));
        for (const update of commit.updates) {
            const key = stateKey(update.namespace, update.key);
            if (update.isDelete) batch.del(key);
            else batch.put(key, encodeState(update.value, update.version));
        }
        for (const { namespace, key, entry } of commit.history) {
            batch.put(
                Buffer.concat([historyPrefix(namespace, key), u64(entry.version.blockNum), u64(entry.version.txNum)]),
                encodeHistory(entry),
            );
        }
        for (const { txId, location } of commit.transactions) {
            const value = Buffer.allocUnsafe(13);
            u64(location.blockNum).copy(value, 0);
            value.writeUInt32BE(location.txNum, 8);
            value.writeUInt8(location.code, 12);
            batch.put(txKey(txId), value);
        }
        batch.put(META_HEIGHT, u64(commit.blockNum + 1));
        batch.put(META_TIP_HASH, Buffer.from(commit.headerHash));
        if (config !== undefined) batch.put(META_CONFIG, Buffer.from(config, 'utf8'));
        await batch.write({ sync: this.#sync });
        this.#height = commit.blockNum + 1;
        this.#tipHash = commit.headerHash;
    }

    async close(): Promise<void> {
        await this.#db.close();
    }
}
