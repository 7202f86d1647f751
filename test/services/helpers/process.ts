/** Running the real `m2m` CLI as a separate process in tests. */
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';

/** gateway/dist/cli/main.js, resolved through the workspace package. */
export const CLI = fileURLToPath(import.meta.resolve('@m2m-fabric/gateway/cli/main'));

/** Runs the CLI to completion (bounded); returns exit code and combined output. */
export async function runCli(args: string[], timeoutMs = 30_000): Promise<{ code: number | null; out: string }> {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await new Promise<number | null>((res) => child.once('exit', res));
    clearTimeout(timer);
    return { code, out };
}

/** Polls `check` until true; fails with `describe()` after `timeoutMs`. */
export async function waitFor(
    check: () => boolean | Promise<boolean>,
    timeoutMs: number,
    describe: () => string = () => '',
): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms ${describe()}`);
        await new Promise((r) => setTimeout(r, 25));
    }
}
