/**
 * Files that hold secrets (keys, device state): created 0600 inside 0700 directories and replaced
 * atomically, so a crash leaves either the old or the new content, never a torn file.
 *
 * Atomic replace = write a temporary file in the same directory, fsync it, rename it over the
 * target, then fsync the directory so the rename itself is durable.
 */
import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, rm, chmod, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const SECRET_FILE_MODE = 0o600;
export const SECRET_DIR_MODE = 0o700;

/** Creates `dir` (and parents) with mode 0700 when missing. */
export async function ensureSecretDir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: SECRET_DIR_MODE });
}

async function fsyncDir(dir: string): Promise<void> {
    const handle = await open(dir, constants.O_RDONLY);
    try {
        await handle.sync();
    } finally {
        await handle.close();
    }
}

/** Replaces `path` with `data` atomically and durably; the file is mode 0600. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
    const dir = dirname(path);
    const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
    let handle: FileHandle;
    try {
        handle = await open(tmp, 'wx', SECRET_FILE_MODE);
    } catch (err) {
        // The directory is created (0700) the first time only: a device writes its state file
        // three times per session, and on a Raspberry Pi every syscall saved counts.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await ensureSecretDir(dir);
        handle = await open(tmp, 'wx', SECRET_FILE_MODE);
    }
    try {
        await handle.writeFile(data);
        await handle.sync();
    } catch (err) {
        await handle.close();
        await rm(tmp, { force: true });
        throw err;
    }
    await handle.close();
    // A umask can only clear bits, but be explicit: secrets are never group/world readable.
    await chmod(tmp, SECRET_FILE_MODE);
    await rename(tmp, path);
    await fsyncDir(dir);
}

/** Writes a JSON document atomically (see {@link writeFileAtomic}). */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
    await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Reads a JSON document; undefined when the file does not exist. */
export async function readJsonFile(path: string): Promise<unknown> {
    let text: string;
    try {
        text = await readFile(path, 'utf8');
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
    }
    return JSON.parse(text) as unknown;
}
