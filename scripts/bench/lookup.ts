/**
 * `npm run bench -- lookup [--sizes 1000,10000,100000,1000000] [--samples N] [--warmup N]
 *                          [--issue-limit N] [--dir DIR] [--keep] [--reuse DIR] [--no-compact] [--quick]
 *                          [--render] [--out DIR]`
 *
 * Certificate lookup latency on the embedded ledger and the embedded object store (paper 004,
 * Fig. 5). With N certificates registered, a fog looks one up by IDCert_i exactly as the fog gateway
 * does on M1 (gateway/src/fog/gateway.ts): evaluate the chaincode's getCertificate through
 * ChaincodeClient (Table II record: status, B_i, content address) → store.get(CID) (read + CID
 * verification). That is the lookup. Decoding the certificate object (Table III) is timed apart:
 * the fog does it later, at activation, and it costs six SEC1 point decompressions (a modular
 * square root each), ≈ 0.4 ms of CPU that has nothing to do with N.
 *
 * Per size, in order:
 *   1. load the population (lookup-population.ts) — or --reuse a kept one;
 *   2. settle: close everything, then a full LevelDB compaction of the ledger (skip: --no-compact),
 *      so the measurement does not pay the compaction debt of the bulk load seconds earlier;
 *   3. reopen the ledger and the store (a fresh process state would also drop JIT warmth; the warm-up
 *      covers that), --warmup lookups unrecorded;
 *   4. --samples lookups, each of an IDCert_i drawn uniformly at random from the whole population
 *      (with replacement), one at a time; each tagged with the GC pauses it overlapped and the
 *      run-queue wait of the main thread (lookup-probes.ts), to attribute the tail;
 *   5. the same with a direct world-state read (LedgerStore.getState + the chaincode's record
 *      decoder) in place of evaluate: how much of the ledger step is transaction machinery.
 * Results merge into bench/results/lookup.json / lookup.md by size (--quick: bench/results/quick/;
 * --out DIR: DIR): a run replaces the rows of the sizes it measured and keeps the others, each row
 * with its own date and load average.
 */
import './lookup-quiet-logs.js';

import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';

import { decodeCertificateRecord } from '@m2m-fabric/chaincode/internal';
import { certificateKey } from '@m2m-fabric/chaincode/internal';
import {
    decodeCertificateObject,
    encodePoint,
    equalBytes,
    formatContentAddress,
    P256_SHA256,
    toHex,
} from '@m2m-fabric/protocol';
import { ChaincodeClient } from '@m2m-fabric/sdk';
import { LedgerStore } from '@m2m-fabric/embedded-ledger/internal';
import { EmbeddedObjectStore } from '@m2m-fabric/sdk';

import {
    CHAINCODE,
    diskUsage,
    FOG_MSP,
    ledgerDirectory,
    loadPopulation,
    openBenchLedger,
    readPopulation,
    settleLedger,
    storeDirectory,
    type DiskUsage,
    type LevelDbSettle,
    type Population,
    type PopulationKind,
} from './lookup-population.js';
import {
    attributeGc,
    attributeTail,
    distribution,
    GcRecorder,
    RunQueueClock,
    summariseGc,
    type Distribution,
    type GcSummary,
    type Sample,
    type TailAttribution,
} from './lookup-probes.js';
import { RESULTS_DIR, resultsDir } from './results-dir.js';
import { UsageError } from './usage.js';

const DEFAULT_SIZES = [1_000, 10_000, 100_000, 1_000_000];
const resultsJson = (options: Options): string => join(options.outDir, 'lookup.json');
const resultsMd = (options: Options): string => join(options.outDir, 'lookup.md');

interface Options {
    sizes: number[];
    samples: number;
    warmup: number;
    issueLimit: number;
    dir: string;
    keep: boolean;
    reuse: string | undefined;
    compact: boolean;
    renderOnly: boolean;
    /** Where lookup.json / lookup.md are merged and written (results-dir.ts). */
    outDir: string;
}

