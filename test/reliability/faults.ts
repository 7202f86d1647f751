/**
 * The kill-point matrix (issue 17), with real processes: `m2m peer` (the embedded ledger behind
 * Fabric Gateway endpoints), mosquitto, `m2m csp`, `m2m fog` and `m2m device`. For each cell
 * (victim process × protocol step) a device runs one session with a kill point armed
 * (M2M_FAULT_KILL_AT, common/fault.ts) that SIGKILLs the victim when the step is reached; the victim
 * is restarted and the device retried until a session is established. Sessions without faults fill
 * the run up to the target count. Afterwards every counter a device spent is checked on the ledger
 * (a certificate whose counter is spent but that is still `unused` is a lost paid certificate),
 * every telemetry upload a device saw acknowledged is looked up at the CSP, and the ledger's hash
 * chain is verified.
 *
 * Kill points exist where the code for a step runs: the device (M1, M3, Confirm); the steps that
 * run in the fog and the CSP are armed in those processes (see FAULT_HOOKS).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createM1, decodePoint, decodeScalar, encodePoint, fromHex, getSuite, toHex } from '@m2m-fabric/protocol';
import { FAULT_STEPS, isKnownErrorCode, TopicLayout, type FaultStep } from '@m2m-fabric/common';
import { readDeviceState } from '@m2m-fabric/device';
import { ChaincodeClient, connectFabric, loadFabricConfig } from '@m2m-fabric/sdk';
import { verifyLedger } from '@m2m-fabric/embedded-ledger';
import { MosquittoBroker, MOSQUITTO, freePort } from '../services/helpers/mosquitto.js';
import { CliProcess, runCli } from '../services/helpers/process.js';
import { acknowledgedIn, missingAcknowledged, storedIn, type UploadId } from './acknowledged.js';

export type Victim = 'device' | 'fog' | 'csp' | 'broker' | 'peer';
export const VICTIMS: Victim[] = ['device', 'fog', 'csp', 'broker', 'peer'];

/**
 * Which process reaches each step, so the kill point is armed there (M2M_FAULT_KILL_AT in that
 * process's environment): the device sends M1 and M3 and opens the Confirm; the fog answers M2,
 * submits the activation, sees it commit and forwards M4; the CSP submits the synchronisation and
 * sends the Confirm (a device victim at Confirm is killed by its own kill point, on receipt).
 */
export function hostOf(victim: Victim, step: FaultStep): 'device' | 'fog' | 'csp' {
    switch (step) {
        case 'M1':
        case 'M3':
            return 'device';
        case 'M2':
        case 'activation-submit':
        case 'activation-commit':
        case 'M4-forward':
            return 'fog';
        case 'sync-submit':
            return 'csp';
        case 'Confirm':
            return victim === 'device' ? 'device' : 'csp';
    }
}

export interface FaultMatrixOptions {
    /** Sessions in all: the faulted cells first, then sessions without faults up to this many. */
    sessions: number;
    devices?: number;
    /** Faulted sessions per cell (victim x step). */
    perCell?: number;
    /** Only these cells (default: every victim at every step). */
    cells?: { victim: Victim; step: FaultStep }[];
    /** How long a killed process stays down before it is restarted. */
    restartDelayMs?: number;
    /** Device runs after the faulted one, each after restarting whatever is down. */
    maxRetries?: number;
    /** Where every device run's output and, at the end, each service's output are written (diagnosis). */
    logDir?: string;
}

export interface CellResult {
    victim: Victim;
    step: FaultStep;
    killed: boolean;
    /** First run's outcome: `established`, a typed error code, or `killed`. */
    first: string;
    retries: number;
    recovered: boolean;
    /** The session established on retry used the certificate reserved by the faulted run. */
    sameCertificate: boolean;
}

