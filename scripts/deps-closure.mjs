#!/usr/bin/env node
// Measures what installing each deployable pulls in: packs every workspace package, installs each
// deployable from its tarball (with the sibling tarballs it depends on) into an empty directory
// with `npm install --omit=dev`, and reports the number of packages, the size on disk and any
// native addons (.node files). The device agent's closure must stay the smallest.
//
// Usage: node scripts/deps-closure.mjs [--json] [--only name,name]   (needs `npm run build` first)
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '..');
const root = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : undefined;

function run(cmd, cmdArgs, cwd) {
    const r = spawnSync(cmd, cmdArgs, { cwd, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${cmdArgs.join(' ')} failed in ${cwd}:\n${r.stderr}`);
    return r.stdout;
}

/** Bytes of regular files under dir (no symlink following), and the .node addons found. */
function walk(dir, acc = { bytes: 0, addons: [] }) {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isSymbolicLink()) continue;
        if (e.isDirectory()) walk(p, acc);
        else if (e.isFile()) {
            acc.bytes += lstatSync(p).size;
            if (e.name.endsWith('.node')) acc.addons.push(p);
        }
    }
    return acc;
}

const work = mkdtempSync(join(tmpdir(), 'm2m-deps-'));
try {
    const packs = join(work, 'packs');
    mkdirSync(packs);
    const manifests = new Map();
    for (const ws of root.workspaces) {
        const manifest = JSON.parse(readFileSync(join(repo, ws, 'package.json'), 'utf8'));
        const file = run(
            'npm',
            ['pack', join(repo, ws), '--pack-destination', packs, '--ignore-scripts', '--silent'],
            repo,
        )
            .trim()
            .split('\n')
            .pop();
        manifests.set(manifest.name, { dir: ws, manifest, tarball: join(packs, file) });
    }
    const localClosure = (name, seen = new Set()) => {
        if (seen.has(name)) return seen;
        seen.add(name);
        for (const dep of Object.keys(manifests.get(name).manifest.dependencies ?? {}))
            if (manifests.has(dep)) localClosure(dep, seen);
        return seen;
    };
    const rows = [];
    for (const [name, { dir }] of manifests) {
        if (only !== undefined && !only.some((o) => name.endsWith(o))) continue;
        const target = join(work, `install-${name.split('/').pop()}`);
        mkdirSync(target);
        run('npm', ['init', '-y'], target);
        const tarballs = [...localClosure(name)].map((n) => manifests.get(n).tarball);
        process.stderr.write(`[deps] installing ${name} (${tarballs.length} local packages)\n`);
        run(
            'npm',
            ['install', '--omit=dev', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline', ...tarballs],
            target,
        );
        const nm = join(target, 'node_modules');
        const ls = JSON.parse(run('npm', ['ls', '--all', '--omit=dev', '--json'], target));
        const count = new Set();
        const visit = (deps) => {
            for (const [n, d] of Object.entries(deps ?? {})) {
                count.add(`${n}@${d.version}`);
                visit(d.dependencies);
            }
        };
        visit(ls.dependencies);
        const { bytes, addons } = walk(nm);
        // Native addons are built at install time (--ignore-scripts skips that); count the packages
        // that would build or ship one.
        const native = [...count].filter((p) => /^(classic-level|leveldown|@grpc\/grpc-js-native)@/.test(p));
        rows.push({
            package: name,
            dir,
            packages: count.size,
            mib: +(bytes / 2 ** 20).toFixed(1),
            nativeAddons: [
                ...new Set([
                    ...native.map((p) => p.split('@')[0]),
                    ...addons.map((a) => a.split('node_modules/').pop().split('/')[0]),
                ]),
            ],
        });
    }
    rows.sort((a, b) => a.mib - b.mib);
    if (args.includes('--json')) console.log(JSON.stringify(rows, null, 2));
    else {
        console.log('| package | directory | packages installed | size on disk | native addons |');
        console.log('|---|---|---|---|---|');
        for (const r of rows)
            console.log(
                `| \`${r.package}\` | \`${r.dir}/\` | ${r.packages} | ${r.mib} MiB | ${r.nativeAddons.join(', ') || 'none'} |`,
            );
    }
} finally {
    rmSync(work, { recursive: true, force: true });
}
