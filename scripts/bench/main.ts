/**
 * Benchmark dispatcher: `npm run bench -- <name> [options]`. Each area registers one runner here;
 * every runner prints a table and writes its results under bench/results/ (quick smoke runs under
 * bench/results/quick/, which git ignores: results-dir.ts).
 */
import { existsSync, statSync } from 'node:fs';
import { resultsDir } from './results-dir.js';
import { join } from 'node:path';
import { runConsoleBench } from './console.js';
import { runCryptoBench } from './crypto.js';
import { runKxBench } from './kx.js';
import { runKxFsBench } from './kx-fs.js';
import { runLedgerBench } from './ledger.js';
import { runLookupBench } from './lookup.js';
import { plotBench, runPlots } from './plots.js';
import { runRecordsBench } from './records.js';
import { runStorageBench } from './storage.js';
import { runTraceBench } from './trace.js';
import { QUICK_RESULTS_DIR, RESULTS_DIR } from './results-dir.js';
import { BENCH_USAGE, UsageError } from './usage.js';

/** A benchmark entry point: receives the arguments after its name, resolves when done. */
export type BenchRunner = (args: string[]) => Promise<void>;

const BENCHES: Readonly<Record<string, BenchRunner>> = {
    console: runConsoleBench,
    crypto: runCryptoBench,
    kx: runKxBench,
    'kx-fs': runKxFsBench,
    ledger: runLedgerBench,
    lookup: runLookupBench,
    plots: runPlots,
    records: runRecordsBench,
    storage: runStorageBench,
    trace: runTraceBench,
};

const usageOf = (name: string): string => BENCH_USAGE[name] ?? `npm run bench -- ${name}`;

function usage(): string {
    const lines = Object.keys(BENCHES)
        .sort()
        .map((name) => `  ${usageOf(name)}`);
    return (
        `usage: npm run bench -- <name> [options]; one of:\n${lines.join('\n')}\n` +
        `Results go to ${RESULTS_DIR}/; --quick smoke runs to ${QUICK_RESULTS_DIR}/ (not tracked); --out DIR elsewhere.`
    );
}

/**
 * Writes the bench's SVG figure beside the JSON it just wrote (results-dir.ts: bench/results,
 * bench/results/quick for --quick, or its --out);
 * a JSON file older than this run (a quick run that wrote elsewhere) is left alone.
 */
async function plotFresh(name: string, args: string[], started: number): Promise<void> {
    const flag = args.indexOf('--out');
    const dir = resultsDir(args.includes('--quick'), flag >= 0 ? args[flag + 1] : undefined);
    const json = join(dir, `${name}.json`);
    if (name === 'plots' || !existsSync(json) || statSync(json).mtimeMs < started) return;
    const out = await plotBench(name, dir);
    if (out !== undefined) console.log(`figure ${out}`);
}

async function main(argv: string[]): Promise<number> {
    const [name, ...rest] = argv;
    if (name === '--help' || name === '-h') {
        console.log(usage());
        return 0;
    }
    if (name === undefined || !Object.hasOwn(BENCHES, name)) {
        if (name !== undefined) console.error(`unknown benchmark ${JSON.stringify(name)}`);
        console.error(usage());
        return 2;
    }
    const runner = BENCHES[name]!;
    if (rest.includes('--help') || rest.includes('-h')) {
        console.log(`usage: ${usageOf(name)}`);
        return 0;
    }
    const started = Date.now();
    try {
        await runner(rest);
        await plotFresh(name, rest, started);
    } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        console.error(`${err.message}\nusage: ${usageOf(name)}`);
        return 2;
    }
    return 0;
}

main(process.argv.slice(2)).then(
    (code) => {
        process.exitCode = code;
    },
    (err: unknown) => {
        console.error(err);
        process.exitCode = 1;
    },
);
