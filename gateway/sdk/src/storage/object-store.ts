/**
 * The off-chain store for certificate objects (paper 004, Table III). The CSP puts the objects it
 * issues and records only their content address on the ledger; the fog gets the object for an
 * activation by that address. Two backends implement it: an embedded on-disk IPFS blockstore (the
 * default) and a Kubo daemon over its RPC API. Both address an object by the same CID — CIDv1, raw
 * codec, sha2-256, computed by the protocol module exactly as the chaincode does.
 *
 * Contract shared by every backend:
 * - `put` returns only once the object is durable (embedded: fsynced; Kubo: acknowledged by the
 *   daemon) and, unless `pin: false`, pinned.
 * - `get` verifies the bytes against the CID before returning them; a mismatch is an IntegrityError.
 * - objects over MAX_OBJECT_BYTES are refused with ObjectTooLargeError before any I/O.
 * - failures are StorageError subclasses (see errors.ts), never raw library errors.
 */
export type StorageBackend = 'embedded' | 'kubo';

export interface StoreOperationOptions {
    /** Cancels the operation; the backend also applies its own timeout. */
    signal?: AbortSignal;
}

export interface PutOptions extends StoreOperationOptions {
    /** Pin the object so garbage collection keeps it (default true: the CSP pins all it issues). */
    pin?: boolean;
}

export interface StorageHealth {
    backend: StorageBackend;
    ok: boolean;
    /** What was checked, e.g. the store directory or the daemon URL and version. */
    detail: string;
    /** Round-trip time of the check in milliseconds. */
    latencyMs: number;
    /** Why the store is not healthy (the StorageError kind and message), when ok is false. */
    error?: { kind: string; message: string };
}

export interface ObjectStore {
    readonly backend: StorageBackend;

    /** Stores one object and returns its content address. */
    put(bytes: Uint8Array, options?: PutOptions): Promise<string>;

    /**
     * Stores a batch (e.g. the n certificate objects of one issuance) and returns their addresses in
     * input order. Every object is size-checked before anything is written; on return all are durable.
     */
    putMany(objects: readonly Uint8Array[], options?: PutOptions): Promise<string[]>;

    /** The verified bytes of the object; NotFoundError / IntegrityError / StorageUnavailableError … */
    get(cid: string, options?: StoreOperationOptions): Promise<Uint8Array>;

    /** Whether this store holds the object locally (no network fetch). */
    has(cid: string, options?: StoreOperationOptions): Promise<boolean>;

    /** Pins an object the store holds (NotFoundError otherwise). Idempotent. */
    pin(cid: string, options?: StoreOperationOptions): Promise<void>;

    /** Removes a pin; the object stays until garbage collection. Idempotent. */
    unpin(cid: string, options?: StoreOperationOptions): Promise<void>;

    /** Whether the object is pinned (directly). */
    isPinned(cid: string, options?: StoreOperationOptions): Promise<boolean>;

    /** A health check that never throws: reports reachability and latency. */
    health(options?: StoreOperationOptions): Promise<StorageHealth>;

    /** Releases resources (connections, handles). */
    close(): Promise<void>;
}
