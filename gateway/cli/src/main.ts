#!/usr/bin/env node
/**
 * `m2m <command>`: demo (what `npm start` runs), device, fog, csp, manufacturer. Configuration by
 * flags, environment and an optional JSON file (--config); see docs/services.md.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '@m2m-fabric/common';
import { ServiceError } from '@m2m-fabric/common';
import { StorageError } from '@m2m-fabric/sdk';
import type { ConsoleAction } from '@m2m-fabric/console';
import type { DemoSummary } from './demo/run.js';
import type { EmbeddedNetwork } from './demo/network.js';

const USAGE = `usage: m2m <command> [options]

commands:
  demo           embedded ledger + IPFS + brokers, one CSP, F fogs, N devices x K sessions
                 --devices N (10) --sessions K (3) --fogs F (2) --batch-timeout S (0.5)
                 --data-dir DIR (.data/demo) --json
                 --console-port P (0: any free port) --console-host H (127.0.0.1) --no-console
                 --console-enable register,decommission,grantCredit
                 (with the console on, the demo keeps serving it after the sessions until Ctrl-C)
  console        the operator console in the browser over FABRIC_CONNECTION (m2m peer or Fabric)
                 --scenario spinning: paper 000's cotton-spinning line (machines as device agents,
                 9-step record queries, material transformations, trace and recall; .data/spinning)
  serve          the embedded network kept running, with device state files for "m2m device"
  peer           the embedded ledger as Fabric peers (Gateway endpoints + FABRIC_CONNECTION files)
  device         run a device agent against its fog's broker (as on a Raspberry Pi)
                 device query <target> --since ISO --until ISO: paper 000's 9-step record query
  fog            run a fog gateway service
  csp            run the CSP backend service; csp instruct|instructions|telemetry talk to its data
  manufacturer   register/replace/decommission equipment, buy sessions, list, history
  material       material lots, transformations, backward/forward traces, machine windows, query grants
  storage        export the embedded IPFS store to a CAR file (for ipfs dag import), or import one
  records        verify a communication-record receipt offline; export a channel trust file
Run "m2m <command> --help" for a command's options and environment variables.`;

function positiveInt(name: string, raw: string | undefined, dflt: number, max: number): number {
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > max)
        throw new ConfigError([`--${name} must be an integer in 1..${max}, got ${raw}`]);
    return n;
}

async function demo(argv: string[]): Promise<void> {
    const { values } = parseArgs({
        args: argv,
        options: {
            devices: { type: 'string' },
            sessions: { type: 'string' },
            fogs: { type: 'string' },
            'batch-timeout': { type: 'string' },
            'data-dir': { type: 'string' },
            json: { type: 'boolean', default: false },
            'console-port': { type: 'string' },
            'console-host': { type: 'string' },
            'console-enable': { type: 'string' },
            'no-console': { type: 'boolean', default: false },
            scenario: { type: 'string' },
            help: { type: 'boolean', default: false },
        },
        strict: true,
    });
    if (values.help) {
        console.log(USAGE);
        return;
    }
    if (values.scenario !== undefined && values.scenario !== 'spinning') {
        throw new ConfigError([`--scenario must be spinning, got ${values.scenario}`]);
    }
    const batchSeconds = values['batch-timeout'] === undefined ? 0.5 : Number(values['batch-timeout']);
    if (!Number.isFinite(batchSeconds) || batchSeconds <= 0 || batchSeconds > 60) {
        throw new ConfigError([`--batch-timeout must be seconds in (0, 60], got ${values['batch-timeout']}`]);
    }
    const options = {
        dataDir: values['data-dir'] ?? process.env.M2M_DATA_DIR ?? '.data/demo',
        devices: positiveInt('devices', values.devices, 10, 1000),
        sessions: positiveInt('sessions', values.sessions, 3, 1000),
        fogs: positiveInt('fogs', values.fogs, 2, 32),
        batchTimeoutMs: Math.round(batchSeconds * 1000),
        print: (line: string) => console.log(line),
    };
    if (values.scenario === 'spinning') {
        const { formatSpinningSummary, runSpinning } = await import('./demo/spinning.js');
        const summary = await runSpinning({
            dataDir: values['data-dir'] ?? process.env.M2M_DATA_DIR ?? '.data/spinning',
            batchTimeoutMs: options.batchTimeoutMs,
            print: options.print,
        });
        console.log('--- summary ---');
        console.log(formatSpinningSummary(summary));
        if (values.json) console.log(JSON.stringify(summary));
        if (summary.traced === 0 || summary.queries === 0) process.exitCode = 1;
        return;
    }
    const { formatSummary, runDemo } = await import('./demo/run.js');
    const printSummary = (summary: DemoSummary): void => {
        console.log('--- summary ---');
        console.log(formatSummary(summary));
        if (values.json) console.log(JSON.stringify(summary));
    };
    const consolePort = values['console-port'] === undefined ? 0 : Number(values['console-port']);
    if (!Number.isInteger(consolePort) || consolePort < 0 || consolePort > 65_535)
        throw new ConfigError([`--console-port must be 0..65535, got ${values['console-port']}`]);
    // The console (and with it the ledger's native addon) loads only when it is on.
    const consoleModule = values['no-console'] ? undefined : await import('@m2m-fabric/console');
    const { CONSOLE_ACTIONS = [] } = consoleModule ?? {};
    const actions: ConsoleAction[] = [];
    for (const a of (values['console-enable'] ?? '').split(',').filter((x) => x !== '')) {
        if (!(CONSOLE_ACTIONS as readonly string[]).includes(a))
            throw new ConfigError([`--console-enable: unknown action ${a} (one of ${CONSOLE_ACTIONS.join(', ')})`]);
        actions.push(a as ConsoleAction);
    }
    let printed = false;
    const attach =
        consoleModule === undefined
            ? undefined
            : async (
                  net: EmbeddedNetwork,
              ): Promise<{ hold(s: DemoSummary): Promise<void>; close(): Promise<void> }> => {
                  const served = await consoleModule.startEmbeddedConsole(net, {
                      port: consolePort,
                      host: values['console-host'] ?? '127.0.0.1',
                      actions,
                      organisations: (await import('./demo/network.js')).networkOrganisations(net),
                  });
                  console.log(`console ${served.url} (--no-console to turn it off); log in as:`);
                  for (const l of served.logins) console.log(`  ${l.mspId} (${l.role}): ${l.url}`);
                  return {
                      hold: async (summary) => {
                          printSummary(summary);
                          printed = true;
                          console.log(`console still serving at ${served.url}; Ctrl-C to stop`);
                          await new Promise<void>((resolve) => {
                              process.once('SIGINT', () => resolve());
                              process.once('SIGTERM', () => resolve());
                          });
                      },
                      close: () => served.close(),
                  };
              };
    const summary = await runDemo({ ...options, ...(attach !== undefined ? { attach } : {}) });
    if (!printed) printSummary(summary);
    if (summary.failed > 0 && summary.established === 0) process.exitCode = 1;
}

async function main(): Promise<void> {
    // fabric-contract-api logs every decorator at load time unless told otherwise.
    process.env.CORE_CHAINCODE_LOGGING_LEVEL ??= 'ERROR';
    const [command, ...rest] = process.argv.slice(2);
    switch (command) {
        case 'demo':
            return demo(rest);
        // Each command loads only its own modules: `m2m device` on a Raspberry Pi never loads the
        // ledger (LevelDB addon), the object store or the broker.
        case 'serve':
            return (await import('./services.js')).runServe(rest);
        case 'peer':
            return (await import('./peer.js')).runPeer(rest);
        case 'device':
            return (await import('@m2m-fabric/device')).runDevice(rest);
        case 'fog':
            return (await import('./services.js')).runFog(rest);
        case 'csp':
            return (await import('./services.js')).runCsp(rest);
        case 'manufacturer':
            return (await import('./services.js')).runManufacturer(rest);
        case 'console':
            return (await import('@m2m-fabric/console')).runConsole(rest);
        case 'storage':
            return (await import('./storage.js')).runStorage(rest);
        case 'records':
            return (await import('./records.js')).runRecords(rest);
        case 'material':
            return (await import('./material.js')).runMaterial(rest);
        case undefined:
        case '--help':
        case 'help':
            console.log(USAGE);
            return;
        default:
            console.error(`unknown command ${command}\n\n${USAGE}`);
            process.exitCode = 2;
    }
}

main().catch((err: unknown) => {
    if (err instanceof ConfigError) console.error(err.message);
    else if (err instanceof ServiceError) console.error(`error ${err.message}`);
    else if (err instanceof StorageError) console.error(`error ${err.name}: ${err.message}`);
    // node:util parseArgs: an unknown option or a missing option value.
    else if (err instanceof Error && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS'))
        console.error(`${err.message}\nRun "m2m <command> --help" for the options.`);
    // Configuration problems of the Fabric adapter (not imported here: `m2m device` never loads it).
    else if (err instanceof Error && err.name === 'FabricConfigError') console.error(err.message);
    else console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exitCode = 1;
});
