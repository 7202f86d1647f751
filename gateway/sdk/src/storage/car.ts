/**
 * Moving the embedded store to any IPFS node: export what it holds as a CAR (CARv1) file that
 * `ipfs dag import` reads, and import a CAR back into an embedded store.
 *
 * A CAR needs at least one root (Kubo's reader refuses a CAR without one), and Kubo's reader caps the
 * header at 32 MiB, so listing a million objects as roots is not an option. The export therefore adds
 * a small index: dag-cbor nodes linking every exported object, at most INDEX_FANOUT links per node,
 * with one root. `ipfs dag import` pins that root recursively, which keeps every object pinned; the
 * index nodes are the only blocks the store did not hold (docs/storage.md shows how to turn that into
 * direct pins per object).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CarBlockIterator } from '@ipld/car/iterator';
import { CarWriter } from '@ipld/car/writer';
import * as dagCbor from '@ipld/dag-cbor';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';
import { verifiedObject } from './content.js';
import { fsyncDirectory } from './durable-fs.js';
import { EmbeddedObjectStore } from './embedded-store.js';
import { IntegrityError, StorageError, StorageUnavailableError } from './errors.js';

/** Links per index node: 4096 CIDs ≈ 150 KiB of dag-cbor, well under the 1 MiB block limit. */
export const INDEX_FANOUT = 4096;
const INDEX_TYPE = 'm2m-fabric/object-index';
const RAW_CODEC = 0x55;
const SHA2_256 = 0x12;
const IMPORT_BATCH = 256;

interface IndexNode {
    type: string;
    version: 1;
    /** Links to objects (leaf) or to further index nodes (inner). */
    objects?: CID[];
    children?: CID[];
    /** Root only: how many objects the tree links. */
    count?: number;
}

interface Block {
    cid: CID;
    bytes: Uint8Array;
}

async function encodeIndexNode(node: IndexNode): Promise<Block> {
    const bytes = dagCbor.encode(node);
    return { cid: CID.createV1(dagCbor.code, await sha256.digest(bytes)), bytes };
}

/** Builds the index tree bottom-up; returns its blocks with the root last. */
async function buildIndex(objects: CID[], fanout: number): Promise<Block[]> {
    const blocks: Block[] = [];
    let level: CID[] = [];
    for (let i = 0; i < objects.length; i += fanout) {
        const block = await encodeIndexNode({
            type: INDEX_TYPE,
            version: 1,
            objects: objects.slice(i, i + fanout),
        });
        blocks.push(block);
        level.push(block.cid);
    }
    while (level.length > fanout) {
        const next: CID[] = [];
        for (let i = 0; i < level.length; i += fanout) {
            const block = await encodeIndexNode({
                type: INDEX_TYPE,
                version: 1,
                children: level.slice(i, i + fanout),
            });
            blocks.push(block);
            next.push(block.cid);
        }
        level = next;
    }
    const root = await encodeIndexNode({ type: INDEX_TYPE, version: 1, children: level, count: objects.length });
    blocks.push(root);
    return blocks;
}

export interface CarExportResult {
    /** The CAR's single root: the index node linking every exported object. */
    root: string;
    /** Objects written (raw blocks), excluding the index nodes. */
    objects: number;
    /** Total bytes of the objects. */
    objectBytes: number;
    /** Objects that were pinned in the store. */
    pinned: number;
    /** Index nodes written. */
    indexBlocks: number;
    path: string;
}

export interface CarExportOptions {
    /** Export only pinned objects (default: every object in the store). */
    pinnedOnly?: boolean;
    /** Links per index node (default INDEX_FANOUT); smaller values only make tests build deep trees. */
    indexFanout?: number;
}

/**
 * Writes the store's objects to a CAR file at `outPath` (atomically: a temp file renamed into place
 * once complete and fsynced). Each object is read through the verifying get, so a damaged store fails
 * the export with IntegrityError instead of exporting bad blocks.
 * @throws {RangeError} when: indexFanout must be an integer in [2, …]
 * @throws {StorageUnavailableError} when: CAR export to … failed: …
 */
