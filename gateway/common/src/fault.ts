/**
 * Kill points for the fault matrix (`npm run test:faults`). A process started with
 *
 *   M2M_FAULT_KILL_AT=<step>:<n>[:<pid>][,<step>:<n>[:<pid>]...]
 *
 * sends SIGKILL, the n-th time it reaches <step>, to itself — or to <pid> (`@<file>`: the pid
 * written in that file when the step is reached), so that a device or a service step can kill the
 * broker, the peer or another service at exactly that moment. Steps are the protocol's:
 * M1, M2, M3, activation-submit, activation-commit, M4-forward, sync-submit, Confirm. Where each is:
 * the device at M1, M3 and Confirm (on receipt); the fog at M1 and M2 (fog/handlers/m1.ts) and at
 * activation-submit, activation-commit and M4-forward (fog/activation-outbox.ts); the CSP at
 * sync-submit (csp/synchronisation.ts) and Confirm (csp/handlers/forward.ts, before the Result).
 *
 * `M2M_FAULT_KILL_FILE=<file>` reads the same syntax from a file each time a step is reached, so a
 * running service is armed (or disarmed) by rewriting the file instead of being restarted with a
 * new environment; hit counts start again whenever the file's text changes.
 * Without either variable (every deployment) a kill point is one property read.
 */
import { readFileSync } from 'node:fs';

export const FAULT_STEPS = [
    'M1',
    'M2',
    'M3',
    'activation-submit',
    'activation-commit',
    'M4-forward',
    'sync-submit',
    'Confirm',
] as const;
export type FaultStep = (typeof FAULT_STEPS)[number];

interface KillSpec {
    at: number;
    /** A pid, `@<file>` holding one, or undefined for this process. */
    target: string | undefined;
    hits: number;
}

function targetPid(target: string | undefined): number {
    if (target === undefined) return process.pid;
    if (target.startsWith('@')) return Number(readFileSync(target.slice(1), 'utf8').trim());
    return Number(target);
}

function parse(raw: string | undefined): Map<string, KillSpec[]> | undefined {
    if (raw === undefined || raw.trim() === '') return undefined;
    const out = new Map<string, KillSpec[]>();
    for (const part of raw.split(',')) {
        const [step, n, target] = part.trim().split(':');
        if (step === undefined || !(FAULT_STEPS as readonly string[]).includes(step) || !/^\d+$/.test(n ?? ''))
            throw new Error(`M2M_FAULT_KILL_AT: bad entry ${JSON.stringify(part)} (expected <step>:<n>[:<pid>])`);
        const list = out.get(step) ?? [];
        list.push({ at: Number(n), target, hits: 0 });
        out.set(step, list);
    }
    return out;
}

const specs = parse(process.env.M2M_FAULT_KILL_AT);
const specFile = process.env.M2M_FAULT_KILL_FILE;
let fileText: string | undefined;
let fileSpecs: Map<string, KillSpec[]> | undefined;

/** The kill points armed now: the environment's, else the spec file's current text (if any). */
function armed(): Map<string, KillSpec[]> | undefined {
    if (specs !== undefined || specFile === undefined || specFile === '') return specs;
    let text = '';
    try {
        text = readFileSync(specFile, 'utf8');
    } catch {
        // no file: nothing armed
    }
    if (text !== fileText) {
        fileText = text;
        try {
            fileSpecs = parse(text);
        } catch (err) {
            process.stderr.write(`${(err as Error).message} (in ${specFile}; ignored)\n`);
            fileSpecs = undefined;
        }
    }
    return fileSpecs;
}

/** Marks that this process reached `step`; kills itself or the configured process on the n-th time. */
export function faultPoint(step: FaultStep): void {
    const current = armed();
    if (current === undefined) return;
    for (const s of current.get(step) ?? []) {
        s.hits++;
        if (s.hits !== s.at) continue;
        try {
            const pid = targetPid(s.target);
            process.stderr.write(`fault point ${step} #${s.at}: SIGKILL ${pid}\n`);
            process.kill(pid, 'SIGKILL');
        } catch {
            // already gone, or no pid file: nothing to kill
        }
    }
}
