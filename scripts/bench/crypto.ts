/**
 * `npm run bench -- crypto [--quick] [--out DIR]`: throughput of every protocol primitive per suite,
 * and the crypto-only cost of one complete session (device + fog + CSP + every chaincode
 * verification), on one core and on all cores through worker_threads.
 *
 * Method: each figure is the median over the timed rounds, each round running the operation back
 * to back for a fixed wall time after an untimed warm-up. Every rate is given twice: per second of
 * elapsed time and per second of CPU time the process got (process.cpuUsage), because the machine
 * may be shared and then only the CPU figure measures the code. Every round is in the JSON. `--quick` is a smoke run (tiny rounds, figures are
 * not meaningful) used by the test suite to check the output shape. Total run time is bounded by
 * the round lengths: about 45 s for a full run on an idle 2-core machine.
 */
import { createECDH } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import {
    computeSecondaryHash,
    computeSymKey,
    contentAddressBytes,
    counterCommitment,
    createActivation,
    createCertificateRequest,
    createCounterProof,
    createM1,
    createM4,
    decodeActivation,
    decodeCertificateObject,
    decodeCertificateRequest,
    decodeM1,
    decodeM3,
    decodeM4,
    dleqProve,
    dleqVerify,
    ecqvExtractPublicKey,
    ecqvGenerateCertificate,
    ecqvReconstructPrivateKey,
    ecqvVerifyIssuance,
    encodeActivation,
    encodeCertificateObject,
    encodeCertificateRequest,
    encodeEcqvCertificate,
    encodeM1,
    encodeM3,
    encodeM4,
    encodeScalar,
    FrameType,
    getSuite,
    hashToCurve,
    hpkeOpen,
    hpkeRecipientFromScalar,
    hpkeSeal,
    HpkeInfo,
    issueCertificates,
    openM1,
    openM4,
    P256_SHA256,
    P384_SHA384,
    processM2,
    randomScalar,
    schnorrSign,
    schnorrVerify,
    SchnorrContext,
    SessionChannel,
    symKeyCommitment,
    verifyActivation,
    verifyCounterCommitment,
    verifyCounterProof,
    verifyIssuedCertificate,
    type HpkeRecipient,
    type Point,
    type Suite,
} from '@m2m-fabric/protocol';

import { resultsDir } from './results-dir.js';
import { UsageError } from './usage.js';

// ---------------------------------------------------------------------------------------------
// Options and result shapes

interface BenchOptions {
    quick: boolean;
    outDir: string;
    rounds: number;
    /** Length of one timed round of a primitive. */
    primitiveRoundMs: number;
    /** Length of one timed round of the session loop (one core and per worker). */
    sessionRoundMs: number;
    workers: number;
}

/**
 * Two views of every rate. Wall-clock: what a caller saw, which on a shared machine includes time
 * the process spent waiting for a core. CPU: operations per second of CPU time the process
 * actually got (process.cpuUsage, user + system), which is what the code costs and stays
 * meaningful when other work competes for the cores.
 */
interface Rate {
    wall: number;
    cpu: number;
}

export interface OpStats {
    /** Median wall-clock ops/s over the rounds. */
    opsPerSec: number;
    /** Median ops per CPU-second over the rounds. */
    opsPerCpuSec: number;
    /** Wall-clock ops/s of each round, in run order. */
    rounds: number[];
    /** Ops per CPU-second of each round. */
    cpuRounds: number[];
}

export interface SessionStats {
    /** Median wall-clock cost of one complete session, back to back on one thread. */
    msPerSession: number;
    /** Median CPU cost of one complete session (one thread). */
    cpuMsPerSession: number;
    sessionsPerSecOneCore: number;
    sessionsPerCpuSecOneCore: number;
    /** Median over rounds of the summed wall-clock rate of `workers` worker threads. */
    sessionsPerSecWorkers: number;
    /** Sessions per CPU-second over all threads while the workers ran (scaling overhead included). */
    sessionsPerCpuSecWorkers: number;
    /**
     * workers x sessionsPerCpuSecWorkers: the rate with one free core per worker. An estimate,
     * reported because the wall-clock figure on a shared machine measures the other load.
     */
    estimatedSessionsPerSecAllCores: number;
    workers: number;
    oneCoreRounds: number[];
    oneCoreCpuRounds: number[];
    workerRounds: number[];
    /** Median CPU ms per session spent in each role's steps. */
    cpuMsByRole: Record<Role, number>;
    /** Median CPU ms per session spent in each step. */
    cpuMsByStep: Record<string, number>;
}

