/**
 * The CSP's durable per-device instruction outbox. An instruction is written here (append-only
 * log, fsynced: util/durable-map.ts) before sendInstruction — or the `m2m csp instruct` command —
 * returns, is delivered in order over the device's session channel when that is next available,
 * and is removed only when the device acknowledged the Download frame that carried it. A CSP
 * restart replays the log, so nothing acknowledged to the caller is lost.
 *
 * Instructions from another process (the CLI) arrive through a spool directory
 * (`<data dir>/instruction-spool/`): one atomically written file each. Taking one in is exactly-once:
 * the instruction and a tombstone naming the spool file are made durable together, then the file
 * is removed; a file whose tombstone exists is only removed. A tombstone is dropped once its file
 * is gone.
 */
import { randomBytes } from 'node:crypto';
import { readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fromBase64Url, toBase64Url } from '@m2m-fabric/protocol';
import { DurableMap } from '../util/durable-map.js';
import { readJsonFile, writeJsonAtomic } from '@m2m-fabric/common';

/** Who an instruction is for: a device (its equipment id, as revealed in its telemetry) or one session. */
export type InstructionTarget = { equipmentId: string } | { routeId: string };

export interface QueuedInstruction {
    /** Increasing over the CSP's lifetime (never reused): the device drops ids it already handled. */
    id: string;
    /** `eq:<equipmentId>` or `route:<routeId>`. */
    target: string;
    /** base64url. */
    payload: string;
    queuedAt: number;
    /** The latest delivery attempt; the instruction stays until this frame is acknowledged. */
    sent?: { routeId: string; seq: string; clientId: string; at: number };
}

interface NextId {
    next: string;
}
interface Tombstone {
    spooled: number;
}
type Record_ = QueuedInstruction | NextId | Tombstone;

const NEXT_KEY = '#next';
const SPOOL_DIR = 'instruction-spool';
const SPOOL_FILE = /^instr-[0-9a-f]{24}\.json$/;

interface SpoolFile {
    version: 1;
    equipmentId?: string;
    routeId?: string;
    payload: string;
    spooledAt: string;
}

export function targetKey(target: InstructionTarget): string {
    return 'equipmentId' in target ? `eq:${target.equipmentId}` : `route:${target.routeId}`;
}

export function spoolDirFor(dataDir: string): string {
    return join(dataDir, SPOOL_DIR);
}

/**
 * Hands an instruction to a CSP from another process (the `m2m csp instruct` command): durable on
 * disk when this resolves, taken into the CSP's outbox when it runs (now or after a start).
 */
export async function spoolInstruction(
    dataDir: string,
    target: InstructionTarget,
    payload: Uint8Array,
): Promise<string> {
    const file = join(spoolDirFor(dataDir), `instr-${randomBytes(12).toString('hex')}.json`);
    const body: SpoolFile = {
        version: 1,
        ...target,
        payload: toBase64Url(payload),
        spooledAt: new Date().toISOString(),
    };
    await writeJsonAtomic(file, body);
    return file;
}

export class InstructionOutbox {
    private constructor(
        private readonly map: DurableMap<Record_>,
        private readonly dataDir: string,
    ) {}

    static async open(dataDir: string): Promise<InstructionOutbox> {
        return new InstructionOutbox(await DurableMap.open<Record_>(join(dataDir, 'csp-instructions.jsonl')), dataDir);
    }

    private nextId(): bigint {
        const n = this.map.get(NEXT_KEY) as NextId | undefined;
        return BigInt(n?.next ?? '1');
    }

    /** Queues an instruction durably; returns it once it is on disk. */
    async add(target: string, payload: Uint8Array, extra: Record<string, Tombstone> = {}): Promise<QueuedInstruction> {
        const id = this.nextId();
        const item: QueuedInstruction = {
            id: id.toString(),
            target,
            payload: toBase64Url(payload),
            queuedAt: Date.now(),
        };
        // One group commit in practice; even if only #next lands, an id is merely skipped.
        await Promise.all([
            this.map.set(NEXT_KEY, { next: (id + 1n).toString() }),
            this.map.set(`i:${item.id.padStart(20, '0')}`, item),
            ...Object.entries(extra).map(([k, v]) => this.map.set(k, v)),
        ]);
        return item;
    }

    /** Pending instructions for any of `targets`, oldest first. */
    pending(targets?: readonly string[]): QueuedInstruction[] {
        const out: QueuedInstruction[] = [];
        for (const [k, v] of this.map.entries()) {
            if (!k.startsWith('i:')) continue;
            const item = v as QueuedInstruction;
            if (targets === undefined || targets.includes(item.target)) out.push(item);
        }
        return out.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : BigInt(a.id) > BigInt(b.id) ? 1 : 0));
    }

    get size(): number {
        let n = 0;
        for (const k of this.map.entries()) if (k[0].startsWith('i:')) n++;
        return n;
    }

    async markSent(item: QueuedInstruction, sent: NonNullable<QueuedInstruction['sent']>): Promise<void> {
        item.sent = sent;
        await this.map.set(`i:${item.id.padStart(20, '0')}`, item);
    }

    /** Removes the instruction whose latest delivery was frame `seq` on `routeId`; undefined if none. */
    async acknowledge(routeId: string, seq: bigint): Promise<QueuedInstruction | undefined> {
        const s = seq.toString();
        const item = this.pending().find((i) => i.sent?.routeId === routeId && i.sent.seq === s);
        if (item !== undefined) await this.map.delete(`i:${item.id.padStart(20, '0')}`);
        return item;
    }

    static payloadOf(item: QueuedInstruction): Uint8Array {
        return fromBase64Url(item.payload);
    }

    /** Takes in the spool directory's files (exactly once each); returns the instructions added. */
    async takeSpool(): Promise<QueuedInstruction[]> {
        const dir = spoolDirFor(this.dataDir);
        let names: string[];
        try {
            names = (await readdir(dir)).filter((n) => SPOOL_FILE.test(n)).sort();
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') names = [];
            else throw err;
        }
        const added: QueuedInstruction[] = [];
        for (const name of names) {
            const path = join(dir, name);
            const tomb = `spool:${name}`;
            if (!this.map.has(tomb)) {
                let f: SpoolFile | undefined;
                try {
                    f = (await readJsonFile(path)) as SpoolFile | undefined;
                } catch {
                    f = undefined;
                }
                if (f === undefined) continue;
                const target =
                    typeof f.equipmentId === 'string'
                        ? { equipmentId: f.equipmentId }
                        : typeof f.routeId === 'string'
                          ? { routeId: f.routeId }
                          : undefined;
                let payload: Uint8Array | undefined;
                try {
                    payload = fromBase64Url(f.payload);
                } catch {
                    payload = undefined;
                }
                if (f.version !== 1 || target === undefined || payload === undefined) {
                    await rename(path, join(dir, `rejected-${name}`)).catch(() => undefined); // for an operator
                    continue;
                }
                added.push(await this.add(targetKey(target), payload, { [tomb]: { spooled: Date.now() } }));
            }
            await unlink(path).catch(() => undefined);
        }
        // Tombstones whose file is gone can never match again (spool names are random).
        const present = new Set(names);
        for (const [k] of [...this.map.entries()]) {
            if (k.startsWith('spool:') && !present.has(k.slice('spool:'.length))) await this.map.delete(k);
        }
        return added;
    }

    close(): Promise<void> {
        return this.map.close();
    }
}
