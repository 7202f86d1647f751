/**
 * Exclusive ownership of a device state file. The running device agent holds `<state>.lock` for
 * as long as it is open, so it is the only writer of the state file; the manufacturer takes the
 * lock only for a moment when no agent runs, and otherwise delivers purchases through the
 * provisioning inbox (device/inbox.ts). Two writers therefore never race on `nextCounter`, and two
 * agents never run one device (which would reuse counters).
 *
 * The lock file is created complete or not at all: its content (pid, host, a random nonce) is
 * written to a temporary file that is then hard-linked to the lock name — link(2) fails if the name
 * exists, atomically. A lock left by a crashed process on this host (its pid is gone) is stale and
 * is broken: renamed aside, checked to be the same stale lock (nonce), then removed. The holder
 * re-checks its nonce before every state write, so a holder whose lock was taken from it stops
 * writing instead of racing. The check is one stat(2) of the lock name while the file is unchanged
 * since the nonce was last read (same device, inode and change time), else a read of the nonce:
 * every taker that follows this protocol links a new file, and a rewrite in place changes the
 * change time once the kernel's timestamp tick (a few ms) has passed.
 * (Reading the file back before every write — open, fstat, read, close — was ~11 % of the device
 * agents' CPU in a profile of `npm run bench -- kx`'s saturation phase.)
 */
import { randomBytes } from 'node:crypto';
import { link, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { ServiceError, ServiceErrorCode } from '@m2m-fabric/common';
import { ensureSecretDir, PersistedFileError, readJsonFile, SECRET_FILE_MODE } from '@m2m-fabric/common';

interface LockContent {
    pid: number;
    host: string;
    nonce: string;
    /** ISO time the lock was taken (absent in a lock written by hand or an older version). */
    since?: string;
}

/**
 * An unreadable lock file (empty, truncated, not ours) older than this is left over, not being
 * written: the protocol only ever links a complete file under the lock name.
 */
const UNREADABLE_LOCK_GRACE_MS = 2_000;
/** Leftover temporary and set-aside lock files (a crash between create and unlink) older than this are removed. */
const LEFTOVER_MS = 60_000;

export function lockPathFor(statePath: string): string {
    return `${statePath}.lock`;
}

function pidAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (err) {
        // EPERM: the process exists but belongs to someone else.
        return (err as NodeJS.ErrnoException).code !== 'ESRCH';
    }
}

async function readLock(path: string): Promise<LockContent | undefined | 'unreadable'> {
    let c: LockContent | undefined;
    try {
        // The lock holds no secret: its mode is left as it is.
        c = (await readJsonFile(path, { insecureMode: 'ignore' })) as LockContent | undefined;
    } catch (err) {
        if (err instanceof PersistedFileError) return 'unreadable';
        throw err;
    }
    if (c === undefined) return undefined;
    if (typeof c !== 'object' || c === null) return 'unreadable';
    if (typeof c.pid !== 'number' || typeof c.host !== 'string' || typeof c.nonce !== 'string') return 'unreadable';
    if (c.since !== undefined && typeof c.since !== 'string') return 'unreadable';
    return c;
}

/** Start time (ms since the epoch) of a process on this Linux host, or undefined when unknown. */
async function processStartMs(pid: number): Promise<number | undefined> {
    try {
        const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
        // Field 22 (starttime, clock ticks since boot) follows the parenthesised command name.
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const ticks = Number(fields[19]);
        const btime = /^btime (\d+)$/m.exec(await readFile('/proc/stat', 'utf8'));
        if (!Number.isFinite(ticks) || btime === null) return undefined;
        // USER_HZ is 100 on every Linux ABI node runs on.
        return Number(btime[1]) * 1000 + ticks * 10;
    } catch {
        return undefined;
    }
}

/**
 * A lock is stale when its process on this host is gone, or when its pid now belongs to a process
 * started after the lock was taken (pid reuse after a crash and reboot).
 */
async function isStale(c: LockContent): Promise<boolean> {
    if (c.host !== hostname()) return false;
    if (!pidAlive(c.pid)) return true;
    const since = c.since === undefined ? NaN : Date.parse(c.since);
    if (!Number.isFinite(since)) return false;
    const started = await processStartMs(c.pid);
    // 1 s of slack: boot time and start ticks are coarse.
    return started !== undefined && started > since + 1_000;
}

/** Removes temporary and set-aside lock files that a crashed taker left in `dir`. */
async function removeLeftovers(dir: string, lockName: string): Promise<void> {
    let names: string[];
    try {
        names = await readdir(dir);
    } catch {
        return;
    }
    const now = Date.now();
    for (const name of names) {
        const leftover =
            (name.startsWith(`.${lockName}.`) && name.endsWith('.tmp')) || name.startsWith(`${lockName}.stale-`);
        if (!leftover) continue;
        const p = join(dir, name);
        try {
            if (now - (await stat(p)).mtimeMs > LEFTOVER_MS) await unlink(p);
        } catch {
            // gone meanwhile
        }
    }
}

/** What identifies one lock file: removing, replacing or rewriting it changes at least one. */
interface LockIdentity {
    dev: bigint;
    ino: bigint;
    ctimeNs: bigint;
}

async function identityOf(path: string): Promise<LockIdentity | undefined> {
    try {
        const st = await stat(path, { bigint: true });
        return { dev: st.dev, ino: st.ino, ctimeNs: st.ctimeNs };
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
    }
}

