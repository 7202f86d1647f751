/**
 * `npm run bench -- ledger [--quick] [--out DIR]`: committed transactions per second and
 * submit→commit latency (p50/p95) of the embedded ledger for a trivial write (one putState of a
 * fresh key, so no MVCC conflicts), at BatchTimeout 0.5/1/2 s and 1–500 concurrent clients in one
 * process (one core does endorsement, ordering, validation and commit). Each configuration runs a
 * fresh ledger (one organisation, fsync on) for a fixed window of closed-loop submits, then waits
 * for the in-flight ones; throughput = commits / (first submit → last commit).
 * `--quick` shortens the window and trims the grid (a smoke run; figures are indicative only).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { EmbeddedLedger } from '@m2m-fabric/embedded-ledger';

import { BenchContract } from './ledger-contract.js';
import { resultsDir } from './results-dir.js';
import { UsageError } from './usage.js';

interface Row {
    batchTimeoutMs: number;
    clients: number;
    committed: number;
    seconds: number;
    txPerSecond: number;
    p50Ms: number;
    p95Ms: number;
    blocks: number;
}

function percentile(sorted: number[], p: number): number {
    if (sorted.length === 0) return Number.NaN;
    const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[index] ?? Number.NaN;
}

async function runConfiguration(
    contractClass: unknown,
    batchTimeoutMs: number,
    clients: number,
    windowMs: number,
): Promise<Row> {
    const dir = await mkdtemp(join(tmpdir(), 'ledger-bench-'));
    const ledger = await EmbeddedLedger.open({
        dataDir: dir,
        organisations: ['Org1MSP'],
        chaincodes: [{ name: 'bench', contracts: [contractClass] }],
        batch: { batchTimeoutMs },
    });
    try {
        const user = await ledger.enrol('Org1MSP', 'bench');
        const connection = await ledger.connect({ identity: user.identity, signer: user.signer });
        const contract = connection.getContract('bench');
        const startHeight = ledger.height;
        const latencies: number[] = [];
        let sequence = 0;
        const start = performance.now();
        const stopAt = start + windowMs;
        let lastCommit = start;
        await Promise.all(
            Array.from({ length: clients }, async (_, client) => {
                while (performance.now() < stopAt) {
                    const t0 = performance.now();
                    await contract.submit('Put', { arguments: [`c${client}-${sequence++}`, 'v'] });
                    const t1 = performance.now();
                    latencies.push(t1 - t0);
                    lastCommit = Math.max(lastCommit, t1);
                }
            }),
        );
        latencies.sort((a, b) => a - b);
        const seconds = (lastCommit - start) / 1000;
        return {
            batchTimeoutMs,
            clients,
            committed: latencies.length,
            seconds: Number(seconds.toFixed(2)),
            txPerSecond: Number((latencies.length / seconds).toFixed(1)),
            p50Ms: Number(percentile(latencies, 50).toFixed(1)),
            p95Ms: Number(percentile(latencies, 95).toFixed(1)),
            blocks: Number(ledger.height - startHeight),
        };
    } finally {
        await ledger.close();
        await rm(dir, { recursive: true, force: true });
    }
}

export async function runLedgerBench(args: string[]): Promise<void> {
    let quick = false;
    let out: string | undefined;
    let onlyTimeouts: number[] | undefined;
    let onlyClients: number[] | undefined;
    const parseList = (flag: string, value: string | undefined): number[] => {
        const list = (value ?? '').split(',').map(Number);
        if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n <= 0)) {
            throw new UsageError(`ledger bench: ${flag} takes a comma-separated list of positive integers`);
        }
        return list;
    };
    for (let i = 0; i < args.length; i++) {
        const arg = args[i];
        if (arg === '--quick') quick = true;
        else if (arg === '--out' && args[i + 1] !== undefined) out = args[++i];
        else if (arg === '--batch-timeout') onlyTimeouts = parseList(arg, args[++i]);
        else if (arg === '--clients') onlyClients = parseList(arg, args[++i]);
        else throw new UsageError(`ledger bench: unknown argument ${JSON.stringify(arg)}`);
    }
    const outDir = resultsDir(quick, out);
    const timeouts = onlyTimeouts ?? [500, 1000, 2000];
    const concurrency = onlyClients ?? (quick ? [1, 50, 500] : [1, 10, 100, 500]);
    const windowMs = quick ? 2500 : 6000;
    const contractClass: unknown = BenchContract;
    const rows: Row[] = [];
    console.log(
        `embedded ledger bench: trivial write, window ${windowMs} ms per configuration${quick ? ' (quick)' : ''}`,
    );
    for (const batchTimeoutMs of timeouts) {
        for (const clients of concurrency) {
            const row = await runConfiguration(contractClass, batchTimeoutMs, clients, windowMs);
            rows.push(row);
            console.log(
                `BatchTimeout ${String(batchTimeoutMs).padStart(4)} ms  clients ${String(clients).padStart(3)}  ` +
                    `${String(row.txPerSecond).padStart(7)} tx/s  p50 ${String(row.p50Ms).padStart(7)} ms  p95 ${String(row.p95Ms).padStart(7)} ms  ` +
                    `(${row.committed} tx in ${row.blocks} blocks)`,
            );
        }
    }
    const header =
        '| BatchTimeout (ms) | clients | committed tx/s | p50 (ms) | p95 (ms) | tx | blocks |\n|---|---|---|---|---|---|---|\n';
    const table = rows
        .map(
            (r) =>
                `| ${r.batchTimeoutMs} | ${r.clients} | ${r.txPerSecond} | ${r.p50Ms} | ${r.p95Ms} | ${r.committed} | ${r.blocks} |`,
        )
        .join('\n');
    mkdirSync(outDir, { recursive: true });
    const result = {
        bench: 'ledger',
        quick,
        windowMs,
        node: process.version,
        workload: 'one putState of a fresh key per transaction; one organisation (MAJORITY of 1); fsync per block',
        rows,
    };
    writeFileSync(join(outDir, 'ledger.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(outDir, 'ledger.md'), `# Embedded ledger benchmark\n\n${header}${table}\n`);
    console.log(`\n${header}${table}\nwritten to ${join(outDir, 'ledger.json')}`);
}
