/**
 * The kx benchmark's devices: a fleet of device agents that runs batches of concurrent key exchanges
 * (trials) or sessions back to back (saturation). Used in process (`--layout single`) or forked as
 * its own process (`--layout devices|processes`), which is how devices are deployed: on their own
 * hardware (Raspberry Pis), reaching the fog only through its MQTT broker.
 */
import { pathToFileURL } from 'node:url';
import { DeviceAgent } from '@m2m-fabric/device';
import { errorCodeOf } from '@m2m-fabric/common';
import { cpuMs, serveParent } from './kx-ipc.js';

export interface DeviceSpec {
    statePath: string;
    brokerUrl: string;
}

export interface TrialResult {
    /** Completion of the whole concurrent batch. */
    batchMs: number;
    /** Per established session, M1 computed to Confirm opened. */
    sessionMs: number[];
    /** Failed sessions by error code. */
    failures: Record<string, number>;
}

export interface SaturationResult {
    sessions: number;
    failed: number;
    /** Failed sessions by error code. */
    failures: Record<string, number>;
    seconds: number;
    /** CPU the device process used meanwhile (meaningful when the fleet has its own process). */
    cpuMs: number;
}

/** The operations kx.ts needs from a fleet, in this process or another. */
export interface Fleet {
    trial(concurrency: number): Promise<TrialResult>;
    saturate(seconds: number): Promise<SaturationResult>;
    cpuMs(): Promise<number>;
    close(): Promise<void>;
}

export class DeviceFleet implements Fleet {
    private constructor(private readonly agents: DeviceAgent[]) {}

    static async open(specs: DeviceSpec[], sessionTimeoutMs = 60_000): Promise<DeviceFleet> {
        const agents = await Promise.all(
            specs.map(async (s) => {
                const agent = await DeviceAgent.open({
                    statePath: s.statePath,
                    brokerUrl: s.brokerUrl,
                    sessionTimeoutMs,
                });
                await agent.connect();
                return agent;
            }),
        );
        return new DeviceFleet(agents);
    }

    async trial(concurrency: number): Promise<TrialResult> {
        const t0 = performance.now();
        const results = await Promise.allSettled(this.agents.slice(0, concurrency).map((a) => a.establishSession()));
        const batchMs = performance.now() - t0;
        const sessionMs: number[] = [];
        const failures: Record<string, number> = {};
        for (const r of results) {
            if (r.status === 'fulfilled') sessionMs.push(r.value.latencyMs);
            else {
                const code = errorCodeOf(r.reason);
                failures[code] = (failures[code] ?? 0) + 1;
            }
        }
        return { batchMs, sessionMs, failures };
    }

    async saturate(seconds: number): Promise<SaturationResult> {
        let sessions = 0;
        let failed = 0;
        const failures: Record<string, number> = {};
        const cpu0 = cpuMs();
        const t0 = performance.now();
        const until = t0 + seconds * 1000;
        await Promise.all(
            this.agents.map(async (a) => {
                while (performance.now() < until && a.remainingSessions > 0n) {
                    await a.establishSession().then(
                        () => sessions++,
                        (err: unknown) => {
                            failed++;
                            const code = errorCodeOf(err);
                            failures[code] = (failures[code] ?? 0) + 1;
                        },
                    );
                }
            }),
        );
        return { sessions, failed, failures, seconds: (performance.now() - t0) / 1000, cpuMs: cpuMs() - cpu0 };
    }

    cpuMs(): Promise<number> {
        return Promise.resolve(cpuMs());
    }

    async close(): Promise<void> {
        await Promise.allSettled(this.agents.map((a) => a.close()));
    }
}

// Forked by kx.ts: serve the fleet over IPC.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href && process.send) {
    let fleet: DeviceFleet | undefined;
    serveParent({
        open: async (body: { specs: DeviceSpec[] }) => {
            fleet = await DeviceFleet.open(body.specs);
        },
        trial: (body: { concurrency: number }) => fleet!.trial(body.concurrency),
        saturate: (body: { seconds: number }) => fleet!.saturate(body.seconds),
        cpu: () => Promise.resolve(cpuMs()),
        close: async () => {
            await fleet?.close();
        },
    });
}
