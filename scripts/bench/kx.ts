/**
 * `npm run bench -- kx [--trials N] [--budget-s S] [--batch-timeouts 0.5,1,2] [--concurrency 1,5,10,25,50]
 *  [--saturation-s S] [--no-crypto] [--out DIR]`: paper 004 Fig. 6 — end-to-end latency of
 * batches of concurrent key exchanges (M1 -> Confirm: Alg. 2 + Alg. 3, two ledger commits) on the
 * embedded network (ledger, IPFS store, brokers, CSP, 2 fogs), for each BatchTimeout; then the
 * session rate at saturation beside the crypto-only bound of `bench -- crypto` measured in the
 * same run, as a ratio.
 *
 * Bounded: each (BatchTimeout, concurrency) cell gets an equal share of --budget-s (default 300 s
 * total) and runs as many trials as fit, between 3 and --trials (default 100); the trials actually
 * run are in the output. A trial's latency is the completion time of its whole batch, as in the
 * paper; per-session latencies are reported too.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedNetwork, MANUFACTURER_MSP } from '@m2m-fabric/gateway/demo/network';
import { DeviceAgent } from '@m2m-fabric/gateway/device/agent';
import { errorCodeOf } from '@m2m-fabric/gateway/mqtt/envelope';
import { cryptoBench } from './crypto.js';

interface KxOptions {
    trials: number;
    budgetS: number;
    batchTimeouts: number[];
    concurrency: number[];
    saturationS: number;
    crypto: boolean;
    outDir: string;
}

interface Stats {
    mean: number;
    std: number;
    p50: number;
    p95: number;
    min: number;
    max: number;
}

interface Cell {
    batchTimeoutS: number;
    concurrency: number;
    trials: number;
    failed: number;
    /** Failed sessions by error code. */
    failures: Record<string, number>;
    batchLatencyMs: Stats;
    sessionLatencyMs: Stats;
    sessionsPerSec: number;
    targetP50Ms: number;
    meetsTarget: boolean;
}

function parse(args: string[]): KxOptions {
    const o: KxOptions = {
        trials: 100,
        budgetS: 300,
        batchTimeouts: [0.5, 1, 2],
        concurrency: [1, 5, 10, 25, 50],
        saturationS: 15,
        crypto: true,
        outDir: join('bench', 'results'),
    };
    const list = (v: string | undefined): number[] =>
        (v ?? '')
            .split(',')
            .map(Number)
            .filter((x) => x > 0);
    for (let k = 0; k < args.length; k++) {
        const a = args[k];
        const v = args[k + 1];
        if (a === '--no-crypto') {
            o.crypto = false;
            continue;
        }
        if (v === undefined) throw new Error(`kx bench: ${String(a)} needs a value`);
        k++;
        if (a === '--trials') o.trials = Number(v);
        else if (a === '--budget-s') o.budgetS = Number(v);
        else if (a === '--batch-timeouts') o.batchTimeouts = list(v);
        else if (a === '--concurrency') o.concurrency = list(v);
        else if (a === '--saturation-s') o.saturationS = Number(v);
        else if (a === '--out') o.outDir = v;
        else throw new Error(`kx bench: unknown argument ${JSON.stringify(a)}`);
    }
    return o;
}

function stats(xs: number[]): Stats {
    const s = [...xs].sort((a, b) => a - b);
    const n = s.length;
    if (n === 0) return { mean: 0, std: 0, p50: 0, p95: 0, min: 0, max: 0 };
    const mean = s.reduce((a, b) => a + b, 0) / n;
    const std = Math.sqrt(s.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, n - 1));
    const pct = (p: number): number => s[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
    const r = (x: number): number => Math.round(x * 10) / 10;
    return { mean: r(mean), std: r(std), p50: r(pct(50)), p95: r(pct(95)), min: r(s[0]!), max: r(s[n - 1]!) };
}

