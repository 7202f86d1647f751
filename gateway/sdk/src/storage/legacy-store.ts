/**
 * Format 1 of the embedded store (one fsync'd file per object in blockstore-fs's layout:
 * blocks/<next-to-last two characters>/<base32upper multihash>.data, pins/ the same with empty
 * marker files). Stores in that format are migrated into segments when opened: every object is read,
 * verified against its CID and appended with its pin state; only then does the marker switch to
 * format 2 and the old directories go. A crash before the switch leaves format 1 intact (the next
 * open migrates again; the partial copies become duplicates, which the index ignores).
 */
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { base32upper } from 'multiformats/bases/base32';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import { contentAddress } from '@m2m-fabric/protocol';
import { StorageUnavailableError } from './errors.js';

const RAW_CODEC = 0x55;
const EXTENSION = '.data';
const MIGRATION_BATCH = 1000;

/** blockstore-fs names a block file by the base32upper multihash; the store holds raw blocks only. */
function cidFromFileName(name: string): string | undefined {
    try {
        return CID.createV1(RAW_CODEC, Digest.decode(base32upper.decode(name))).toString();
    } catch {
        return undefined;
    }
}

async function* files(root: string): AsyncGenerator<{ path: string; cid: string }> {
    let shards;
    try {
        shards = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory());
    } catch (err) {
        if ((err as { code?: string }).code === 'ENOENT') return;
        throw err;
    }
    shards.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const shard of shards) {
        const names = (await readdir(join(root, shard.name))).sort();
        for (const name of names) {
            if (!name.endsWith(EXTENSION)) continue;
            const cid = cidFromFileName(name.slice(0, -EXTENSION.length));
            if (cid !== undefined) yield { path: join(root, shard.name, name), cid };
        }
    }
}

/**
 * Copies every object of the format-1 store in `directory` through `append` (which makes them
 * durable) and returns how many there were.
 *
 * @throws StorageUnavailableError naming the file when an object does not match its CID (nothing is
 * switched over then: the format-1 store stays as it was, to be repaired or the file removed).
 */
export async function migrateLegacyStore(
    directory: string,
    append: (objects: { bytes: Uint8Array; pinned: boolean }[]) => Promise<void>,
): Promise<number> {
    const pinned = new Set<string>();
    for await (const { cid } of files(join(directory, 'pins'))) pinned.add(cid);
    let batch: { bytes: Uint8Array; pinned: boolean }[] = [];
    let count = 0;
    for await (const { path, cid } of files(join(directory, 'blocks'))) {
        const bytes = new Uint8Array(await readFile(path));
        if (contentAddress(bytes) !== cid) {
            throw new StorageUnavailableError(
                `cannot migrate the format-1 store in ${directory}: ${path} does not hold ${cid} (repair or remove it)`,
            );
        }
        batch.push({ bytes, pinned: pinned.has(cid) });
        count++;
        if (batch.length === MIGRATION_BATCH) {
            await append(batch);
            batch = [];
        }
    }
    await append(batch);
    return count;
}

export const legacyMarker = {
    /** Removes the format-1 directories (after the marker names format 2). */
    async remove(directory: string): Promise<void> {
        for (const name of ['blocks', 'pins']) {
            const path = join(directory, name);
            try {
                await stat(path);
            } catch {
                continue;
            }
            await rm(path, { recursive: true, force: true });
        }
    },
};
