/**
 * Transaction simulation: the peer side of the chaincode shim protocol, driven in-process by
 * fabric-shim's real `ChaincodeStub`. Each `handle*` method answers what the peer's chaincode
 * handler would answer over gRPC, against a snapshot of committed state, and records the
 * read-write set the way Fabric's transaction simulator does:
 *
 *  - reads see committed state only — a transaction never sees its own writes;
 *  - each read records the committed version (block, tx), or no version for a missing key;
 *  - a put of an empty value is a delete (`IsDelete: len(value) == 0`, as in Fabric's rwset builder);
 *  - range queries fetch in batches of 100; every result fetched (not only those the chaincode
 *    consumed) is recorded with its version, and `itrExhausted` says whether the end of the range
 *    was reached — exactly the input of Fabric's phantom-read validation;
 *  - history queries read committed history, newest first, and are not recorded (Fabric gives
 *    them no phantom protection either).
 * Private data, rich (CouchDB) queries, key-level endorsement metadata and chaincode-to-chaincode
 * calls are not provided: those calls fail inside the chaincode with a clear message.
 */
import type { PeerShim, UnsupportedShimCall } from './chaincode.js';
import { compareKeys, type KVRead, type KVWrite, type NsReadWriteSet, type RangeQueryInfo } from './rwset.js';
import { QUERY_BATCH_SIZE, type HistoryEntry, type StateKV, type StateSnapshot } from './store.js';
import { newTimestamp, peer, queryresult } from './protos.js';

/** What the chaincode is told for each shim call the embedded ledger does not provide. */
const UNSUPPORTED: Record<UnsupportedShimCall, string> = {
    getQueryResult: 'rich (CouchDB) queries',
    putStateMetadata: 'state metadata (key-level endorsement)',
    getStateMetadata: 'state metadata (key-level endorsement)',
    getPrivateDataHash: 'private data',
    purgeState: 'private data',
    invokeChaincode: 'chaincode-to-chaincode invocation',
};

/** Thrown into the chaincode for shim calls the embedded ledger does not provide. */
function unsupported(what: string): Error {
    return new Error(`${what} is not supported by the embedded ledger`);
}

interface OpenRangeQuery {
    readonly kind: 'range';
    readonly startKey: string;
    readonly endKey: string;
    readonly results: AsyncGenerator<StateKV>;
    readonly reads: KVRead[];
    exhausted: boolean;
    /** The result read ahead of the last full batch (the peer's one-result look-ahead). */
    ahead?: StateKV;
}

interface OpenHistoryQuery {
    readonly kind: 'history';
    readonly entries: HistoryEntry[];
    position: number;
}

export class SimulationHandler implements PeerShim {
    readonly #snapshot: StateSnapshot;
    readonly #namespace: string;
    readonly #readHistory: (namespace: string, key: string) => Promise<HistoryEntry[]>;
    readonly #reads = new Map<string, KVRead>();
    readonly #writes = new Map<string, KVWrite>();
    readonly #rangeQueries = new Map<string, RangeQueryInfo>();
    readonly #open = new Map<string, OpenRangeQuery | OpenHistoryQuery>();
    #nextQueryId = 0;

    constructor(
        snapshot: StateSnapshot,
        namespace: string,
        readHistory: (namespace: string, key: string) => Promise<HistoryEntry[]>,
    ) {
        this.#snapshot = snapshot;
        this.#namespace = namespace;
        this.#readHistory = readHistory;
    }

