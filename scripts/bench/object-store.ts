/**
 * The packed embedded object store at volume (part of `npm run bench -- storage`): for each
 * population N, N objects of 200 random bytes are put into a fresh store with 64 puts in flight
 * (each put is acknowledged only after its group's fdatasync), then the disk use is taken with
 * `du` (allocated blocks, every file of the store, segment indexes included), the store is closed
 * (which seals its segments: their persisted indexes are written) and reopened REOPENS times from
 * the indexes, then REOPENS times with the indexes moved away (the open scans and hashes every
 * entry, as after a crash; the close after it writes them again), each open timed (median
 * reported), and 5,000 gets of uniformly random objects (each verified against its CID) are timed
 * one at a time after 1,000 unrecorded ones. The process keeps the N CIDs (as the callers of a
 * store do) while it reopens, so the open runs beside a live heap of the size the population brings.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedObjectStore } from '@m2m-fabric/sdk';

const OBJECT_BYTES = 200;
const IN_FLIGHT = 64;
const GETS = 5000;
const WARMUP = 1000;
const REOPENS = 3;

export interface ObjectStoreFigures {
    objects: number;
    objectBytes: number;
    putsPerSecond: number;
    /** du -sk of the whole store directory, scaled to 10⁶ objects. */
    diskMiB: number;
    mibPerMillionObjects: number;
    /** Median reopen, the index read from the sealed segments' index files. */
    openSeconds: number;
    /** Median reopen with the index files moved away: every segment scanned and every entry hashed. */
    scanOpenSeconds: number;
    /** CPU seconds of those opens (medians). */
    openCpuSeconds: number;
    scanOpenCpuSeconds: number;
    /** The segment index files' share of diskMiB. */
    indexMiB: number;
    getP50Ms: number;
    getP99Ms: number;
}

function median(values: number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/**
 * Opens the store in `dir`; returns the wall seconds the open took and the CPU seconds this process
 * spent meanwhile (user + system, GC threads included), which a loaded machine inflates far less.
 */
async function timedOpen(dir: string): Promise<{ seconds: number; cpuSeconds: number; store: EmbeddedObjectStore }> {
    const cpu = process.cpuUsage();
    const started = performance.now();
    const store = await EmbeddedObjectStore.open(dir);
    const used = process.cpuUsage(cpu);
    return { seconds: (performance.now() - started) / 1000, cpuSeconds: (used.user + used.system) / 1e6, store };
}

function quantile(sorted: number[], q: number): number {
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

export async function measureObjectStore(objects: number, parent = tmpdir()): Promise<ObjectStoreFigures> {
    const dir = mkdtempSync(join(parent, 'm2m-bench-objects-'));
    try {
        const store = await EmbeddedObjectStore.open(dir);
        const cids: string[] = new Array<string>(objects);
        let next = 0;
        const started = performance.now();
        let lastReport = started;
        const worker = async (): Promise<void> => {
            while (next < objects) {
                const i = next++;
                cids[i] = await store.put(randomBytes(OBJECT_BYTES));
                const now = performance.now();
                if (now - lastReport > 5000) {
                    lastReport = now;
                    console.error(`  objects: ${i.toLocaleString('en-US')} / ${objects.toLocaleString('en-US')} put`);
                }
            }
        };
        await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
        const putSeconds = (performance.now() - started) / 1000;
        await store.close();
        const du = (...paths: string[]): number =>
            paths.length === 0
                ? 0
                : Number(
                      execFileSync('du', ['-ck', ...paths], { encoding: 'utf8' })
                          .trim()
                          .split('\n')
                          .pop()
                          ?.split('\t')[0],
                  );
        const kib = du(dir);
        const segments = join(dir, 'segments');
        const indexFiles = (): string[] =>
            readdirSync(segments)
                .filter((n) => n.endsWith('.idx'))
                .map((n) => join(segments, n));
        const indexKib = du(...indexFiles());
        const fromIndex: number[] = [];
        const fromIndexCpu: number[] = [];
        for (let k = 0; k < REOPENS; k++) {
            const { seconds, cpuSeconds, store: opened } = await timedOpen(dir);
            if (opened.recovery.indexes.loaded === 0) throw new Error('object-store bench: no segment index was read');
            fromIndex.push(seconds);
            fromIndexCpu.push(cpuSeconds);
            await opened.close();
        }
        const fromScan: number[] = [];
        const fromScanCpu: number[] = [];
        for (let k = 0; k < REOPENS; k++) {
            for (const file of indexFiles()) renameSync(file, `${file}.away`);
            const { seconds, cpuSeconds, store: opened } = await timedOpen(dir);
            if (opened.recovery.indexes.loaded !== 0) throw new Error('object-store bench: an index was read');
            fromScan.push(seconds);
            fromScanCpu.push(cpuSeconds);
            // The close waits for the indexes the open is writing back.
            await opened.close();
            for (const n of readdirSync(segments).filter((f) => f.endsWith('.away'))) rmSync(join(segments, n));
        }
        console.error(
            `  objects: ${objects.toLocaleString('en-US')}: reopen from indexes ${fromIndex.map((s) => s.toFixed(2)).join(', ')} s (CPU ${fromIndexCpu.map((s) => s.toFixed(2)).join(', ')} s); by scan ${fromScan.map((s) => s.toFixed(2)).join(', ')} s (CPU ${fromScanCpu.map((s) => s.toFixed(2)).join(', ')} s)`,
        );
        const reopened = await EmbeddedObjectStore.open(dir);
        const times: number[] = [];
        for (let k = 0; k < WARMUP + GETS; k++) {
            const cid = cids[Math.floor(Math.random() * objects)] as string;
            const t0 = performance.now();
            await reopened.get(cid);
            if (k >= WARMUP) times.push(performance.now() - t0);
        }
        await reopened.close();
        times.sort((a, b) => a - b);
        const round = (x: number, digits: number): number => Number(x.toFixed(digits));
        return {
            objects,
            objectBytes: OBJECT_BYTES,
            putsPerSecond: Math.round(objects / putSeconds),
            diskMiB: round(kib / 1024, 1),
            mibPerMillionObjects: round((kib / 1024) * (1_000_000 / objects), 1),
            openSeconds: round(median(fromIndex), 2),
            scanOpenSeconds: round(median(fromScan), 2),
            openCpuSeconds: round(median(fromIndexCpu), 2),
            scanOpenCpuSeconds: round(median(fromScanCpu), 2),
            indexMiB: round(indexKib / 1024, 1),
            getP50Ms: round(quantile(times, 0.5), 4),
            getP99Ms: round(quantile(times, 0.99), 4),
        };
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}
