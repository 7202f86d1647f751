/** The kill points of the fault matrix (common/fault.ts) and the throttled warning (common/log.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ThrottledWarning, type Logger } from '@m2m-fabric/common';

const COMMON = fileURLToPath(import.meta.resolve('@m2m-fabric/common'));

function run(env: string): { signal: NodeJS.Signals | null; out: string; err: string } {
    const script = `const m = await import(process.argv[1]);
        m.faultPoint('M1'); console.log('after 1');
        m.faultPoint('M3'); console.log('after M3');
        m.faultPoint('M1'); console.log('after 2');`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, COMMON], {
        env: { ...process.env, M2M_FAULT_KILL_AT: env },
        encoding: 'utf8',
    });
    return { signal: r.signal, out: r.stdout, err: r.stderr };
}

void test('M2M_FAULT_KILL_AT kills the process the n-th time it reaches the step, and only then', () => {
    const killed = run('M1:2');
    assert.equal(killed.signal, 'SIGKILL');
    assert.equal(killed.out, 'after 1\nafter M3\n');
    assert.match(killed.err, /fault point M1 #2: SIGKILL/);
    const other = run('Confirm:1');
    assert.equal(other.signal, null);
    assert.equal(other.out, 'after 1\nafter M3\nafter 2\n');
    const bad = run('M9:1');
    assert.notEqual(bad.err.match(/M2M_FAULT_KILL_AT: bad entry/), null, bad.err);
});

void test('M2M_FAULT_KILL_FILE arms a running process from a file; a changed text starts the count again', () => {
    const dir = mkdtempSync(join(tmpdir(), 'm2m-fault-file-'));
    const file = join(dir, 'spec');
    try {
        // The file is rewritten between steps by the process itself (as the fault runner does from outside).
        const script = `const { writeFileSync } = await import('node:fs');
            const m = await import(process.argv[1]);
            m.faultPoint('M1'); console.log('unarmed');
            writeFileSync(process.argv[2], 'M1:2');
            m.faultPoint('M1'); console.log('armed 1');
            writeFileSync(process.argv[2], '');
            m.faultPoint('M1'); console.log('disarmed');
            writeFileSync(process.argv[2], 'M1:1');
            m.faultPoint('M1'); console.log('not reached');`;
        const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, COMMON, file], {
            env: { ...process.env, M2M_FAULT_KILL_AT: '', M2M_FAULT_KILL_FILE: file },
            encoding: 'utf8',
        });
        assert.equal(r.signal, 'SIGKILL');
        assert.equal(r.stdout, 'unarmed\narmed 1\ndisarmed\n');
        assert.match(r.stderr, /fault point M1 #1: SIGKILL/);
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
});

void test('a throttled warning logs once per key and interval, then reports how many it suppressed', () => {
    const lines: { msg: string; fields?: Record<string, unknown> }[] = [];
    const logger = {
        warn: (msg: string, fields?: Record<string, unknown>) => lines.push({ msg, fields }),
    } as unknown as Logger;
    let now = 0;
    const w = new ThrottledWarning(logger, 1_000, 10, () => now);
    for (let i = 0; i < 100; i++) w.warn('a', 'refused', { code: 'x' });
    w.warn('b', 'refused', { code: 'y' });
    assert.equal(lines.length, 2);
    now = 1_500;
    w.warn('a', 'refused', { code: 'x' });
    assert.equal(lines.length, 3);
    assert.equal(lines[2]!.fields?.suppressed, 99);
});
