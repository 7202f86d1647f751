/**
 * Object store backed by an IPFS daemon (Kubo, or anything speaking its RPC API) through
 * kubo-rpc-client. Users run the daemon next to their fog or CSP and point IPFS_API_URL at it.
 *
 * Every request runs under this module's own timeout (an AbortSignal: kubo-rpc-client's `timeout`
 * option is not applied to the request), is retried with exponential backoff only when the
 * connection itself failed (refused, reset, closed: a request that reached a slow daemon is not
 * repeated), and ends in a typed StorageError. Blocks are put as CIDv1 raw sha2-256, the address the
 * daemon returns is checked against the protocol module's, and every get is verified.
 */
import { create, type HTTPRPCOptions, type KuboRPCClient } from 'kubo-rpc-client';
import { CID } from 'multiformats/cid';
import { addressOf, checkObjectSize, MAX_OBJECT_BYTES, multihashOf, verifiedObject } from './content.js';
import { mapBounded } from './durable-fs.js';
import {
    IntegrityError,
    NotFoundError,
    ReplyTooLargeError,
    StorageError,
    StorageTimeoutError,
    StorageUnavailableError,
} from './errors.js';
import type { ObjectStore, PutOptions, StorageHealth, StoreOperationOptions } from './object-store.js';

export interface KuboStoreOptions {
    /** RPC API address, e.g. http://127.0.0.1:5001 (the client appends /api/v0). */
    apiUrl: string;
    /** Per-request time limit in ms, connection to last body byte (default 10 000). */
    timeoutMs?: number;
    /** Extra attempts after a connection failure (default 3). */
    retries?: number;
    /** First backoff delay in ms; doubles per attempt (default 100). */
    retryBaseDelayMs?: number;
    /** Cap on one backoff delay in ms (default 2 000). */
    retryMaxDelayMs?: number;
    /**
     * Ask the daemon not to search the network on get (Kubo's `offline` option): a missing object is
     * then a NotFoundError at once instead of a timeout. Default false, so a fog's daemon can fetch an
     * object from the CSP's daemon over bitswap.
     */
    offline?: boolean;
    /** Requests in flight during putMany (default 4). */
    concurrency?: number;
    /**
     * Largest reply body a get reads, in bytes (default MAX_OBJECT_BYTES, 1 MiB: the largest object
     * the project stores). A longer reply is aborted at this size with ReplyTooLargeError, before the
     * integrity check. At most MAX_OBJECT_BYTES.
     */
    maxObjectBytes?: number;
}

/** Socket-level failure codes after which the request never reached (or never left) the daemon. */
const CONNECTION_ERROR_CODES = new Set([
    'ECONNREFUSED',
    'ECONNRESET',
    'EPIPE',
    'EHOSTUNREACH',
    'ENETUNREACH',
    'EAI_AGAIN',
    'ENOTFOUND',
    'UND_ERR_SOCKET',
    'UND_ERR_CLOSED',
    'UND_ERR_CONNECT_TIMEOUT',
]);

function errorCode(err: unknown): string | undefined {
    return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
        ? err.code
        : undefined;
}

/** The first socket error code found along the `cause` chain (fetch wraps them in TypeError). */
export function connectionErrorCode(err: unknown): string | undefined {
    for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
        const code = errorCode(e);
        if (code !== undefined && CONNECTION_ERROR_CODES.has(code)) return code;
        e = typeof e === 'object' && 'cause' in e ? e.cause : undefined;
    }
    // undici reports some connection failures only as "fetch failed" / "other side closed".
    if (err instanceof TypeError && err.message === 'fetch failed') return 'fetch failed';
    return undefined;
}

/** The error message a daemon put in its reply, when kubo-rpc-client surfaced one. */
function daemonMessage(err: unknown): string {
    return err instanceof Error ? err.message : String(err);
}

function isNotFoundMessage(message: string): boolean {
    return /not found|could not find|no link named|block was not found/i.test(message);
}

/**
 * Kubo's global `offline` option (answer from the local repository, never search the network); the
 * client forwards unknown options as query parameters but does not declare this one.
 */
