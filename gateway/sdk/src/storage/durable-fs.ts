/**
 * Crash-safe file writes for the embedded store. blockstore-fs writes through `steno` (temp file +
 * rename) but never fsyncs, so an acknowledged put could vanish on power loss. Here a write is
 * acknowledged only after the file's bytes and its directory entry have both reached the disk:
 * write a temp file → fsync it → rename into place (atomic) → fsync the directory.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** fsync a directory so the names created or removed in it are durable (Linux, macOS). */
export async function fsyncDirectory(directory: string): Promise<void> {
    const handle = await open(directory, 'r');
    try {
        await handle.sync();
    } finally {
        await handle.close();
    }
}

/**
 * Creates `directory` (and missing parents) and, for each level it had to create, fsyncs the parent
 * so the new directory entry survives a crash. Returns true when something was created.
 */
export async function ensureDirectoryDurable(directory: string): Promise<boolean> {
    const first = await mkdir(directory, { recursive: true });
    if (first === undefined) return false;
    // mkdir returns the first directory it created; every directory from its parent down to
    // `directory` gained an entry.
    const created: string[] = [];
    for (let dir = directory; dir.length >= first.length; dir = dirname(dir)) {
        created.push(dir);
        if (dir === first) break;
    }
    for (const dir of created) {
        await fsyncDirectory(dirname(dir));
    }
    return true;
}

/**
 * Writes `bytes` to a fresh temp file in `tmpDirectory` and fsyncs it; the caller then renames it
 * into place (possibly after staging many files, to fsync each target directory once).
 */
export async function writeTempFileSynced(tmpDirectory: string, bytes: Uint8Array): Promise<string> {
    const path = join(tmpDirectory, `${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
    const handle = await open(path, 'wx', 0o644);
    try {
        await handle.writeFile(bytes);
        await handle.sync();
    } catch (err) {
        await handle.close();
        await unlink(path).catch(() => undefined);
        throw err;
    }
    await handle.close();
    return path;
}

/** Atomically replaces `target` with `bytes`, durable on return. `tmpDirectory` must be on the same file system. */
export async function writeFileDurable(tmpDirectory: string, target: string, bytes: Uint8Array): Promise<void> {
    const temp = await writeTempFileSynced(tmpDirectory, bytes);
    try {
        await rename(temp, target);
    } catch (err) {
        await unlink(temp).catch(() => undefined);
        throw err;
    }
    await fsyncDirectory(dirname(target));
}

/** Runs `task` over `items` with at most `limit` in flight; results in input order. */
export async function mapBounded<T, R>(
    items: readonly T[],
    limit: number,
    task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
    const results = new Array<R>(items.length);
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
        while (!failed && next < items.length) {
            const index = next++;
            try {
                results[index] = await task(items[index] as T, index);
            } catch (err) {
                // Stop handing out work; the first error rejects the whole map.
                failed = true;
                throw err;
            }
        }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    return results;
}