export interface CryptoBenchResult {
    bench: 'crypto';
    generatedAt: string;
    quick: boolean;
    node: string;
    cpus: number;
    /** 1-minute load average before and after the run: figures from a busy machine read low. */
    loadAverage: { before: number; after: number };
    rounds: number;
    primitiveRoundMs: number;
    sessionRoundMs: number;
    suites: Record<string, { primitives: Record<string, OpStats>; session: SessionStats }>;
}

function parseArgs(args: string[]): BenchOptions {
    let quick = false;
    let out: string | undefined;
    for (let k = 0; k < args.length; k++) {
        const arg = args[k];
        if (arg === '--quick') quick = true;
        else if (arg === '--out' && args[k + 1] !== undefined) out = args[++k]!;
        else throw new UsageError(`crypto bench: unknown argument ${JSON.stringify(arg)}`);
    }
    const workers = Math.max(1, Math.min(availableParallelism(), 8));
    const outDir = resultsDir(quick, out);
    return quick
        ? { quick, outDir, rounds: 1, primitiveRoundMs: 5, sessionRoundMs: 1, workers }
        : { quick, outDir, rounds: 5, primitiveRoundMs: 100, sessionRoundMs: 1000, workers };
}

const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    const mid = s.length >> 1;
    return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

// ---------------------------------------------------------------------------------------------
// Timing

type Op = () => unknown;

/** CPU milliseconds (user + system, all threads of the process) since `since`. */
function cpuMsSince(since: NodeJS.CpuUsage): number {
    const used = process.cpuUsage(since);
    return (used.user + used.system) / 1000;
}

/** count operations in wallMs / cpuMs, as rates per second; a zero CPU reading counts as 1 µs. */
function rate(count: number, wallMs: number, cpuMs: number): Rate {
    return { wall: (count * 1000) / wallMs, cpu: (count * 1000) / Math.max(cpuMs, 0.001) };
}

/** Runs `op` back to back for `ms` of wall time (at least once). Awaits only when op returns a promise. */
async function timeRound(op: Op, ms: number): Promise<Rate> {
    let count = 0;
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    let now = start;
    do {
        const r = op();
        if (r instanceof Promise) await r;
        count++;
        now = performance.now();
    } while (now - start < ms);
    return rate(count, now - start, cpuMsSince(cpuStart));
}

function opStats(rates: Rate[]): OpStats {
    const rounds = rates.map((r) => r.wall);
    const cpuRounds = rates.map((r) => r.cpu);
    return { opsPerSec: median(rounds), opsPerCpuSec: median(cpuRounds), rounds, cpuRounds };
}

async function measure(op: Op, opts: BenchOptions): Promise<OpStats> {
    await timeRound(op, Math.max(1, opts.primitiveRoundMs / 4)); // warm-up (JIT, precomputed tables)
    const rates: Rate[] = [];
    for (let r = 0; r < opts.rounds; r++) rates.push(await timeRound(op, opts.primitiveRoundMs));
    return opStats(rates);
}

// ---------------------------------------------------------------------------------------------
// Fixtures

const OPENSSL_CURVE: Record<string, string> = { 'P256-SHA256': 'prime256v1', 'P384-SHA384': 'secp384r1' };
const FOG_ID = 'bench-fog-01';

interface Parties {
    suite: Suite;
    dC: bigint;
    QC: Point;
    dF: bigint;
    QF: Point;
    fog: HpkeRecipient;
    csp: HpkeRecipient;
    secrets: { w: bigint; equipmentId: string };
}

