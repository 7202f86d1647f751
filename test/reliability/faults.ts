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
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createM1, decodePoint, decodeScalar, encodePoint, fromHex, getSuite, toHex } from '@m2m-fabric/protocol';
import { FAULT_STEPS, TopicLayout, type FaultStep } from '@m2m-fabric/common';
import { readDeviceState } from '@m2m-fabric/device';
import { ChaincodeClient, connectFabric, loadFabricConfig } from '@m2m-fabric/sdk';
import { verifyLedger } from '@m2m-fabric/embedded-ledger';
import { MosquittoBroker, MOSQUITTO, freePort } from '../services/helpers/mosquitto.js';
import { CliProcess, runCli } from '../services/helpers/process.js';

export type Victim = 'device' | 'fog' | 'csp' | 'broker' | 'peer';
export const VICTIMS: Victim[] = ['device', 'fog', 'csp', 'broker', 'peer'];

/** Which process reaches each step, so the kill point is armed there. */
export const FAULT_HOOKS: Partial<Record<FaultStep, 'device' | 'fog' | 'csp'>> = {
    M1: 'device',
    M3: 'device',
    Confirm: 'device',
};

export interface CellResult {
    victim: Victim;
    step: FaultStep;
    killed: boolean;
    /** First run's outcome: `established`, a typed error code, or `killed`. */
    first: string;
    retries: number;
    recovered: boolean;
}

export interface FaultResult {
    sessions: number;
    cells: CellResult[];
    lostPaidCertificates: number;
    lostAcknowledged: number;
    unfinished: number;
    ledgerVerified: boolean;
    notArmed: string[];
    durationMs: number;
}

const ESTABLISHED = /session counter (\d+) established/g;
const ACKED = /telemetry frame \d+ acknowledged by the CSP/g;

