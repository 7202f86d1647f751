/**
 * Instruments for the lookup benchmark: percentiles, and the two things that make a tail on this
 * machine besides the work itself — garbage-collection pauses (PerformanceObserver 'gc') and time the
 * main thread spent runnable but waiting for a CPU (the run-queue wait of /proc/thread-self/schedstat,
 * i.e. other processes on the 2 shared cores). Each sample is tagged with both, so the report can say
 * what the slowest 1 % were made of instead of guessing.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';

export interface Distribution {
    p50: number;
    p90: number;
    p99: number;
    p999: number;
    mean: number;
    max: number;
}

/** Nearest-rank percentile of ascending values. */
export function percentile(sorted: readonly number[], p: number): number {
    if (sorted.length === 0) return Number.NaN;
    const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[rank] as number;
}

const round3 = (v: number): number => Math.round(v * 1000) / 1000;

export function distribution(values: readonly number[]): Distribution {
    const sorted = [...values].sort((a, b) => a - b);
    return {
        p50: round3(percentile(sorted, 50)),
        p90: round3(percentile(sorted, 90)),
        p99: round3(percentile(sorted, 99)),
        p999: round3(percentile(sorted, 99.9)),
        mean: round3(sorted.reduce((s, v) => s + v, 0) / Math.max(1, sorted.length)),
        max: round3(sorted[sorted.length - 1] ?? Number.NaN),
    };
}

/**
 * Cumulative run-queue wait of the calling thread in ms (Linux schedstat: time runnable but not
 * running). Read through one open descriptor with pread, ≈ 3 µs, outside the timed region.
 * Undefined where the file does not exist (not Linux, or no CONFIG_SCHED_INFO).
 */
export class RunQueueClock {
    private readonly fd: number | undefined;
    private readonly buffer = Buffer.alloc(128);

    constructor() {
        try {
            this.fd = openSync('/proc/thread-self/schedstat', 'r');
        } catch {
            this.fd = undefined;
        }
    }

    get available(): boolean {
        return this.fd !== undefined;
    }

    /** ms waited on the run queue since the thread started; NaN if unavailable. */
    waitMs(): number {
        if (this.fd === undefined) return Number.NaN;
        const n = readSync(this.fd, this.buffer, 0, this.buffer.length, 0);
        // "<ns on cpu> <ns waiting on a run queue> <timeslices>"
        const fields = this.buffer.toString('latin1', 0, n).split(' ');
        return Number(fields[1]) / 1e6;
    }

    close(): void {
        if (this.fd !== undefined) closeSync(this.fd);
    }
}

export interface GcPause {
    /** performance.now() clock, ms. */
    start: number;
    duration: number;
    kind: string;
}

const GC_KINDS: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };

/** A 'gc' performance entry; `detail.kind` is one of perf_hooks' NODE_PERFORMANCE_GC_* flags. */
function pauseOf(entry: { startTime: number; duration: number; detail?: unknown }): GcPause {
    const kind = (entry.detail as { kind?: number } | undefined)?.kind ?? 0;
    return { start: entry.startTime, duration: entry.duration, kind: GC_KINDS[kind] ?? 'other' };
}

/** Records every GC pause of this isolate between start() and stop(). */
export class GcRecorder {
    private readonly pauses: GcPause[] = [];
    private observer: PerformanceObserver | undefined;

    start(): void {
        this.observer = new PerformanceObserver((list) => {
            for (const entry of list.getEntries()) this.pauses.push(pauseOf(entry));
        });
        this.observer.observe({ entryTypes: ['gc'] });
    }

    /** Stops recording; GC entries are delivered asynchronously, so give them a turn first. */
    async stop(): Promise<GcPause[]> {
        await new Promise((resolve) => setImmediate(resolve));
        const observer = this.observer;
        if (observer !== undefined) {
            for (const entry of observer.takeRecords()) this.pauses.push(pauseOf(entry));
            observer.disconnect();
        }
        this.pauses.sort((a, b) => a.start - b.start);
        return this.pauses;
    }
}