async function runForBatchTimeout(
    bt: number,
    o: KxOptions,
    cellBudgetMs: number,
    saturate: boolean,
): Promise<{
    cells: Cell[];
    saturation?: { devices: number; seconds: number; sessions: number; sessionsPerSec: number };
}> {
    const dataDir = mkdtempSync(join(tmpdir(), 'm2m-kx-'));
    const net = new EmbeddedNetwork({ dataDir, fogs: 2, batchTimeoutMs: Math.round(bt * 1000) });
    const agents: DeviceAgent[] = [];
    try {
        await net.start();
        const maxC = Math.max(...o.concurrency);
        // Trials per cell: as many as the cell's time share allows (a trial takes about 2 BatchTimeouts).
        const plan = o.concurrency.map((c) => ({
            c,
            trials: Math.max(3, Math.min(o.trials, Math.floor(cellBudgetMs / (2.2 * bt * 1000 + 150 + 15 * c)))),
        }));
        const satPerDevice = saturate ? Math.ceil((o.saturationS / (2 * bt)) * 1.5) + 2 : 0;
        const need = Array.from(
            { length: maxC },
            (_, j) => plan.filter((p) => p.c > j).reduce((a, p) => a + p.trials, 0) + satPerDevice,
        );
        await net.csp.grantCredit(
            MANUFACTURER_MSP,
            need.reduce((a, b) => a + b, 0),
        );
        console.error(
            `BatchTimeout ${bt}s: buying ${need.reduce((a, b) => a + b, 0)} certificates for ${maxC} devices`,
        );
        await Promise.all(
            need.map(async (n, j) => {
                const id = `kx-${String(j + 1).padStart(3, '0')}`;
                const fog = j % 2;
                await net.manufacturer.registerEquipment({
                    equipmentId: id,
                    kind: 'sensor',
                    model: 'bench',
                    fogGroup: net.fogId(fog),
                    privilegeLevel: 1,
                    serviceType: 'upload-download',
                    accessTime: 'always',
                });
                // The manufacturer cannot buy 0: every device takes part in at least the widest cell.
                await net.manufacturer.buySessions(id, n);
                const statePath = join(dataDir, 'devices', `${id}.json`);
                await net.manufacturer.provisionDevice(id, statePath, { id: net.fogId(fog) });
                const agent = await DeviceAgent.open({
                    statePath,
                    brokerUrl: net.fogs[fog]!.deviceBrokerUrl,
                    sessionTimeoutMs: 60_000,
                });
                await agent.connect();
                agents[j] = agent;
            }),
        );
        const cells: Cell[] = [];
        for (const { c, trials } of plan) {
            const batch: number[] = [];
            const per: number[] = [];
            let failed = 0;
            const failures: Record<string, number> = {};
            for (let t = 0; t < trials; t++) {
                const t0 = performance.now();
                const results = await Promise.allSettled(agents.slice(0, c).map((a) => a.establishSession()));
                batch.push(performance.now() - t0);
                for (const r of results) {
                    if (r.status === 'fulfilled') per.push(r.value.latencyMs);
                    else {
                        failed++;
                        const code = errorCodeOf(r.reason);
                        failures[code] = (failures[code] ?? 0) + 1;
                    }
                }
            }
            const b = stats(batch);
            const cell: Cell = {
                batchTimeoutS: bt,
                concurrency: c,
                trials,
                failed,
                failures,
                batchLatencyMs: b,
                sessionLatencyMs: stats(per),
                sessionsPerSec: Math.round((per.length / (batch.reduce((a, x) => a + x, 0) / 1000)) * 10) / 10,
                targetP50Ms: 2 * bt * 1000 + 100,
                meetsTarget: b.p50 <= 2 * bt * 1000 + 100,
            };
            cells.push(cell);
            console.error(
                `  BT ${bt}s c=${c}: ${trials} trials, batch p50 ${b.p50} ms p95 ${b.p95} ms, ${cell.sessionsPerSec} sessions/s, ${failed} failed`,
            );
        }
        if (!saturate) return { cells };
        // Saturation: every device runs sessions back to back for saturationS seconds.
        let sessions = 0;
        const t0 = performance.now();
        const until = t0 + o.saturationS * 1000;
        await Promise.all(
            agents.map(async (a) => {
                while (performance.now() < until && a.remainingSessions > 0n) {
                    await a.establishSession().then(
                        () => sessions++,
                        () => undefined,
                    );
                }
            }),
        );
        const seconds = (performance.now() - t0) / 1000;
        const saturation = {
            devices: agents.length,
            seconds: Math.round(seconds * 10) / 10,
            sessions,
            sessionsPerSec: Math.round((sessions / seconds) * 10) / 10,
        };
        console.error(`  saturation: ${saturation.sessionsPerSec} sessions/s with ${agents.length} devices`);
        return { cells, saturation };
    } finally {
        await Promise.allSettled(agents.map((a) => a.close()));
        await net.close();
        rmSync(dataDir, { recursive: true, force: true });
    }
}

