/**
 * Files that hold secrets (keys, device state): created 0600 inside 0700 directories and replaced
 * atomically, so a crash leaves either the old or the new content, never a torn file.
 *
 * Atomic replace = write a temporary file in the same directory, fsync it, rename it over the
 * target, then fsync the directory so the rename itself is durable.
 */
import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, rm, chmod, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ServiceError, ServiceErrorCode } from './errors.js';

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

/**
 * A persisted file that cannot be used as it is: unparsable (empty, truncated, random bytes), a
 * field missing or out of range (`corruptFile`), or readable by others (`insecureFile`). The
 * message names the file, so an operator knows which one to restore or re-provision.
 */
export class PersistedFileError extends ServiceError {
    constructor(
        code: typeof ServiceErrorCode.CorruptFile | typeof ServiceErrorCode.InsecureFile,
        readonly path: string,
        detail: string,
        options?: ErrorOptions,
    ) {
        super(code, `${path}: ${detail}`, options);
        this.name = 'PersistedFileError';
    }
}

export interface ReadSecretOptions {
    /**
     * What to do with a file that group or others may read or write: `'fix'` (default) makes it
     * 0600 and reports it through `onWarning`; `'refuse'` throws `insecureFile`; `'ignore'` is for
     * files that hold no secret.
     */
    insecureMode?: 'fix' | 'refuse' | 'ignore';
    /** Receives the warning when an insecure mode was fixed (default: process.emitWarning). */
    onWarning?: (message: string) => void;
}

/**
 * Reads a JSON document; undefined when the file does not exist.
 *
 * @throws PersistedFileError `corruptFile` when the content is not JSON (empty, truncated, random
 * bytes), `insecureFile` when the file is readable by others and `insecureMode` is `'refuse'`.
 */
export async function readJsonFile(path: string, options: ReadSecretOptions = {}): Promise<unknown> {
    let text: string;
    try {
        text = await readFile(path, 'utf8');
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
    }
    const policy = options.insecureMode ?? 'fix';
    if (policy !== 'ignore') {
        const mode = (await stat(path)).mode & 0o777;
        if ((mode & 0o077) !== 0) {
            const octal = mode.toString(8).padStart(4, '0');
            if (policy === 'refuse')
                throw new PersistedFileError(
                    ServiceErrorCode.InsecureFile,
                    path,
                    `mode ${octal} lets other users read a secret; chmod 600 it (and consider the secret exposed)`,
                );
            await chmod(path, SECRET_FILE_MODE);
            const warning = `${path} had mode ${octal}; changed to 0600 (another user may have read it)`;
            if (options.onWarning !== undefined) options.onWarning(warning);
            else process.emitWarning(warning, { code: 'M2M_INSECURE_FILE' });
        }
    }
    if (text.trim() === '') throw new PersistedFileError(ServiceErrorCode.CorruptFile, path, 'the file is empty');
    try {
        return JSON.parse(text) as unknown;
    } catch (err) {
        throw new PersistedFileError(
            ServiceErrorCode.CorruptFile,
            path,
            `not valid JSON (truncated or overwritten?): ${(err as Error).message}`,
            { cause: err },
        );
    }
}

/**
 * Throws `corruptFile` naming `path` unless `cond` holds.
 * @throws {PersistedFileError} `corruptFile`
 */
export function checkField(cond: boolean, path: string, what: string): asserts cond {
    if (!cond) throw new PersistedFileError(ServiceErrorCode.CorruptFile, path, what);
}

/** True when `value` is a plain JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
}
