/**
 * The packed embedded object store at volume (part of `npm run bench -- storage`): for each
 * population N, N objects of 200 random bytes are put into a fresh store with 64 puts in flight
 * (each put is acknowledged only after its group's fdatasync), then the disk use is taken with
 * `du` (allocated blocks, every file of the store), the store is closed and reopened (the open
 * rebuilds the index by scanning the segments: timed), and 5,000 gets of uniformly random objects
 * (each verified against its CID) are timed one at a time after 1,000 unrecorded ones.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedObjectStore } from '@m2m-fabric/sdk';

const OBJECT_BYTES = 200;
const IN_FLIGHT = 64;
const GETS = 5000;
const WARMUP = 1000;

export interface ObjectStoreFigures {
    objects: number;
    objectBytes: number;
    putsPerSecond: number;
    /** du -sk of the whole store directory, scaled to 10⁶ objects. */
    diskMiB: number;
    mibPerMillionObjects: number;
    openSeconds: number;
    getP50Ms: number;
    getP99Ms: number;
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
        const kib = Number(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0]);
        const openStarted = performance.now();
        const reopened = await EmbeddedObjectStore.open(dir);
        const openSeconds = (performance.now() - openStarted) / 1000;
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
            openSeconds: round(openSeconds, 2),
            getP50Ms: round(quantile(times, 0.5), 4),
            getP99Ms: round(quantile(times, 0.99), 4),
        };
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}