export async function runKxBench(args: string[]): Promise<void> {
    const o = parse(args);
    process.env.CORE_CHAINCODE_LOGGING_LEVEL ??= 'ERROR';
    const started = performance.now();
    const loadBefore = loadavg()[0] ?? 0;
    const cellBudgetMs = (o.budgetS * 1000) / (o.batchTimeouts.length * o.concurrency.length);
    const cells: Cell[] = [];
    let saturation:
        | { batchTimeoutS: number; devices: number; seconds: number; sessions: number; sessionsPerSec: number }
        | undefined;
    const minBt = Math.min(...o.batchTimeouts);
    for (const bt of o.batchTimeouts) {
        const r = await runForBatchTimeout(bt, o, cellBudgetMs, bt === minBt && o.saturationS > 0);
        cells.push(...r.cells);
        if (r.saturation !== undefined) saturation = { batchTimeoutS: bt, ...r.saturation };
    }
    let cryptoBound:
        | { sessionsPerSecBothCores: number; estimatedSessionsPerSecAllCores: number; cpuMsPerSession: number }
        | undefined;
    if (o.crypto) {
        console.error('crypto-only bound (bench -- crypto, same run)…');
        const c = await cryptoBench({
            quick: false,
            outDir: o.outDir,
            rounds: 3,
            primitiveRoundMs: 20,
            sessionRoundMs: 1000,
            workers: Math.max(1, Math.min(availableParallelism(), 8)),
        });
        const s = c.suites['P256-SHA256']!.session;
        cryptoBound = {
            sessionsPerSecBothCores: Math.round(s.sessionsPerSecWorkers * 10) / 10,
            estimatedSessionsPerSecAllCores: Math.round(s.estimatedSessionsPerSecAllCores * 10) / 10,
            cpuMsPerSession: Math.round(s.cpuMsPerSession * 10) / 10,
        };
    }
    const ratio =
        saturation !== undefined && cryptoBound !== undefined && cryptoBound.sessionsPerSecBothCores > 0
            ? Math.round((saturation.sessionsPerSec / cryptoBound.sessionsPerSecBothCores) * 1000) / 1000
            : undefined;
    const result = {
        bench: 'kx',
        generatedAt: new Date().toISOString(),
        node: process.versions.node,
        cpus: availableParallelism(),
        loadAverage: { before: loadBefore, after: loadavg()[0] ?? 0 },
        options: o,
        note: 'trials per cell bounded by --budget-s (see "trials"); batch latency = completion of the whole concurrent batch (paper 004 Fig. 6)',
        cells,
        saturation,
        cryptoBound,
        saturationToCryptoRatio: ratio,
        targets: {
            p50: 'p50 <= 2 x BatchTimeout + 100 ms',
            saturation: '>= 0.6 of the crypto-only bound on both cores',
        },
        durationS: Math.round((performance.now() - started) / 100) / 10,
    };
    const md = [
        '# Key exchange latency (paper 004 Fig. 6) — `npm run bench -- kx`',
        '',
        `Generated ${result.generatedAt}, Node ${result.node}, ${result.cpus} CPUs, load average ${loadBefore.toFixed(1)} → ${result.loadAverage.after.toFixed(1)} (a shared machine reads slow). Embedded ledger + IPFS store + aedes brokers, 1 CSP, 2 fogs, P-256. Trials per cell bounded by a ${o.budgetS} s budget (column "trials").`,
        '',
        '| BatchTimeout s | concurrent | trials | failed | batch mean ms | std | p50 | p95 | session p50 ms | sessions/s | target p50 ≤ ms | met |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|',
        ...cells.map(
            (c) =>
                `| ${c.batchTimeoutS} | ${c.concurrency} | ${c.trials} | ${c.failed} | ${c.batchLatencyMs.mean} | ${c.batchLatencyMs.std} | ${c.batchLatencyMs.p50} | ${c.batchLatencyMs.p95} | ${c.sessionLatencyMs.p50} | ${c.sessionsPerSec} | ${c.targetP50Ms} | ${c.meetsTarget ? 'yes' : 'no'} |`,
        ),
        '',
        saturation === undefined
            ? 'Saturation not measured.'
            : `Saturation (BatchTimeout ${saturation.batchTimeoutS} s, ${saturation.devices} devices back to back for ${saturation.seconds} s): **${saturation.sessionsPerSec} sessions/s**` +
              (cryptoBound === undefined
                  ? '.'
                  : `; crypto-only bound on both cores (same run): ${cryptoBound.sessionsPerSecBothCores} sessions/s (${cryptoBound.cpuMsPerSession} CPU ms per session); ratio **${ratio}** (target ≥ 0.6).`),
        '',
    ].join('\n');
    mkdirSync(o.outDir, { recursive: true });
    writeFileSync(join(o.outDir, 'kx.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(o.outDir, 'kx.md'), md);
    console.log(md);
    console.log(`wrote ${join(o.outDir, 'kx.json')} and kx.md in ${result.durationS} s`);
}