function parseOptions(args: string[]): Options {
    const options: Options = {
        sizes: DEFAULT_SIZES,
        samples: 5000,
        warmup: 1000,
        issueLimit: 1_000,
        dir: tmpdir(),
        keep: false,
        reuse: undefined,
        compact: true,
        renderOnly: false,
        outDir: RESULTS_DIR,
    };
    let quick = false;
    let out: string | undefined;
    const set = new Set<string>();
    for (let i = 0; i < args.length; i++) {
        const arg = args[i] as string;
        const value = (): string => {
            const v = args[++i];
            if (v === undefined) throw new UsageError(`lookup bench: ${arg} needs a value`);
            return v;
        };
        const count = (v: string, allowZero = false): number => {
            const n = Number(v.replace(/_/g, ''));
            if (!Number.isSafeInteger(n) || n < (allowZero ? 0 : 1))
                throw new UsageError(
                    `lookup bench: ${arg}: not a ${allowZero ? 'non-negative' : 'positive'} integer: ${v}`,
                );
            return n;
        };
        set.add(arg);
        switch (arg) {
            case '--sizes':
                options.sizes = value()
                    .split(',')
                    .map((v) => count(v));
                break;
            case '--samples':
                options.samples = count(value());
                break;
            case '--warmup':
                options.warmup = count(value(), true);
                break;
            case '--issue-limit':
                options.issueLimit = count(value(), true);
                break;
            case '--dir':
                options.dir = value();
                break;
            case '--keep':
                options.keep = true;
                break;
            case '--reuse':
                options.reuse = resolve(value());
                break;
            case '--no-compact':
                options.compact = false;
                break;
            case '--render':
                options.renderOnly = true;
                break;
            case '--quick':
                quick = true;
                break;
            case '--out':
                out = value();
                break;
            default:
                throw new UsageError(`lookup bench: unknown option ${arg}`);
        }
    }
    options.outDir = resultsDir(quick, out);
    if (quick) {
        if (!set.has('--sizes')) options.sizes = [1_000, 10_000];
        if (!set.has('--samples')) options.samples = 1000;
        if (!set.has('--warmup')) options.warmup = 200;
    }
    return options;
}

interface SizeResult {
    certificates: number;
    population: PopulationKind;
    measuredAt: string;
    loadSeconds: number;
    /** Load average (1, 5, 15 min) when the measurement of this size started and ended. */
    loadAverageBefore: number[];
    loadAverage: number[];
    settle: LevelDbSettle;
    /** The kernel's page cache when the measurement started (Cached, /proc/meminfo). */
    pageCacheMiB: number | undefined;
    disk: DiskUsage;
    samples: number;
    warmup: number;
    /** The lookup: evaluate getCertificate (ChaincodeClient) + store.get with CID verification. */
    lookupMs: Distribution;
    evaluateMs: Distribution;
    storeGetMs: Distribution;
    /** Decoding the fetched certificate object; not part of the lookup. */
    decodeMs: Distribution;
    gc: GcSummary;
    tail: TailAttribution;
    /** Same lookup with a direct world-state read (LedgerStore.getState + record decode) instead of evaluate. */
    stateReadLookupMs: Distribution;
    stateReadMs: Distribution;
}

type Shim = { prototype: { createCompositeKey(objectType: string, attributes: string[]): string } };
const ChaincodeStub = createRequire(import.meta.url)('fabric-shim/lib/stub.js') as Shim;
/** Just enough of a chaincode Context for the chaincode's own key function outside a transaction. */
const keyContext = {
    stub: {
        createCompositeKey: (type: string, parts: string[]): string =>
            ChaincodeStub.prototype.createCompositeKey(type, parts),
    },
} as unknown as Parameters<typeof certificateKey>[0];

interface Measured {
    samples: Sample[];
    wallMs: number;
    gc: GcSummary;
}

