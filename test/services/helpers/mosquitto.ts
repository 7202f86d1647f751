/**
 * Runs Debian's mosquitto for end-to-end tests on a random 127.0.0.1 port with a generated config:
 * anonymous devices, password accounts for the services, the project's ACL, TCP no-delay and a
 * raised queue limit (mosquitto's default max_queued_messages 1000 silently drops QoS 1 bursts).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TopicLayout } from '@m2m-fabric/common';

function findBinary(name: string): string | undefined {
    const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin'];
    for (const d of dirs) {
        const p = join(d, name);
        if (d !== '' && existsSync(p)) return p;
    }
    return undefined;
}

export const MOSQUITTO = findBinary('mosquitto');
const MOSQUITTO_PASSWD = findBinary('mosquitto_passwd');
/** Why the mosquitto tests are skipped, or false when they can run. */
export const mosquittoSkipReason: string | false =
    MOSQUITTO === undefined || MOSQUITTO_PASSWD === undefined
        ? 'mosquitto not installed (apt-get install mosquitto; .ci/run installs it)'
        : false;

export async function freePort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
}

export class MosquittoBroker {
    private child: ChildProcess | undefined;
    private constructor(
        readonly url: string,
        readonly port: number,
        private readonly configPath: string,
        private readonly dir: string,
    ) {}

    static async start(
        layout: TopicLayout,
        fogIds: string[],
        accounts: { username: string; password: string }[],
    ): Promise<MosquittoBroker> {
        if (MOSQUITTO === undefined || MOSQUITTO_PASSWD === undefined) throw new Error('mosquitto not installed');
        const dir = await mkdtemp(join(tmpdir(), 'm2m-mosquitto-'));
        const port = await freePort();
        const passwd = join(dir, 'passwd');
        await writeFile(passwd, '', { mode: 0o600 });
        for (const a of accounts) {
            const r = spawnSync(MOSQUITTO_PASSWD, ['-b', passwd, a.username, a.password]);
            if (r.status !== 0) throw new Error(`mosquitto_passwd: ${r.stderr.toString()}`);
        }
        const acl = join(dir, 'acl');
        await writeFile(acl, layout.mosquittoAcl(fogIds), { mode: 0o600 });
        const configPath = join(dir, 'mosquitto.conf');
        await writeFile(
            configPath,
            [
                // Started as root, mosquitto drops to user "mosquitto", which cannot read these 0600 files.
                ...(process.getuid?.() === 0 ? ['user root'] : []),
                `listener ${port} 127.0.0.1`,
                'allow_anonymous true',
                `password_file ${passwd}`,
                `acl_file ${acl}`,
                'set_tcp_nodelay true',
                'max_queued_messages 100000',
                'max_inflight_messages 1000',
                'persistence false',
                'log_dest none',
                '',
            ].join('\n'),
        );
        const broker = new MosquittoBroker(`mqtt://127.0.0.1:${port}`, port, configPath, dir);
        await broker.launch();
        return broker;
    }

    private async launch(): Promise<void> {
        const child = spawn(MOSQUITTO!, ['-c', this.configPath], { stdio: 'ignore' });
        this.child = child;
        // Wait until the port accepts connections.
        const deadline = Date.now() + 5_000;
        for (;;) {
            const ok = await new Promise<boolean>((resolve) => {
                import('node:net')
                    .then(({ connect }) => {
                        const s = connect(this.port, '127.0.0.1');
                        s.once('connect', () => {
                            s.destroy();
                            resolve(true);
                        });
                        s.once('error', () => resolve(false));
                    })
                    .catch(() => resolve(false));
            });
            if (ok) return;
            if (Date.now() > deadline || child.exitCode !== null) throw new Error('mosquitto did not start');
            await new Promise((r) => setTimeout(r, 50));
        }
    }

    /** The broker's pid while it runs (the fault matrix aims kill points at it). */
    get pid(): number | undefined {
        const child = this.child;
        return child !== undefined && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
    }

    /** True while the broker process runs (false once it exited or was killed by anyone). */
    get running(): boolean {
        return this.pid !== undefined;
    }

    /**
     * Stops the broker: SIGTERM, then SIGKILL after 5 s. Returns at once for a broker that already
     * exited — also one killed by a signal from another process, whose `exitCode` stays null (only
     * `signalCode` is set), so waiting for its 'exit' event would wait for an event already emitted.
     */
    async stop(): Promise<void> {
        const child = this.child;
        this.child = undefined;
        if (child === undefined) return;
        const gone = (): boolean => child.exitCode !== null || child.signalCode !== null;
        if (gone()) return;
        await new Promise<void>((resolve) => {
            const done = (): void => {
                clearTimeout(force);
                clearInterval(poll);
                resolve();
            };
            child.once('exit', done);
            // Belt and braces: the state is polled too, so a missed 'exit' cannot hang the caller.
            const poll = setInterval(() => gone() && done(), 100);
            const force = setTimeout(() => {
                if (!gone()) child.kill('SIGKILL');
            }, 5_000);
            if (!child.kill('SIGTERM') && gone()) done();
        });
    }

    /** Stops the broker and removes its configuration, password and ACL files. */
    async close(): Promise<void> {
        await this.stop();
        await rm(this.dir, { recursive: true, force: true });
    }

    /** Stops and starts the broker on the same port (all sessions and queues are lost). */
    async restart(): Promise<void> {
        await this.stop();
        await this.launch();
    }
}
