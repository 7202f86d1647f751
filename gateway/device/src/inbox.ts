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
 *
 * A grant of certificates in another suite than the device's (after the CSP moved its CA to another
 * suite: docs/protocol.md#rotation-to-another-suite) also names its first counter and the suite;
 * merging records that range in `counterSuites`, so the device builds those sessions in that suite.
 */
import { readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { readJsonFile, writeJsonAtomic } from '@m2m-fabric/common';
import { ALL_SUITES } from '@m2m-fabric/protocol';
import type { DeviceStateFile } from './state.js';

export interface SessionGrant {
    version: 1;
    equipmentId: string;
    /** One past the last purchased counter (decimal). */
    endCounter: string;
    createdAt: string;
    /** The purchase's suite, when it is not the device's provisioning suite (with firstCounter). */
    suite?: string;
    /** The first counter of the purchase (decimal); given with `suite`. */
    firstCounter?: string;
}

/** A purchase in another suite than the device's: counters [firstCounter, endCounter) are in `suite`. */
export interface GrantSuite {
    suite: string;
    firstCounter: bigint;
}

const GRANT_FILE = /^grant-[0-9a-z-]+\.json$/;

export function inboxDirFor(statePath: string): string {
    return `${statePath}.inbox`;
}

/** Drops a grant into the device's inbox; durable when this resolves. Returns the grant file. */
export async function deliverGrant(
    statePath: string,
    equipmentId: string,
    endCounter: bigint,
    inSuite?: GrantSuite,
): Promise<string> {
    const grant: SessionGrant = {
        version: 1,
        equipmentId,
        endCounter: endCounter.toString(),
        createdAt: new Date().toISOString(),
        ...(inSuite === undefined ? {} : { suite: inSuite.suite, firstCounter: inSuite.firstCounter.toString() }),
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
    const counters =
        grant?.version === 1 &&
        grant.equipmentId === equipmentId &&
        typeof grant.endCounter === 'string' &&
        /^[1-9]\d{0,30}$/.test(grant.endCounter);
    if (!counters) return false;
    if (grant.suite === undefined && grant.firstCounter === undefined) return true;
    return (
        typeof grant.suite === 'string' &&
        ALL_SUITES.some((s) => s.id === grant.suite) &&
        typeof grant.firstCounter === 'string' &&
        /^[1-9]\d{0,30}$/.test(grant.firstCounter) &&
        BigInt(grant.firstCounter) < BigInt(grant.endCounter)
    );
}

/** Records a grant's suite range in the state; whether it was new. */
function addSuiteRange(state: DeviceStateFile, grant: SessionGrant): boolean {
    if (grant.suite === undefined || grant.firstCounter === undefined || grant.suite === state.suite) return false;
    const ranges = state.counterSuites ?? [];
    if (ranges.some((r) => r.from === grant.firstCounter && r.to === grant.endCounter && r.suite === grant.suite))
        return false;
    state.counterSuites = [...ranges, { from: grant.firstCounter, to: grant.endCounter, suite: grant.suite }].sort(
        (a, b) => (BigInt(a.from) < BigInt(b.from) ? -1 : 1),
    );
    return true;
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
    let changed = false;
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
        if (addSuiteRange(state, grant)) changed = true;
        done.push(path);
    }
    if (end > BigInt(state.endCounter)) {
        state.endCounter = end.toString();
        changed = true;
    }
    if (changed) await persist();
    for (const path of done) await unlink(path).catch(() => undefined);
    return { merged: done.length, rejected, endCounter: end };
}
