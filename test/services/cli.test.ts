/**
 * The `m2m` command as users run it (separate processes): `npm start`'s demo re-run on the same
 * data directory, `m2m storage export|import`, and what `m2m device` loads on a Raspberry Pi.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readDeviceState } from '@m2m-fabric/device';
import { ENV_NAMES, FABRIC_SETTINGS, STORAGE_SETTINGS } from '@m2m-fabric/sdk';
import { COMMAND_SETTINGS, CSP_SCHEMA, FOG_SCHEMA, type SettingsGroup } from '@m2m-fabric/cli';
import type { EnvSetting } from '@m2m-fabric/protocol';
import { readFileSync } from 'node:fs';
import { runCli } from './helpers/process.js';
import { tempDir } from './helpers/temp-dir.js';

interface Summary {
    established: number;
    failed: number;
    failures: Record<string, number>;
    latency_ms: { p50: number; p95: number };
    transactions: number;
    blocks: number;
    onChainBytes: number;
    storedObjects: number;
    thisRun: { transactions: number; blocks: number; onChainBytes: number; storedObjects: number };
    records: {
        created: number;
        fromDevices: number;
        fromCsp: number;
        batchesAnchored: number;
        recordsAnchored: number;
        allAnchored: boolean;
        receipt?: { verified: boolean };
        auditorShare?: { sealedPayload: string; opened: boolean };
    };
}

/** build/test/services/ -> build/scripts/ledger-verify.js (`npm run ledger:verify`). */
const LEDGER_VERIFY = fileURLToPath(new URL('../../scripts/ledger-verify.js', import.meta.url));

function lastJsonLine(out: string): Summary {
    const lines = out.trimEnd().split('\n');
    return JSON.parse(lines[lines.length - 1]!) as Summary;
}

