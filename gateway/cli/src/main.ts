#!/usr/bin/env node
/**
 * `m2m <command>`: demo (what `npm start` runs), device, fog, csp, manufacturer. Configuration by
 * flags, environment and an optional JSON file (--config); see docs/services.md.
 */
import { ConfigError } from '@m2m-fabric/common';
import { ServiceError } from '@m2m-fabric/common';
import { StorageError } from '@m2m-fabric/sdk';

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
  records        verify a communication-record receipt offline; export a channel trust file; share one record with an auditor
Run "m2m <command> --help" for a command's options and environment variables.`;

async function main(): Promise<void> {
    // fabric-contract-api logs every decorator at load time unless told otherwise.
    process.env.CORE_CHAINCODE_LOGGING_LEVEL ??= 'ERROR';
    const [command, ...rest] = process.argv.slice(2);
    switch (command) {
        case 'demo':
            return (await import('./demo/command.js')).runDemoCommand(rest, USAGE);
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
