import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** build/test/crypto/ -> build/scripts/bench/main.js */
const MAIN = fileURLToPath(new URL('../../scripts/bench/main.js', import.meta.url));

interface Stats {
    opsPerSec: number;
    opsPerCpuSec: number;
    rounds: number[];
    cpuRounds: number[];
}

const positive = (v: unknown, what: string): void => {
    assert.equal(typeof v, 'number', what);
    assert.ok(Number.isFinite(v) && (v as number) > 0, `${what} = ${String(v)}`);
};

void describe('bench dispatcher and crypto bench (smoke run, no timing assertions)', () => {
    void it('an unknown or missing name prints the usage with the registered names and exits 2', () => {
        for (const args of [['no-such-bench'], []]) {
            const run = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 30_000 });
            assert.equal(run.status, 2, run.stderr);
            assert.match(run.stderr, /usage: npm run bench -- <name>/);
            assert.match(run.stderr, /\bcrypto\b/);
        }
    });

    void it("--help prints a bench's usage (exit 0); a bad argument names it, prints the usage and exits 2", () => {
        const help = spawnSync(process.execPath, [MAIN, 'kx', '--help'], { encoding: 'utf8', timeout: 30_000 });
        assert.equal(help.status, 0, help.stderr);
        assert.match(help.stdout, /^usage: npm run bench -- kx .*--batch-timeouts/);
        const bad: [string[], RegExp][] = [
            [['kx', '--trials'], /kx bench: --trials needs a value/],
            [['kx', '--trials', 'many'], /kx bench: --trials takes a positive integer, not "many"/],
            [['kx', '--batch-timeouts', '0.5,x'], /kx bench: --batch-timeouts takes a positive number, not "x"/],
            [['kx', '--layout', 'cloud'], /--layout is single, devices or processes/],
            [['kx', '--frobnicate', '1'], /kx bench: unknown argument "--frobnicate"/],
            [['crypto', '--fast'], /crypto bench: unknown argument "--fast"/],
            [['ledger', '--clients', '0'], /ledger bench: --clients takes a comma-separated list/],
            [['lookup', '--sizes', '10,x'], /lookup bench: --sizes: not a positive integer: x/],
            [['storage', 'extra'], /storage bench: unknown argument "extra"/],
            [['kx-fs', '--pairs', '0'], /kx-fs bench: --pairs takes a positive integer, not 0/],
            [['kx-fs', '--baseline', 'HEAD~1'], /kx-fs bench: --baseline is a commit hash/],
        ];
        for (const [args, message] of bad) {
            const run = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 30_000 });
            assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
            assert.match(run.stderr, message);
            assert.match(run.stderr, new RegExp(`usage: npm run bench -- ${args[0]!}`));
            assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace for a usage error');
        }
    });

    void it('`crypto --quick` writes well-formed JSON and Markdown under bench/results/quick/, not over the tracked results', () => {
        // Run from an empty directory, so "bench/results" there stands for the tracked results.
        const cwd = mkdtempSync(join(tmpdir(), 'm2m-bench-'));
        const out = join(cwd, 'bench', 'results', 'quick');
        try {
            const run = spawnSync(process.execPath, [MAIN, 'crypto', '--quick'], {
                cwd,
                encoding: 'utf8',
                timeout: 120_000,
            });
            assert.equal(run.status, 0, run.stderr);
            assert.deepEqual(readdirSync(join(cwd, 'bench', 'results')), ['quick'], 'nothing beside quick/');
            assert.match(run.stdout, /wrote bench\/results\/quick\/crypto\.json/);
            const result = JSON.parse(readFileSync(join(out, 'crypto.json'), 'utf8')) as {
                bench: string;
                quick: boolean;
                suites: Record<string, { primitives: Record<string, Stats>; session: Record<string, unknown> }>;
            };
            assert.equal(result.bench, 'crypto');
            assert.equal(result.quick, true);
            assert.deepEqual(Object.keys(result.suites).sort(), ['P256-SHA256', 'P384-SHA384']);
            for (const [suiteId, { primitives, session }] of Object.entries(result.suites)) {
                for (const name of [
                    'base mult k*G (noble, CT)',
                    'arbitrary mult k*P (noble, VT)',
                    'hash-to-curve (RFC 9380 SSWU)',
                    'ECQV verify issuance (chaincode)',
                    'DLEQ verify',
                    'counter proof verify',
                    'HPKE open (node:crypto)',
                    'AES-256-GCM frame open (256 B)',
                    'ECDH x(k*P) (node:crypto)',
                ]) {
                    assert.ok(primitives[name], `${suiteId}: ${name} missing`);
                    positive(primitives[name].opsPerSec, `${suiteId} ${name}`);
                    positive(primitives[name].opsPerCpuSec, `${suiteId} ${name} per CPU-second`);
                    assert.equal(primitives[name].rounds.length, primitives[name].cpuRounds.length);
                    assert.ok(primitives[name].rounds.length >= 1);
                }
                for (const key of [
                    'msPerSession',
                    'cpuMsPerSession',
                    'sessionsPerSecOneCore',
                    'sessionsPerCpuSecOneCore',
                    'sessionsPerSecWorkers',
                    'sessionsPerCpuSecWorkers',
                    'estimatedSessionsPerSecAllCores',
                ]) {
                    positive(session[key], `${suiteId} session ${key}`);
                }
                const byRole = session.cpuMsByRole as Record<string, number>;
                assert.deepEqual(Object.keys(byRole).sort(), ['chaincode', 'csp', 'device', 'fog', 'manufacturer']);
            }
            const md = readFileSync(join(out, 'crypto.md'), 'utf8');
            assert.match(md, /\| CPU ms \/ session \(1 thread\) \|/);
            assert.match(run.stdout, /sessions\/s/);
        } finally {
            rmSync(cwd, { recursive: true, force: true });
        }
    });
});
