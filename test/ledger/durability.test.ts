/**
 * Crash durability: a child process submits under load and reports each commit; it is killed
 * with SIGKILL at random points several times. After each kill the chain must verify, and every
 * transaction the child reported committed must be in the block it was reported in, with its write
 * visible in state. Bounded: 3 kills, each after 0.5–1.5 s of load.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { verifyLedger } from '@m2m-fabric/embedded-ledger';

import { openTestNetwork, utf8 } from './fixtures/network.js';

const CHILD = fileURLToPath(new URL('./fixtures/durability-child.js', import.meta.url));
const KILLS = 3;

interface Reported {
    block: bigint;
    txId: string;
    key: string;
    value: string;
}

/** Runs the child until it has been under load for `loadMs`, then SIGKILLs it. */
function runAndKill(dir: string, loadMs: number): Promise<Reported[]> {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [CHILD, dir, '8'], { stdio: ['ignore', 'pipe', 'pipe'] });
        const reported: Reported[] = [];
        let buffered = '';
        let stderr = '';
        let killTimer: NodeJS.Timeout | undefined;
        const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.stdout.on('data', (chunk: Buffer) => {
            buffered += chunk.toString();
            const lines = buffered.split('\n');
            buffered = lines.pop() ?? '';
            for (const line of lines) {
                const [kind, block, txId, key, value] = line.split(' ');
                if (kind === 'READY' && killTimer === undefined)
                    killTimer = setTimeout(() => child.kill('SIGKILL'), loadMs);
                if (
                    kind === 'COMMITTED' &&
                    block !== undefined &&
                    txId !== undefined &&
                    key !== undefined &&
                    value !== undefined
                ) {
                    reported.push({ block: BigInt(block), txId, key, value });
                }
            }
        });
        child.on('error', reject);
        child.on('exit', (code, signal) => {
            clearTimeout(guard);
            clearTimeout(killTimer);
            if (signal !== 'SIGKILL') reject(new Error(`child exited with ${code} ${signal}: ${stderr}`));
            else resolve(reported);
        });
    });
}

void describe('embedded ledger durability', () => {
    void it('survives SIGKILL under load: reported blocks present, chain verifies, nothing half-written', async () => {
        const dir = await mkdtemp(join(tmpdir(), 'ledger-crash-'));
        try {
            const all: Reported[] = [];
            for (let round = 0; round < KILLS; round++) {
                const reported = await runAndKill(dir, 500 + Math.floor(Math.random() * 1000));
                all.push(...reported);
                const verified = await verifyLedger(dir);
                assert.equal(verified.ok, true, JSON.stringify(verified));
                const maxReported = reported.reduce((max, r) => (r.block > max ? r.block : max), -1n);
                assert.ok(
                    BigInt(verified.height) > maxReported,
                    `height ${verified.height} misses reported block ${maxReported}`,
                );
            }
            assert.ok(all.length > 0, 'the child committed nothing before being killed');

            const net = await openTestNetwork({ dir, organisations: ['Org1MSP', 'Org2MSP'] });
            try {
                for (const r of all) {
                    const status = await net.ledger.getTransactionStatus(r.txId);
                    assert.equal(status?.code, 'VALID', r.txId);
                    assert.equal(status.blockNumber, r.block);
                }
                // Spot-check state for a sample of reported writes.
                for (const r of all.filter((_, i) => i % Math.max(1, Math.floor(all.length / 50)) === 0)) {
                    assert.equal(utf8(await net.contract.evaluate('Get', { arguments: [r.key] })), r.value);
                }
                // The ledger keeps working after the crashes.
                await net.contract.submit('Put', { arguments: ['after-crash', 'ok'] });
            } finally {
                await net.ledger.close();
            }
            assert.equal((await verifyLedger(dir)).ok, true);
        } finally {
            await rm(dir, { recursive: true, force: true });
        }
    });
});