export async function runFaultMatrix(options: { sessions: number; devices?: number }): Promise<FaultResult> {
    if (MOSQUITTO === undefined) throw new Error('mosquitto not installed (apt-get install mosquitto)');
    const started = performance.now();
    const dir = await mkdtemp(join(tmpdir(), 'm2m-faults-'));
    const layout = new TopicLayout();
    const passwords = { 'fog-1': 'fog-1-pw', csp: 'csp-pw' };
    const broker = await MosquittoBroker.start(
        layout,
        ['fog-1'],
        Object.entries(passwords).map(([username, password]) => ({ username, password })),
    );
    const procs = new Map<string, CliProcess>();
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
    const conn = (name: string): string => join(dir, 'peer', 'connection', `${name}.env`);
    const cspEnv = { ...shared, FABRIC_CONNECTION: conn('csp') };
    const fogEnv = { ...shared, FABRIC_CONNECTION: conn('foga') };
    const manEnv = { ...shared, FABRIC_CONNECTION: conn('manufacturer') };
    const startPeer = async (): Promise<void> => {
        const p = CliProcess.start(peerArgs);
        procs.set('peer', p);
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
        const p = CliProcess.start(init ? [...args, '--init-store'] : args, { ...cspEnv, ...env });
        procs.set('csp', p);
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
            { ...fogEnv, ...env },
        );
        procs.set('fog', p);
        await p.waitFor(/fog gateway running/, 60_000);
    };
    const alive = (name: string): boolean => {
        const p = procs.get(name);
        return p !== undefined && p.child.exitCode === null && p.child.signalCode === null;
    };
    const pidOf = (victim: Victim): number | undefined =>
        victim === 'broker'
            ? (broker as unknown as { child?: { pid?: number } }).child?.pid
            : procs.get(victim)?.child.pid;
    const restartDead = async (): Promise<void> => {
        if (!alive('peer')) {
            await startPeer();
            // The services reconnect to the peer on their own (same ports, same TLS material).
        }
        const handle = broker as unknown as { child?: { exitCode: number | null; signalCode: string | null } };
        // Killed by a signal from another process: exitCode stays null and signalCode is set. The
        // helper's stop() waits for an exit it already missed, so forget the dead child first.
        if (handle.child !== undefined && (handle.child.exitCode !== null || handle.child.signalCode !== null))
            handle.child = undefined;
        if (handle.child === undefined) await broker.restart();
        if (!alive('csp')) await startCsp();
        if (!alive('fog')) await startFog();
    };
    const ok = async (args: string[], env: NodeJS.ProcessEnv): Promise<string> => {
        const r = await runCli(args, 120_000, env);
        if (r.code !== 0) throw new Error(`m2m ${args.join(' ')}:\n${r.out}`);
        return r.out;
    };

    const cells: CellResult[] = [];
    const notArmed: string[] = [];
    let sessions = 0;
    let acknowledged = 0;
    let unfinished = 0;
    const devices = options.devices ?? 4;
    const perDevice = Math.ceil(options.sessions / devices) + 40;
    const states: string[] = [];
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
        }
        /** One device run; returns its output (sessions and acknowledgements are counted). */
        const device = async (state: string, n: number, env: NodeJS.ProcessEnv = {}): Promise<string> => {
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
            );
            sessions += [...r.out.matchAll(ESTABLISHED)].length;
            acknowledged += [...r.out.matchAll(ACKED)].length;
            // A run ends established, with a typed error (`<code>: ...`), or killed by its kill point.
            const typed =
                /^(error )?[A-Za-z]+Error: [a-zA-Z-]+: |^[a-zA-Z-]+: /m.test(r.out) || /fault point/.test(r.out);
            if (r.code !== 0 && !typed) unfinished++;
            return r.out;
        };

        const steps = Object.keys(FAULT_HOOKS) as FaultStep[];
        let cellIndex = 0;
        for (const victim of VICTIMS) {
            for (const step of FAULT_STEPS) {
                if (!steps.includes(step)) {
                    notArmed.push(`${victim}@${step}`);
                    continue;
                }
                const state = states[cellIndex++ % states.length]!;
                const pid = victim === 'device' ? undefined : pidOf(victim);
                if (pid !== undefined) await writeFile(pidFile, String(pid));
                const spec = victim === 'device' ? `${step}:1` : `${step}:1:@${pidFile}`;
                const out = await device(state, 1, { M2M_FAULT_KILL_AT: spec });
                const killed = /fault point/.test(out);
                const first = /session counter \d+ established/.test(out)
                    ? 'established'
                    : killed && victim === 'device'
                      ? 'killed'
                      : (/([a-zA-Z-]+): /.exec(out.split('\n').find((l) => /error|Error/.test(l)) ?? '')?.[1] ??
                        'failed');
                await new Promise((r) => setTimeout(r, 300));
                await restartDead();
                let retries = 0;
                let recovered = first === 'established';
                while (!recovered && retries < 5) {
                    retries++;
                    const again = await device(state, 1);
                    recovered = /session counter \d+ established/.test(again);
                    if (!recovered) {
                        await new Promise((r) => setTimeout(r, 1_000));
                        await restartDead();
                    }
                }
                cells.push({ victim, step, killed, first, retries, recovered });
                process.stderr.write(
                    `[faults] ${victim}@${step}: killed ${killed}, first ${first}, retries ${retries}, recovered ${recovered} (${sessions} sessions so far)\n`,
                );
            }
        }
        // Fill up to the target with sessions without faults.
        while (sessions < options.sessions) {
            const before = sessions;
            await Promise.all(
                states.map((s) => device(s, Math.min(25, Math.ceil((options.sessions - sessions) / devices)))),
            );
            if (sessions === before) break;
        }

        // Every spent counter: its certificate must be used (a session ran) — or it is lost.
        const config = loadFabricConfig({ file: conn('csp') });
        const ledger = new ChaincodeClient(await connectFabric(config), config.chaincodeName);
        let lostPaidCertificates = 0;
        let stored = 0;
        for (const path of states) {
            const s = (await readDeviceState(path))!;
            const suite = getSuite(s.suite);
            const secrets = { w: decodeScalar(suite, fromHex(s.w)), equipmentId: s.equipmentId };
            const Qf = decodePoint(suite, fromHex(s.fog.publicKey));
            const Qc = decodePoint(suite, fromHex(s.cspPublicKey));
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
            stored += tel.out.trim() === '' ? 0 : tel.out.trim().split('\n').length;
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
            lostAcknowledged: Math.max(0, acknowledged - stored),
            unfinished,
            ledgerVerified: verified,
            notArmed,
            durationMs: Math.round(performance.now() - started),
        };
    } finally {
        await Promise.allSettled([...procs.values()].map((p) => p.stop()));
        await broker.close();
        await rm(dir, { recursive: true, force: true });
    }
}
