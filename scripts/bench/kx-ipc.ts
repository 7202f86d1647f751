/**
 * Request/response over a forked child's IPC channel, for the kx benchmark's process layout
 * (kx.ts forks kx-services.ts and kx-devices.ts). Each request carries an id; the child answers it
 * with the handler's result or its error message. A child that exits fails every open request.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { startCpuProfile, stopCpuProfile } from './profiler.js';

interface Request {
    id: number;
    kind: string;
    body: unknown;
}
type Response = { id: number; ok: true; body: unknown } | { id: number; ok: false; error: string };

export class ChildProcessClient {
    #next = 1;
    readonly #open = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

    private constructor(readonly child: ChildProcess) {
        child.on('message', (m: Response) => {
            const waiter = this.#open.get(m.id);
            this.#open.delete(m.id);
            if (m.ok) waiter?.resolve(m.body);
            else waiter?.reject(new Error(m.error));
        });
        child.on('exit', (code) => {
            for (const w of this.#open.values()) w.reject(new Error(`child exited with code ${String(code)}`));
            this.#open.clear();
        });
    }

    /** Forks `module` (a compiled .js next to this file) with the parent's environment. */
    static fork(module: URL): ChildProcessClient {
        return new ChildProcessClient(fork(module, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    }

    request<T>(kind: string, body: unknown = {}): Promise<T> {
        const id = this.#next++;
        return new Promise<T>((resolve, reject) => {
            this.#open.set(id, { resolve: resolve as (v: unknown) => void, reject });
            this.child.send({ id, kind, body } satisfies Request);
        });
    }

    /** Asks the child to close, then waits (bounded) for it to exit. */
    async close(timeoutMs = 20_000): Promise<void> {
        if (this.child.exitCode !== null) return;
        const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
        await this.request('close').catch(() => undefined);
        const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(timer);
    }
}

/** What every child answers besides its own requests: CPU profiles of a phase (kx --profile). */
const COMMON_HANDLERS: Record<string, (body: never) => Promise<unknown>> = {
    'profile-start': () => startCpuProfile(),
    'profile-stop': (body: { path: string }) => stopCpuProfile(body.path),
};

/** In a child: answers requests with `handlers[kind]`; 'close' runs `handlers.close` then exits. */
export function serveParent(handlers: Record<string, (body: never) => Promise<unknown>>): void {
    process.on('message', (m: Request) => {
        const handler = handlers[m.kind] ?? COMMON_HANDLERS[m.kind];
        const run =
            handler === undefined ? Promise.reject(new Error(`unknown request ${m.kind}`)) : handler(m.body as never);
        run.then(
            (body) => process.send?.({ id: m.id, ok: true, body } satisfies Response),
            (err: unknown) => process.send?.({ id: m.id, ok: false, error: String(err) } satisfies Response),
        ).finally(() => {
            if (m.kind === 'close') process.disconnect();
        });
    });
}

/** CPU time (user + system) this process has used, milliseconds. */
export function cpuMs(): number {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
}
