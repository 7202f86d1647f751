/**
 * Deployability: the built package is what a Fabric peer runs. `fabric-chaincode-node metadata
 * generate` must list every transaction with its parameters, and `fabric-chaincode-node server`
 * (chaincode-as-a-service) must load the contracts and listen.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { TRANSACTIONS } from './transactions.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const chaincodeDir = join(root, 'chaincode', 'contract');
const cli = join(root, 'node_modules', '.bin', 'fabric-chaincode-node');

/** Every transaction with its parameters; and those that only read (Fabric tags them EVALUATE). */
const EXPECTED: Record<string, Record<string, string[]>> = Object.fromEntries(
    Object.entries(TRANSACTIONS).map(([contract, txs]) => [
        contract,
        Object.fromEntries(Object.entries(txs).map(([name, spec]) => [name, spec.parameters])),
    ]),
);
const EVALUATE_ONLY = new Set(
    Object.values(TRANSACTIONS).flatMap((txs) =>
        Object.entries(txs)
            .filter(([, spec]) => spec.evaluate === true)
            .map(([name]) => name),
    ),
);

interface Metadata {
    contracts: Record<string, { transactions: { name: string; tag?: string[]; parameters?: { name: string }[] }[] }>;
}

async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const address = server.address();
            server.close(() =>
                typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port')),
            );
        });
    });
}

async function canConnect(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = createConnection({ host: '127.0.0.1', port }, () => {
            socket.destroy();
            resolve(true);
        });
        socket.once('error', () => resolve(false));
    });
}

void describe('deployable chaincode package', () => {
    void it('metadata generate lists every transaction with its parameters', () => {
        const dir = mkdtempSync(join(tmpdir(), 'm2m-metadata-'));
        try {
            const file = join(dir, 'metadata.json');
            const run = spawnSync(
                process.execPath,
                [cli, 'metadata', 'generate', '--module-path', chaincodeDir, '--file', file],
                {
                    encoding: 'utf8',
                    timeout: 60_000,
                },
            );
            assert.equal(run.status, 0, `metadata generate failed: ${run.stderr}`);
            const metadata = JSON.parse(readFileSync(file, 'utf8')) as Metadata;
            // fabric-contract-api adds its own system contract next to the package's.
            const listedContracts = Object.keys(metadata.contracts).filter((name) => name !== 'org.hyperledger.fabric');
            assert.deepEqual(listedContracts.sort(), Object.keys(EXPECTED).sort());
            for (const [contract, transactions] of Object.entries(EXPECTED)) {
                const listed = metadata.contracts[contract]?.transactions ?? [];
                assert.deepEqual(listed.map((tx) => tx.name).sort(), Object.keys(transactions).sort(), contract);
                for (const tx of listed) {
                    assert.deepEqual(
                        (tx.parameters ?? []).map((p) => p.name),
                        transactions[tx.name],
                        `${contract}:${tx.name} parameters`,
                    );
                    assert.equal(
                        tx.tag?.includes('SUBMIT') ?? false,
                        !EVALUATE_ONLY.has(tx.name),
                        `${contract}:${tx.name} tag`,
                    );
                }
            }
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    void it('fabric-chaincode-node server serves the package as chaincode-as-a-service', async () => {
        const port = await freePort();
        const server = spawn(
            process.execPath,
            [
                cli,
                'server',
                '--chaincode-address',
                `127.0.0.1:${port}`,
                '--chaincode-id',
                'm2m:0000',
                '--module-path',
                chaincodeDir,
            ],
            { stdio: ['ignore', 'ignore', 'pipe'] },
        );
        let stderr = '';
        server.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
        try {
            let listening = false;
            for (let attempt = 0; attempt < 100 && !listening && server.exitCode === null; attempt++) {
                listening = await canConnect(port);
                if (!listening) await new Promise((resolve) => setTimeout(resolve, 200));
            }
            assert.ok(listening, `the chaincode server did not listen on ${port}: ${stderr}`);
        } finally {
            server.kill('SIGTERM');
            await exited;
        }
    });
});