/** Warm-up, then `samples` lookups of uniformly random certificates, one at a time. */
async function measure(
    store: EmbeddedObjectStore,
    population: Population,
    samples: number,
    warmup: number,
    readRecord: (idCert: Uint8Array) => Promise<string>,
): Promise<Measured> {
    const suite = P256_SHA256;
    const width = suite.pointBytes;
    const pick = (): Uint8Array => {
        const i = randomInt(population.info.count);
        return population.idCerts.subarray(i * width, (i + 1) * width);
    };
    const runQueue = new RunQueueClock();
    const gcRecorder = new GcRecorder();
    const results: Sample[] = [];
    const lookup = async (record: boolean): Promise<void> => {
        const idCert = pick();
        const wait0 = runQueue.waitMs();
        const t0 = performance.now();
        const cid = await readRecord(idCert);
        const t1 = performance.now();
        const bytes = await store.get(cid);
        const t2 = performance.now();
        const wait1 = runQueue.waitMs();
        // Not part of the lookup: what the fog does with the object later, at activation.
        const t3 = performance.now();
        const object = decodeCertificateObject(bytes);
        const t4 = performance.now();
        // The bench's own correctness check: the record led to this certificate's object.
        if (!equalBytes(encodePoint(suite, object.idCert), idCert)) {
            throw new Error(`the object at ${cid} names another IDCert_i`);
        }
        if (record) {
            results.push({
                start: t0,
                total: t2 - t0,
                ledger: t1 - t0,
                get: t2 - t1,
                decode: t4 - t3,
                runQueueWait: wait1 - wait0,
                gcOverlap: 0,
            });
        }
    };
    try {
        for (let i = 0; i < warmup; i++) await lookup(false);
        gcRecorder.start();
        const started = performance.now();
        for (let i = 0; i < samples; i++) await lookup(true);
        const wallMs = performance.now() - started;
        const pauses = await gcRecorder.stop();
        attributeGc(results, pauses);
        return { samples: results, wallMs, gc: summariseGc(pauses, wallMs) };
    } finally {
        runQueue.close();
    }
}

async function runSize(population: Population, options: Options): Promise<SizeResult> {
    const { dir, info } = population;
    console.log(
        `  settling: ${options.compact ? 'full LevelDB compaction of the ledger' : 'no compaction (--no-compact)'}`,
    );
    const settle = await settleLedger(dir, options.compact);
    console.log(
        `  settled in ${settle.seconds} s; LevelDB files per level ${settle.filesPerLevelBefore.join('/')} → ${settle.filesPerLevelAfter.join('/')}`,
    );
    const loadAverageBefore = loadAverage();
    const pageCacheMiB = pageCache();
    console.log(`  page cache (Cached in /proc/meminfo): ${pageCacheMiB ?? '?'} MiB`);
    const ledger = await openBenchLedger(dir);
    const store = await EmbeddedObjectStore.open(storeDirectory(dir));
    let viaEvaluate: Measured;
    try {
        const enrolment = await ledger.loadOrEnrol(FOG_MSP, 'fog', { attributes: { 'm2m.role': 'fog' } });
        const connection = await ledger.connect({ identity: enrolment.identity, signer: enrolment.signer });
        const client = new ChaincodeClient(connection, CHAINCODE);
        console.log(`  ${options.warmup} + ${options.samples} lookups through evaluate(getCertificate)`);
        viaEvaluate = await measure(store, population, options.samples, options.warmup, async (idCert) => {
            const record = await client.getCertificate(toHex(idCert));
            if (record.contentAddress === undefined) throw new Error('certificate not issued');
            return record.contentAddress;
        });
    } finally {
        await ledger.close();
    }

    console.log(`  ${options.warmup} + ${options.samples} lookups through a direct world-state read`);
    const state = await LedgerStore.open(join(ledgerDirectory(dir), 'ledger'), { sync: false });
    let viaState: Measured;
    try {
        viaState = await measure(store, population, options.samples, options.warmup, async (idCert) => {
            const entry = await state.getState(CHAINCODE, certificateKey(keyContext, idCert));
            if (entry === undefined) throw new Error('no Table II record');
            const record = decodeCertificateRecord(P256_SHA256, entry.value);
            if (record.contentAddress === undefined) throw new Error('certificate not issued');
            return formatContentAddress(record.contentAddress);
        });
    } finally {
        await state.close();
        await store.close();
    }
    // After the measurement: walking 10⁶ files would warm the file-system metadata for it.
    const disk = diskUsage(dir);
    console.log(
        `  disk: ${disk.objectFiles.toLocaleString('en-US')} segment files, ` +
            `${(disk.objectBytes / 2 ** 20).toFixed(1)} MiB of segments on ` +
            `${(disk.objectAllocatedBytes / 2 ** 20).toFixed(1)} MiB allocated; ledger ${(disk.ledgerBytes / 2 ** 20).toFixed(1)} MiB`,
    );
    const pick = (m: Measured, f: (s: Sample) => number): Distribution => distribution(m.samples.map(f));
    return {
        certificates: info.count,
        population: info.kind,
        measuredAt: new Date().toISOString(),
        loadSeconds: info.loadSeconds,
        loadAverageBefore,
        loadAverage: loadAverage(),
        settle,
        pageCacheMiB,
        disk,
        samples: options.samples,
        warmup: options.warmup,
        lookupMs: pick(viaEvaluate, (s) => s.total),
        evaluateMs: pick(viaEvaluate, (s) => s.ledger),
        storeGetMs: pick(viaEvaluate, (s) => s.get),
        decodeMs: pick(viaEvaluate, (s) => s.decode),
        gc: viaEvaluate.gc,
        tail: attributeTail(viaEvaluate.samples),
        stateReadLookupMs: pick(viaState, (s) => s.total),
        stateReadMs: pick(viaState, (s) => s.ledger),
    };
}