async function makeParties(suite: Suite): Promise<Parties> {
    const dC = randomScalar(suite);
    const dF = randomScalar(suite);
    return {
        suite,
        dC,
        QC: suite.Point.BASE.multiply(dC),
        dF,
        QF: suite.Point.BASE.multiply(dF),
        fog: await hpkeRecipientFromScalar(suite, dF),
        csp: await hpkeRecipientFromScalar(suite, dC),
        secrets: { w: randomScalar(suite), equipmentId: 'bench-press-01' },
    };
}

type Role = 'manufacturer' | 'csp' | 'chaincode' | 'device' | 'fog';

/** Which role runs each step of the session loop. */
const STEP_ROLE: Record<string, Role> = {
    'alg1: createCertificateRequest': 'manufacturer',
    'alg1: issueCertificates': 'csp',
    'alg1: verifyIssuedCertificate': 'chaincode', // with the content address
    'alg2: createM1': 'device',
    'alg2: openM1': 'fog',
    'alg2: processM2': 'device',
    'alg2: createActivation': 'fog',
    'alg2: verifyActivation': 'chaincode',
    'alg2: createM4': 'fog',
    'alg3: openM4': 'csp',
    'alg3: counter, secondaryHash, symKey': 'csp',
};

/**
 * One complete session, crypto only: every computation the manufacturer, CSP-CA, device, fog, CSP
 * and chaincode do, including the wire encodings the receivers decode. `timings` (optional)
 * accumulates CPU ms per step. Throws if any check fails, so a broken build cannot benchmark well.
 */
async function runSession(p: Parties, counter: bigint, timings?: Map<string, number>): Promise<void> {
    const { suite } = p;
    // Per-step CPU time (this process is single-threaded while it runs, apart from V8's helpers).
    let t = process.cpuUsage();
    const lap = (step: string): void => {
        if (timings === undefined) return;
        timings.set(step, (timings.get(step) ?? 0) + cpuMsSince(t));
        t = process.cpuUsage();
    };
    const request = createCertificateRequest(suite, p.secrets, counter, 1);
    const requestBytes = encodeCertificateRequest(request);
    lap('alg1: createCertificateRequest');
    const [obj] = issueCertificates(suite, p.dC, decodeCertificateRequest(requestBytes));
    const objBytes = encodeCertificateObject(obj!);
    lap('alg1: issueCertificates');
    contentAddressBytes(objBytes);
    verifyIssuedCertificate(suite, decodeCertificateObject(objBytes), p.QC);
    lap('alg1: verifyIssuedCertificate');
    const { m1, session } = await createM1(suite, p.secrets, counter, FOG_ID, p.QF, p.QC);
    const m1Bytes = encodeM1(m1);
    lap('alg2: createM1');
    const m1AtFog = decodeM1(suite, m1Bytes);
    const { idCert } = await openM1(suite, p.fog, m1AtFog);
    lap('alg2: openM1');
    const device = processM2(session, objBytes, p.QC, FOG_ID);
    const m3Bytes = encodeM3(device.m3);
    lap('alg2: processM2');
    const activationBytes = encodeActivation(
        createActivation(suite, p.dF, objBytes, m1AtFog, decodeM3(suite, m3Bytes)),
    );
    lap('alg2: createActivation');
    const B = obj!.counterProof.B;
    const activation = decodeActivation(suite, activationBytes);
    contentAddressBytes(activation.certificateObject);
    const verified = verifyActivation(suite, activation, B, p.QC, p.QF, FOG_ID);
    lap('alg2: verifyActivation');
    const m4Bytes = encodeM4(await createM4(suite, FOG_ID, p.dF, m1AtFog, verified.primaryHash, p.QC, idCert));
    lap('alg2: createM4');
    const opened = await openM4(suite, p.csp, p.QF, decodeM4(suite, m4Bytes));
    lap('alg3: openM4');
    verifyCounterCommitment(suite, opened.counter, B);
    computeSecondaryHash(suite, p.dC, opened.dynamicId, opened.counter);
    const cert = decodeCertificateObject(objBytes);
    const Qi = ecqvExtractPublicKey(suite, encodeEcqvCertificate(suite, cert.idCert, cert.cert), cert.cert, p.QC);
    const commitment = symKeyCommitment(suite, computeSymKey(suite, p.dC, Qi));
    lap('alg3: counter, secondaryHash, symKey');
    if (Buffer.compare(commitment, verified.symKeyCommitment) !== 0) {
        throw new Error('bench session: CSP and device symmetric keys differ');
    }
}

