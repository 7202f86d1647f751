/** Running the real `m2m` CLI as a separate process in tests. */
import { fileURLToPath } from 'node:url';
import { spawn, type ChildProcess } from 'node:child_process';

/** gateway/dist/cli/main.js, resolved through the workspace package. */
export const CLI = fileURLToPath(new URL('dist/main.js', import.meta.resolve('@m2m-fabric/cli/package.json')));

/** Runs the CLI to completion (bounded); returns exit code and combined output. */
export async function runCli(
    args: string[],
    timeoutMs = 30_000,
    env: NodeJS.ProcessEnv = {},
    /** Called with the child's pid as soon as it is spawned (the fault matrix aims kill points at it). */
    onSpawn?: (pid: number) => void | Promise<void>,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
    const child = spawn(process.execPath, [CLI, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
    });
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((res) =>
        child.once('exit', (c, sig) => res([c, sig])),
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    if (onSpawn !== undefined && child.pid !== undefined) await onSpawn(child.pid);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const [code, signal] = await exited;
    clearTimeout(timer);
    return { code, signal, out };
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

/** A long-running `m2m` service process whose output is collected. */
export class CliProcess {
    out = '';
    private readonly exited: Promise<number | null>;
    private constructor(readonly child: ChildProcess) {
        child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
        child.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
        this.exited = new Promise((res) => child.once('exit', res));
    }

    static start(args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
        return new CliProcess(
            spawn(process.execPath, [CLI, ...args], {
                stdio: ['ignore', 'pipe', 'pipe'],
                env: { ...process.env, ...env },
            }),
        );
    }

    /** Resolves with the first match of `pattern` in the output (fails on exit or after `timeoutMs`). */
    async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
        let exited = false;
        void this.exited.then(() => (exited = true));
        await waitFor(
            () => pattern.test(this.out) || exited,
            timeoutMs,
            () => this.out,
        );
        const m = this.out.match(pattern);
        if (m === null) throw new Error(`process exited before ${String(pattern)}:\n${this.out}`);
        return m;
    }

    /** SIGTERM (a clean stop), then SIGKILL if it has not exited within 5 s. */
    async stop(): Promise<void> {
        if (this.child.exitCode !== null || this.child.signalCode !== null) return;
        this.child.kill('SIGTERM');
        const t = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
        await this.exited;
        clearTimeout(t);
    }
}
