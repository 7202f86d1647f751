#!/usr/bin/env node
// `npm run test:fabric:peer`: the Fabric integration suite (test/fabric/suite.ts) on its Fabric
// code path — @hyperledger/fabric-gateway over gRPC/TLS with the FABRIC_* connection files — against
// `m2m peer` (the embedded ledger served as one Gateway endpoint per organisation) in a separate
// process. The peer-restart test really restarts that process (M2M_FABRIC_RESTART_PEER_CMD).
// Needs `npm run build` first; everything listens on 127.0.0.1 and stops itself.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join, resolve } from 'node:path';

const dataDir = mkdtempSync(join(tmpdir(), 'm2m-peer-'));
const cli = resolve('gateway/cli/dist/main.js');
const basePort = Number(process.env.M2M_PEER_BASE_PORT ?? 17051);
const peerArgs = [cli, 'peer', '--data-dir', dataDir, '--base-port', String(basePort), '--batch-timeout', '0.5'];
const pidFile = join(dataDir, 'peer.pid');
const log = join(dataDir, 'peer.log');

async function waitForPid(previous) {
    for (let i = 0; i < 200; i++) {
        if (existsSync(pidFile)) {
            const pid = readFileSync(pidFile, 'utf8').trim();
            if (pid !== previous) return pid;
        }
        await sleep(100);
    }
    throw new Error(`m2m peer did not start; see ${log}`);
}

const quote = (s) => `'${s.replaceAll("'", "'\\''")}'`;
const startCommand = `${quote(process.execPath)} ${peerArgs.map(quote).join(' ')} >> ${quote(log)} 2>&1`;
spawn('sh', ['-c', startCommand], { detached: true, stdio: 'ignore' }).unref();
let status = 1;
try {
    await waitForPid(undefined);
    // Stop the peer, wait until it is gone (its pid file is removed), start it again, wait for it.
    const restart =
        `pid=$(cat ${quote(pidFile)}); kill -INT "$pid"; ` +
        `while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done; ` +
        `(${startCommand} &); ` +
        `while [ ! -f ${quote(pidFile)} ] || [ "$(cat ${quote(pidFile)})" = "$pid" ]; do sleep 0.1; done`;
    const result = spawnSync(process.execPath, ['build/test/fabric/run.js'], {
        stdio: 'inherit',
        env: {
            ...process.env,
            FABRIC_CONNECTION: join(dataDir, 'connection'),
            // The suite keeps its CSP key beside the network it registered it on: this peer's
            // ledger is new on every run, so its state goes with the data directory.
            M2M_FABRIC_TEST_STATE: join(dataDir, 'suite-state'),
            M2M_FABRIC_TEST_TARGET: 'fabric',
            M2M_FABRIC_RESTART_PEER_CMD: restart,
        },
    });
    status = result.status ?? 1;
} finally {
    if (existsSync(pidFile)) {
        try {
            process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGINT');
        } catch {
            // already gone
        }
        for (let i = 0; i < 50 && existsSync(pidFile); i++) await sleep(100);
    }
    if (status === 0) rmSync(dataDir, { recursive: true, force: true });
    else console.error(`m2m peer data and log kept in ${dataDir}`);
}
process.exitCode = status;