export class DeviceStateLock {
    private released = false;

    private constructor(
        readonly path: string,
        private readonly nonce: string,
        private identity: LockIdentity,
    ) {}

    /**
     * Takes the lock of `statePath`. A lock held by a live process is waited for up to `waitMs`
     * (0 = not at all), then refused with ServiceError `deviceBusy`; a stale one is broken.
     * @throws {ServiceError} `deviceBusy` when: … is in use by … (a device agent runs on it); stop it first, or remove … if that process is gone
     */
    static async acquire(statePath: string, options: { waitMs?: number } = {}): Promise<DeviceStateLock> {
        const path = lockPathFor(statePath);
        const dir = dirname(path);
        await ensureSecretDir(dir);
        await removeLeftovers(dir, basename(path));
        const deadline = Date.now() + (options.waitMs ?? 0);
        for (;;) {
            const content: LockContent = {
                pid: process.pid,
                host: hostname(),
                nonce: randomBytes(12).toString('hex'),
                since: new Date().toISOString(),
            };
            const tmp = join(dir, `.${basename(path)}.${content.nonce}.tmp`);
            const h = await open(tmp, 'wx', SECRET_FILE_MODE);
            try {
                await h.writeFile(JSON.stringify(content));
                await h.sync();
            } finally {
                await h.close();
            }
            let linked = false;
            try {
                await link(tmp, path);
                linked = true;
            } catch (err) {
                if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
            } finally {
                await unlink(tmp).catch(() => undefined);
            }
            if (linked) {
                // Taken after the temporary name is gone (unlinking it changes the file's ctime). Were
                // the file not ours by now, the first assertHeld would find that from its nonce.
                const identity = await identityOf(path);
                if (identity !== undefined) return new DeviceStateLock(path, content.nonce, identity);
                continue; // removed by hand in between
            }
            const holder = await readLock(path);
            if (holder === undefined) continue; // released meanwhile
            if (holder !== 'unreadable' && (await isStale(holder))) {
                await DeviceStateLock.breakStale(path, holder);
                continue;
            }
            if (holder === 'unreadable' && (await DeviceStateLock.breakUnreadable(path))) continue;
            if (Date.now() >= deadline) {
                const who =
                    holder === 'unreadable'
                        ? 'an unreadable lock'
                        : `process ${holder.pid} on ${holder.host}${holder.since !== undefined ? ` since ${holder.since}` : ''}`;
                throw new ServiceError(
                    ServiceErrorCode.DeviceBusy,
                    `${statePath} is in use by ${who} (a device agent runs on it); stop it first, or remove ${path} if that process is gone`,
                );
            }
            await new Promise((r) => setTimeout(r, 50));
        }
    }

    /** Removes a stale lock without ever removing a live one that replaced it meanwhile. */
    private static async breakStale(path: string, stale: LockContent): Promise<void> {
        const aside = `${path}.stale-${randomBytes(6).toString('hex')}`;
        try {
            await rename(path, aside);
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
            throw err;
        }
        const moved = await readLock(aside);
        if (moved !== undefined && moved !== 'unreadable' && moved.nonce !== stale.nonce) {
            // Someone else broke the stale lock first and took a fresh one: put it back.
            await link(aside, path).catch(() => undefined);
        }
        await unlink(aside).catch(() => undefined);
    }

    /**
     * Removes an unreadable lock (empty or garbage: no taker following this protocol writes one)
     * once it is older than a grace period, set aside first so a fresh lock linked meanwhile is kept.
     */
    private static async breakUnreadable(path: string): Promise<boolean> {
        const before = await identityOf(path);
        if (before === undefined) return true;
        let mtimeMs: number;
        try {
            mtimeMs = (await stat(path)).mtimeMs;
        } catch {
            return true;
        }
        if (Date.now() - mtimeMs < UNREADABLE_LOCK_GRACE_MS) return false;
        const aside = `${path}.stale-${randomBytes(6).toString('hex')}`;
        try {
            await rename(path, aside);
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
            throw err;
        }
        const moved = await readLock(aside);
        if (moved !== undefined && moved !== 'unreadable') await link(aside, path).catch(() => undefined);
        await unlink(aside).catch(() => undefined);
        return true;
    }

    /**
     * Throws `deviceBusy` when the lock file no longer carries this holder's nonce.
     * @throws {ServiceError} `deviceBusy` when: lost the lock …; refusing to write the device state
     */
    async assertHeld(): Promise<void> {
        if (!this.released) {
            const now = await identityOf(this.path);
            if (
                now !== undefined &&
                now.dev === this.identity.dev &&
                now.ino === this.identity.ino &&
                now.ctimeNs === this.identity.ctimeNs
            )
                return;
            // Another file, or this one with changed metadata (a touch, a backup tool's xattrs): the
            // nonce inside decides, and a lock that is still ours is remembered as it is now.
            const held = await readLock(this.path);
            if (now !== undefined && held !== undefined && held !== 'unreadable' && held.nonce === this.nonce) {
                this.identity = now;
                return;
            }
        }
        throw new ServiceError(
            ServiceErrorCode.DeviceBusy,
            `lost the lock ${this.path}; refusing to write the device state`,
        );
    }

    async release(): Promise<void> {
        if (this.released) return;
        this.released = true;
        const c = await readLock(this.path);
        if (c !== undefined && c !== 'unreadable' && c.nonce === this.nonce) await unlink(this.path);
    }
}
