#!/usr/bin/env node
// Runs the compiled test files (build/test/**/*.test.js) with node's test runner.
// Node 20's `--test <dir>` also runs every .js under a "test" directory (helpers, fixtures), and
// it has no glob support, so the files are listed here. Optional arguments filter by path
// substring: `npm run test:only -- ledger crypto`. `--quick` (`npm run test:quick`) leaves out
// the slow files below, for the edit loop; `npm test` runs everything and stays the gate.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, sep } from 'node:path';

/** Left out by --quick, each for what makes it slow; everything else runs. */
const SLOW = {
    'crypto/bench-crypto.test.js': 'runs the bench dispatcher and a crypto bench smoke run',
    'chaincode/deploy.test.js': 'starts fabric-chaincode-node (metadata, chaincode-as-a-service)',
    'chaincode/double-use.test.js': 'races 50 activations of one certificate',
    'ledger/durability.test.js': 'kills child processes mid-commit',
    'ledger/chaincode-worker.test.js': 'a chaincode worker thread per peer',
    'storage/kubo-daemon.test.js': 'a js-ipfs RPC daemon when one is installed',
    'fabric/network-files.test.js': 'Compose validation and shellcheck of fabric-network/',
    'fabric/scripts-flow.test.js': 'network.sh up/deploy/down end to end',
    'services/cli.test.js': 'the m2m command as separate processes, the demo twice',
    'services/e2e.test.js': 'whole sessions over aedes and mosquitto',
    'services/faults.test.js': 'crashes and restarts of every service',
    'services/handover.test.js': 'devices moving between fogs',
    'services/instructions.test.js': 'durable instruction delivery across restarts',
    'services/processes.test.js': 'every service as its own process behind m2m peer',
    'services/broker-outage.test.js': 'stops and restarts a mosquitto broker',
    'records/batcher.test.js': 'kills batcher child processes at every step',
    'reliability/fuzz.test.js': 'a fuzz slice through running services and the Gateway endpoint',
    'reliability/recovery.test.js': 'kills the fog and the broker mid-session, real processes',
    'console/browser.test.js': 'drives Debian chromium over a demo deployment',
    'services/spinning.test.js': 'the whole cotton-spinning scenario (six machines, sessions, queries, traces)',
    'console/records-trace.test.js': 'drives Debian chromium over records and lots',
};

function findTests(dir) {
    return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) return findTests(path);
        return entry.name.endsWith('.test.js') ? [path] : [];
    });
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const filters = args.filter((a) => a !== '--quick');
const relativeName = (file) => file.slice('build/test/'.length).split(sep).join('/');
const files = findTests('build/test')
    .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))
    .filter((file) => !quick || !Object.hasOwn(SLOW, relativeName(file)))
    .sort();
if (files.length === 0) {
    console.error(`no compiled test files match ${JSON.stringify(filters)} under build/test`);
    process.exit(1);
}
if (quick) {
    console.log(
        `test:quick: ${files.length} test files; left out (npm test runs them): ${Object.keys(SLOW).join(', ')}`,
    );
}
// fabric-contract-api and fabric-shim log every decorator of every contract at INFO when they load
// (hundreds of lines per run); WARNING keeps their warnings and errors. A caller's own level wins.
const env = { ...process.env, CORE_CHAINCODE_LOGGING_LEVEL: process.env.CORE_CHAINCODE_LOGGING_LEVEL ?? 'WARNING' };
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
