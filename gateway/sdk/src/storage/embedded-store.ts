/**
 * The default object store: an on-disk IPFS blockstore in blockstore-fs's layout, durable across
 * restarts and crashes, with no daemon to run.
 *
 * Directory layout:
 *   <dir>/store.json  format marker (layout + version), written once
 *   <dir>/blocks/     the blocks, exactly as blockstore-fs's FsBlockstore stores them (next-to-last/2
 *                     sharding, base32upper multihash file names, `.data`), so the directory can be
 *                     opened by FsBlockstore (Helia) and exported as a CAR for `ipfs dag import`
 *   <dir>/pins/       one empty marker file per pinned object, same sharding
 *   <dir>/tmp/        staging area for crash-safe writes (same file system as blocks/)
 *
 * Writes are this module's own (see durable-fs.ts) because FsBlockstore does not fsync.
 */
import { readFileSync } from 'node:fs';
import { access, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { NextToLast } from 'blockstore-fs/sharding';
import { base32upper } from 'multiformats/bases/base32';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import { addressOf, checkObjectSize, multihashOf, verifiedObject } from './content.js';
import {
    ensureDirectoryDurable,
    fsyncDirectory,
    mapBounded,
    writeFileDurable,
    writeTempFileSynced,
} from './durable-fs.js';
import { NotFoundError, StorageError, StorageUnavailableError, StoreNotInitialisedError } from './errors.js';
import type { ObjectStore, PutOptions, StorageHealth, StoreOperationOptions } from './object-store.js';

const FORMAT = 'm2m-fabric/embedded-object-store';
const FORMAT_VERSION = 1;
const RAW_CODEC = 0x55;
/** Parallel file writes in a batch: enough to overlap fsyncs in libuv's thread pool. */
const BATCH_CONCURRENCY = 16;

interface Location {
    /** Shard directory name (two characters). */
    shard: string;
    /** File name inside the shard directory. */
    file: string;
}

export interface EmbeddedStoreStats {
    objects: number;
    bytes: number;
    pinned: number;
}

function errnoCode(err: unknown): string | undefined {
    return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
        ? err.code
        : undefined;
}

export class EmbeddedObjectStore implements ObjectStore {
    readonly backend = 'embedded' as const;
    readonly directory: string;
    readonly blocksDirectory: string;
    readonly pinsDirectory: string;
    private readonly tmpDirectory: string;
    private readonly sharding = new NextToLast();
    /** Shard directories known to exist (and to be durable), so a put costs no mkdir. */
    private readonly knownShards = new Set<string>();
    private closed = false;

    private constructor(directory: string) {
        this.directory = directory;
        this.blocksDirectory = join(directory, 'blocks');
        this.pinsDirectory = join(directory, 'pins');
        this.tmpDirectory = join(directory, 'tmp');
    }

    /**
     * Opens the store in `directory`, creating it there when missing unless `create` is false.
     *
     * @throws StoreNotInitialisedError when `create` is false and `directory` holds no store (nothing
     * is created then); StorageUnavailableError when the directory is unusable or not a store.
     */
    static async open(directory: string, options: { create?: boolean } = {}): Promise<EmbeddedObjectStore> {
        const store = new EmbeddedObjectStore(directory);
        try {
            await store.initialise(options.create ?? true);
        } catch (err) {
            if (err instanceof StorageError) throw err;
            throw new StorageUnavailableError(`cannot open the embedded store in ${directory}: ${String(err)}`, {
                cause: err,
            });
        }
        return store;
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
        if (marker === undefined) {
            const content = {
                format: FORMAT,
                version: FORMAT_VERSION,
                layout: 'blockstore-fs: next-to-last/2, base32upper multihash, .data',
            };
            await ensureDirectoryDurable(this.tmpDirectory);
            await writeFileDurable(this.tmpDirectory, markerPath, Buffer.from(JSON.stringify(content, null, 4)));
        } else {
            let parsed: unknown;
            try {
                parsed = JSON.parse(marker);
            } catch {
                parsed = undefined;
            }
            const ok =
                typeof parsed === 'object' &&
                parsed !== null &&
                (parsed as { format?: unknown }).format === FORMAT &&
                (parsed as { version?: unknown }).version === FORMAT_VERSION;
            if (!ok) {
                throw new StorageUnavailableError(
                    `${markerPath} does not describe a version-${FORMAT_VERSION} embedded object store`,
                );
            }
        }
        await ensureDirectoryDurable(this.blocksDirectory);
        await ensureDirectoryDurable(this.pinsDirectory);
        await ensureDirectoryDurable(this.tmpDirectory);
        await this.removeStaleTempFiles();
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

    private checkOpen(): void {
        if (this.closed) throw new StorageUnavailableError(`the embedded store in ${this.directory} is closed`);
    }

    private locate(cid: string): Location {
        const multihash = multihashOf(cid);
        const { dir, file } = this.sharding.encode(CID.createV1(RAW_CODEC, Digest.decode(multihash)));
        return { shard: dir, file };
    }

    private blockPath(loc: Location): string {
        return join(this.blocksDirectory, loc.shard, loc.file);
    }

    private pinPath(loc: Location): string {
        return join(this.pinsDirectory, loc.shard, loc.file);
    }

    private async ensureShard(root: string, shard: string): Promise<void> {
        const dir = join(root, shard);
        if (this.knownShards.has(dir)) return;
        await ensureDirectoryDurable(dir);
        this.knownShards.add(dir);
    }

    /** Whether `path` holds exactly `bytes` (so a put can skip the write, and repairs a damaged file). */
    private async holdsExactly(path: string, bytes: Uint8Array): Promise<boolean> {
        try {
            const existing = await readFile(path);
            return Buffer.compare(existing, bytes) === 0;
        } catch (err) {
            if (errnoCode(err) === 'ENOENT') return false;
            throw err;
        }
    }

    private async exists(path: string): Promise<boolean> {
        try {
            await access(path);
            return true;
        } catch (err) {
            if (errnoCode(err) === 'ENOENT') return false;
            throw err;
        }
    }

    private wrap(what: string, err: unknown): StorageError {
        if (err instanceof StorageError) return err;
        return new StorageUnavailableError(`embedded store ${this.directory}: ${what} failed: ${String(err)}`, {
            cause: err,
        });
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
            // One write per distinct object; stage (write + fsync) in parallel, then rename, then fsync
            // each touched directory once.
            const unique = new Map<string, Uint8Array>();
            cids.forEach((cid, i) => unique.set(cid, objects[i] as Uint8Array));
            const entries = [...unique.entries()].map(([cid, bytes]) => ({ cid, bytes, loc: this.locate(cid) }));
            const touched = new Set<string>();
            await mapBounded(entries, BATCH_CONCURRENCY, async ({ bytes, loc }) => {
                options?.signal?.throwIfAborted();
                const target = this.blockPath(loc);
                if (await this.holdsExactly(target, bytes)) return;
                await this.ensureShard(this.blocksDirectory, loc.shard);
                const temp = await writeTempFileSynced(this.tmpDirectory, bytes);
                await rename(temp, target);
                touched.add(join(this.blocksDirectory, loc.shard));
            });
            if (pin) {
                await mapBounded(entries, BATCH_CONCURRENCY, async ({ loc }) => {
                    if (await this.createPinMarker(loc)) touched.add(join(this.pinsDirectory, loc.shard));
                });
            }
            await mapBounded([...touched], BATCH_CONCURRENCY, fsyncDirectory);
        } catch (err) {
            throw this.wrap('put', err);
        }
        return cids;
    }

    /**
     * Creates the empty pin marker if missing; true when created. An empty file has no data blocks to
     * flush: fsyncing its directory (done by the caller) commits the entry and the inode together.
     */
    private async createPinMarker(loc: Location): Promise<boolean> {
        const path = this.pinPath(loc);
        if (await this.exists(path)) return false;
        await this.ensureShard(this.pinsDirectory, loc.shard);
        const handle = await open(path, 'a', 0o644);
        await handle.close();
        return true;
    }

    /**
     * @throws {NotFoundError}
     * @throws the error this.wrap builds
     */
    async get(cid: string, options?: StoreOperationOptions): Promise<Uint8Array> {
        this.checkOpen();
        const path = this.blockPath(this.locate(cid));
        options?.signal?.throwIfAborted();
        let bytes: Buffer;
        try {
            // A synchronous read on purpose: objects are at most 1 MiB (certificate objects a few hundred
            // bytes), so reading one from the page cache takes microseconds, less than the four thread-pool
            // round trips of fs.promises.readFile (open, fstat, read, close). Those round trips dominate the
            // latency and, when the CPU is contended, its tail (measured: p99 12 ms async vs 0.4 ms sync).
            bytes = readFileSync(path);
        } catch (err) {
            if (errnoCode(err) === 'ENOENT') throw new NotFoundError(cid);
            throw this.wrap('get', err);
        }
        return verifiedObject(cid, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'embedded store');
    }

    /**
     * @throws the error this.wrap builds
     */
    async has(cid: string): Promise<boolean> {
        this.checkOpen();
        const path = this.blockPath(this.locate(cid));
        try {
            return await this.exists(path);
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
        const loc = this.locate(cid);
        try {
            if (!(await this.exists(this.blockPath(loc))))
                throw new NotFoundError(cid, `cannot pin ${cid}: not in the store`);
            if (await this.createPinMarker(loc)) await fsyncDirectory(join(this.pinsDirectory, loc.shard));
        } catch (err) {
            throw this.wrap('pin', err);
        }
    }

    /**
     * @throws the error this.wrap builds
     */
    async unpin(cid: string): Promise<void> {
        this.checkOpen();
        const loc = this.locate(cid);
        try {
            await unlink(this.pinPath(loc));
            await fsyncDirectory(join(this.pinsDirectory, loc.shard));
        } catch (err) {
            if (errnoCode(err) === 'ENOENT') return;
            throw this.wrap('unpin', err);
        }
    }

    /**
     * @throws the error this.wrap builds
     */
    async isPinned(cid: string): Promise<boolean> {
        this.checkOpen();
        try {
            return await this.exists(this.pinPath(this.locate(cid)));
        } catch (err) {
            throw this.wrap('isPinned', err);
        }
    }

    /** Every object's content address, in file-system order. */
    async *objects(): AsyncGenerator<string> {
        this.checkOpen();
        yield* this.walk(this.blocksDirectory);
    }

    /** Every pinned object's content address. */
    async *pinned(): AsyncGenerator<string> {
        this.checkOpen();
        yield* this.walk(this.pinsDirectory);
    }

    private async *walk(root: string): AsyncGenerator<string> {
        const extension = this.sharding.extension;
        const shards = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory());
        shards.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        for (const shard of shards) {
            const names = await readdir(join(root, shard.name));
            names.sort();
            for (const name of names) {
                if (!name.endsWith(extension)) continue;
                const cid = cidFromFileName(name.slice(0, -extension.length));
                if (cid !== undefined) yield cid;
            }
        }
    }

    /**
     * Deletes unpinned objects (IPFS garbage collection); returns how many were removed.
     * @throws the error this.wrap builds
     */
    async gc(): Promise<number> {
        this.checkOpen();
        let removed = 0;
        const touched = new Set<string>();
        try {
            for await (const cid of this.walk(this.blocksDirectory)) {
                const loc = this.locate(cid);
                if (await this.exists(this.pinPath(loc))) continue;
                await unlink(this.blockPath(loc));
                touched.add(join(this.blocksDirectory, loc.shard));
                removed++;
            }
            for (const dir of touched) await fsyncDirectory(dir);
        } catch (err) {
            throw this.wrap('gc', err);
        }
        return removed;
    }

    async stats(): Promise<EmbeddedStoreStats> {
        this.checkOpen();
        let objects = 0;
        let bytes = 0;
        let pinned = 0;
        for await (const cid of this.walk(this.blocksDirectory)) {
            objects++;
            bytes += (await stat(this.blockPath(this.locate(cid)))).size;
        }
        for await (const _cid of this.walk(this.pinsDirectory)) pinned++;
        return { objects, bytes, pinned };
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

    close(): Promise<void> {
        this.closed = true;
        return Promise.resolve();
    }
}

/** blockstore-fs names a block file by the base32upper multihash; the store holds raw blocks only. */
function cidFromFileName(name: string): string | undefined {
    try {
        return CID.createV1(RAW_CODEC, Digest.decode(base32upper.decode(name))).toString();
    } catch {
        return undefined;
    }
}

function processIsAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (err) {
        return errnoCode(err) === 'EPERM';
    }
}