function requestOptions(signal: AbortSignal, offline: boolean): HTTPRPCOptions {
    const options: HTTPRPCOptions & { offline?: boolean } = offline ? { signal, offline: true } : { signal };
    return options;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
        if (signal?.aborted) {
            reject(signal.reason as Error);
            return;
        }
        const onAbort = (): void => {
            clearTimeout(timer);
            reject(signal?.reason as Error);
        };
        const timer = setTimeout(() => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
        }, ms);
        signal?.addEventListener('abort', onAbort, { once: true });
    });
}

/**
 * Reads a response body up to `limit` bytes. Past it the request is aborted and `tooLarge(received)`
 * thrown (or, when that returns undefined, the prefix returned).
 */
async function readBounded(
    response: Response,
    limit: number,
    cut: AbortController,
    tooLarge: (received: number) => Error | undefined,
): Promise<Uint8Array> {
    if (response.body === null) return new Uint8Array(0);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const chunks: Uint8Array[] = [];
    let received = 0;
    for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.length;
        if (received > limit) {
            cut.abort();
            await reader.cancel().catch(() => undefined);
            const err = tooLarge(received);
            if (err !== undefined) throw err;
            chunks.push(value.subarray(0, value.length - (received - limit)));
            break;
        }
        chunks.push(value);
    }
    const out = new Uint8Array(Math.min(received, limit));
    let at = 0;
    for (const chunk of chunks) {
        out.set(chunk, at);
        at += chunk.length;
    }
    return out;
}

export class KuboObjectStore implements ObjectStore {
    readonly backend = 'kubo' as const;
    readonly apiUrl: string;
    readonly timeoutMs: number;
    readonly retries: number;
    private readonly retryBaseDelayMs: number;
    private readonly retryMaxDelayMs: number;
    private readonly offline: boolean;
    private readonly concurrency: number;
    readonly maxObjectBytes: number;
    private readonly client: KuboRPCClient;

    /**
     * @throws {StorageUnavailableError} when: IPFS API URL is not a URL: …; IPFS API URL must be http(s): …
     */
    constructor(options: KuboStoreOptions) {
        let url: URL;
        try {
            url = new URL(options.apiUrl);
        } catch (cause) {
            throw new StorageUnavailableError(`IPFS API URL is not a URL: ${JSON.stringify(options.apiUrl)}`, {
                cause,
            });
        }
        if (url.protocol !== 'http:' && url.protocol !== 'https:') {
            throw new StorageUnavailableError(`IPFS API URL must be http(s): ${options.apiUrl}`);
        }
        this.apiUrl = options.apiUrl;
        this.timeoutMs = options.timeoutMs ?? 10_000;
        this.retries = options.retries ?? 3;
        this.retryBaseDelayMs = options.retryBaseDelayMs ?? 100;
        this.retryMaxDelayMs = options.retryMaxDelayMs ?? 2_000;
        this.offline = options.offline ?? false;
        this.concurrency = options.concurrency ?? 4;
        this.maxObjectBytes = options.maxObjectBytes ?? MAX_OBJECT_BYTES;
        if (
            !Number.isInteger(this.maxObjectBytes) ||
            this.maxObjectBytes < 0 ||
            this.maxObjectBytes > MAX_OBJECT_BYTES
        ) {
            throw new StorageUnavailableError(
                `maxObjectBytes must be an integer from 0 to ${MAX_OBJECT_BYTES}, got ${String(options.maxObjectBytes)}`,
            );
        }
        this.client = create({ url });
    }

    /**
     * Runs one RPC under the timeout, retrying connection failures with exponential backoff, and maps
     * every failure to a StorageError. A caller's abort is passed through unchanged.
     */
    private async call<T>(
        what: string,
        request: (signal: AbortSignal) => Promise<T>,
        options?: StoreOperationOptions,
    ): Promise<T> {
        for (let attempt = 0; ; attempt++) {
            options?.signal?.throwIfAborted();
            const timeout = new AbortController();
            const timer = setTimeout(() => timeout.abort(), this.timeoutMs);
            const signal =
                options?.signal === undefined ? timeout.signal : AbortSignal.any([options.signal, timeout.signal]);
            try {
                return await request(signal);
            } catch (err) {
                if (options?.signal?.aborted) throw err;
                if (err instanceof StorageError) throw err;
                if (timeout.signal.aborted) {
                    throw new StorageTimeoutError(
                        `${what}: the IPFS daemon at ${this.apiUrl} did not answer within ${this.timeoutMs} ms`,
                        this.timeoutMs,
                        { cause: err },
                    );
                }
                const connection = connectionErrorCode(err);
                if (connection !== undefined) {
                    if (attempt < this.retries) {
                        const delay = Math.min(this.retryBaseDelayMs * 2 ** attempt, this.retryMaxDelayMs);
                        await sleep(delay, options?.signal);
                        continue;
                    }
                    throw new StorageUnavailableError(
                        `${what}: cannot reach the IPFS daemon at ${this.apiUrl} (${connection}) after ` +
                            `${attempt + 1} attempt${attempt === 0 ? '' : 's'}; is it running?`,
                        { cause: err },
                    );
                }
                throw this.daemonError(what, err);
            } finally {
                clearTimeout(timer);
            }
        }
    }

