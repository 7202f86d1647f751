/**
 * The deployment of issue 6 as separate processes, configured only by files, environment and
 * flags: `m2m peer` (the embedded ledger behind Fabric Gateway endpoints, reached through the real
 * Fabric client code path with FABRIC_CONNECTION files), mosquitto as the external broker, `m2m csp`
 * and `m2m fog` services, the manufacturer's and CSP operator's commands, and `m2m device`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TopicLayout } from '@m2m-fabric/common';
import { MosquittoBroker, freePort, mosquittoSkipReason } from './helpers/mosquitto.js';
import { CliProcess, runCli } from './helpers/process.js';
import { tempDir } from './helpers/temp-dir.js';

void test(
    'separate processes: m2m peer (Fabric Gateway), mosquitto, m2m csp, m2m fog, manufacturer, m2m device',
    { skip: mosquittoSkipReason },
    async (t) => {
        const dir = await tempDir('m2m-processes-');
        const passwords = { 'fog-1': 'fog-1-pw', csp: 'csp-pw' };
        const broker = await MosquittoBroker.start(
            new TopicLayout(),
            ['fog-1'],
            Object.entries(passwords).map(([username, password]) => ({ username, password })),
        );
        t.after(() => broker.close());
        const procs: CliProcess[] = [];
        t.after(() => Promise.all(procs.map((p) => p.stop())));
        const start = (args: string[], env: NodeJS.ProcessEnv = {}): CliProcess => {
            const p = CliProcess.start(args, env);
            procs.push(p);
            return p;
        };

        const peer = start(['peer', '--data-dir', join(dir, 'peer'), '--base-port', '0', '--batch-timeout', '0.1']);
        const connection = async (name: string): Promise<string> =>
            (await peer.waitFor(new RegExp(`connection ${name}: FABRIC_CONNECTION=(\\S+)`)))[1]!;
        const shared = { M2M_STORE_DIR: join(dir, 'objects'), M2M_LOG_LEVEL: 'info' };
        const cspEnv = { ...shared, FABRIC_CONNECTION: await connection('csp') };
        const fogEnv = { ...shared, FABRIC_CONNECTION: await connection('foga') };
        const manEnv = { ...shared, FABRIC_CONNECTION: await connection('manufacturer') };
        const cspDir = join(dir, 'csp');
        const csp = start(
            // The CSP starts first and creates the shared object store; the fog and the manufacturer
            // open it (without --init-store they refuse a directory that holds no store).
            ['csp', '--data.dir', cspDir, '--init-store', '--mqtt.url', broker.url, '--mqtt.password', passwords.csp],
            cspEnv,
        );
        await csp.waitFor(/CSP backend running/);
        const metricsPort = await freePort();
        const fog = start(
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
                '--metrics.port',
                String(metricsPort),
                // Relay records on: the fog opens its batcher and reads its writer head over Fabric Gateway.
                '--records.enabled',
            ],
            fogEnv,
        );
        await fog.waitFor(/fog gateway running/, 60_000); // registers, then waits for the CSP's approval
        assert.ok(existsSync(join(dir, 'fog', 'records', 'journal.log')), "the fog's relay-record journal");

        const ok = async (args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> => {
            const r = await runCli(args, 60_000, env);
            assert.equal(r.code, 0, `m2m ${args.join(' ')}:\n${r.out}`);
            return r.out;
        };
        assert.match(
            await ok(['csp', 'grant-credit', '--account', 'ManufacturerMSP', '--amount', '2'], cspEnv),
            /"balance":2/,
        );
        const man = ['--data-dir', join(dir, 'manufacturer')];
        await ok(['manufacturer', 'register', 'pi-0001', '--fog', 'fog-1', ...man], manEnv);
        assert.match(await ok(['manufacturer', 'buy', 'pi-0001', '--n', '2', ...man], manEnv), /"firstCounter": "1"/);
        const state = join(dir, 'pi-0001.json');
        const provision = ['provision', 'pi-0001', '--fog', 'fog-1', '--state', state, '--broker-url', broker.url];
        await ok(['manufacturer', ...provision, ...man], manEnv);
        assert.match(await ok(['manufacturer', 'list', ...man], manEnv), /"equipmentId": "pi-0001"/);

        const device = await ok([
            'device',
            '--device.state',
            state,
            '--sessions',
            '1',
            '--uploads',
            '2',
            '--interval.ms',
            '0',
        ]);
        assert.match(device, /session counter 1 established/);
        assert.match(device, /telemetry frame 1 acknowledged by the CSP/);
        assert.equal(
            (await ok(['csp', 'telemetry', '--data.dir', cspDir, '--equipment', 'pi-0001'])).trim().split('\n').length,
            2,
        );

        // An instruction for the device while it is offline, delivered when it next connects.
        await ok(['csp', 'instruct', '--data.dir', cspDir, '--equipment', 'pi-0001', '--payload', '{"setpoint":19}']);
        const listen = await ok(['device', '--device.state', state, '--sessions', '0', '--listen.ms', '3000']);
        assert.match(listen, /instruction: \{"setpoint":19\}/);
        assert.match(await ok(['csp', 'instructions', '--data.dir', cspDir]), /"pending": \[\]/);

        // The fog's /metrics and /healthz, as an operator scrapes them.
        const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        assert.match(metrics, /m2m_fog_sessions_total\{code="",outcome="established"\} 1/);
        assert.match(metrics, /m2m_fog_outbox_depth 0/);
        assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status, 200);
    },
);
