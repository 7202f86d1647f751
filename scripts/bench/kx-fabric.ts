/**
 * `npm run bench -- kx --target fabric [--batch-timeouts 0.25] [--concurrency 1,5,10,25,50]
 *  [--trials N] [--budget-s S] [--saturation-s S] [--saturation-devices N] [--smoke] [--out DIR]`:
 * the paper's Fig. 6 sweep against a real Fabric network that the benchmark brings up itself.
 *
 * For each BatchTimeout: `network.sh up --native --batch-timeout <bt>` (2.5/3.x binaries on PATH,
 * one Raft orderer, the four organisations, TLS, MAJORITY), `network.sh deploy`, then in the same
 * network
 *   1. the baseline: a trivial transaction (grantCredit of 1 credit: one new key, MAJORITY
 *      endorsement) submitted by the CSP and awaited to commit, one at a time (submit→commit p50),
 *      then by 50 clients at once for 10 s (transactions per second);
 *   2. the key-exchange cells (concurrency × trials) and the saturation phase of `bench -- kx`, with
 *      the services and the device agents in their own processes (kx.ts, layout `fabric`);
 * then `network.sh down`. CPU of every Fabric node (orderer, peers, chaincode servers) is read from
 * /proc around the throughput and saturation phases, for per-transaction costs (docs/capacity.md).
 * Targets: one device p50 ≤ 2 × trivial commit + 50 ms (a session is two commits); sessions/s at
 * saturation ≥ 0.8 × half the trivial transactions/s (two transactions a session); no failed
 * session. Writes bench/results/kx-fabric.{json,md} (with --smoke: a temporary directory).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { FabricLedgerConnector, fabricIdentity, loadFabricConfig, type LedgerConnection } from '@m2m-fabric/sdk';

import { LAYOUT_TEXT, parse, runForBatchTimeout, stats, type Cell, type SaturationFigures, type Stats } from './kx.js';
import { UsageError } from './usage.js';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const NETWORK = join(ROOT, 'fabric-network');
const NETWORK_SH = join(NETWORK, 'scripts', 'network.sh');
const CONNECTION_DIR = join(NETWORK, 'connection');

function network(args: string[]): void {
    const r = spawnSync('bash', [NETWORK_SH, ...args], { stdio: ['ignore', 'ignore', 'inherit'], cwd: ROOT });
    if (r.status !== 0) throw new Error(`network.sh ${args.join(' ')} exited with ${r.status}`);
}

/**
 * CPU ms (user + system) used so far by each running native Fabric node, by its directory under
 * fabric-network/.native/ (orderer0.…, peer0.<org>.…, cc.<org>.… for the chaincode servers).
 */
function fabricNodeCpuMs(): Record<string, number> {
    const native = join(NETWORK, '.native');
    const nodes: Record<string, number> = {};
    if (!existsSync(native)) return nodes;
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    for (const node of readdirSync(native).sort()) {
        const pidFile = join(native, node, 'node.pid');
        if (!existsSync(pidFile)) continue;
        try {
            const stat = readFileSync(`/proc/${readFileSync(pidFile, 'utf8').trim()}/stat`, 'utf8');
            // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
            const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            nodes[node.replace(/\.m2m\.example\.com$/, '')] =
                ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks;
        } catch {
            // the node exited: its CPU is no longer counted
        }
    }
    return nodes;
}

/** Per-node CPU ms between two readings of {@link fabricNodeCpuMs}, divided by `count`. */
function perNode(before: Record<string, number>, after: Record<string, number>, count: number): Record<string, number> {
    return Object.fromEntries(
        Object.keys(after).map((node) => [
            node,
            Math.round((((after[node] ?? 0) - (before[node] ?? 0)) / Math.max(1, count)) * 10) / 10,
        ]),
    );
}

