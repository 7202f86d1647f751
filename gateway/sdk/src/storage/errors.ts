/**
 * Typed failures of the off-chain object store. The fog and the CSP turn any of these into a failed
 * operation with no ledger write, so each names one cause a caller can act on; callers switch on
 * `kind` (or `instanceof`), never on the message.
 */
export type StorageErrorKind =
    'unavailable' | 'timeout' | 'integrity' | 'tooLarge' | 'notFound' | 'invalidAddress' | 'notInitialised';

/** Base class of every error the storage layer throws. */
export class StorageError extends Error {
    readonly kind: StorageErrorKind;
    constructor(kind: StorageErrorKind, message: string, options?: ErrorOptions) {
        super(message, options);
        this.name = 'StorageError';
        this.kind = kind;
    }
}

/** The store cannot be reached (daemon down, connection refused or reset, directory unusable). */
export class StorageUnavailableError extends StorageError {
    constructor(message: string, options?: ErrorOptions) {
        super('unavailable', message, options);
        this.name = 'StorageUnavailableError';
    }
}

/**
 * The directory holds no store and the caller did not ask to create one: a mistyped path must not
 * silently become an empty store (every certificate lookup would then fail and burn a session).
 */
export class StoreNotInitialisedError extends StorageError {
    readonly directory: string;
    constructor(directory: string) {
        super(
            'notInitialised',
            `no object store in ${directory} (a mistyped M2M_STORE_DIR?); start once with --init-store to create one there`,
        );
        this.name = 'StoreNotInitialisedError';
        this.directory = directory;
    }
}

/** The store did not answer within the configured time. */
export class StorageTimeoutError extends StorageError {
    readonly timeoutMs: number;
    constructor(message: string, timeoutMs: number, options?: ErrorOptions) {
        super('timeout', message, options);
        this.name = 'StorageTimeoutError';
        this.timeoutMs = timeoutMs;
    }
}

/**
 * Bytes that do not hash to the content address they were stored or fetched under (tampered file,
 * misbehaving daemon, wrong CID format returned by a daemon). Never carries the bad bytes.
 */
export class IntegrityError extends StorageError {
    readonly expected: string;
    readonly actual: string | undefined;
    constructor(expected: string, actual: string | undefined, message: string, options?: ErrorOptions) {
        super('integrity', message, options);
        this.name = 'IntegrityError';
        this.expected = expected;
        this.actual = actual;
    }
}

/** An object over MAX_OBJECT_BYTES (certificate objects are a few hundred bytes). */
export class ObjectTooLargeError extends StorageError {
    readonly size: number;
    readonly limit: number;
    constructor(size: number, limit: number) {
        super('tooLarge', `object of ${size} bytes exceeds the ${limit}-byte limit`);
        this.name = 'ObjectTooLargeError';
        this.size = size;
        this.limit = limit;
    }
}

/**
 * A daemon's reply to a get ran past the configured maximum object size: the read was aborted there,
 * before the integrity check, so a misbehaving or hostile daemon cannot make a fog buffer an endless
 * body. `received` is what had arrived (or the announced Content-Length) when it was cut.
 */
export class ReplyTooLargeError extends StorageError {
    readonly limit: number;
    readonly received: number;
    constructor(message: string, limit: number, received: number) {
        super('tooLarge', message);
        this.name = 'ReplyTooLargeError';
        this.limit = limit;
        this.received = received;
    }
}

/** The store does not hold the object (embedded store, or a Kubo daemon asked offline). */
export class NotFoundError extends StorageError {
    readonly cid: string;
    constructor(cid: string, message?: string, options?: ErrorOptions) {
        super('notFound', message ?? `object ${cid} is not in the store`, options);
        this.name = 'NotFoundError';
        this.cid = cid;
    }
}

/** A string that is not a canonical CIDv1 raw sha2-256 content address. */
export class InvalidAddressError extends StorageError {
    readonly cid: string;
    constructor(cid: string, options?: ErrorOptions) {
        super(
            'invalidAddress',
            `not a CIDv1 raw sha2-256 content address: ${JSON.stringify(cid.slice(0, 100))}`,
            options,
        );
        this.name = 'InvalidAddressError';
        this.cid = cid;
    }
}

export function isStorageError(err: unknown): err is StorageError {
    return err instanceof StorageError;
}
