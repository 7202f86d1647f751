/** Writing a suite's figures to bench/results/<name>.json (full runs only; quick runs never overwrite). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arch, cpus, loadavg, platform } from 'node:os';

/** The repository root (this file is build/test/reliability/results.js). */
export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');

export function writeResult(name: string, command: string, figures: Record<string, unknown>): string {
    const dir = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${name}.json`);
    const doc = {
        suite: name,
        command,
        date: new Date().toISOString(),
        machine: {
            platform: platform(),
            arch: arch(),
            cpus: cpus().length,
            node: process.version,
            // The machine may be shared: the 1/5/15-minute load averages when the figures were written.
            loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
        },
        ...figures,
    };
    writeFileSync(path, `${JSON.stringify(doc, null, 2)}\n`);
    return path;
}