/** One timed lookup. */
export interface Sample {
    start: number;
    /** The whole lookup: ledger step + store.get/verify. */
    total: number;
    ledger: number;
    get: number;
    /** Decoding the certificate object (timed after the lookup, not part of it). */
    decode: number;
    /** Run-queue wait of the main thread during the lookup, ms (NaN if unknown). */
    runQueueWait: number;
    /** GC pause time overlapping the lookup, ms (0 if none). */
    gcOverlap: number;
}

/** Sets each sample's gcOverlap from the recorded pauses (both sorted by start). */
export function attributeGc(samples: Sample[], pauses: readonly GcPause[]): void {
    let first = 0;
    for (const sample of samples) {
        const end = sample.start + sample.total;
        while (first < pauses.length) {
            const pause = pauses[first] as GcPause;
            if (pause.start + pause.duration >= sample.start) break;
            first++;
        }
        let overlap = 0;
        for (let i = first; i < pauses.length; i++) {
            const pause = pauses[i] as GcPause;
            if (pause.start > end) break;
            overlap += Math.min(end, pause.start + pause.duration) - Math.max(sample.start, pause.start);
        }
        sample.gcOverlap = Math.max(0, overlap);
    }
}

export interface GcSummary {
    pauses: number;
    byKind: Record<string, number>;
    totalMs: number;
    maxMs: number;
    /** Share of the measurement's wall time spent in GC pauses. */
    share: number;
}

export function summariseGc(pauses: readonly GcPause[], wallMs: number): GcSummary {
    const byKind: Record<string, number> = {};
    let totalMs = 0;
    let maxMs = 0;
    for (const p of pauses) {
        byKind[p.kind] = (byKind[p.kind] ?? 0) + 1;
        totalMs += p.duration;
        maxMs = Math.max(maxMs, p.duration);
    }
    return {
        pauses: pauses.length,
        byKind,
        totalMs: round3(totalMs),
        maxMs: round3(maxMs),
        share: Math.round((totalMs / Math.max(1, wallMs)) * 10000) / 10000,
    };
}

/** What the slowest 1 % of lookups were made of. */
export interface TailAttribution {
    /** Lookups at or above the p99 of the whole lookup. */
    samples: number;
    /** How many of those overlapped a GC pause. */
    withGc: number;
    /** How many waited ≥ 1 ms on the run queue (another process had the CPU). */
    withRunQueueWait: number;
    /** Median run-queue wait of the tail, ms. */
    runQueueWaitP50: number;
    /** Mean share of the tail lookups' time spent in the ledger step. */
    ledgerShare: number;
    /**
     * p99 of the lookups that neither overlapped a GC pause nor waited ≥ 0.1 ms for a CPU: the cost
     * of the work itself. A diagnostic, not the result (a real fog has GC and neighbours too).
     */
    undisturbedP99: number;
    undisturbedSamples: number;
}

export function attributeTail(samples: readonly Sample[]): TailAttribution {
    const sorted = [...samples].sort((a, b) => a.total - b.total);
    const p99 = percentile(
        sorted.map((s) => s.total),
        99,
    );
    const tail = sorted.filter((s) => s.total >= p99);
    const waits = tail.map((s) => s.runQueueWait).sort((a, b) => a - b);
    const undisturbed = sorted.filter((s) => s.gcOverlap === 0 && !(s.runQueueWait >= 0.1)).map((s) => s.total);
    return {
        samples: tail.length,
        withGc: tail.filter((s) => s.gcOverlap > 0).length,
        withRunQueueWait: tail.filter((s) => s.runQueueWait >= 1).length,
        runQueueWaitP50: round3(percentile(waits, 50)),
        ledgerShare: round3(tail.reduce((sum, s) => sum + s.ledger / s.total, 0) / Math.max(1, tail.length)),
        undisturbedP99: round3(percentile(undisturbed, 99)),
        undisturbedSamples: undisturbed.length,
    };
}