    /** A reply the daemon did send, but as an error. */
    private daemonError(what: string, err: unknown): StorageError {
        const message = daemonMessage(err);
        const name = err instanceof Error ? err.name : '';
        if (name === 'TimeoutError') {
            // The daemon's own deadline ("context deadline exceeded").
            return new StorageTimeoutError(
                `${what}: the IPFS daemon at ${this.apiUrl} timed out: ${message}`,
                this.timeoutMs,
                {
                    cause: err,
                },
            );
        }
        const status =
            typeof err === 'object' && err !== null && 'response' in err
                ? (err as { response?: { status?: unknown } }).response?.status
                : undefined;
        if (status === 404 || status === 405) {
            return new StorageUnavailableError(
                `${what}: ${this.apiUrl} answered HTTP ${String(status)}; is this an IPFS RPC API (e.g. http://127.0.0.1:5001)?`,
                { cause: err },
            );
        }
        return new StorageUnavailableError(`${what}: the IPFS daemon at ${this.apiUrl} failed: ${message}`, {
            cause: err,
        });
    }

    private toCid(cid: string): CID {
        multihashOf(cid); // InvalidAddressError for anything but a canonical CIDv1 raw sha2-256
        return CID.parse(cid);
    }

    /**
     * @throws {IntegrityError} when: put: the IPFS daemon at … stored the object as …, expected …
     */
    async put(bytes: Uint8Array, options?: PutOptions): Promise<string> {
        checkObjectSize(bytes);
        const expected = addressOf(bytes);
        const returned = await this.call(
            'put',
            async (signal) =>
                (
                    await this.client.block.put(bytes, { format: 'raw', mhtype: 'sha2-256', version: 1, signal })
                ).toString(),
            options,
        );
        if (returned !== expected) {
            // A daemon that addresses blocks differently (CIDv0, another codec or hash) would put an
            // address on the ledger that the chaincode rejects.
            throw new IntegrityError(
                expected,
                returned,
                `put: the IPFS daemon at ${this.apiUrl} stored the object as ${returned}, expected ${expected}`,
            );
        }
        if (options?.pin ?? true) await this.pin(expected, options);
        return expected;
    }

    async putMany(objects: readonly Uint8Array[], options?: PutOptions): Promise<string[]> {
        for (const bytes of objects) checkObjectSize(bytes);
        return mapBounded(objects, this.concurrency, (bytes) => this.put(bytes, options));
    }

    /**
     * @throws {NotFoundError} when: get: the IPFS daemon at … does not have …
     */
    async get(cid: string, options?: StoreOperationOptions): Promise<Uint8Array> {
        this.toCid(cid); // InvalidAddressError before any request
        let bytes: Uint8Array;
        try {
            bytes = await this.call('get', (signal) => this.boundedBlockGet(cid, signal), options);
        } catch (err) {
            if (err instanceof StorageError && err.kind === 'unavailable' && isNotFoundMessage(err.message)) {
                throw new NotFoundError(cid, `get: the IPFS daemon at ${this.apiUrl} does not have ${cid}`, {
                    cause: err,
                });
            }
            throw err;
        }
        return verifiedObject(cid, bytes, `the IPFS daemon at ${this.apiUrl}`);
    }