// ---------------------------------------------------------------------------------------------
// Primitive benchmarks

async function primitiveOps(suite: Suite): Promise<Record<string, Op>> {
    const G = suite.Point.BASE;
    const k = randomScalar(suite);
    const Q = G.multiply(randomScalar(suite));
    const dC = randomScalar(suite);
    const QC = G.multiply(dC);
    const kU = randomScalar(suite);
    const RU = G.multiply(kU);
    const encode = (PU: Point): Uint8Array => encodeEcqvCertificate(suite, RU, PU);
    const issued = ecqvGenerateCertificate(suite, RU, dC, randomScalar(suite), encode);
    const msg = new Uint8Array(64).fill(7);
    const sig = schnorrSign(suite, SchnorrContext.M3, k, msg);
    const Qk = G.multiply(k);
    const P = RU.multiply(k);
    const dleq = dleqProve(suite, k, G, Qk, RU, P);
    const counterProof = createCounterProof(suite, RU, 42n);
    const recipient = await hpkeRecipientFromScalar(suite, dC);
    const sealed = await hpkeSeal(suite, recipient.publicKey, HpkeInfo.C2, msg);
    const symKey = new Uint8Array(suite.hashBytes).fill(3);
    const frameSender = await SessionChannel.create(suite, symKey, 'device', new Uint8Array([1]));
    const payload = new Uint8Array(256).fill(9);
    const ecdh = createECDH(OPENSSL_CURVE[suite.id]!);
    const kBytes = encodeScalar(suite, k);
    const peer = Q.toBytes(false);
    let counter = 0;
    return {
        'base mult k*G (noble, CT)': () => G.multiply(k),
        'arbitrary mult k*P (noble, CT)': () => Q.multiply(k),
        'arbitrary mult k*P (noble, VT)': () => Q.multiplyUnsafe(k),
        'hash-to-curve (RFC 9380 SSWU)': () =>
            hashToCurve(suite, 'CounterProofBase', new Uint8Array([counter++ & 0xff])),
        'ECQV issue (CA)': () => ecqvGenerateCertificate(suite, RU, dC, k, encode),
        'ECQV verify issuance (chaincode)': () =>
            ecqvVerifyIssuance(suite, issued.certU, RU, issued.cert, issued.r, QC),
        'ECQV reconstruct d_U (device)': () =>
            ecqvReconstructPrivateKey(suite, issued.certU, issued.cert, issued.r, kU, QC),
        'Schnorr sign': () => schnorrSign(suite, SchnorrContext.M3, k, msg),
        'Schnorr verify': () => schnorrVerify(suite, SchnorrContext.M3, Qk, msg, sig),
        'DLEQ prove': () => dleqProve(suite, k, G, Qk, RU, P),
        'DLEQ verify': () => dleqVerify(suite, G, Qk, RU, P, dleq),
        'counter proof create': () => createCounterProof(suite, RU, 42n),
        'counter proof verify': () => verifyCounterProof(suite, RU, counterProof),
        'counter commitment i*G': () => counterCommitment(suite, 42n),
        'HPKE seal (node:crypto)': () => hpkeSeal(suite, recipient.publicKey, HpkeInfo.C2, msg),
        'HPKE open (node:crypto)': () => hpkeOpen(recipient, HpkeInfo.C2, sealed),
        'AES-256-GCM frame seal (256 B)': () => frameSender.seal(FrameType.Upload, payload),
        'ECDH x(k*P) (node:crypto)': () => {
            ecdh.setPrivateKey(kBytes);
            return ecdh.computeSecret(peer);
        },
        'symKey = H(ECDH) (node:crypto)': () => computeSymKey(suite, k, Q),
    };
}

