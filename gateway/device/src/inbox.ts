/**
 * The provisioning inbox of a device state file (`<state>.inbox/`): how a purchase reaches a
 * device whose agent is running. The manufacturer never rewrites the state file under a running
 * agent; it drops a grant file here (written atomically: temp file, fsync, rename) and the agent —
 * the state file's only writer while it holds the lock (state-lock.ts) — merges it.
 *
 * A grant says "counters below endCounter are purchased". Merging is `endCounter = max(endCounter,
 * grant)`, persisted in the state file BEFORE the grant file is removed, so a crash between the two
 * merges the same grant again to the same result. Merging never touches `nextCounter`, so a
 * counter can never be handed out twice.
 */
import { readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { readJsonFile, writeJsonAtomic } from '@m2m-fabric/common';
import type { DeviceStateFile } from './state.js';

export interface SessionGrant {
    version: 1;
    equipmentId: string;
    /** One past the last purchased counter (decimal). */
    endCounter: string;
    createdAt: string;
}

const GRANT_FILE = /^grant-[0-9a-z-]+\.json$/;

export function inboxDirFor(statePath: string): string {
    return `${statePath}.inbox`;
}

/** Drops a grant into the device's inbox; durable when this resolves. Returns the grant file. */
export async function deliverGrant(statePath: string, equipmentId: string, endCounter: bigint): Promise<string> {
    const grant: SessionGrant = {
        version: 1,
        equipmentId,
        endCounter: endCounter.toString(),
        createdAt: new Date().toISOString(),
    };
    const file = join(
        inboxDirFor(statePath),
        `grant-${endCounter.toString().padStart(12, '0')}-${randomBytes(4).toString('hex')}.json`,
    );
    await writeJsonAtomic(file, grant);
    return file;
}

/** Grant files waiting in the inbox (names only; temp files of an interrupted delivery are ignored). */
export async function pendingGrantFiles(statePath: string): Promise<string[]> {
    try {
        return (await readdir(inboxDirFor(statePath))).filter((n) => GRANT_FILE.test(n)).sort();
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
    }
}

function validGrant(g: unknown, equipmentId: string): g is SessionGrant {
    const grant = g as SessionGrant | undefined;
    return (
        grant?.version === 1 &&
        grant.equipmentId === equipmentId &&
        typeof grant.endCounter === 'string' &&
        /^[1-9]\d{0,30}$/.test(grant.endCounter)
    );
}

export interface MergeResult {
    /** Grants applied (including ones already reflected in the state). */
    merged: number;
    /** Grants for another device or unreadable: moved aside as `rejected-…`, never applied. */
    rejected: number;
    /** endCounter after the merge. */
    endCounter: bigint;
}

/**
 * Merges the inbox into `state` (mutated) and removes the merged grant files. The caller must own
 * the state file (hold its lock); `persist` writes `state` durably and is called before any grant
 * file is removed, and only when the purchased range grew.
 */
export async function mergeInbox(
    statePath: string,
    state: DeviceStateFile,
    persist: () => Promise<void>,
): Promise<MergeResult> {
    const dir = inboxDirFor(statePath);
    const names = await pendingGrantFiles(statePath);
    let end = BigInt(state.endCounter);
    const done: string[] = [];
    let rejected = 0;
    for (const name of names) {
        const path = join(dir, name);
        let grant: unknown;
        try {
            grant = await readJsonFile(path);
            if (grant === undefined) continue; // merged and removed meanwhile
        } catch {
            grant = undefined; // unparsable
        }
        if (!validGrant(grant, state.equipmentId)) {
            rejected++;
            await rename(path, join(dir, `rejected-${name}`)).catch(() => undefined);
            continue;
        }
        const g = BigInt(grant.endCounter);
        if (g > end) end = g;
        done.push(path);
    }
    if (end > BigInt(state.endCounter)) {
        state.endCounter = end.toString();
        await persist();
    }
    for (const path of done) await unlink(path).catch(() => undefined);
    return { merged: done.length, rejected, endCounter: end };
}
