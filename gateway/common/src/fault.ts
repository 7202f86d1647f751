/**
 * Kill points for the fault matrix (`npm run test:faults`). A process started with
 *
 *   M2M_FAULT_KILL_AT=<step>:<n>[:<pid>][,<step>:<n>[:<pid>]...]
 *
 * sends SIGKILL, the n-th time it reaches <step>, to itself — or to <pid>, so that a device or a
 * service step can kill the broker or the peer at exactly that moment. Steps are the protocol's:
 * M1, M2, M3, activation-submit, activation-commit, M4-forward, sync-submit, Confirm. Without the
 * variable (every deployment) a kill point is one property read.
 */
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
    pid: number | undefined;
    hits: number;
}

function parse(raw: string | undefined): Map<string, KillSpec[]> | undefined {
    if (raw === undefined || raw.trim() === '') return undefined;
    const out = new Map<string, KillSpec[]>();
    for (const part of raw.split(',')) {
        const [step, n, pid] = part.trim().split(':');
        if (step === undefined || !(FAULT_STEPS as readonly string[]).includes(step) || !/^\d+$/.test(n ?? ''))
            throw new Error(`M2M_FAULT_KILL_AT: bad entry ${JSON.stringify(part)} (expected <step>:<n>[:<pid>])`);
        const list = out.get(step) ?? [];
        list.push({ at: Number(n), pid: pid === undefined ? undefined : Number(pid), hits: 0 });
        out.set(step, list);
    }
    return out;
}

const specs = parse(process.env.M2M_FAULT_KILL_AT);

/** Marks that this process reached `step`; kills itself or the configured process on the n-th time. */
export function faultPoint(step: FaultStep): void {
    if (specs === undefined) return;
    for (const s of specs.get(step) ?? []) {
        s.hits++;
        if (s.hits !== s.at) continue;
        process.stderr.write(`fault point ${step} #${s.at}: SIGKILL ${s.pid ?? process.pid}\n`);
        try {
            process.kill(s.pid ?? process.pid, 'SIGKILL');
        } catch {
            // already gone
        }
    }
}