    /**
     * `block/get` with the reply read as a stream and cut at maxObjectBytes (kubo-rpc-client's
     * block.get buffers the whole body, however long, before anything can check it).
     */
    private async boundedBlockGet(cid: string, signal: AbortSignal): Promise<Uint8Array> {
        const url = new URL('/api/v0/block/get', this.apiUrl);
        url.searchParams.set('arg', cid);
        if (this.offline) url.searchParams.set('offline', 'true');
        const cut = new AbortController();
        const response = await fetch(url, { method: 'POST', signal: AbortSignal.any([signal, cut.signal]) });
        const limit = this.maxObjectBytes;
        if (!response.ok) {
            // Kubo's error replies are small JSON ({ Message, Code, Type }); read a bounded prefix.
            const text = new TextDecoder().decode(await readBounded(response, 64 * 1024, cut, () => undefined));
            let message = text;
            try {
                const parsed = (JSON.parse(text) as { Message?: unknown }).Message;
                if (typeof parsed === 'string') message = parsed;
            } catch {
                // not JSON: keep the text
            }
            throw Object.assign(new Error(message), { response: { status: response.status } });
        }
        const announced = Number(response.headers.get('content-length') ?? NaN);
        if (Number.isFinite(announced) && announced > limit) {
            cut.abort();
            throw this.tooLarge(cid, limit, announced, 'announced');
        }
        return readBounded(response, limit, cut, (received) => this.tooLarge(cid, limit, received, 'sent'));
    }

    private tooLarge(cid: string, limit: number, received: number, how: string): ReplyTooLargeError {
        return new ReplyTooLargeError(
            `get: the IPFS daemon at ${this.apiUrl} ${how} more than ${limit} bytes for ${cid} (${received} read); reply aborted`,
            limit,
            received,
        );
    }

    async has(cid: string, options?: StoreOperationOptions): Promise<boolean> {
        const parsed = this.toCid(cid);
        try {
            // offline: answer from the local repository instead of searching the network.
            await this.call('has', (signal) => this.client.block.stat(parsed, requestOptions(signal, true)), options);
            return true;
        } catch (err) {
            if (err instanceof StorageError && err.kind === 'unavailable' && isNotFoundMessage(err.message))
                return false;
            throw err;
        }
    }

    /**
     * @throws {NotFoundError} when: cannot pin …: not in the daemon's repository
     */
    async pin(cid: string, options?: StoreOperationOptions): Promise<void> {
        const parsed = this.toCid(cid);
        try {
            await this.call('pin', (signal) => this.client.pin.add(parsed, requestOptions(signal, true)), options);
        } catch (err) {
            if (err instanceof StorageError && err.kind === 'unavailable' && isNotFoundMessage(err.message)) {
                throw new NotFoundError(cid, `cannot pin ${cid}: not in the daemon's repository`, { cause: err });
            }
            throw err;
        }
    }

    async unpin(cid: string, options?: StoreOperationOptions): Promise<void> {
        const parsed = this.toCid(cid);
        try {
            await this.call('unpin', (signal) => this.client.pin.rm(parsed, { signal }), options);
        } catch (err) {
            // Idempotent: "not pinned or pinned indirectly" is the state asked for.
            if (err instanceof StorageError && err.kind === 'unavailable' && /not pinned/i.test(err.message)) return;
            throw err;
        }
    }

    async isPinned(cid: string, options?: StoreOperationOptions): Promise<boolean> {
        const parsed = this.toCid(cid);
        try {
            return await this.call(
                'isPinned',
                async (signal) => {
                    for await (const entry of this.client.pin.ls({ paths: [parsed], signal })) {
                        if (entry.cid.equals(parsed) && (entry.type === 'direct' || entry.type === 'recursive')) {
                            return true;
                        }
                    }
                    return false;
                },
                options,
            );
        } catch (err) {
            if (err instanceof StorageError && err.kind === 'unavailable' && /not pinned/i.test(err.message))
                return false;
            throw err;
        }
    }

    async health(options?: StoreOperationOptions): Promise<StorageHealth> {
        const started = performance.now();
        try {
            const version = await this.call('health', (signal) => this.client.version({ signal }), options);
            return {
                backend: this.backend,
                ok: true,
                detail: `IPFS daemon ${String(version.version)} at ${this.apiUrl}`,
                latencyMs: performance.now() - started,
            };
        } catch (err) {
            const error =
                err instanceof StorageError
                    ? err
                    : new StorageUnavailableError(`health: ${String(err)}`, { cause: err });
            return {
                backend: this.backend,
                ok: false,
                detail: `IPFS daemon at ${this.apiUrl}`,
                latencyMs: performance.now() - started,
                error: { kind: error.kind, message: error.message },
            };
        }
    }

    close(): Promise<void> {
        return Promise.resolve();
    }
}