/** Bytes on disk of the CSP peer's ledger stores (every peer holds the same ledger). */
function ledgerBytes(): Record<string, number> {
    const data = join(NETWORK, '.native', 'peer0.csp.m2m.example.com', 'data', 'ledgersData');
    const size = (path: string): number => {
        if (!existsSync(path)) return 0;
        const st = statSync(path);
        if (!st.isDirectory()) return st.size;
        return readdirSync(path).reduce((sum, entry) => sum + size(join(path, entry)), 0);
    };
    return {
        blocks: size(join(data, 'chains')),
        state: size(join(data, 'stateLeveldb')),
        history: size(join(data, 'historyLeveldb')),
    };
}

interface Baseline {
    commitMs: Stats;
    commits: number;
    txPerSecond: number;
    concurrentClients: number;
    seconds: number;
    /** CPU ms of all Fabric nodes per committed trivial transaction, during the throughput phase. */
    fabricCpuMsPerTx: number;
    /** The same by node (orderer0, peer0.<org>, cc.<org>). */
    fabricCpuMsPerTxByNode: Record<string, number>;
    /** Growth of one peer's ledger stores per trivial transaction, during the throughput phase. */
    ledgerBytesPerTx: Record<string, number>;
}

async function connectCsp(): Promise<LedgerConnection> {
    const config = loadFabricConfig({ file: join(CONNECTION_DIR, 'csp.env'), env: {} });
    const { identity, signer } = fabricIdentity(config);
    return await FabricLedgerConnector.fromConfig(config).connect({
        identity,
        signer,
        channelName: config.channelName,
    });
}

/** The trivial transaction's submit→commit latency (one at a time) and throughput (50 clients). */
async function measureBaseline(sequential: number, seconds: number, clients: number): Promise<Baseline> {
    const connection = await connectCsp();
    try {
        const registry = connection.getContract('m2m', 'registry');
        const trivial = async (): Promise<void> => {
            await registry.submit('grantCredit', { arguments: ['ManufacturerMSP', '1'] });
        };
        for (let w = 0; w < 3; w++) await trivial(); // warm-up: TLS sessions, chaincode JIT
        const latencies: number[] = [];
        for (let k = 0; k < sequential; k++) {
            const t0 = performance.now();
            await trivial();
            latencies.push(performance.now() - t0);
        }
        let committed = 0;
        const nodesBefore = fabricNodeCpuMs();
        const cpuBefore = Object.values(nodesBefore).reduce((a, b) => a + b, 0);
        const bytesBefore = ledgerBytes();
        const t0 = performance.now();
        const end = t0 + seconds * 1000;
        await Promise.all(
            Array.from({ length: clients }, async () => {
                while (performance.now() < end) {
                    await trivial();
                    committed++;
                }
            }),
        );
        const elapsed = (performance.now() - t0) / 1000;
        const nodesAfter = fabricNodeCpuMs();
        const cpu = Object.values(nodesAfter).reduce((a, b) => a + b, 0) - cpuBefore;
        const bytesAfter = ledgerBytes();
        return {
            commitMs: stats(latencies),
            commits: sequential,
            txPerSecond: Math.round((committed / elapsed) * 10) / 10,
            concurrentClients: clients,
            seconds: Math.round(elapsed * 10) / 10,
            fabricCpuMsPerTx: Math.round((cpu / Math.max(1, committed)) * 10) / 10,
            fabricCpuMsPerTxByNode: perNode(nodesBefore, nodesAfter, committed),
            ledgerBytesPerTx: Object.fromEntries(
                Object.keys(bytesAfter).map((k) => [
                    k,
                    Math.round((bytesAfter[k]! - (bytesBefore[k] ?? 0)) / Math.max(1, committed)),
                ]),
            ),
        };
    } finally {
        connection.close();
    }
}