/** Cached from /proc/meminfo in MiB, undefined where there is none. */
function pageCache(): number | undefined {
    try {
        const match = /^Cached:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'latin1'));
        return match === null ? undefined : Math.round(Number(match[1]) / 1024);
    } catch {
        return undefined;
    }
}

const loadAverage = (): number[] => loadavg().map((v) => Math.round(v * 100) / 100);
const f = (d: Distribution): string => `${d.p50.toFixed(2)} / ${d.p99.toFixed(2)}`;
const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);

function latencyTable(results: readonly SizeResult[]): string {
    return [
        '| certificates | lookup p50 / p99 (ms) | p99.9 | evaluate | store.get + verify | lookup via state read | state read | decode (not in lookup) | load avg (1 min) start → end |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
        ...results.map(
            (r) =>
                `| ${r.certificates.toLocaleString('en-US')} | **${f(r.lookupMs)}** | ${r.lookupMs.p999.toFixed(2)} | ${f(r.evaluateMs)} | ` +
                `${f(r.storeGetMs)} | ${f(r.stateReadLookupMs)} | ${f(r.stateReadMs)} | ${f(r.decodeMs)} | ${r.loadAverageBefore[0]?.toFixed(2)} → ${r.loadAverage[0]?.toFixed(2)} |`,
        ),
    ].join('\n');
}

function tailTable(results: readonly SizeResult[]): string {
    return [
        '| certificates | GC pauses (minor/major) | GC time | max pause | slowest 1 %: with GC / waited ≥ 1 ms for a CPU | median CPU wait in the slowest 1 % (ms) | ledger share of the slowest 1 % | p99 of undisturbed lookups (n) |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|',
        ...results.map(
            (r) =>
                `| ${r.certificates.toLocaleString('en-US')} | ${r.gc.pauses} (${r.gc.byKind.minor ?? 0}/${(r.gc.byKind.major ?? 0) + (r.gc.byKind.incremental ?? 0)}) | ` +
                `${(r.gc.share * 100).toFixed(1)} % | ${r.gc.maxMs.toFixed(2)} ms | ${r.tail.withGc} / ${r.tail.withRunQueueWait} of ${r.tail.samples} | ` +
                `${r.tail.runQueueWaitP50.toFixed(2)} | ${(r.tail.ledgerShare * 100).toFixed(0)} % | ${r.tail.undisturbedP99.toFixed(2)} (${r.tail.undisturbedSamples}) |`,
        ),
    ].join('\n');
}

