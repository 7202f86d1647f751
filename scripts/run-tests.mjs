#!/usr/bin/env node
// Runs the compiled test files (build/test/**/*.test.js) with node's test runner.
// Node 20's `--test <dir>` also runs every .js under a "test" directory (helpers, fixtures), and
// it has no glob support, so the files are listed here. Optional arguments filter by path
// substring: `npm test -- ledger crypto`.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

function findTests(dir) {
    return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) return findTests(path);
        return entry.name.endsWith('.test.js') ? [path] : [];
    });
}

const filters = process.argv.slice(2);
const files = findTests('build/test')
    .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))
    .sort();
if (files.length === 0) {
    console.error(`no compiled test files match ${JSON.stringify(filters)} under build/test`);
    process.exit(1);
}
// fabric-contract-api and fabric-shim log every decorator of every contract at INFO when they load
// (hundreds of lines per run); WARNING keeps their warnings and errors. A caller's own level wins.
const env = { ...process.env, CORE_CHAINCODE_LOGGING_LEVEL: process.env.CORE_CHAINCODE_LOGGING_LEVEL ?? 'WARNING' };
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
