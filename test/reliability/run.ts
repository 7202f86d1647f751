/**
 * The reliability suites as commands (issue 17):
 *
 *   npm run test:access            the access matrix (bench/results/access.json)
 *   npm run test:fuzz [-- --quick] the fuzzer (bench/results/fuzz.json unless --quick)
 *   npm run test:faults [-- --quick] [--per-cell N] [--sessions N] [--restart-delay-ms N]
 *                       [--cells victim:step,...]  (`*` for every victim or step; default all 40)
 *                       [--log-dir DIR]  (every device run's and service's output, for diagnosis)
 *                                  the kill-point matrix (bench/results/faults.json unless --quick)
 *
 * Each prints its table, writes its figures and exits non-zero when a promise is broken.
 */
import './quiet.js';
import { parseArgs } from 'node:util';
import { runAccessMatrix } from './access-matrix.js';
import { runFuzz } from './fuzz.js';
import { runFaultMatrix, VICTIMS, type Victim } from './faults.js';
import { FAULT_STEPS, type FaultStep } from '@m2m-fabric/common';
import { writeResult } from './results.js';

const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: {
        quick: { type: 'boolean' },
        help: { type: 'boolean' },
        'per-cell': { type: 'string' },
        sessions: { type: 'string' },
        'restart-delay-ms': { type: 'string' },
        cells: { type: 'string' },
        'log-dir': { type: 'string' },
    },
    allowPositionals: true,
    strict: false,
});
const suite = positionals[0];
const quick = values.quick === true;

async function access(): Promise<boolean> {
    const r = await runAccessMatrix({ sample: quick ? 0.34 : 1 });
    for (const f of r.failures)
        console.log(
            `FAIL ${f.contract}:${f.transaction} by ${f.caller}: expected ${f.expected}, got ${f.outcome} (${f.detail})`,
        );
    // One row per function, one column per identity: A allowed, . denied, ! not as expected.
    const callers = [...new Set(r.cells.map((c) => c.caller))];
    console.log(`${''.padEnd(40)} ${callers.map((_, i) => String(i + 1).padStart(2)).join('')}`);
    const rows = new Map<string, string[]>();
    for (const c of r.cells) {
        const key = `${c.contract}:${c.transaction}`;
        const row = rows.get(key) ?? callers.map(() => ' ');
        row[callers.indexOf(c.caller)] = c.outcome !== c.expected ? '!' : c.outcome === 'allowed' ? 'A' : '.';
        rows.set(key, row);
    }
    for (const [key, row] of rows) console.log(`${key.padEnd(40)} ${row.map((x) => x.padStart(2)).join('')}`);
    console.log(callers.map((c, i) => `${i + 1}=${c}`).join('  '));
    console.log(
        `access matrix: ${r.functions} functions x ${r.identities} identities: ${r.denied} denied as expected, ` +
            `${r.wronglyAllowed} wrongly allowed, ${r.allowed} allowed as expected, ${r.wronglyDenied} wrongly denied, ` +
            `state ${r.stateChanged ? 'CHANGED' : 'unchanged'} (${r.durationMs} ms)`,
    );
    if (!quick) {
        console.log(`wrote ${writeResult('access', 'npm run test:access', { ...r })}`);
    }
    return r.wronglyAllowed === 0 && r.wronglyDenied === 0 && !r.stateChanged;
}

async function fuzz(): Promise<boolean> {
    const r = await runFuzz(quick ? { perTarget: 300, invocations: 300 } : { perTarget: 10_000, invocations: 10_000 });
    for (const [target, outcomes] of Object.entries(r.byTarget)) {
        const total = Object.entries(outcomes)
            .filter(([k]) => k !== 'acceptedSubmits')
            .reduce((a, [, b]) => a + b, 0);
        const parts = Object.entries(outcomes)
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => `${k} ${v}`);
        console.log(`${target.padEnd(14)} ${String(total).padStart(6)}: ${parts.join(', ')}`);
    }
    console.log(
        `fuzz: ${r.messages} messages, ${r.invocations} chaincode invocations, ${r.crashes} crashes, ` +
            `${r.stateChanges} state changes, ${r.untypedReplies} untyped replies (${r.durationMs} ms, seed ${r.seed})`,
    );
    if (!quick) console.log(`wrote ${writeResult('fuzz', 'npm run test:fuzz', { ...r })}`);
    return r.crashes === 0 && r.stateChanges === 0 && r.untypedReplies === 0;
}