export interface FaultResult {
    sessions: number;
    cells: CellResult[];
    lostPaidCertificates: number;
    /** Uploads a device saw acknowledged. */
    acknowledged: number;
    /** Acknowledged uploads the CSP does not hold, checked one by one (route ID, sequence). */
    lostAcknowledged: number;
    missingAcknowledged: (UploadId & { equipmentId: string })[];
    unfinished: number;
    ledgerVerified: boolean;
    notArmed: string[];
    /** Counters still pending (a session neither established nor refused for good) at the end. */
    pendingAtEnd: number;
    perCell: number;
    restartDelayMs: number;
    durationMs: number;
}

const ESTABLISHED = /session counter (\d+) established/g;

export async function runFaultMatrix(options: FaultMatrixOptions): Promise<FaultResult> {
    if (MOSQUITTO === undefined) throw new Error('mosquitto not installed (apt-get install mosquitto)');
    const started = performance.now();
    if (options.logDir !== undefined) await mkdir(options.logDir, { recursive: true });
    const dir = await mkdtemp(join(tmpdir(), 'm2m-faults-'));
    const layout = new TopicLayout();
    const passwords = { 'fog-1': 'fog-1-pw', csp: 'csp-pw' };
    const broker = await MosquittoBroker.start(
        layout,
        ['fog-1'],
        Object.entries(passwords).map(([username, password]) => ({ username, password })),
    );
    const procs = new Map<string, CliProcess>();
    /** Every service process started, in order (their output goes to logDir). */
    const serviceProcs: [string, CliProcess][] = [];
    const pidFile = join(dir, 'victim.pid');
    const basePort = 20_000 + ((await freePort()) % 20_000);
    const peerArgs = [
        'peer',
        '--data-dir',
        join(dir, 'peer'),
        '--base-port',
        String(basePort),
        '--batch-timeout',
        '0.1',
    ];
    const shared = { M2M_STORE_DIR: join(dir, 'objects'), M2M_LOG_LEVEL: 'info' };
    // The fog and the CSP read their kill points from a file (common/fault.ts), so arming a cell
    // rewrites that file instead of restarting the service twice per cell.
    const killFile = (name: 'fog' | 'csp'): string => join(dir, `${name}.kill`);
    const conn = (name: string): string => join(dir, 'peer', 'connection', `${name}.env`);
    const cspEnv = { ...shared, FABRIC_CONNECTION: conn('csp') };
    const fogEnv = { ...shared, FABRIC_CONNECTION: conn('foga') };
    const manEnv = { ...shared, FABRIC_CONNECTION: conn('manufacturer') };
    const startPeer = async (): Promise<void> => {
        const p = CliProcess.start(peerArgs);
        procs.set('peer', p);
        serviceProcs.push(['peer', p]);
        await p.waitFor(/connection manufacturer: FABRIC_CONNECTION=/, 60_000);
    };
    const startCsp = async (init = false, env: NodeJS.ProcessEnv = {}): Promise<void> => {
        const args = [
            'csp',
            '--data.dir',
            join(dir, 'csp'),
            '--mqtt.url',
            broker.url,
            '--mqtt.password',
            passwords.csp,
        ];
        const p = CliProcess.start(init ? [...args, '--init-store'] : args, {
            ...cspEnv,
            M2M_FAULT_KILL_FILE: killFile('csp'),
            ...env,
        });
        procs.set('csp', p);
        serviceProcs.push(['csp', p]);
        await p.waitFor(/CSP backend running/, 60_000);
    };
    const startFog = async (env: NodeJS.ProcessEnv = {}): Promise<void> => {
        const p = CliProcess.start(
            [
                'fog',
                '--fog.id',
                'fog-1',
                '--data.dir',
                join(dir, 'fog'),
                '--mqtt.url',
                broker.url,
                '--mqtt.password',
                passwords['fog-1'],
                '--csp.url',
                broker.url,
                '--csp.password',
                passwords['fog-1'],
            ],
            { ...fogEnv, M2M_FAULT_KILL_FILE: killFile('fog'), ...env },
        );
        procs.set('fog', p);
        serviceProcs.push(['fog', p]);
        await p.waitFor(/fog gateway running/, 60_000);
    };
    const alive = (name: string): boolean => {
        const p = procs.get(name);
        return p !== undefined && p.child.exitCode === null && p.child.signalCode === null;
    };
    const pidOf = (victim: Victim): number | undefined =>
        victim === 'broker' ? broker.pid : alive(victim) ? procs.get(victim)?.child.pid : undefined;
    const restartDead = async (): Promise<void> => {
        if (!alive('peer')) {
            await startPeer();
            // The services reconnect to the peer on their own (same ports, same TLS material).
        }
        if (!broker.running) await broker.restart();
        if (!alive('csp')) await startCsp();
        if (!alive('fog')) await startFog();
    };
    /** Arms (or, with undefined, disarms) the running fog's or CSP's kill point. */
    const arm = (name: 'fog' | 'csp', spec: string | undefined): Promise<void> => writeFile(killFile(name), spec ?? '');
    const ok = async (args: string[], env: NodeJS.ProcessEnv): Promise<string> => {
        const r = await runCli(args, 120_000, env);
        if (r.code !== 0) throw new Error(`m2m ${args.join(' ')}:\n${r.out}`);
        return r.out;
    };

    const cells: CellResult[] = [];
    const notArmed: string[] = [];
    let sessions = 0;
    const acknowledged: (UploadId & { equipmentId: string })[] = [];
    let unfinished = 0;
    const devices = options.devices ?? 4;
    const perDevice =
        Math.ceil(options.sessions / devices) + 40 + Math.ceil(((options.perCell ?? 1) * 40 * 4) / devices);
    const states: string[] = [];
    const equipmentOf = new Map<string, string>();
    try {
        await startPeer();
        await startCsp(true);
        await startFog();
        const man = ['--data-dir', join(dir, 'manufacturer')];
        await ok(
            ['csp', 'grant-credit', '--account', 'ManufacturerMSP', '--amount', String(devices * perDevice)],
            cspEnv,
        );
        for (let d = 0; d < devices; d++) {
            const id = `flt-${String(d + 1).padStart(4, '0')}`;
            await ok(['manufacturer', 'register', id, '--fog', 'fog-1', ...man], manEnv);
            await ok(['manufacturer', 'buy', id, '--n', String(perDevice), ...man], manEnv);
            const state = join(dir, `${id}.json`);
            await ok(
                [
                    'manufacturer',
                    'provision',
                    id,
                    '--fog',
                    'fog-1',
                    '--state',
                    state,
                    '--broker-url',
                    broker.url,
                    ...man,
                ],
                manEnv,
            );
            states.push(state);
            equipmentOf.set(state, id);
        }
        /** One device run; returns its output (sessions and acknowledgements are counted). */
        let runNo = 0;
        let label = '';
        const device = async (
            state: string,
            n: number,
            env: NodeJS.ProcessEnv = {},
            onSpawn?: (pid: number) => Promise<void>,
        ): Promise<string> => {
            const r = await runCli(
                [
                    'device',
                    '--device.state',
                    state,
                    '--sessions',
                    String(n),
                    '--uploads',
                    '1',
                    '--interval.ms',
                    '0',
                    '--session.timeout.ms',
                    '15000',
                ],
                120_000,
                env,
                onSpawn,
            );
            sessions += [...r.out.matchAll(ESTABLISHED)].length;
            const equipmentId = equipmentOf.get(state)!;
            for (const u of acknowledgedIn(r.out)) acknowledged.push({ ...u, equipmentId });
            // A run ends established, with a typed error (`<code>: ...`), or killed by its kill point.
            const typed =
                // `m2m device` prints `error <code>: ...`; a thrown error `<Name>Error: <code>: ...`.
                [...r.out.matchAll(/^(?:error )?(?:[A-Za-z]+Error: )?([a-zA-Z][a-zA-Z0-9-]*): /gm)].some((m) =>
                    isKnownErrorCode(m[1]!),
                ) ||
                /fault point/.test(r.out) ||
                r.signal === 'SIGKILL';
            // An uncaught exception (Node prints its version under the stack trace) is never a typed
            // ending, even when its message carries a code: the process died instead of answering.
            const crashed = r.signal !== 'SIGKILL' && /^Node\.js v\d+/m.test(r.out);
            if (r.code !== 0 && (!typed || crashed)) unfinished++;
            if (options.logDir !== undefined) {
                const name = `${String(++runNo).padStart(4, '0')}-${equipmentId}.log`;
                await writeFile(join(options.logDir, name), `exit ${r.code} ${r.signal ?? ''} ${label}\n${r.out}`);
            }
            return r.out;
        };

        const perCell = options.perCell ?? 1;
        const restartDelayMs = options.restartDelayMs ?? 300;
        const maxRetries = options.maxRetries ?? 6;
        const cellList = options.cells ?? VICTIMS.flatMap((victim) => FAULT_STEPS.map((step) => ({ victim, step })));
        let cellIndex = 0;
        for (const { victim, step } of cellList) {
            for (let k = 0; k < perCell; k++) {
                const state = states[cellIndex++ % states.length]!;
                const host = hostOf(victim, step);
                const self = victim === host;
                label = `${victim}@${step} #${k + 1}`;
                const spec = self ? `${step}:1` : `${step}:1:@${pidFile}`;
                // Whatever the last cell left down is up again before this one is armed.
                await restartDead();
                if (host !== 'device') await arm(host, spec);
                const hostProc = host === 'device' ? undefined : procs.get(host);
                const hostMark = hostProc?.out.length ?? 0;
                const before = (await readDeviceState(state))!;
                const reserved = before.pendingCounter ?? before.nextCounter;
                // The victim's pid, read by the kill point when the step is reached.
                if (!self && victim !== 'device') await writeFile(pidFile, String(pidOf(victim) ?? 0));
                const out = await device(
                    state,
                    1,
                    host === 'device' ? { M2M_FAULT_KILL_AT: spec } : {},
                    victim === 'device' && !self ? (pid) => writeFile(pidFile, String(pid)) : undefined,
                );
                // Disarmed at once: a kill point that did not fire must not fire in a retry.
                if (host !== 'device') await arm(host, undefined);
                const hostOut = hostProc === undefined ? out : hostProc.out.slice(hostMark);
                const killed = /fault point/.test(hostOut);
                const established = /session counter \d+ established/.exec(out);
                const first = established
                    ? 'established'
                    : /^Node\.js v\d+/m.test(out)
                      ? 'crashed'
                      : killed && victim === 'device'
                        ? 'killed'
                        : (/([a-zA-Z-]+): /.exec(out.split('\n').find((l) => /error|Error/.test(l)) ?? '')?.[1] ??
                          'failed');
                await new Promise((r) => setTimeout(r, restartDelayMs));
                await restartDead();
                let retries = 0;
                let recoveredBy = established?.[0];
                while (recoveredBy === undefined && retries < maxRetries) {
                    retries++;
                    const again = await device(state, 1);
                    recoveredBy = /session counter \d+ established/.exec(again)?.[0];
                    if (recoveredBy === undefined) {
                        await new Promise((r) => setTimeout(r, 1_000));
                        await restartDead();
                    }
                }
                const recovered = recoveredBy !== undefined;
                const sameCertificate = recoveredBy === `session counter ${reserved} established`;
                cells.push({ victim, step, killed, first, retries, recovered, sameCertificate });
                process.stderr.write(
                    `[faults] ${victim}@${step} #${k + 1}: killed ${killed}, first ${first}, retries ${retries}, recovered ${recovered}, same certificate ${sameCertificate} (${sessions} sessions so far)\n`,
                );
            }
        }
        // Fill up to the target with sessions without faults.
        // The last cell's kill can land after its device run ended (peer@Confirm: the CSP kills the
        // peer as the Confirm goes out), so every round first restarts what is down; a round that
        // made no progress waits and tries again, three times at most.
        label = 'fill';
        let stalls = 0;
        while (sessions < options.sessions && stalls < 3) {
            await new Promise((r) => setTimeout(r, restartDelayMs));
            await restartDead();
            const before = sessions;
            await Promise.all(
                states.map((s) => device(s, Math.min(25, Math.ceil((options.sessions - sessions) / devices)))),
            );
            stalls = sessions === before ? stalls + 1 : 0;
            if (stalls > 0) await new Promise((r) => setTimeout(r, 1_000));
        }
        // A session a fault left pending is resumed (same certificate) before the books are closed,
        // as the device would on its next start.
        for (let round = 0; round < 3; round++) {
            const pending: string[] = [];
            for (const path of states)
                if ((await readDeviceState(path))?.pendingCounter !== undefined) pending.push(path);
            if (pending.length === 0) break;
            await restartDead();
            await Promise.all(pending.map((s) => device(s, 1)));
        }
        await restartDead();

        // Every spent counter: its certificate must be used (a session ran) — or it is lost.
        const config = loadFabricConfig({ file: conn('csp') });
        const ledger = new ChaincodeClient(await connectFabric(config), config.chaincodeName);
        let lostPaidCertificates = 0;
        let pendingAtEnd = 0;
        const missing: (UploadId & { equipmentId: string })[] = [];
        for (const path of states) {
            const s = (await readDeviceState(path))!;
            const suite = getSuite(s.suite);
            const secrets = { w: decodeScalar(suite, fromHex(s.w)), equipmentId: s.equipmentId };
            const Qf = decodePoint(suite, fromHex(s.fog.publicKey));
            const Qc = decodePoint(suite, fromHex(s.cspPublicKey));
            if (s.pendingCounter !== undefined) pendingAtEnd++;
            for (let c = 1n; c < BigInt(s.nextCounter); c++) {
                const { session } = await createM1(suite, secrets, c, s.fog.id, Qf, Qc);
                const record = await ledger.getCertificate(toHex(encodePoint(suite, session.idCert)));
                if (record.status === 'unused') lostPaidCertificates++;
            }
            const tel = await runCli([
                'csp',
                'telemetry',
                '--data.dir',
                join(dir, 'csp'),
                '--equipment',
                s.equipmentId,
            ]);
            missing.push(
                ...missingAcknowledged(
                    acknowledged.filter((u) => u.equipmentId === s.equipmentId),
                    storedIn(tel.out),
                ).map((u) => ({ ...u, equipmentId: s.equipmentId })),
            );
        }
        ledger.connection.close();
        await procs.get('peer')?.stop();
        const verified = await verifyLedger(join(dir, 'peer', 'ledger')).then(
            (r) => r.ok,
            () => false,
        );
        return {
            sessions,
            cells,
            lostPaidCertificates,
            acknowledged: acknowledged.length,
            lostAcknowledged: missing.length,
            missingAcknowledged: missing,
            unfinished,
            ledgerVerified: verified,
            notArmed,
            pendingAtEnd,
            perCell: options.perCell ?? 1,
            restartDelayMs: options.restartDelayMs ?? 300,
            durationMs: Math.round(performance.now() - started),
        };
    } finally {
        await Promise.allSettled([...procs.values()].map((p) => p.stop()));
        // The broker goes down and the scratch directory goes away whatever else fails here (a
        // log write failing had left a mosquitto running).
        try {
            if (options.logDir !== undefined) {
                for (const [i, [name, p]] of serviceProcs.entries())
                    await writeFile(join(options.logDir, `service-${String(i).padStart(3, '0')}-${name}.log`), p.out);
            }
        } finally {
            await broker.close();
            await rm(dir, { recursive: true, force: true });
        }
    }
}
