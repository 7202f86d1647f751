/**
 * Command-line usage of the benchmarks: a bad argument is the user's mistake, not a crash, so it
 * ends with the bench's usage and exit code 2 instead of a stack trace (main.ts).
 */

/** A bad command line; the message names the argument and the bench's usage follows it. */
export class UsageError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'UsageError';
    }
}

/**
 * How to run each bench (the first line of its doc comment, kept here so `--help` can print it).
 * Full runs write bench/results/; `--quick` smoke runs write bench/results/quick/ (results-dir.ts).
 */
export const BENCH_USAGE: Readonly<Record<string, string>> = {
    console: 'npm run bench -- console [--devices N (10000)] [--runs R (7)] [--out DIR]   (needs /usr/bin/chromium)',
    crypto: 'npm run bench -- crypto [--quick] [--out DIR]',
    kx:
        'npm run bench -- kx [--trials N] [--budget-s S] [--batch-timeouts 0.5,1,2] [--concurrency 1,5,10,25,50]\n' +
        '    [--saturation-s S] [--saturation-devices N] [--layout single|devices|processes]\n' +
        '    [--service-concurrency N] [--chaincode-threads] [--no-crypto] [--profile DIR] [--out DIR]',
    'kx-fs':
        'npm run bench -- kx-fs [--baseline COMMIT] [--pairs N] [--trials N] [--batch-timeout S] [--cpu-saturation-s S]\n' +
        '    [--work DIR] [--quick] [--out DIR]   (builds COMMIT once under .data/bench/kx-fs/)',
    ledger: 'npm run bench -- ledger [--quick] [--out DIR] [--batch-timeout MS[,MS]] [--clients N[,N]]',
    lookup:
        'npm run bench -- lookup [--sizes 1000,10000,100000,1000000] [--samples N] [--warmup N]\n' +
        '    [--issue-limit N] [--dir DIR] [--keep] [--reuse DIR] [--no-compact] [--quick] [--render] [--out DIR]',
    plots: 'npm run bench -- plots [--dir DIR]   (re-renders the SVG figures from the JSON results)',
    records: 'npm run bench -- records [--quick] [--out DIR]',
    storage: 'npm run bench -- storage',
    trace: 'npm run bench -- trace [--sizes 1000,10000,100000] [--samples N] [--queries N] [--concurrency 1,10,50] [--quick] [--out DIR]',
};