function populationTable(results: readonly SizeResult[]): string {
    return [
        '| certificates | population | load (s) | compaction (s) | LevelDB files per level before → after | object files / shard dirs (max per dir) | objects: content / allocated (MiB) | ledger (MiB) | page cache at start (MiB) | measured (UTC) |',
        '|---:|---|---:|---:|---|---:|---:|---:|---:|---|',
        ...results.map(
            (r) =>
                `| ${r.certificates.toLocaleString('en-US')} | ${r.population} | ${r.loadSeconds} | ${r.settle.compacted ? r.settle.seconds : 'not compacted'} | ` +
                `${r.settle.filesPerLevelBefore.join('/')} → ${r.settle.filesPerLevelAfter.join('/')} | ` +
                `${r.disk.objectFiles.toLocaleString('en-US')} / ${r.disk.shardDirectories} (${r.disk.maxFilesPerShard}) | ` +
                `${mib(r.disk.objectBytes)} / ${mib(r.disk.objectAllocatedBytes)} | ${mib(r.disk.ledgerBytes)} | ${r.pageCacheMiB ?? '?'} | ${r.measuredAt.slice(0, 16).replace('T', ' ')} |`,
        ),
    ].join('\n');
}

function markdown(results: readonly SizeResult[]): string {
    const machine = `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${mib(totalmem())} MiB, Node ${process.version}`;
    return [
        '# Certificate lookup latency (paper 004, Fig. 5)',
        '',
        'Written by `npm run bench -- lookup` (scripts/bench/lookup.ts). Rows merge by size: each row comes from the run',
        'in its "measured" column, with that run\'s load average at the start and end of its measurement (the machine is',
        `shared by several engineers; a load above ~1 means other processes competed for the ${cpus().length} cores). Machine: ${machine}.`,
        '',
        '## What is measured',
        '',
        '- **Lookup** = what the fog gateway does on M1 after decrypting it: `ChaincodeClient.getCertificate(IDCert_i)`',
        '  (a proposal signed by a fog identity, evaluated by the embedded peer: endorsement simulation of the',
        "  chaincode's `getCertificate` through fabric-shim, signed response) → `EmbeddedObjectStore.get(CID)` (read the",
        '  object file, re-hash it and compare with the CID). Not included: MQTT, decrypting M1, and decoding the',
        '  certificate object — shown apart ("decode"): the fog decodes it later, at activation, and it is six SEC1 point',
        '  decompressions (a modular square root each), ≈ 0.4 ms of CPU independent of N.',
        '- **Population** of N certificates: N ≤ 1,000 issued through the chaincode (Algorithm 1, real ECQV and counter',
        '  proofs, objects stored by the CSP side); above, 1 issued and N − 1 Table II records written by ordinary',
        "  transactions of a bench-only contract with the chaincode's key and record encoding, each pointing to its own",
        '  stored object (distinct IDCert_i and CID).',
        '- **Settled** before measuring: all handles closed, then a full LevelDB compaction of the ledger (the state a',
        '  peer reaches in the background some time after a bulk write; without it the first minutes after loading 10⁶',
        '  measure compaction debt). The OS page cache is left alone (no warming, no dropping; its size at the start is',
        '  in the last table): where it cannot hold the population (10⁶ objects = 3.9 GiB of 4 KiB files), object reads',
        '  reach the block device. File-system statistics are collected after the measurement, so they warm nothing.',
        '- **Sampling**: after a warm-up of unrecorded lookups, each lookup picks an IDCert_i uniformly at random over the',
        '  whole population (crypto.randomInt, with replacement) — no hot set; one lookup at a time, in the process that',
        '  runs the embedded ledger (as the one-command run does). Times with performance.now(); nearest-rank percentiles.',
        '- **State read**: the same lookups with the ledger step replaced by a direct world-state read',
        "  (`LedgerStore.getState` + the chaincode's record decoder): the part of the ledger step that grows with N.",
        '',
        'ms, p50 / p99 unless marked:',
        '',
        latencyTable(results),
        '',
        '## Where the tail comes from',
        '',
        'GC pauses of the benchmark process during the evaluate measurement (PerformanceObserver "gc") and, per lookup,',
        "the main thread's run-queue wait (/proc/thread-self/schedstat: time it was runnable while another process had",
        'the CPU). "Undisturbed": lookups that overlapped no GC pause and waited < 0.1 ms for a CPU — a diagnostic of the',
        'work itself, not the result.',
        '',
        tailTable(results),
        '',
        '## Population and disk',
        '',
        'Objects: blockstore-fs layout, one file per object in 128 shard directories (the last two base32 characters',
        'of the multihash; the last one carries 2 bits). Allocated = st_blocks: a ~270-byte object occupies one 4 KiB',
        'file-system block.',
        '',
        populationTable(results),
        '',
    ].join('\n');
}

