/**
 * `npm run bench -- kx-fs [--baseline COMMIT] [--pairs N] [--trials N] [--batch-timeout S]
 *  [--cpu-saturation-s S] [--work DIR] [--quick] [--out DIR]`: issue 20's "kx one-device p50
 * unchanged by forward secrecy", with the baseline measured in the same run.
 *
 * Forward secrecy has no switch, so the baseline is the code before it: the commit `--baseline`
 * (default {@link DEFAULT_BASELINE}, main just before forward secrecy was merged) is exported with
 * `git archive` into a work directory (default .data/bench/kx-fs/<commit>, kept between runs),
 * `npm ci` + `tsc -b` there once; this worktree's build is the current side. Both sides run their
 * own, unmodified `bench -- kx` (the harness, scripts/bench/kx*.ts, is the same source on both) with
 * the same settings: one device, one BatchTimeout, `--layout processes`, no records (the kx bench
 * never turns them on), `--no-crypto`, and a short saturation of a few devices for CPU ms per
 * session. Runs alternate baseline, current, baseline, current… (pair i = the i-th run of each), so
 * load drift on a shared machine hits both sides alike; the figures are both sides' medians of the
 * per-run p50s, the per-pair ratios (current / baseline) with their min and max, and a bootstrap
 * 95 % interval of the ratio of medians over resampled pairs.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { resultsDir } from './results-dir.js';
import { UsageError } from './usage.js';
import type { Cell, SaturationFigures } from './kx.js';

/**
 * main right before forward secrecy reached it: the first parent of f999191 ("merge i20b: forward
 * secrecy on by default in device and CSP"). It already has paid-session recovery (i17) and the
 * records code (i18r, off in the kx bench), so the comparison isolates forward secrecy and the
 * x_D / symKey_i state writes that came with it.
 */
export const DEFAULT_BASELINE = '8a261a8';

export interface KxFsOptions {
    baseline: string;
    pairs: number;
    trials: number;
    batchTimeoutS: number;
    cpuSaturationS: number;
    workDir: string;
    quick: boolean;
    outDir: string;
}

export function parse(args: string[]): KxFsOptions {
    const quick = args.includes('--quick');
    const o: KxFsOptions = {
        baseline: DEFAULT_BASELINE,
        pairs: quick ? 2 : 8,
        trials: quick ? 4 : 12,
        batchTimeoutS: 0.5,
        cpuSaturationS: quick ? 4 : 8,
        workDir: join('.data', 'bench', 'kx-fs'),
        quick,
        outDir: '',
    };
    let out: string | undefined;
    const positive = (flag: string, v: string, integer: boolean, zero = false): number => {
        const n = Number(v);
        if (!Number.isFinite(n) || n < 0 || (n === 0 && !zero) || (integer && !Number.isInteger(n)))
            throw new UsageError(`kx-fs bench: ${flag} takes a positive ${integer ? 'integer' : 'number'}, not ${v}`);
        return n;
    };
    for (let k = 0; k < args.length; k++) {
        const a = args[k]!;
        if (a === '--quick') continue;
        const v = args[++k];
        if (v === undefined) throw new UsageError(`kx-fs bench: ${a} needs a value`);
        if (a === '--baseline') {
            if (!/^[0-9a-f]{7,40}$/.test(v)) throw new UsageError('kx-fs bench: --baseline is a commit hash');
            o.baseline = v;
        } else if (a === '--pairs') o.pairs = positive(a, v, true);
        else if (a === '--trials') o.trials = positive(a, v, true);
        else if (a === '--batch-timeout') o.batchTimeoutS = positive(a, v, false);
        else if (a === '--cpu-saturation-s') o.cpuSaturationS = positive(a, v, false, true);
        else if (a === '--work') o.workDir = v;
        else if (a === '--out') out = v;
        else throw new UsageError(`kx-fs bench: unknown argument ${JSON.stringify(a)}`);
    }
    o.outDir = resultsDir(quick, out);
    return o;
}