async function faults(): Promise<boolean> {
    const num = (name: string, fallback: number): number => {
        const v = values[name];
        if (v === undefined) return fallback;
        if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new Error(`--${name} takes a whole number`);
        return Number(v);
    };
    const cells =
        typeof values.cells === 'string'
            ? values.cells.split(',').flatMap((entry) => {
                  const [victim, step] = entry.trim().split(':');
                  const victims = victim === '*' ? VICTIMS : VICTIMS.filter((v) => v === victim);
                  const steps = step === '*' ? [...FAULT_STEPS] : FAULT_STEPS.filter((s) => s === step);
                  if (victims.length === 0 || steps.length === 0)
                      throw new Error(`--cells: bad entry ${JSON.stringify(entry)} (victim:step, * for all)`);
                  return victims.flatMap((v: Victim) => steps.map((st: FaultStep) => ({ victim: v, step: st })));
              })
            : undefined;
    // A selection of cells is a partial run: it never writes bench/results.
    const partial = quick || cells !== undefined;
    const r = await runFaultMatrix({
        ...(cells !== undefined ? { cells } : {}),
        ...(typeof values['log-dir'] === 'string' ? { logDir: values['log-dir'] } : {}),
        sessions: num('sessions', quick ? 60 : 500),
        devices: quick ? 2 : 4,
        perCell: num('per-cell', 1),
        restartDelayMs: num('restart-delay-ms', 300),
    });
    console.log(`${'victim'.padEnd(8)} ${'step'.padEnd(18)} killed first            retries recovered same-cert`);
    for (const c of r.cells)
        console.log(
            `${c.victim.padEnd(8)} ${c.step.padEnd(18)} ${String(c.killed).padEnd(6)} ${c.first.padEnd(16)} ${String(c.retries).padStart(7)} ${String(c.recovered).padEnd(9)} ${c.sameCertificate}`,
        );
    if (r.notArmed.length > 0) console.log(`not armed (no kill point in that process yet): ${r.notArmed.join(' ')}`);
    console.log(
        `faults: ${r.sessions} sessions, ${r.cells.length} cells, ${r.lostPaidCertificates} lost paid certificates, ` +
            `${r.lostAcknowledged} of ${r.acknowledged} acknowledged uploads lost, ${r.unfinished} unfinished, ${r.pendingAtEnd} pending, ledger ${r.ledgerVerified ? 'verifies' : 'DOES NOT VERIFY'} (${r.durationMs} ms)`,
    );
    for (const m of r.missingAcknowledged)
        console.log(`lost acknowledged upload: ${m.equipmentId} route ${m.routeId} frame ${m.seq}`);
    if (!partial) console.log(`wrote ${writeResult('faults', 'npm run test:faults', { ...r })}`);
    return (
        r.lostPaidCertificates === 0 &&
        r.lostAcknowledged === 0 &&
        r.unfinished === 0 &&
        r.pendingAtEnd === 0 &&
        r.ledgerVerified &&
        r.cells.every((c) => c.recovered)
    );
}

const suites: Record<string, () => Promise<boolean>> = { access, fuzz, faults };
if (values.help === true || suite === undefined || suites[suite] === undefined) {
    console.log(`usage: node build/test/reliability/run.js ${Object.keys(suites).join('|')} [--quick]`);
    process.exit(suite === undefined || values.help === true ? 0 : 2);
}
// A library's uncaughtException logger (fabric-common's) keeps a failed top-level await from ending
// the process with an error: catch it here, so a broken run exits non-zero.
const ok = await suites[suite]().catch((err: unknown) => {
    console.error(`${suite} failed:`, err);
    return false;
});
process.exit(ok ? 0 : 1);
