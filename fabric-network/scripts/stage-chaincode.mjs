#!/usr/bin/env node
// Makes a self-contained copy of the chaincode package, as Fabric needs it:
//   <out>/package.json        the chaincode's manifest without workspace-only fields
//   <out>/package-lock.json   a lock file of its own (the workspace has only the root one)
//   <out>/dist/**.js          the compiled contracts
//   <out>/vendor/*.tgz        the protocol package (@m2m-fabric/protocol), packed, as a file:
//                             dependency, so the directory needs nothing from this repository
// The peer's Node builder runs `npm ci --omit=dev` then `npm start` in such a directory, and the
// chaincode-as-a-service Dockerfile builds its image from it.
//
// Usage: node fabric-network/scripts/stage-chaincode.mjs [--out DIR] [--skip-build] [--skip-lock]
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const option = (name) => {
    const index = args.indexOf(name);
    return index === -1 ? undefined : args[index + 1];
};
const out = resolve(option('--out') ?? join(repo, 'fabric-network', 'build', 'chaincode'));
const chaincodeDir = join(repo, 'chaincode', 'contract');
const protocolDir = join(repo, 'chaincode', 'protocol');

function run(command, commandArgs, cwd) {
    const result = spawnSync(command, commandArgs, { cwd, stdio: 'inherit' });
    if (result.status !== 0) {
        console.error(`[stage-chaincode] ${command} ${commandArgs.join(' ')} failed (exit ${result.status})`);
        process.exit(result.status ?? 1);
    }
}

if (!args.includes('--skip-build')) {
    run(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', chaincodeDir], repo);
}

const manifest = JSON.parse(readFileSync(join(chaincodeDir, 'package.json'), 'utf8'));
const staged = {
    name: manifest.name,
    version: manifest.version,
    description: manifest.description,
    type: manifest.type,
    license: manifest.license,
    main: manifest.main,
    exports: manifest.exports,
    engines: manifest.engines,
    // The peer's Node builder starts the chaincode with `npm start`; CCaaS runs `server`.
    scripts: {
        start: 'fabric-chaincode-node start',
        server: 'fabric-chaincode-node server',
    },
    // Workspace packages are not on the npm registry: the protocol travels packed in vendor/.
    dependencies: { ...manifest.dependencies },
    // Without it npm resolves class-transformer 0.4.x and every transaction returning an object fails.
    overrides: manifest.overrides,
};

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
cpSync(join(chaincodeDir, 'dist'), join(out, 'dist'), {
    recursive: true,
    filter: (source) => !source.endsWith('.tsbuildinfo') && !source.endsWith('.d.ts') && !source.endsWith('.d.ts.map'),
});
mkdirSync(join(out, 'vendor'));
const protocol = JSON.parse(readFileSync(join(protocolDir, 'package.json'), 'utf8'));
run('npm', ['pack', protocolDir, '--pack-destination', join(out, 'vendor'), '--ignore-scripts', '--silent'], repo);
const tarball = `${protocol.name.replace('@', '').replace('/', '-')}-${protocol.version}.tgz`;
staged.dependencies[protocol.name] = `file:vendor/${tarball}`;
writeFileSync(join(out, 'package.json'), `${JSON.stringify(staged, null, 4)}\n`);

if (!args.includes('--skip-lock')) {
    // --workspaces=false: resolve this directory on its own, not as part of the repository's workspace.
    run(
        'npm',
        ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund', '--workspaces=false'],
        out,
    );
}
console.log(`[stage-chaincode] staged chaincode in ${out}`);