/** The baseline's source tree, built once and kept (a `.built` file names the commit it holds). */
export function prepareBaseline(commit: string, workDir: string): { dir: string; commit: string } {
    const full = execFileSync('git', ['rev-parse', '--verify', `${commit}^{commit}`], { encoding: 'utf8' }).trim();
    const dir = resolve(workDir, full.slice(0, 12));
    const marker = join(dir, '.built');
    if (existsSync(marker) && readFileSync(marker, 'utf8').trim() === full) return { dir, commit: full };
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    console.error(`kx-fs: exporting ${full} into ${dir}, npm ci and build (once; kept for later runs)…`);
    const archive = execFileSync('git', ['archive', '--format=tar', full], { maxBuffer: 1 << 30 });
    execFileSync('tar', ['-x', '-C', dir], { input: archive });
    execFileSync('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit' });
    execFileSync('npx', ['tsc', '-b'], { cwd: dir, stdio: 'inherit' });
    writeFileSync(marker, `${full}\n`);
    return { dir, commit: full };
}

/** One run's figures: its one-device cell and its short saturation. */
export interface RunFigures {
    side: 'baseline' | 'current';
    index: number;
    loadAverage: number;
    batchP50Ms: number;
    batchMeanMs: number;
    batchMinMs: number;
    batchMaxMs: number;
    trials: number;
    failed: number;
    cpuMsPerSession?: Record<string, number>;
    saturationSessions?: number;
    durationS: number;
}

/** Runs `bench -- kx` of the tree at `root` with the comparison's settings. */
async function runKx(root: string, o: KxFsOptions, side: RunFigures['side'], index: number): Promise<RunFigures> {
    const out = mkdtempSync(join(tmpdir(), `m2m-kx-fs-${side}-`));
    const args = [
        join(root, 'build', 'scripts', 'bench', 'main.js'),
        'kx',
        '--batch-timeouts',
        String(o.batchTimeoutS),
        '--concurrency',
        '1',
        '--trials',
        String(o.trials),
        // A budget large enough that --trials, not the budget, sets the trial count.
        '--budget-s',
        String(Math.ceil(o.trials * (2.2 * o.batchTimeoutS + 0.5) + 10)),
        '--layout',
        'processes',
        '--no-crypto',
        '--out',
        out,
        ...(o.cpuSaturationS > 0
            ? ['--saturation-s', String(o.cpuSaturationS), '--saturation-devices', '8']
            : ['--saturation-s', '0']),
    ];
    const load = loadavg()[0] ?? 0;
    const t0 = performance.now();
    try {
        await new Promise<void>((ok, fail) => {
            const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
            let tail = '';
            child.stderr.on('data', (b: Buffer) => {
                const text = b.toString();
                tail = (tail + text).slice(-4000);
                for (const line of text.split('\n'))
                    if (line.startsWith('  ')) console.error(`  [${side} ${index}]${line}`);
            });
            child.on('error', fail);
            child.on('exit', (code) =>
                code === 0 ? ok() : fail(new Error(`kx-fs: ${side} run exited ${String(code)}:\n${tail}`)),
            );
        });
        const r = JSON.parse(readFileSync(join(out, 'kx.json'), 'utf8')) as {
            cells: Cell[];
            saturation?: SaturationFigures;
        };
        const c = r.cells[0]!;
        return {
            side,
            index,
            loadAverage: Math.round(load * 10) / 10,
            batchP50Ms: c.batchLatencyMs.p50,
            batchMeanMs: c.batchLatencyMs.mean,
            batchMinMs: c.batchLatencyMs.min,
            batchMaxMs: c.batchLatencyMs.max,
            trials: c.trials,
            failed: c.failed,
            ...(r.saturation !== undefined
                ? { cpuMsPerSession: r.saturation.cpuMsPerSession, saturationSessions: r.saturation.sessions }
                : {}),
            durationS: Math.round((performance.now() - t0) / 100) / 10,
        };
    } finally {
        rmSync(out, { recursive: true, force: true });
    }
}

export function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b);
    const n = s.length;
    if (n === 0) return Number.NaN;
    return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/**
 * 95 % percentile-bootstrap interval of median(current) / median(baseline) over resampled pairs
 * (a fixed-seed generator, so a rerun of the same figures gives the same interval).
 */