/** Frame open needs a fresh frame per call (the replay window refuses repeats): pre-sealed per round. */
async function measureFrameOpen(suite: Suite, opts: BenchOptions, sealRate: number): Promise<OpStats> {
    const symKey = new Uint8Array(suite.hashBytes).fill(3);
    const payload = new Uint8Array(256).fill(9);
    const rates: Rate[] = [];
    for (let r = -1; r < opts.rounds; r++) {
        const device = await SessionChannel.create(suite, symKey, 'device', new Uint8Array([2]));
        const csp = await SessionChannel.create(suite, symKey, 'csp', new Uint8Array([2]));
        const count = Math.min(200_000, Math.max(10, Math.ceil((sealRate * opts.primitiveRoundMs * 2) / 1000)));
        const frames: Uint8Array[] = [];
        for (let k = 0; k < count; k++) frames.push(await device.seal(FrameType.Upload, payload));
        let opened = 0;
        const cpuStart = process.cpuUsage();
        const start = performance.now();
        let now = start;
        while (opened < frames.length && (opened === 0 || now - start < opts.primitiveRoundMs)) {
            await csp.open(frames[opened++]!);
            now = performance.now();
        }
        if (r >= 0) rates.push(rate(opened, now - start, cpuMsSince(cpuStart))); // r = -1 is the warm-up
    }
    return opStats(rates);
}

// ---------------------------------------------------------------------------------------------
// Session benchmarks

/** Runs sessions back to back for `ms` of wall time (at least one). */
async function sessionRound(
    p: Parties,
    ms: number,
    next: () => bigint,
    timings?: Map<string, number>,
): Promise<{ count: number; rate: Rate }> {
    let count = 0;
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    let now = start;
    do {
        await runSession(p, next(), timings);
        count++;
        now = performance.now();
    } while (now - start < ms);
    return { count, rate: rate(count, now - start, cpuMsSince(cpuStart)) };
}

interface WorkerRequest {
    role: 'crypto-bench-worker';
    suiteId: string;
    rounds: number;
    roundMs: number;
}

/** A worker reports the wall-clock rate and session count of each round. */
type WorkerMessage = { kind: 'ready' } | { kind: 'done'; rates: number[]; sessions: number };

/** In a worker: set up, report ready, wait for 'go', run the rounds, report their rates. */
async function workerMain(req: WorkerRequest): Promise<void> {
    const port = parentPort!;
    const p = await makeParties(getSuite(req.suiteId));
    let counter = 1n;
    const next = (): bigint => counter++;
    await sessionRound(p, Math.min(req.roundMs, 200), next); // warm-up
    const go = new Promise<void>((resolve) => port.once('message', () => resolve()));
    port.postMessage({ kind: 'ready' } satisfies WorkerMessage);
    await go;
    const rates: number[] = [];
    let sessions = 0;
    for (let r = 0; r < req.rounds; r++) {
        const round = await sessionRound(p, req.roundMs, next);
        rates.push(round.rate.wall);
        sessions += round.count;
    }
    port.postMessage({ kind: 'done', rates, sessions } satisfies WorkerMessage);
}

/**
 * Starts `n` workers, releases them together, and sums their per-round wall-clock rates. Also
 * returns sessions per CPU-second of the whole process while they ran (the main thread only waits).
 */
async function measureWorkers(suite: Suite, opts: BenchOptions): Promise<{ rounds: number[]; perCpuSec: number }> {
    const req: WorkerRequest = {
        role: 'crypto-bench-worker',
        suiteId: suite.id,
        rounds: opts.rounds,
        roundMs: opts.sessionRoundMs,
    };
    const workers = Array.from(
        { length: opts.workers },
        () => new Worker(new URL(import.meta.url), { workerData: req }),
    );
    try {
        const ready = workers.map(
            (w) =>
                new Promise<void>((resolve, reject) => {
                    w.once('error', reject);
                    w.once('message', (m: WorkerMessage) =>
                        m.kind === 'ready' ? resolve() : reject(new Error('protocol')),
                    );
                }),
        );
        await Promise.all(ready);
        const done = workers.map(
            (w) =>
                new Promise<{ rates: number[]; sessions: number }>((resolve, reject) => {
                    w.once('error', reject);
                    w.once('message', (m: WorkerMessage) =>
                        m.kind === 'done' ? resolve(m) : reject(new Error('protocol')),
                    );
                }),
        );
        const cpuStart = process.cpuUsage();
        for (const w of workers) w.postMessage('go');
        const perWorker = await Promise.all(done);
        const cpuMs = cpuMsSince(cpuStart);
        const sessions = perWorker.reduce((sum, w) => sum + w.sessions, 0);
        const rounds = Array.from({ length: opts.rounds }, (_, r) =>
            perWorker.reduce((sum, w) => sum + (w.rates[r] ?? 0), 0),
        );
        return { rounds, perCpuSec: (sessions * 1000) / Math.max(cpuMs, 0.001) };
    } finally {
        await Promise.all(workers.map((w) => w.terminate()));
    }
}

