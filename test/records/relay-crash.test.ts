/**
 * kill -9 of a fog after it journaled its relay records and relayed the answer, before it anchored
 * them: after a restart the records end anchored, in one batch, once (relay-child.ts).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

import { tempDir } from '../services/helpers/temp-dir.js';

const CHILD = join(import.meta.dirname, 'relay-child.js');

interface Drained {
    durable: number;
    anchored: number;
    sequences: number[];
    sizes: number[];
}

/** Runs the fog until it has relayed one query, then kills it with SIGKILL; the durable count it printed. */
async function relayAndKill(dir: string): Promise<number> {
    const child = spawn(process.execPath, [CHILD, 'run', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    return new Promise<number>((resolve, reject) => {
        let relayed: number | undefined;
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
            out += chunk.toString();
            const match = /relayed (\d+)/.exec(out);
            if (match !== null && relayed === undefined) {
                relayed = Number(match[1]);
                child.kill('SIGKILL');
            }
        });
        child.on('exit', (code, signal) => {
            if (signal === 'SIGKILL' && relayed !== undefined) resolve(relayed);
            else reject(new Error(`the fog exited ${code ?? signal} before relaying: ${stderr}`));
        });
    });
}

function drain(dir: string): Drained {
    const result = spawnSync(process.execPath, [CHILD, 'drain', dir], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Drained;
}

void test('a fog killed after journaling and relaying, before anchoring: its relay records end anchored once', async () => {
    const dir = await tempDir('m2m-relay-kill-');
    // The query packet's and the answer's records were durable before the answer left the fog.
    assert.equal(await relayAndKill(dir), 2);
    const first = drain(dir);
    assert.equal(first.durable, 2);
    assert.equal(first.anchored, 2);
    assert.deepEqual(first.sequences, [1]);
    assert.deepEqual(first.sizes, [2]);
    // A second restart anchors nothing again.
    const second = drain(dir);
    assert.deepEqual(second, first);
    // A second crash after more relays: the new records join the log, each anchored once.
    assert.equal(await relayAndKill(dir), 4);
    const third = drain(dir);
    assert.equal(third.anchored, 4);
    assert.deepEqual(third.sequences, [1, 2]);
    assert.deepEqual(third.sizes, [2, 4]);
});