interface ResultsFile {
    benchmark: 'lookup';
    node: string;
    cores: number;
    results: SizeResult[];
}

/** Previous rows of sizes this run did not measure are kept (only rows in the current format). */
async function mergeResults(options: Options, fresh: SizeResult[]): Promise<SizeResult[]> {
    let previous: SizeResult[] = [];
    try {
        const file = JSON.parse(await readFile(resultsJson(options), 'utf8')) as Partial<ResultsFile>;
        previous = (file.results ?? []).filter((r) => r.tail !== undefined && r.loadAverageBefore !== undefined);
    } catch {
        previous = [];
    }
    const bySize = new Map<number, SizeResult>(previous.map((r) => [r.certificates, r]));
    for (const r of fresh) bySize.set(r.certificates, r);
    return [...bySize.values()].sort((a, b) => a.certificates - b.certificates);
}

export async function runLookupBench(args: string[]): Promise<void> {
    const options = parseOptions(args);
    if (options.renderOnly) {
        const results = await mergeResults(options, []);
        await writeFile(resultsMd(options), markdown(results));
        console.log(`written: ${resultsMd(options)} from ${resultsJson(options)} (${results.length} sizes)`);
        return;
    }
    const fresh: SizeResult[] = [];
    if (options.reuse !== undefined) {
        console.log(`lookup benchmark: measuring the kept population in ${options.reuse}`);
        const population = await readPopulation(options.reuse);
        fresh.push(await runSize(population, options));
    } else {
        console.log(
            `lookup benchmark: sizes ${options.sizes.join(', ')}; ${options.warmup} + ${options.samples} lookups each; ` +
                `issued through the chaincode up to ${options.issueLimit}, bulk-loaded above`,
        );
        for (const size of options.sizes) {
            const dir = await mkdtemp(join(options.dir, `m2m-lookup-${size}-`));
            console.log(`\n${size.toLocaleString('en-US')} certificates (data in ${dir})`);
            try {
                const population = await loadPopulation(dir, size, options.issueLimit);
                fresh.push(await runSize(population, options));
            } finally {
                if (options.keep) {
                    console.log(`  kept: measure again with --reuse ${dir}`);
                } else {
                    console.log('  removing the population');
                    await rm(dir, { recursive: true, force: true });
                }
            }
        }
    }
    console.log(`\n${latencyTable(fresh)}\n\n${tailTable(fresh)}\n\n${populationTable(fresh)}`);
    const results = await mergeResults(options, fresh);
    await mkdir(options.outDir, { recursive: true });
    const file: ResultsFile = { benchmark: 'lookup', node: process.version, cores: cpus().length, results };
    await writeFile(resultsJson(options), JSON.stringify(file, null, 4) + '\n');
    await writeFile(resultsMd(options), markdown(results));
    console.log(`written: ${resultsJson(options)}, ${resultsMd(options)}`);
}