    async getState(collection: string, key: string): Promise<Uint8Array> {
        this.#publicOnly(collection);
        const entry = await this.#snapshot.get(this.#namespace, key);
        if (!this.#reads.has(key)) this.#reads.set(key, { key, version: entry?.version });
        return entry === undefined ? new Uint8Array() : entry.value;
    }

    async putState(collection: string, key: string, value: Uint8Array): Promise<void> {
        this.#publicOnly(collection);
        this.#checkKey(key);
        const bytes = new Uint8Array(value);
        this.#writes.set(key, { key, isDelete: bytes.length === 0, value: bytes });
    }

    async deleteState(collection: string, key: string): Promise<void> {
        this.#publicOnly(collection);
        this.#checkKey(key);
        this.#writes.set(key, { key, isDelete: true, value: new Uint8Array() });
    }

    /** Starts a range query and returns its first batch (the shim wraps it in a StateQueryIterator). */
    async openRangeQuery(
        collection: string,
        startKey: string,
        endKey: string,
        metadata?: Uint8Array,
    ): Promise<InstanceType<typeof peer.QueryResponse>> {
        this.#publicOnly(collection);
        if (metadata !== undefined && metadata.length > 0) throw unsupported('pagination');
        const id = String(this.#nextQueryId++);
        const query: OpenRangeQuery = {
            kind: 'range',
            startKey,
            endKey,
            results: this.#snapshot.range(this.#namespace, startKey, endKey),
            reads: [],
            exhausted: false,
        };
        this.#open.set(id, query);
        return this.#nextRangeBatch(id, query);
    }

    /** Starts a history query and returns its first batch (the shim wraps it in a HistoryQueryIterator). */
    async openHistoryQuery(key: string): Promise<InstanceType<typeof peer.QueryResponse>> {
        const id = String(this.#nextQueryId++);
        const query: OpenHistoryQuery = {
            kind: 'history',
            entries: await this.#readHistory(this.#namespace, key),
            position: 0,
        };
        this.#open.set(id, query);
        return this.#nextHistoryBatch(id, query);
    }

    async queryStateNext(id: string): Promise<InstanceType<typeof peer.QueryResponse>> {
        const query = this.#open.get(id);
        if (query === undefined) throw new Error(`query iterator ${id} not found`);
        return query.kind === 'range' ? this.#nextRangeBatch(id, query) : this.#nextHistoryBatch(id, query);
    }

    async queryStateClose(id: string): Promise<InstanceType<typeof peer.QueryResponse>> {
        await this.#close(id);
        const response = new peer.QueryResponse();
        response.setId(id);
        response.setHasMore(false);
        return response;
    }

    async unsupported(call: UnsupportedShimCall): Promise<never> {
        throw unsupported(UNSUPPORTED[call]);
    }

    /** Closes iterators the chaincode left open (the peer does this too) and returns the read-write set. */
    async finish(): Promise<NsReadWriteSet> {
        for (const id of [...this.#open.keys()]) await this.#close(id);
        const byKey = (a: { key: string }, b: { key: string }): number => compareKeys(a.key, b.key);
        return {
            namespace: this.#namespace,
            reads: [...this.#reads.values()].sort(byKey),
            rangeQueries: [...this.#rangeQueries.values()],
            writes: [...this.#writes.values()].sort(byKey),
        };
    }

    /** Releases open iterators without recording anything (the simulation is being discarded). */
    async abandon(): Promise<void> {
        for (const query of this.#open.values()) if (query.kind === 'range') await query.results.return(undefined);
        this.#open.clear();
    }

    async #nextRangeBatch(id: string, query: OpenRangeQuery): Promise<InstanceType<typeof peer.QueryResponse>> {
        const results: InstanceType<typeof peer.QueryResultBytes>[] = [];
        const add = (kv: StateKV, recorded = false): void => {
            if (!recorded) query.reads.push({ key: kv.key, version: kv.version });
            const message = new queryresult.KV();
            message.setNamespace(this.#namespace);
            message.setKey(kv.key);
            message.setValue(kv.value);
            const bytes = new peer.QueryResultBytes();
            bytes.setResultbytes(message.serializeBinary());
            results.push(bytes);
        };
        if (query.ahead !== undefined) {
            add(query.ahead, true);
            query.ahead = undefined;
        }
        let more = false;
        while (!query.exhausted) {
            const next = await query.results.next();
            if (next.done === true) {
                query.exhausted = true;
                break;
            }
            if (results.length === QUERY_BATCH_SIZE) {
                // Like the peer (core/chaincode QueryResponseGenerator): a full batch reports more only
                // when one more result exists, which it has read (and recorded) already and sends
                // first in the next batch. So a next batch is never empty — fabric-shim's iterator
                // fails on an empty one.
                query.ahead = next.value;
                query.reads.push({ key: next.value.key, version: next.value.version });
                more = true;
                break;
            }
            add(next.value);
        }
        const response = new peer.QueryResponse();
        response.setId(id);
        response.setResultsList(results);
        response.setHasMore(more);
        return response;
    }

    #nextHistoryBatch(id: string, query: OpenHistoryQuery): InstanceType<typeof peer.QueryResponse> {
        const batch = query.entries.slice(query.position, query.position + QUERY_BATCH_SIZE);
        query.position += batch.length;
        const response = new peer.QueryResponse();
        response.setId(id);
        response.setResultsList(
            batch.map((entry) => {
                const modification = new queryresult.KeyModification();
                modification.setTxId(entry.txId);
                modification.setValue(entry.value);
                modification.setIsDelete(entry.isDelete);
                const timestamp = newTimestamp(0);
                timestamp.setSeconds(entry.seconds);
                timestamp.setNanos(entry.nanos);
                modification.setTimestamp(timestamp);
                const bytes = new peer.QueryResultBytes();
                bytes.setResultbytes(modification.serializeBinary());
                return bytes;
            }),
        );
        response.setHasMore(query.position < query.entries.length);
        return response;
    }

    async #close(id: string): Promise<void> {
        const query = this.#open.get(id);
        if (query === undefined) return;
        this.#open.delete(id);
        if (query.kind !== 'range') return;
        await query.results.return(undefined);
        // Fabric keeps one entry per distinct (start, end, exhausted), first position, last results.
        const dedupeKey = JSON.stringify([query.startKey, query.endKey, query.exhausted]);
        this.#rangeQueries.set(dedupeKey, {
            startKey: query.startKey,
            endKey: query.endKey,
            itrExhausted: query.exhausted,
            reads: query.reads,
        });
    }

    #publicOnly(collection: string): void {
        if (collection !== '') throw unsupported('private data');
    }

    #checkKey(key: string): void {
        if (typeof key !== 'string' || key.length === 0) throw new Error('key must not be an empty string');
        if (Buffer.from(key, 'utf8').toString('utf8') !== key) throw new Error('key must be valid UTF-8');
    }
}
