/**
 * CPU profiles of one benchmark phase (kx --profile DIR): the V8 profiler of the calling thread,
 * started and stopped around the phase, written as a `.cpuprofile` (Chrome DevTools, speedscope).
 * Worker threads (the chaincode threads) are not included; `node --cpu-prof` profiles them, but
 * from the start of the run.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

let session: Session | undefined;

export async function startCpuProfile(): Promise<void> {
    if (session !== undefined) throw new Error('a CPU profile is already running');
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
}

export async function stopCpuProfile(path: string): Promise<void> {
    const s = session;
    if (s === undefined) throw new Error('no CPU profile is running');
    session = undefined;
    const { profile } = await s.post('Profiler.stop');
    s.disconnect();
    writeFileSync(path, JSON.stringify(profile));
}