async function measureSession(suite: Suite, opts: BenchOptions): Promise<SessionStats> {
    const p = await makeParties(suite);
    let counter = 1n;
    const next = (): bigint => counter++;
    await sessionRound(p, Math.min(opts.sessionRoundMs, 300), next); // warm-up
    const oneCore: Rate[] = [];
    const stepRounds = new Map<string, number[]>();
    for (let r = 0; r < opts.rounds; r++) {
        const timings = new Map<string, number>();
        const round = await sessionRound(p, opts.sessionRoundMs, next, timings);
        oneCore.push(round.rate);
        for (const [step, ms] of timings) {
            stepRounds.set(step, [...(stepRounds.get(step) ?? []), ms / round.count]);
        }
    }
    const cpuMsByStep: Record<string, number> = {};
    for (const [step, values] of stepRounds) cpuMsByStep[step] = median(values);
    const cpuMsByRole = { manufacturer: 0, csp: 0, chaincode: 0, device: 0, fog: 0 } satisfies Record<Role, number>;
    for (const [step, ms] of Object.entries(cpuMsByStep)) cpuMsByRole[STEP_ROLE[step] ?? 'csp'] += ms;
    const workers = await measureWorkers(suite, opts);
    const oneCoreRounds = oneCore.map((r) => r.wall);
    const oneCoreCpuRounds = oneCore.map((r) => r.cpu);
    const sessionsPerSecOneCore = median(oneCoreRounds);
    const sessionsPerCpuSecOneCore = median(oneCoreCpuRounds);
    return {
        msPerSession: 1000 / sessionsPerSecOneCore,
        cpuMsPerSession: 1000 / sessionsPerCpuSecOneCore,
        sessionsPerSecOneCore,
        sessionsPerCpuSecOneCore,
        sessionsPerSecWorkers: median(workers.rounds),
        sessionsPerCpuSecWorkers: workers.perCpuSec,
        estimatedSessionsPerSecAllCores: opts.workers * workers.perCpuSec,
        workers: opts.workers,
        oneCoreRounds,
        oneCoreCpuRounds,
        workerRounds: workers.rounds,
        cpuMsByRole,
        cpuMsByStep,
    };
}

// ---------------------------------------------------------------------------------------------
// Report

const fmt = (v: number): string =>
    v >= 100 ? Math.round(v).toLocaleString('en-US') : v >= 10 ? v.toFixed(1) : v.toFixed(2);

