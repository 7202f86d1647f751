/**
 * The record batcher under kill -9: a child process journals, acknowledges and anchors records;
 * it is killed at random moments, restarted, killed again; finally a recovery run anchors the
 * rest. Every acknowledged record must be anchored, the anchored sizes must strictly grow (no
 * batch twice), and the journal must reproduce the anchored root. Damaged journals are refused.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

const CHILD = join(import.meta.dirname, 'batcher-child.js');

/** Runs the writer until it has acknowledged at least `minAcks` records plus a random delay, then kill -9. */
async function runAndKill(dir: string, minAcks: number): Promise<number[]> {
    const child = spawn(process.execPath, [CHILD, 'run', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acks: number[] = [];
    let buffered = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
        let killTimer: NodeJS.Timeout | undefined;
        child.stdout.on('data', (chunk: Buffer) => {
            buffered += chunk.toString();
            const lines = buffered.split('\n');
            buffered = lines.pop() ?? '';
            for (const line of lines) if (line.startsWith('ack ')) acks.push(Number(line.slice(4)));
            if (acks.length >= minAcks && killTimer === undefined) {
                killTimer = setTimeout(() => child.kill('SIGKILL'), randomInt(0, 150));
            }
        });
        child.on('exit', (code, signal) => {
            if (signal === 'SIGKILL') resolve();
            else reject(new Error(`writer exited with ${code}: ${stderr}`));
        });
    });
    return acks;
}

function drain(dir: string): {
    durable: number;
    anchored: number;
    head: { treeSize: number; root: string };
    root: string;
    sizes: number[];
} {
    const result = spawnSync(process.execPath, [CHILD, 'drain', dir], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout.trim().split('\n').pop()!) as ReturnType<typeof drain>;
}

void describe('record batcher: kill -9 at any point', () => {
    const dirs: string[] = [];
    after(() => {
        for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });

    void it('anchors every acknowledged record after restarts, nothing twice', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'm2m-batcher-'));
        dirs.push(dir);
        const acknowledged = new Set<number>();
        for (let round = 0; round < 4; round++) {
            for (const index of await runAndKill(dir, 20 + round * 30)) acknowledged.add(index);
        }
        const state = drain(dir);
        const maxAck = Math.max(...acknowledged);
        assert.ok(acknowledged.size >= 100, `only ${acknowledged.size} acknowledgements`);
        assert.ok(state.anchored > maxAck, `acknowledged leaf ${maxAck} is not anchored (anchored ${state.anchored})`);
        assert.equal(state.anchored, state.durable);
        assert.equal(state.head.treeSize, state.anchored);
        assert.equal(state.head.root, state.root);
        for (let i = 1; i < state.sizes.length; i++)
            assert.ok(state.sizes[i]! > state.sizes[i - 1]!, 'a batch anchored twice');
    });

    void it('cuts a torn tail entry but refuses a damaged or reordered journal (journalCorrupt)', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'm2m-batcher-'));
        dirs.push(dir);
        await runAndKill(dir, 60);
        const first = drain(dir);
        const journal = join(dir, 'journal', 'journal.log');
        const bytes = readFileSync(journal);
        // A torn tail (half an entry appended) is cut off: the same state comes back.
        writeFileSync(journal, Buffer.concat([bytes, bytes.subarray(0, 30)]));
        assert.equal(drain(dir).anchored, first.anchored);
        // A damaged entry in the middle: refused.
        const damaged = Buffer.from(bytes);
        damaged[100]! ^= 0x40;
        writeFileSync(journal, damaged);
        const refused = spawnSync(process.execPath, [CHILD, 'drain', dir], { encoding: 'utf8' });
        assert.equal(refused.status, 1);
        assert.match(refused.stderr, /journalCorrupt/);
        // Two entries swapped: every entry is valid, but the anchored root is not reproduced.
        const length = bytes.readUInt32BE(0) + 8;
        const swapped = Buffer.concat([
            bytes.subarray(length, 2 * length),
            bytes.subarray(0, length),
            bytes.subarray(2 * length),
        ]);
        writeFileSync(journal, swapped);
        const reordered = spawnSync(process.execPath, [CHILD, 'drain', dir], { encoding: 'utf8' });
        assert.equal(reordered.status, 1);
        assert.match(reordered.stderr, /journalCorrupt/);
        // Truncated below what the ledger anchored: refused, never re-anchored.
        writeFileSync(journal, bytes.subarray(0, length * 3));
        const truncated = spawnSync(process.execPath, [CHILD, 'drain', dir], { encoding: 'utf8' });
        assert.equal(truncated.status, 1);
        assert.match(truncated.stderr, /journalCorrupt/);
    });
});