export function bootstrapRatio(base: number[], cur: number[], rounds = 4000): [number, number] {
    let seed = 0x2545f491;
    const next = (): number => {
        seed ^= seed << 13;
        seed ^= seed >>> 17;
        seed ^= seed << 5;
        return (seed >>> 0) / 0x1_0000_0000;
    };
    const n = base.length;
    const ratios: number[] = [];
    for (let r = 0; r < rounds; r++) {
        const b: number[] = [];
        const c: number[] = [];
        for (let i = 0; i < n; i++) {
            const j = Math.floor(next() * n);
            b.push(base[j]!);
            c.push(cur[j]!);
        }
        ratios.push(median(c) / median(b));
    }
    ratios.sort((a, b) => a - b);
    return [ratios[Math.floor(0.025 * rounds)]!, ratios[Math.ceil(0.975 * rounds) - 1]!];
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;
const r1 = (x: number): number => Math.round(x * 10) / 10;

export async function runKxFsBench(args: string[]): Promise<void> {
    const o = parse(args);
    const started = performance.now();
    const current = {
        dir: process.cwd(),
        commit: execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim(),
    };
    const dirty =
        execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
    const baseline = prepareBaseline(o.baseline, o.workDir);
    const runs: RunFigures[] = [];
    for (let i = 0; i < o.pairs; i++) {
        for (const [side, tree] of [
            ['baseline', baseline],
            ['current', current],
        ] as const) {
            // One retry: on a loaded machine a run can fail to start (a port, a timeout); a second
            // failure ends the bench with that run's output.
            const f = await runKx(tree.dir, o, side, i).catch((err: unknown) => {
                console.error(`kx-fs: ${side} run ${i + 1} failed, once more: ${String(err)}`);
                return runKx(tree.dir, o, side, i);
            });
            runs.push(f);
            console.error(
                `kx-fs pair ${i + 1}/${o.pairs} ${side}: one-device p50 ${f.batchP50Ms} ms (${f.trials} trials, ${f.failed} failed)` +
                    (f.cpuMsPerSession !== undefined ? `, CPU ms/session ${JSON.stringify(f.cpuMsPerSession)}` : '') +
                    `, load ${f.loadAverage}`,
            );
        }
    }
    const side = (s: RunFigures['side']): RunFigures[] => runs.filter((r) => r.side === s);
    const base = side('baseline').map((r) => r.batchP50Ms);
    const cur = side('current').map((r) => r.batchP50Ms);
    const pairRatios = cur.map((c, i) => r3(c / base[i]!));
    const [lo, hi] = bootstrapRatio(base, cur);
    const cpuOf = (s: RunFigures['side']): number[] =>
        side(s)
            .map((r) => r.cpuMsPerSession?.total)
            .filter((x): x is number => x !== undefined);
    const cpuBase = cpuOf('baseline');
    const cpuCur = cpuOf('current');
    const cpuByProcess = (s: RunFigures['side']): Record<string, number> => {
        const names = [...new Set(side(s).flatMap((r) => Object.keys(r.cpuMsPerSession ?? {})))];
        return Object.fromEntries(
            names.map((n) => [n, r1(median(side(s).map((r) => r.cpuMsPerSession?.[n] ?? Number.NaN)))]),
        );
    };
    const ratio = r3(median(cur) / median(base));
    const result = {
        bench: 'kx-fs',
        generatedAt: new Date().toISOString(),
        node: process.versions.node,
        cpus: availableParallelism(),
        quick: o.quick,
        options: o,
        baseline: { commit: baseline.commit, dir: baseline.dir },
        current: { commit: current.commit, uncommittedChanges: dirty },
        settings:
            'each side its own `bench -- kx --concurrency 1 --layout processes --no-crypto`, one BatchTimeout, records off (the kx bench never turns them on); runs alternate baseline, current',
        oneDeviceP50Ms: { baseline: r1(median(base)), current: r1(median(cur)) },
        /** median(current per-run p50) / median(baseline per-run p50). */
        p50Ratio: ratio,
        p50RatioBootstrap95: [r3(lo), r3(hi)],
        pairRatios,
        pairRatioMin: Math.min(...pairRatios),
        pairRatioMax: Math.max(...pairRatios),
        cpuMsPerSession:
            cpuBase.length > 0 && cpuCur.length > 0
                ? {
                      baseline: cpuByProcess('baseline'),
                      current: cpuByProcess('current'),
                      totalRatio: r3(median(cpuCur) / median(cpuBase)),
                      totalRatioBootstrap95: bootstrapRatio(cpuBase, cpuCur).map(r3),
                  }
                : undefined,
        runs,
        durationS: Math.round((performance.now() - started) / 100) / 10,
    };
    const cpu = result.cpuMsPerSession;
    const md = [
        '# Key exchange one-device p50 before and after forward secrecy — `npm run bench -- kx-fs`',
        '',
        `Generated ${result.generatedAt}, Node ${result.node}, ${result.cpus} CPUs${o.quick ? ' — **quick run: too few pairs to mean much**' : ''}. Baseline \`${baseline.commit.slice(0, 12)}\` (main just before forward secrecy was merged), current \`${current.commit.slice(0, 12)}\`${dirty ? ' with uncommitted changes' : ''}. Each side runs its own \`bench -- kx\` with the same settings: one device, BatchTimeout ${o.batchTimeoutS} s, ${o.trials} trials a run (after the kx bench's 2 warm-up trials), layout \`processes\`, records off; ${o.pairs} runs a side, alternating baseline, current, baseline, current…`,
        '',
        '| | baseline | current (forward secrecy) | current / baseline |',
        '|---|---:|---:|---:|',
        `| one-device batch p50, median of runs, ms | ${result.oneDeviceP50Ms.baseline} | ${result.oneDeviceP50Ms.current} | **${ratio}** (bootstrap 95 %: ${r3(lo)}–${r3(hi)}; pairs ${result.pairRatioMin}–${result.pairRatioMax}) |`,
        ...(cpu !== undefined
            ? [
                  `| CPU ms per session (short saturation, 8 devices, ${o.cpuSaturationS} s), all processes | ${cpu.baseline.total} | ${cpu.current.total} | ${cpu.totalRatio} (bootstrap 95 %: ${cpu.totalRatioBootstrap95.join('–')}) |`,
                  ...Object.keys(cpu.current)
                      .filter((n) => n !== 'total')
                      .map(
                          (n) =>
                              `| … of which ${n} | ${cpu.baseline[n]} | ${cpu.current[n]} | ${r3(cpu.current[n]! / cpu.baseline[n]!)} |`,
                      ),
              ]
            : []),
        '',
        'Runs in order:',
        '',
        '| pair | side | p50 ms | mean | min | max | failed | CPU ms/session | load avg |',
        '|---:|---|---:|---:|---:|---:|---:|---:|---:|',
        ...runs.map(
            (r) =>
                `| ${r.index + 1} | ${r.side} | ${r.batchP50Ms} | ${r.batchMeanMs} | ${r.batchMinMs} | ${r.batchMaxMs} | ${r.failed} | ${r.cpuMsPerSession?.total ?? ''} | ${r.loadAverage} |`,
        ),
        '',
        `Of a one-device exchange's latency, two BatchTimeouts (${2 * o.batchTimeoutS * 1000} ms) wait for blocks; the work of forward secrecy (one ECDH and an HKDF on each side, x_D and E_D in the state files) shows there only diluted. The CPU per established session, read around a short saturation phase of each run (\`process.cpuUsage\` of the ledger, services and device processes: user + system, all threads), shows it undiluted. Both sides have records off, so journaling is not in either figure.`,
        '',
    ].join('\n');
    mkdirSync(o.outDir, { recursive: true });
    writeFileSync(join(o.outDir, 'kx-fs.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(o.outDir, 'kx-fs.md'), md);
    console.log(md);
    console.log(`wrote ${join(o.outDir, 'kx-fs.json')} and kx-fs.md in ${result.durationS} s`);
}
