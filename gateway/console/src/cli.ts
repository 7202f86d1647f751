/**
 * `m2m console`: the console against a ledger reached through a Fabric Gateway connection
 * (FABRIC_CONNECTION or FABRIC_* settings: a real Fabric network or `m2m peer`), under that
 * connection's identity, with the services' metrics endpoints given by --metrics. `npm start`
 * serves the console over its embedded network instead (embedded.ts).
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { getSuite } from '@m2m-fabric/protocol';
import { ChaincodeClient, parseChannelTrust } from '@m2m-fabric/sdk';
import { ConfigError } from '@m2m-fabric/common';
import { connectFabric, loadFabricConfig } from '@m2m-fabric/sdk';
import { ManufacturerClient } from '@m2m-fabric/services';
import { openObjectStore, storageConfigFromEnv } from '@m2m-fabric/sdk';
import { ActivityFeed } from './activity-feed.js';
import { qsccBlockSource } from './block-source.js';
import { CONSOLE_ACTIONS, type ConsoleAction, type ConsoleRole } from './identity.js';
import { httpSource, type MetricsSource } from './metrics-source.js';
import { startConsole } from './server.js';

export const CONSOLE_USAGE = `m2m console [options]   (ledger: FABRIC_CONNECTION=file or FABRIC_* variables)
  --role csp|fog|manufacturer   the connection identity's role (its m2m.role attribute)
  --metrics NAME=URL            a service's metrics endpoint, e.g. fog-1=http://127.0.0.1:9465 (repeatable;
                                NAME starting with "csp" is the CSP backend, anything else a fog)
  --manufacturer-data DIR       the manufacturer's data directory (per-device certificate counts, actions)
  --enable ACTIONS              comma-separated: register,decommission (manufacturer), grantCredit (CSP)
  --trust FILE                  the channel trust file (m2m records trust): receipt verification in the records view
  --records WRITER=DIR          a writer's batcher journal (csp or fog:<id>) this identity's org owns (repeatable)
  --host H (127.0.0.1)  --port P (8080)  --state FILE (.data/console/feed.json)`;

/**
 * Runs `m2m console` until SIGINT/SIGTERM.
 * @throws {ConfigError}
 */
export async function runConsole(argv: string[]): Promise<void> {
    const { values } = parseArgs({
        args: argv,
        options: {
            role: { type: 'string' },
            metrics: { type: 'string', multiple: true },
            'manufacturer-data': { type: 'string' },
            enable: { type: 'string' },
            host: { type: 'string' },
            port: { type: 'string' },
            state: { type: 'string' },
            trust: { type: 'string' },
            records: { type: 'string', multiple: true },
            suite: { type: 'string' },
            help: { type: 'boolean' },
        },
        strict: true,
    });
    if (values.help === true) {
        console.log(CONSOLE_USAGE);
        return;
    }
    const problems: string[] = [];
    const role = (values.role ?? 'csp') as ConsoleRole;
    if (!['csp', 'fog', 'manufacturer'].includes(role)) problems.push(`--role must be csp, fog or manufacturer`);
    const port = Number(values.port ?? 8080);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) problems.push(`--port must be 0..65535`);
    const actions = (values.enable ?? '')
        .split(',')
        .filter((a) => a !== '')
        .map((a) => {
            if (!(CONSOLE_ACTIONS as readonly string[]).includes(a))
                problems.push(`--enable: unknown action ${a} (one of ${CONSOLE_ACTIONS.join(', ')})`);
            return a as ConsoleAction;
        });
    const services: MetricsSource[] = [];
    for (const m of values.metrics ?? []) {
        const eq = m.indexOf('=');
        if (eq < 1) {
            problems.push(`--metrics ${m}: expected NAME=URL`);
            continue;
        }
        const name = m.slice(0, eq);
        services.push(httpSource(name, name.startsWith('csp') ? 'csp' : 'fog', m.slice(eq + 1)));
    }
    const recordLogs: { writer: string; dir: string }[] = [];
    for (const r of values.records ?? []) {
        const eq = r.indexOf('=');
        if (eq < 1) problems.push(`--records ${r}: expected WRITER=DIR`);
        else recordLogs.push({ writer: r.slice(0, eq), dir: r.slice(eq + 1) });
    }
    if (problems.length > 0) throw new ConfigError(problems);
    const suite = getSuite(values.suite ?? 'P256-SHA256');
    const config = loadFabricConfig({ file: process.env.FABRIC_CONNECTION || undefined });
    const connection = await connectFabric(config);
    const client = new ChaincodeClient(connection, config.chaincodeName);
    const dataDir = values['manufacturer-data'];
    const store =
        dataDir === undefined
            ? undefined
            : await openObjectStore(storageConfigFromEnv(process.env, `${dataDir}/objects`));
    const manufacturer =
        role === 'manufacturer' && dataDir !== undefined && store !== undefined
            ? { client: new ManufacturerClient({ suite, ledger: client, store, dataDir }), dataDir }
            : undefined;
    const blocks = qsccBlockSource(connection);
    const feed = await ActivityFeed.start({
        connection,
        chaincodeName: config.chaincodeName,
        blocks,
        statePath: values.state ?? '.data/console/feed.json',
    });
    const server = await startConsole({
        identities: [
            { mspId: config.mspId, role, client, actions, ...(manufacturer !== undefined ? { manufacturer } : {}) },
        ],
        feed,
        blocks,
        services,
        suite,
        chaincodeName: config.chaincodeName,
        records: {
            ...(values.trust !== undefined ? { trust: parseChannelTrust(await readFile(values.trust, 'utf8')) } : {}),
            logs: recordLogs.map((l) => ({ ...l, mspId: config.mspId })),
        },
        host: values.host ?? '127.0.0.1',
        port,
    });
    console.log(`console ${server.url} as ${config.mspId} (${role}); open: ${server.logins[0]!.url}`);
    await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
    });
    await server.close();
    await feed.close();
    await store?.close();
    connection.close();
}