export async function exportCar(
    store: EmbeddedObjectStore,
    outPath: string,
    options: CarExportOptions = {},
): Promise<CarExportResult> {
    const pinnedSet = new Set<string>();
    for await (const cid of store.pinned()) pinnedSet.add(cid);
    let cids: string[] = [];
    if (options.pinnedOnly === true) {
        cids = [...pinnedSet];
    } else {
        for await (const cid of store.objects()) cids.push(cid);
    }
    cids.sort();
    const objectCids = cids.map((c) => CID.parse(c));
    const pinned = cids.filter((c) => pinnedSet.has(c)).length;
    const fanout = options.indexFanout ?? INDEX_FANOUT;
    if (!Number.isInteger(fanout) || fanout < 2 || fanout > INDEX_FANOUT) {
        throw new RangeError(`indexFanout must be an integer in [2, ${INDEX_FANOUT}]`);
    }
    const index = await buildIndex(objectCids, fanout);
    const root = index[index.length - 1] as Block;

    const temp = join(dirname(outPath), `.${process.pid}-${Date.now()}.car.tmp`);
    const { writer, out } = CarWriter.create([root.cid]);
    const file = createWriteStream(temp, { mode: 0o644 });
    const written = pipeline(Readable.from(out), file);
    // Until awaited below, a write error must not surface as an unhandled rejection.
    written.catch(() => undefined);
    let objectBytes = 0;
    try {
        // Root first, so a streaming reader sees the index before the objects.
        for (let i = index.length - 1; i >= 0; i--) await writer.put(index[i] as Block);
        for (let i = 0; i < cids.length; i++) {
            const bytes = await store.get(cids[i] as string);
            objectBytes += bytes.length;
            await writer.put({ cid: objectCids[i] as CID, bytes });
        }
        await writer.close();
        await written;
        const handle = await open(temp, 'r');
        await handle.sync();
        await handle.close();
        await rename(temp, outPath);
        await fsyncDirectory(dirname(outPath));
    } catch (err) {
        file.destroy();
        await unlink(temp).catch(() => undefined);
        if (err instanceof StorageError) throw err;
        throw new StorageUnavailableError(`CAR export to ${outPath} failed: ${String(err)}`, { cause: err });
    }
    return {
        root: root.cid.toString(),
        objects: cids.length,
        objectBytes,
        pinned,
        indexBlocks: index.length,
        path: outPath,
    };
}

export interface CarImportResult {
    roots: string[];
    /** Raw sha2-256 blocks verified and stored. */
    imported: number;
    /** Other blocks (e.g. the export index): verified and skipped, the store holds raw objects only. */
    skipped: number;
}

/**
 * Reads a CAR (e.g. one written by exportCar, or `ipfs dag export` of raw blocks) into the store.
 * Every block is checked against its CID; one bad block fails the import with IntegrityError.
 * @throws {StorageUnavailableError} when: cannot read CAR file …: …; CAR import from … failed: …
 * @throws {IntegrityError} when: CAR file …: block … does not match its CID
 */
export async function importCar(
    store: EmbeddedObjectStore,
    carPath: string,
    options: { pin?: boolean } = {},
): Promise<CarImportResult> {
    let blocks: CarBlockIterator;
    try {
        blocks = await CarBlockIterator.fromIterable(createReadStream(carPath));
    } catch (err) {
        throw new StorageUnavailableError(`cannot read CAR file ${carPath}: ${String(err)}`, { cause: err });
    }
    const roots = (await blocks.getRoots()).map((c) => c.toString());
    let imported = 0;
    let skipped = 0;
    let batch: Uint8Array[] = [];
    const flush = async (): Promise<void> => {
        if (batch.length === 0) return;
        imported += (await store.putMany(batch, { pin: options.pin ?? true })).length;
        batch = [];
    };
    try {
        for await (const { cid, bytes } of blocks) {
            const id = cid.toString();
            if (cid.version === 1 && cid.code === RAW_CODEC && cid.multihash.code === SHA2_256) {
                batch.push(verifiedObject(id, bytes, `CAR file ${carPath}`));
                if (batch.length >= IMPORT_BATCH) await flush();
            } else {
                if (cid.multihash.code === SHA2_256) {
                    const digest = await sha256.digest(bytes);
                    if (!CID.create(cid.version, cid.code, digest).equals(cid)) {
                        throw new IntegrityError(
                            id,
                            undefined,
                            `CAR file ${carPath}: block ${id} does not match its CID`,
                        );
                    }
                }
                skipped++;
            }
        }
        await flush();
    } catch (err) {
        if (err instanceof StorageError) throw err;
        throw new StorageUnavailableError(`CAR import from ${carPath} failed: ${String(err)}`, { cause: err });
    }
    return { roots, imported, skipped };
}

/**
 * CLI entry (wired into `m2m` by the services): exports the embedded store in `storeDir` to `out`.
 * Returns the summary to print; the root CID is what `ipfs dag import` reports as pinned.
 */
export async function exportStoreToCar(args: {
    storeDir: string;
    out: string;
    pinnedOnly?: boolean;
}): Promise<CarExportResult> {
    const store = await EmbeddedObjectStore.open(args.storeDir);
    try {
        return await exportCar(store, args.out, { pinnedOnly: args.pinnedOnly ?? false });
    } finally {
        await store.close();
    }
}

/** CLI entry: imports a CAR file into the embedded store in `storeDir`. */
export async function importCarToStore(args: {
    storeDir: string;
    car: string;
    pin?: boolean;
}): Promise<CarImportResult> {
    const store = await EmbeddedObjectStore.open(args.storeDir);
    try {
        return await importCar(store, args.car, { pin: args.pin ?? true });
    } finally {
        await store.close();
    }
}