async function filesUnder(dir: string): Promise<string[]> {
    const entries = await readdir(dir, { withFileTypes: true, recursive: true });
    return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

void test('npm start (m2m demo): --json summary, a re-run on the same data directory continues, secrets 0600', async () => {
    const dir = await tempDir('m2m-demo-test-');
    const args = [
        'demo',
        '--devices',
        '2',
        '--sessions',
        '1',
        '--fogs',
        '2',
        '--batch-timeout',
        '0.05',
        '--json',
        '--no-console',
    ];
    const first = await runCli([...args, '--data-dir', dir], 90_000);
    assert.equal(first.code, 0, first.out);
    assert.match(first.out, /dev-0001 session 1\/1 \(counter 1\) established/);
    const s1 = lastJsonLine(first.out);
    assert.equal(s1.established, 2);
    assert.equal(s1.failed, 0);
    assert.ok(s1.latency_ms.p50 > 0 && s1.latency_ms.p95 >= s1.latency_ms.p50);
    assert.ok(s1.transactions > 0 && s1.blocks > 0 && s1.onChainBytes > 0 && s1.storedObjects > 0);
    // The progress lines name the protocol steps and where each kind of data went.
    assert.match(first.out, /M-EB: 2 equipment record\(s\) on the ledger \(2 registered now, 0 already there\)/);
    assert.match(
        first.out,
        /Algorithm 1 \(issuance\): bought and issued 2 certificate\(s\): .*-> IPFS object store; .*-> ledger; 2 device state file\(s\)/,
    );
    assert.match(first.out, /\(counter 1\) Algorithm 2 at fog-\d: M1 sent/);
    assert.match(first.out, /\(counter 1\) M2 received/);
    assert.match(first.out, /\(counter 1\) M3 sent .*activation -> ledger .*M4 -> CSP: Algorithm 3/);
    assert.equal((first.out.match(/M1 sent/g) ?? []).length, 1, 'one session shown message by message');
    assert.deepEqual(s1.thisRun.transactions, s1.transactions, 'the first run made every transaction');
    assert.deepEqual(s1.thisRun.storedObjects, s1.storedObjects);
    // Communication records: every frame recorded, anchored, one receipt verified offline.
    assert.ok(s1.records.fromDevices >= 2 && s1.records.fromCsp >= 4, JSON.stringify(s1.records));
    assert.ok(s1.records.batchesAnchored >= 1 && s1.records.allAnchored, JSON.stringify(s1.records));
    assert.ok(s1.records.recordsAnchored >= s1.records.created, JSON.stringify(s1.records));
    assert.equal(s1.records.receipt?.verified, true);
    assert.match(first.out, /receipt of record \d+ \(batch \d+ of csp, \d+ bytes\) verified offline/);
    // Envelope encryption: that record shared with an auditor key and opened offline against its receipt.
    assert.equal(s1.records.auditorShare?.opened, true, JSON.stringify(s1.records));
    assert.match(first.out, /record shared with an auditor key: .*opened its \d+-byte payload offline/);

    // npm run ledger:verify takes the demo's data directory.
    const verified = spawnSync(process.execPath, [LEDGER_VERIFY, dir], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(verified.status, 0, verified.stderr);
    assert.equal(verified.stdout, `OK height ${s1.blocks}\n`);
    const nowhere = spawnSync(process.execPath, [LEDGER_VERIFY, join(dir, 'devices')], { encoding: 'utf8' });
    assert.equal(nowhere.status, 2);
    assert.match(nowhere.stderr, /no ledger database in .*devices, .*devices\/ledger, .*devices\/ledger\/ledger/);

    const second = await runCli([...args, '--data-dir', dir], 90_000);
    assert.equal(second.code, 0, second.out);
    assert.match(second.out, /dev-0001 session 1\/1 \(counter 2\) established/, 'continues from the saved counter');
    const s2 = lastJsonLine(second.out);
    assert.equal(s2.established, 2);
    assert.ok(s2.transactions > s1.transactions, 'the same ledger, grown');
    assert.ok(s2.storedObjects > s1.storedObjects);
    // This run's figures apart from the totals since the first run.
    assert.match(second.out, /\(0 registered now, 2 already there\)/);
    assert.equal(s2.thisRun.transactions, s2.transactions - s1.transactions);
    assert.equal(s2.thisRun.blocks, s2.blocks - s1.blocks);
    assert.equal(s2.thisRun.storedObjects, s2.storedObjects - s1.storedObjects);
    // The second run's records extend the same log (the chaincode checked the consistency proof).
    assert.ok(s2.records.allAnchored && s2.records.batchesAnchored >= 1, JSON.stringify(s2.records));
    assert.equal(s2.records.receipt?.verified, true);
    assert.match(second.out, new RegExp(`this run: ledger \\+${s2.thisRun.transactions} transactions`));
    assert.match(second.out, new RegExp(`since the first run: ledger ${s2.transactions} transactions`));
    assert.equal((await readDeviceState(join(dir, 'devices', 'dev-0002.json')))!.nextCounter, '3');

    // Every file holding a secret is 0600: service keys, identities' keys, device state and the
    // manufacturer's w, the CSP's session store (symKeys), outboxes. Public material may be 0644.
    const secret = /(\/keys\/|key\.pem$|\/devices\/|csp-(sessions|instructions|telemetry)\.jsonl$|outbox\.jsonl$)/;
    const files = (await filesUnder(dir)).filter((f) => secret.test(f));
    assert.ok(files.length >= 10, files.join('\n'));
    for (const f of files) assert.equal((await stat(f)).mode & 0o777, 0o600, f);

    // The store the demo filled, exported to a CAR and imported into a fresh store.
    const car = join(dir, 'store.car');
    const exp = await runCli(['storage', 'export', '--out', car, '--data-dir', dir]);
    assert.equal(exp.code, 0, exp.out);
    const exported = JSON.parse(exp.out) as { root: string; objects: number };
    assert.equal(exported.objects, s2.storedObjects);
    assert.match(exported.root, /^bafy/);
    const imp = await runCli(['storage', 'import', '--car', car, '--store', join(dir, 'copy')]);
    assert.equal(imp.code, 0, imp.out);
    const imported = JSON.parse(imp.out) as { roots: string[]; imported: number };
    assert.deepEqual(imported.roots, [exported.root]);
    assert.equal(imported.imported, exported.objects);
});

void test('m2m storage: --help, and clear errors for a missing store, missing --out, unknown action', async () => {
    const dir = await tempDir('m2m-storage-cli-');
    const help = await runCli(['storage', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /m2m storage export --out FILE/);
    assert.match(help.out, /m2m storage import --car FILE/);
    const missing = await runCli(['storage', 'export', '--out', join(dir, 'x.car'), '--data-dir', join(dir, 'none')]);
    assert.equal(missing.code, 1);
    assert.match(missing.out, /no embedded object store at .*none\/objects/);
    assert.equal(existsSync(join(dir, 'none')), false, 'no empty store was created');
    const noOut = await runCli(['storage', 'export', '--data-dir', dir]);
    assert.equal(noOut.code, 1);
    assert.match(noOut.out, /export needs --out FILE/);
    const noCar = await runCli(['storage', 'import', '--car', join(dir, 'absent.car'), '--store', join(dir, 's')]);
    assert.equal(noCar.code, 1);
    assert.match(noCar.out, /no such CAR file/);
    const bad = await runCli(['storage', 'frobnicate']);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /unknown storage action frobnicate/);
    const badFlag = await runCli(['storage', 'export', '--bogus']);
    assert.equal(badFlag.code, 1);
    assert.match(badFlag.out, /Unknown option '--bogus'/);
});

void test('service commands: bad flags and missing Fabric settings are clear errors, not stack traces', async () => {
    const serve = await runCli(['serve', '--devices', 'abc', '--fogs', '0', '--batch-timeout', 'x']);
    assert.equal(serve.code, 1);
    assert.match(serve.out, /--fogs must be an integer in 1\.\.32, got 0/);
    assert.match(serve.out, /--devices must be an integer in 0\.\.1000, got abc/);
    assert.match(serve.out, /--batch-timeout must be seconds/);
    const man = await runCli(['manufacturer', 'list'], 30_000, { FABRIC_CONNECTION: '', FABRIC_PEER_ENDPOINT: '' });
    assert.equal(man.code, 1);
    assert.match(man.out, /FABRIC_PEER_ENDPOINT \(peerEndpoint\) is required/);
    assert.doesNotMatch(man.out, /\n\s+at /, 'no stack trace');
    const credit = await runCli(['csp', 'grant-credit', '--amount=-1']);
    assert.equal(credit.code, 1);
    assert.match(credit.out, /grant-credit needs --account MSPID/);
    assert.match(credit.out, /--amount must be a positive integer, got -1/);
    const rotate = await runCli(['csp', 'rotate-key', '--overlap', 'soon']);
    assert.equal(rotate.code, 1);
    assert.match(rotate.out, /rotate-key needs --overlap SECONDS, an integer in \[0, 31536000\], got soon/);
    const noKey = await runCli(['csp', 'rotate-key', '--overlap', '60', '--data.dir', await tempDir('m2m-rotate-')]);
    assert.equal(noKey.code, 1);
    assert.match(noKey.out, /no CSP key file .*csp\.json: run the CSP first/);
    assert.doesNotMatch(noKey.out, /\n\s+at /, 'no stack trace');
    const unknown = await runCli(['device', '--device.state', 'x.json', '--frobnicate']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.out, /Unknown option '--frobnicate'/);
    assert.doesNotMatch(unknown.out, /\n\s+at /, 'no stack trace');
});

void test('m2m peer on a taken port names the port and suggests --base-port 0 (no gRPC stack trace)', async () => {
    const dir = await tempDir('m2m-peer-port-');
    const holder = createServer();
    await new Promise<void>((done) => holder.listen(0, '127.0.0.1', done));
    const port = (holder.address() as AddressInfo).port;
    try {
        const peer = await runCli(['peer', '--data-dir', dir, '--base-port', String(port)], 60_000);
        assert.equal(peer.code, 1, peer.out);
        assert.match(
            peer.out,
            new RegExp(
                `port ${port} is already in use \\(127\\.0\\.0\\.1:${port}, the Gateway endpoint of CSPMSP's peer\\)`,
            ),
        );
        assert.match(peer.out, /--base-port 0 for free ports/);
        assert.doesNotMatch(peer.out, /\n\s+at /, 'no stack trace');
        assert.doesNotMatch(peer.out, /No address added/, 'no raw gRPC message');
    } finally {
        await new Promise((done) => holder.close(done));
    }
});

void test('m2m device loads no native addon (runs on a Raspberry Pi with Node 20 alone)', () => {
    // The process report lists every shared object loaded; a native addon is a `.node` file.
    const script = `await import(process.argv[1]);
        const objs = process.report.getReport().sharedObjects.filter((s) => s.endsWith('.node'));
        console.log(JSON.stringify(objs));`;
    const loaded = (module: string): string[] => {
        const path = fileURLToPath(import.meta.resolve(module));
        const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, path], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        return JSON.parse(r.stdout.trim().split('\n').pop()!) as string[];
    };
    assert.deepEqual(loaded('@m2m-fabric/device'), []);
    assert.deepEqual(
        loaded(new URL('dist/main.js', import.meta.resolve('@m2m-fabric/cli/package.json')).href),
        [],
        'main.js loads commands lazily',
    );
    // The check can fail: the embedded ledger does load LevelDB's addon.
    assert.ok(loaded('@m2m-fabric/embedded-ledger').some((s) => s.includes('classic-level')));
});

void test('--help of fog, csp and manufacturer lists every setting: the schema, FABRIC_* and the object store', async () => {
    // Every variable the Fabric connection reader knows is in the listed settings.
    const listed = new Set(FABRIC_SETTINGS.map((s) => s.env));
    for (const env of Object.values(ENV_NAMES)) assert.ok(listed.has(env), `${env} missing from FABRIC_SETTINGS`);
    const commands: [string, Record<string, { env: string }>][] = [
        ['fog', FOG_SCHEMA],
        ['csp', CSP_SCHEMA],
        ['manufacturer', {}],
    ];
    for (const [command, schema] of commands) {
        const { code, out } = await runCli([command, '--help']);
        assert.equal(code, 0, out);
        for (const spec of Object.values<{ env: string }>(schema))
            assert.ok(out.includes(spec.env), `${command} --help: ${spec.env}`);
        for (const s of [...FABRIC_SETTINGS, ...STORAGE_SETTINGS])
            assert.ok(out.includes(s.env), `${command} --help: ${s.env}`);
        assert.match(out, /FABRIC_EVALUATE_TIMEOUT_MS\s+evaluate deadline, ms \(default 5000\)/);
    }
});

void test('--help of every command lists each of its settings (COMMAND_SETTINGS) with its variable and default', async () => {
    const commands: [string, readonly SettingsGroup[]][] = Object.entries(COMMAND_SETTINGS);
    for (const [command, groups] of commands) {
        const { code, out } = await runCli([command, '--help']);
        assert.equal(code, 0, out);
        const lines = out.split('\n');
        for (const group of groups) {
            const settings: [string, EnvSetting][] =
                'schema' in group ? Object.entries(group.schema) : group.env.map((s): [string, EnvSetting] => ['', s]);
            for (const [key, spec] of settings) {
                const line = lines.find(
                    (l) => l.includes(` ${spec.env} `) && (key === '' || l.trimStart().startsWith(`${key} `)),
                );
                assert.ok(line !== undefined, `${command} --help: no line for ${key || spec.env}`);
                if (spec.default !== undefined && spec.secret !== true)
                    assert.ok(line.endsWith(`(default ${JSON.stringify(spec.default)})`), `${command} --help: ${line}`);
            }
        }
    }
});

void test('every environment variable the product code reads is a setting some command lists', () => {
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const listed = new Set<string>();
    const all: (readonly SettingsGroup[])[] = Object.values(COMMAND_SETTINGS);
    for (const groups of all)
        for (const group of groups)
            for (const spec of 'schema' in group ? Object.values(group.schema) : group.env) listed.add(spec.env);
    // Set, not read, by the project (fabric-shim's log level); the fault matrix's kill hooks (test-only); a warning code.
    const notSettings = new Set([
        'CORE_CHAINCODE_LOGGING_LEVEL',
        'M2M_FAULT_KILL_AT',
        'M2M_FAULT_KILL_FILE',
        'M2M_INSECURE_FILE',
    ]);
    const dirs = [
        'chaincode/protocol',
        'chaincode/contract',
        'gateway/common',
        'gateway/sdk',
        'gateway/embedded-ledger',
        'gateway/services',
        'gateway/cli',
    ];
    const read = new Map<string, string>();
    for (const dir of dirs) {
        const files = spawnSync('git', ['ls-files', `${dir}/src/*.ts`, `${dir}/src/**/*.ts`], {
            cwd: root,
            encoding: 'utf8',
        })
            .stdout.split('\n')
            .filter((f) => f.endsWith('.ts'));
        assert.ok(files.length > 0, dir);
        for (const file of files) {
            const text = readFileSync(join(root, file), 'utf8');
            for (const m of text.matchAll(/\benv(?:\.|\[')([A-Z][A-Z0-9_]+)|'((?:M2M|IPFS|FABRIC)_[A-Z0-9_]+)'/g))
                read.set(m[1] ?? m[2]!, file);
        }
    }
    assert.ok(read.has('M2M_CSP_MSPS') || read.size > 10, 'the scan finds the variables');
    for (const [name, file] of read)
        if (!notSettings.has(name))
            assert.ok(listed.has(name), `${name} (read in ${file}) is in no command's settings`);
});