function markdown(result: CryptoBenchResult): string {
    const suiteIds = Object.keys(result.suites);
    const opNames = Object.keys(result.suites[suiteIds[0]!]!.primitives);
    const lines: string[] = [];
    lines.push(`# Crypto benchmark${result.quick ? ' (quick smoke run: figures not meaningful)' : ''}`);
    lines.push('');
    lines.push(
        `${result.generatedAt}, Node ${result.node}, ${result.cpus} CPUs, load average ` +
            `${result.loadAverage.before.toFixed(2)} before / ${result.loadAverage.after.toFixed(2)} after; ` +
            `median of ${result.rounds} rounds (${result.primitiveRoundMs} ms per primitive round, ` +
            `${result.sessionRoundMs} ms per session round).`,
    );
    lines.push('');
    lines.push(
        'CPU = per second of CPU time the process got; wall = per second of elapsed time. On a shared ' +
            'machine the wall figures include waiting for a core, so the CPU figures are the cost of the code.',
    );
    lines.push('');
    const heads = suiteIds.flatMap((s) => [`${s} CPU`, `${s} wall`]);
    lines.push(`| operation (ops/s) | ${heads.join(' | ')} |`);
    lines.push(`|---|${heads.map(() => '---:').join('|')}|`);
    for (const op of opNames) {
        const cells = suiteIds.flatMap((s) => {
            const st = result.suites[s]!.primitives[op]!;
            return [fmt(st.opsPerCpuSec), fmt(st.opsPerSec)];
        });
        lines.push(`| ${op} | ${cells.join(' | ')} |`);
    }
    lines.push('');
    lines.push(`| one complete session (crypto only) | ${suiteIds.join(' | ')} |`);
    lines.push(`|---|${suiteIds.map(() => '---:').join('|')}|`);
    const row = (label: string, get: (s: SessionStats) => number): void => {
        lines.push(`| ${label} | ${suiteIds.map((s) => fmt(get(result.suites[s]!.session))).join(' | ')} |`);
    };
    const first = result.suites[suiteIds[0]!]!.session;
    row('CPU ms / session (1 thread)', (s) => s.cpuMsPerSession);
    row('sessions per CPU-second (1 thread)', (s) => s.sessionsPerCpuSecOneCore);
    row(`sessions per CPU-second (${first.workers} worker threads)`, (s) => s.sessionsPerCpuSecWorkers);
    row(`estimated sessions/s, ${first.workers} free cores`, (s) => s.estimatedSessionsPerSecAllCores);
    row('wall ms / session (1 thread)', (s) => s.msPerSession);
    row('wall sessions/s (1 thread)', (s) => s.sessionsPerSecOneCore);
    row(`wall sessions/s (${first.workers} worker threads)`, (s) => s.sessionsPerSecWorkers);
    for (const role of Object.keys(first.cpuMsByRole) as Role[]) {
        row(`CPU ms in ${role}`, (s) => s.cpuMsByRole[role]);
    }
    for (const step of Object.keys(first.cpuMsByStep)) row(`CPU ms in ${step}`, (s) => s.cpuMsByStep[step] ?? 0);
    lines.push('');
    return lines.join('\n');
}

export async function cryptoBench(opts: BenchOptions): Promise<CryptoBenchResult> {
    const result: CryptoBenchResult = {
        bench: 'crypto',
        generatedAt: new Date().toISOString(),
        quick: opts.quick,
        node: process.versions.node,
        cpus: availableParallelism(),
        loadAverage: { before: loadavg()[0] ?? 0, after: 0 },
        rounds: opts.rounds,
        primitiveRoundMs: opts.primitiveRoundMs,
        sessionRoundMs: opts.sessionRoundMs,
        suites: {},
    };
    for (const suite of [P256_SHA256, P384_SHA384]) {
        const primitives: Record<string, OpStats> = {};
        for (const [name, op] of Object.entries(await primitiveOps(suite))) {
            primitives[name] = await measure(op, opts);
            console.error(`  ${suite.id} ${name}: ${fmt(primitives[name].opsPerCpuSec)} ops per CPU-second`);
        }
        const sealRate = primitives['AES-256-GCM frame seal (256 B)']!.opsPerSec;
        primitives['AES-256-GCM frame open (256 B)'] = await measureFrameOpen(suite, opts, sealRate);
        const session = await measureSession(suite, opts);
        console.error(`  ${suite.id} session: ${fmt(session.cpuMsPerSession)} CPU ms`);
        result.suites[suite.id] = { primitives, session };
    }
    result.loadAverage.after = loadavg()[0] ?? 0;
    return result;
}

/** Entry point registered in main.ts. */
export async function runCryptoBench(args: string[]): Promise<void> {
    const opts = parseArgs(args);
    const started = performance.now();
    const result = await cryptoBench(opts);
    const md = markdown(result);
    mkdirSync(opts.outDir, { recursive: true });
    writeFileSync(join(opts.outDir, 'crypto.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(opts.outDir, 'crypto.md'), md);
    console.log(md);
    console.log(
        `wrote ${join(opts.outDir, 'crypto.json')} and crypto.md in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
}

if (!isMainThread && (workerData as Partial<WorkerRequest> | null)?.role === 'crypto-bench-worker') {
    workerMain(workerData as WorkerRequest).catch((err: unknown) => {
        console.error(err);
        process.exit(1);
    });
}