export async function runKxFabricBench(args: string[]): Promise<void> {
    const given = new Set(args.filter((a) => a.startsWith('--')));
    const smoke = given.has('--smoke');
    const o = parse(args.filter((a) => a !== '--smoke'));
    // The network's own BatchTimeout (configtx.yaml: 250 ms) unless asked otherwise; fewer trials
    // than the embedded sweep, as every trial is two real commits.
    if (!given.has('--batch-timeouts')) o.batchTimeouts = [0.25];
    if (!given.has('--trials')) o.trials = smoke ? 3 : 20;
    if (!given.has('--budget-s')) o.budgetS = smoke ? 20 : 150;
    if (!given.has('--saturation-s')) o.saturationS = smoke ? 5 : 20;
    if (!given.has('--saturation-devices')) o.saturationDevices = 60;
    if (!given.has('--concurrency') && smoke) o.concurrency = [1, 5];
    if (given.has('--layout')) throw new UsageError('kx bench: --target fabric has its own layout');
    o.layout = 'fabric';
    o.crypto = false;
    if (!given.has('--out') && smoke) o.outDir = mkdtempSync(join(tmpdir(), 'kx-fabric-smoke-'));
    const versionOut = spawnSync('peer', ['version'], { encoding: 'utf8' });
    if (versionOut.status !== 0)
        throw new UsageError(
            'kx bench --target fabric: no Fabric `peer` on PATH; put a Fabric 2.5 or 3.x release on PATH (see fabric-network/README.md)',
        );
    const fabricVersion = /Version: *(\S+)/.exec(versionOut.stdout)?.[1] ?? 'unknown';
    if (existsSync(join(NETWORK, '.network-state')))
        throw new UsageError(
            'kx bench --target fabric: a network is already up here; run `npm run network:down` first',
        );

    const started = performance.now();
    const loadBefore = loadavg()[0] ?? 0;
    const cellBudgetMs = (o.budgetS * 1000) / (o.batchTimeouts.length * o.concurrency.length);
    const cells: Cell[] = [];
    const baselines: (Baseline & { batchTimeoutS: number })[] = [];
    let saturation:
        | (SaturationFigures & { batchTimeoutS: number; fabricCpuMsPerSessionByNode?: Record<string, number> })
        | undefined;
    const nodeReadings: Record<string, number>[] = [];
    const minBt = Math.min(...o.batchTimeouts);
    for (const bt of o.batchTimeouts) {
        console.error(`Fabric ${fabricVersion}, BatchTimeout ${bt}s: network up and deploy…`);
        network(['up', '--native', '--batch-timeout', `${Math.round(bt * 1000)}ms`]);
        try {
            network(['deploy', '--no-build']);
            const baseline = await measureBaseline(smoke ? 10 : 30, smoke ? 4 : 10, 50);
            baselines.push({ batchTimeoutS: bt, ...baseline });
            console.error(
                `  trivial tx: submit→commit p50 ${baseline.commitMs.p50} ms, ${baseline.txPerSecond} tx/s with ${baseline.concurrentClients} clients, ${baseline.fabricCpuMsPerTx} Fabric CPU ms/tx`,
            );
            const r = await runForBatchTimeout(
                bt,
                {
                    ...o,
                    fabricConnectionDir: CONNECTION_DIR,
                    // Read exactly twice, around the saturation phase: the per-node readings too.
                    fabricCpuMs: () => {
                        const nodes = fabricNodeCpuMs();
                        nodeReadings.push(nodes);
                        return Promise.resolve(Object.values(nodes).reduce((a, b) => a + b, 0));
                    },
                    ledgerBytes,
                },
                cellBudgetMs,
                bt === minBt && o.saturationS > 0,
            );
            cells.push(...r.cells);
            if (r.saturation !== undefined) {
                const [before, after] = nodeReadings.slice(-2);
                saturation = {
                    batchTimeoutS: bt,
                    ...r.saturation,
                    ...(before !== undefined && after !== undefined
                        ? { fabricCpuMsPerSessionByNode: perNode(before, after, r.saturation.sessions) }
                        : {}),
                };
            }
        } finally {
            network(['down']);
        }
    }

    const base = baselines.find((b) => b.batchTimeoutS === minBt) ?? baselines[0];
    const oneDevice = cells.find((c) => c.batchTimeoutS === minBt && c.concurrency === 1);
    const trivialCommitP50Ms = base?.commitMs.p50 ?? 0;
    const trivialTxPerSecond = base?.txPerSecond ?? 0;
    const oneDeviceP50Ms = oneDevice?.batchLatencyMs.p50 ?? 0;
    const saturationSessionsPerSecond = saturation?.sessionsPerSec ?? 0;
    const failedSessions = cells.reduce((a, c) => a + c.failed, 0) + (saturation?.failed ?? 0);
    const oneDeviceLimitMs = Math.round((2 * trivialCommitP50Ms + 50) * 10) / 10;
    const saturationFloor = Math.round(0.8 * (trivialTxPerSecond / 2) * 10) / 10;
    const result = {
        bench: 'kx-fabric',
        generatedAt: new Date().toISOString(),
        fabricVersion,
        consensus: 'raft1',
        node: process.versions.node,
        cpus: availableParallelism(),
        loadAverage: { before: loadBefore, after: loadavg()[0] ?? 0 },
        smoke,
        options: o,
        trivialCommitP50Ms,
        trivialTxPerSecond,
        oneDeviceP50Ms,
        saturationSessionsPerSecond,
        failedSessions,
        targets: {
            oneDevice: { limitMs: oneDeviceLimitMs, met: oneDeviceP50Ms > 0 && oneDeviceP50Ms <= oneDeviceLimitMs },
            saturation: {
                floorSessionsPerSecond: saturationFloor,
                met: saturationSessionsPerSecond >= saturationFloor,
            },
            noFailedSession: failedSessions === 0,
        },
        baselines,
        cells,
        saturation,
        durationS: Math.round((performance.now() - started) / 100) / 10,
    };
    const yes = (b: boolean): string => (b ? 'met' : '**not met**');
    const md = [
        '# Key exchange on real Fabric (paper 004 Fig. 6) — `npm run bench -- kx --target fabric`',
        '',
        `Generated ${result.generatedAt}: Fabric ${fabricVersion}, one Raft orderer, 4 organisations (one peer each, LevelDB, TLS), MAJORITY endorsement, chaincode as a service (Node); Node ${result.node}, ${result.cpus} CPUs shared by everything (load average ${loadBefore.toFixed(1)} → ${result.loadAverage.after.toFixed(1)}). Trials per cell bounded by a ${o.budgetS} s budget (column "trials").${smoke ? ' **Smoke run** (fewer trials).' : ''}`,
        '',
        '## Baseline (same network, same run)',
        '',
        '| BatchTimeout s | trivial submit→commit p50 ms | p95 | tx/s (50 clients) | Fabric CPU ms/tx | ledger bytes/tx (blocks, state, history) |',
        '|---|---|---|---|---|---|',
        ...baselines.map(
            (b) =>
                `| ${b.batchTimeoutS} | ${b.commitMs.p50} | ${b.commitMs.p95} | ${b.txPerSecond} | ${b.fabricCpuMsPerTx} | ${Object.values(b.ledgerBytesPerTx).join(', ')} |`,
        ),
        '',
        "Trivial transaction: `grantCredit` of 1 credit by the CSP (one new key, endorsed by 3 of 4 organisations), awaited until committed on the CSP's peer.",
        '',
        '## Key exchange',
        '',
        '| BatchTimeout s | concurrent | trials | failed | batch mean ms | std | p50 | p95 | session p50 ms | sessions/s |',
        '|---|---|---|---|---|---|---|---|---|---|',
        ...cells.map(
            (c) =>
                `| ${c.batchTimeoutS} | ${c.concurrency} | ${c.trials} | ${c.failed} | ${c.batchLatencyMs.mean} | ${c.batchLatencyMs.std} | ${c.batchLatencyMs.p50} | ${c.batchLatencyMs.p95} | ${c.sessionLatencyMs.p50} | ${c.sessionsPerSec} |`,
        ),
        '',
        saturation === undefined
            ? 'Saturation not measured.'
            : `Saturation (BatchTimeout ${saturation.batchTimeoutS} s, ${saturation.devices} devices back to back for ${saturation.seconds} s): **${saturation.sessionsPerSec} sessions/s**, ${saturation.failed} failed${saturation.failures !== undefined && saturation.failed > 0 ? ` (${JSON.stringify(saturation.failures)})` : ''}. CPU ms per established session by process: ${Object.entries(
                  saturation.cpuMsPerSession,
              )
                  .map(([k, v]) => `${k} ${v}`)
                  .join(', ')} (\`fabric\` = orderer + 4 peers + 4 chaincode servers).` +
              (saturation.ledgerBytesPerSession === undefined
                  ? ''
                  : ` Ledger growth per session on one peer (bytes): ${Object.entries(saturation.ledgerBytesPerSession)
                        .map(([k, v]) => `${k} ${v}`)
                        .join(', ')}.`),
        '',
        ...cpuByNodeTable(base?.fabricCpuMsPerTxByNode, saturation?.fabricCpuMsPerSessionByNode),
        '## Targets',
        '',
        `- one device p50 ${oneDeviceP50Ms} ms ≤ 2 × trivial commit + 50 ms = ${oneDeviceLimitMs} ms: ${yes(result.targets.oneDevice.met)}`,
        `- saturation ${saturationSessionsPerSecond} sessions/s ≥ 0.8 × half the trivial tx/s = ${saturationFloor}: ${yes(result.targets.saturation.met)}`,
        `- failed sessions: ${failedSessions}: ${yes(result.targets.noFailedSession)}`,
        '',
        `Layout: ${LAYOUT_TEXT.fabric}`,
        '',
    ].join('\n');
    mkdirSync(o.outDir, { recursive: true });
    writeFileSync(join(o.outDir, 'kx-fabric.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(o.outDir, 'kx-fabric.md'), md);
    console.log(md);
    console.log(`wrote ${join(o.outDir, 'kx-fabric.json')} and kx-fabric.md in ${result.durationS} s`);
}

/**
 * CPU ms of each Fabric node per trivial transaction and per established session, and the session's
 * cost in trivial transactions (a session is two transactions, so 2.0 would mean "as cheap").
 */
function cpuByNodeTable(
    perTx: Record<string, number> | undefined,
    perSession: Record<string, number> | undefined,
): string[] {
    if (perTx === undefined && perSession === undefined) return [];
    const nodes = [...new Set([...Object.keys(perTx ?? {}), ...Object.keys(perSession ?? {})])].sort();
    const sum = (r: Record<string, number> | undefined): number =>
        Math.round(Object.values(r ?? {}).reduce((a, b) => a + b, 0) * 10) / 10;
    const cell = (v: number | undefined): string => (v === undefined ? '–' : String(v));
    const ratio = (tx: number | undefined, session: number | undefined): string =>
        tx === undefined || session === undefined || tx === 0 ? '–' : String(Math.round((session / tx) * 10) / 10);
    return [
        '## CPU by Fabric node',
        '',
        '| node | CPU ms per trivial tx | CPU ms per session | session / trivial tx |',
        '|---|---|---|---|',
        ...nodes.map(
            (n) => `| ${n} | ${cell(perTx?.[n])} | ${cell(perSession?.[n])} | ${ratio(perTx?.[n], perSession?.[n])} |`,
        ),
        `| all | ${sum(perTx)} | ${sum(perSession)} | ${ratio(sum(perTx), sum(perSession))} |`,
        '',
    ];
}
