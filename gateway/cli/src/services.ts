/**
 * The service commands. Each reads a JSON config file (--config), the environment and flags,
 * validated with clear messages (config/config.ts):
 *
 *   m2m serve         the embedded network kept running: CSP + fogs with their brokers on fixed
 *                     ports and /metrics endpoints; provisions device state files for `m2m device`
 *   (m2m device       is cli/device.ts: it loads only what a Raspberry Pi needs)
 *   m2m fog | csp     a fog gateway / the CSP backend against a real Fabric network (FABRIC_*),
 *                     Kubo (IPFS_API_URL) or the embedded store, and an external or embedded broker
 *   m2m manufacturer  equipment and session purchases against a real Fabric network
 */
import { join } from 'node:path';
import { readdir, readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ALL_SUITES, fogWriter, getSuite, MAX_CSP_KEY_OVERLAP_SECONDS, type Suite } from '@m2m-fabric/protocol';
import { ConfigError, loadConfig, type ConfigSchema } from '@m2m-fabric/common';
import { ANCHORS_CONTRACT, ChaincodeClient, type EquipmentSpec } from '@m2m-fabric/sdk';
import { CspCaKeys, cspCaKeyPath, loadOrCreateServiceKey, readServiceKey, rotateCspCaKey } from '@m2m-fabric/services';
import { CspBackend, RecordBatcher, type TelemetryRecord } from '@m2m-fabric/services';
import { spoolDirFor, spoolInstruction, type QueuedInstruction } from '@m2m-fabric/services';
import { DurableMap } from '@m2m-fabric/services';
import { FogGateway } from '@m2m-fabric/services';
import { ManufacturerClient } from '@m2m-fabric/services';
import { EmbeddedNetwork, MANUFACTURER_MSP } from './demo/network.js';
import { brokerHealthChecks, startMetricsServer } from '@m2m-fabric/services';
import { setConnectionLogger } from '@m2m-fabric/common';
import { TopicLayout } from '@m2m-fabric/common';
import { createLogger, type LogLevel } from '@m2m-fabric/common';
import { openObjectStore, storageConfigFromEnv, type StorageConfig } from '@m2m-fabric/sdk';
import { connectFabric, loadFabricConfig } from '@m2m-fabric/sdk';
import {
    CSP_SCHEMA,
    FOG_SCHEMA,
    INIT_STORE_SCHEMA,
    MANUFACTURER_SCHEMA,
    SERVE_SCHEMA,
    settingsHelp,
} from './settings.js';

export function flags(
    argv: string[],
    extra: Record<string, { type: 'string' | 'boolean' }> = {},
): {
    values: Record<string, string | boolean | undefined>;
    positionals: string[];
} {
    const { values, positionals } = parseArgs({
        args: argv,
        options: { config: { type: 'string' }, help: { type: 'boolean' }, ...extra },
        allowPositionals: true,
        strict: true,
    });
    return { values: values, positionals };
}

/** Flags named like config keys (`--mqtt.url x`) become overrides. */
export function overridesFrom(values: Record<string, unknown>, schema: ConfigSchema): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(schema)) if (values[key] !== undefined) out[key] = values[key];
    return out;
}

/** A flag per key: `--key value`, or `--key` alone for a boolean. */
export function schemaFlags(schema: ConfigSchema): Record<string, { type: 'string' | 'boolean' }> {
    return Object.fromEntries(
        Object.entries(schema).map(([k, spec]) => [k, { type: spec.type === 'boolean' ? 'boolean' : 'string' }]),
    );
}

/** An integer flag in [min, max]; a problem is collected (or thrown when `throwNow`) otherwise. */
function integerFlag(
    values: Record<string, string | boolean | undefined>,
    name: string,
    dflt: number,
    min: number,
    max: number,
    problems: string[],
    throwNow = false,
): number {
    const raw = values[name];
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (typeof raw === 'string' && /^\d+$/.test(raw) && Number.isInteger(n) && n >= min && n <= max) return n;
    const problem = `--${name} must be an integer in ${min}..${max}, got ${String(raw)}`;
    if (throwNow) throw new ConfigError([problem]);
    problems.push(problem);
    return dflt;
}

const INIT_STORE_FLAG = schemaFlags(INIT_STORE_SCHEMA);

/**
 * The object store a service opens: the configured one, created only when asked (`--init-store`);
 * otherwise a missing embedded store is refused (StoreNotInitialisedError), so a mistyped
 * M2M_STORE_DIR cannot silently start the service on an empty store.
 */
export function serviceStorageConfig(
    values: Record<string, string | boolean | undefined>,
    dataDir: string,
    env: NodeJS.ProcessEnv = process.env,
): StorageConfig {
    const config = storageConfigFromEnv(env, dataDir);
    const initEnv = env[INIT_STORE_SCHEMA['init-store'].env];
    const init = values['init-store'] === true || initEnv === '1' || initEnv === 'true';
    return config.backend === 'embedded' ? { ...config, create: init } : config;
}

async function waitForSignal(): Promise<void> {
    await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
    });
}

// ---- fog / csp ----

export async function fabricClient(): Promise<ChaincodeClient> {
    const config = loadFabricConfig({ file: process.env.FABRIC_CONNECTION || undefined });
    const connection = await connectFabric(config);
    return new ChaincodeClient(connection, config.chaincodeName);
}

export async function runFog(argv: string[]): Promise<void> {
    const { values } = flags(argv, { ...schemaFlags(FOG_SCHEMA), ...INIT_STORE_FLAG });
    if (values.help === true) {
        console.log(`m2m fog [--config file] [--init-store] [--<key> value ...]\n${settingsHelp('fog')}`);
        return;
    }
    const c = loadConfig(FOG_SCHEMA, {
        file: values.config as string | undefined,
        overrides: overridesFrom(values, FOG_SCHEMA),
    });
    const suite = getSuite(c.suite);
    const log = createLogger('fog', c['log.level'] as LogLevel);
    setConnectionLogger(log.child('mqtt'));
    // The store first: a missing one stops the fog before it creates a key or contacts the ledger.
    const store = await openObjectStore(serviceStorageConfig(values, c['data.dir']));
    const key = await loadOrCreateServiceKey(join(c['data.dir'], 'keys', `${c['fog.id']}.json`), suite);
    const fabric = loadFabricConfig({ file: process.env.FABRIC_CONNECTION || undefined });
    const ledger = new ChaincodeClient(await connectFabric(fabric), fabric.chaincodeName);
    // Relay records: journaled in the fog's data directory, anchored as fog:<id> through its own identity.
    const records = c['records.enabled']
        ? await RecordBatcher.open({
              dir: join(c['data.dir'], 'records'),
              writer: { suite, writer: fogWriter(c['fog.id']), secretKey: key.privateKey },
              anchors: ledger.connection.getContract(fabric.chaincodeName, ANCHORS_CONTRACT),
              store,
              batchSize: c['records.batchSize'],
              maxDelayMs: c['records.maxDelayMs'],
          })
        : undefined;
    const fog = new FogGateway({
        fogId: c['fog.id'],
        key,
        ledger,
        store,
        ...(records !== undefined ? { records } : {}),
        dataDir: c['data.dir'],
        ...(c['mqtt.url'] !== undefined ? { deviceBrokerUrl: c['mqtt.url'] } : { deviceBrokerPort: c['mqtt.port'] }),
        ...(c['mqtt.password'] !== undefined ? { brokerPassword: c['mqtt.password'] } : {}),
        cspBrokerUrl: c['csp.url'],
        ...(c['csp.password'] !== undefined ? { cspBrokerPassword: c['csp.password'] } : {}),
        topics: new TopicLayout(c['topics.prefix']),
        logger: log,
        ...(c['limits.ledgerReadsPerSecond'] === undefined
            ? {}
            : {
                  ledgerReadLimit: {
                      ratePerSecond: c['limits.ledgerReadsPerSecond'],
                      burst: 2 * c['limits.ledgerReadsPerSecond'],
                  },
              }),
    });
    await fog.start();
    const metrics =
        c['metrics.port'] > 0
            ? await startMetricsServer(
                  fog.metrics,
                  () => ({ outbox: fog.outboxDepth < 10_000, cspLink: fog.cspLinkConnected, ...brokerHealthChecks() }),
                  c['metrics.port'],
              )
            : undefined;
    log.info('fog gateway running', { fogId: fog.fogId, devices: fog.deviceBrokerUrl, metrics: metrics?.url });
    await waitForSignal();
    await metrics?.close();
    await fog.close();
    await records?.close();
}

const CSP_USAGE = `m2m csp [--config file] [--init-store] ...
                                         run the CSP backend (ledger: FABRIC_* / FABRIC_CONNECTION; IPFS: IPFS_API_URL);
                                         --init-store creates the embedded object store if there is none
m2m csp instruct (--equipment ID | --route HEX) (--payload TEXT | --payload-file F) [--data.dir D]
                                         queue an instruction for a device: durable in D when the command
                                         returns; the CSP (running now or started later) delivers it in
                                         order when the device's session channel is next available
m2m csp instructions [--data.dir D]       instructions not yet acknowledged by their device
m2m csp telemetry [--equipment ID] [--route HEX] [--limit N] [--data.dir D]
                                         telemetry received (read-only; safe while the CSP runs)
m2m csp grant-credit --account MSPID --amount N
                                         prepaid session credit for a manufacturer (ledger: FABRIC_*)
m2m csp rotate-key --overlap SECONDS [--new-suite SUITE] [--data.dir D]
                                         rotate the CA key: a new key file D/keys/csp-ca-<k>.json, the
                                         rotation signed by the current and the new key, on the ledger;
                                         certificates under the current key work SECONDS longer (a
                                         running CSP loads the new key from its CspKeyRotated event).
                                         --new-suite moves the CA to another suite (e.g. P384-SHA384):
                                         new purchases are in it; fogs add a key of it on their own`;

const CSP_ACTION_FLAGS = {
    equipment: { type: 'string' },
    route: { type: 'string' },
    payload: { type: 'string' },
    'payload-file': { type: 'string' },
    limit: { type: 'string' },
    account: { type: 'string' },
    amount: { type: 'string' },
    overlap: { type: 'string' },
    'new-suite': { type: 'string' },
} as const;

async function cspAction(
    action: string,
    dataDir: string,
    v: Record<string, string | boolean | undefined>,
): Promise<void> {
    const equipment = v.equipment as string | undefined;
    const route = v.route as string | undefined;
    if (equipment !== undefined && route !== undefined)
        throw new ConfigError(['give --equipment or --route, not both']);
    if (route !== undefined && !/^[0-9a-f]{2,}$/.test(route))
        throw new ConfigError([`--route must be lowercase hex, got ${route}`]);
    const target =
        equipment !== undefined ? { equipmentId: equipment } : route !== undefined ? { routeId: route } : undefined;
    switch (action) {
        case 'instruct': {
            if (target === undefined) throw new ConfigError(['instruct needs --equipment ID or --route HEX']);
            const text = v.payload as string | undefined;
            const file = v['payload-file'] as string | undefined;
            if ((text === undefined) === (file === undefined))
                throw new ConfigError(['instruct needs exactly one of --payload TEXT and --payload-file F']);
            const payload = file !== undefined ? new Uint8Array(await readFile(file)) : new TextEncoder().encode(text);
            if (payload.length > 8 * 1024)
                throw new ConfigError([`the instruction is ${payload.length} bytes; at most 8192 fit in one frame`]);
            const path = await spoolInstruction(dataDir, target, payload);
            console.log(JSON.stringify({ queued: path, bytes: payload.length }));
            return;
        }
        case 'instructions': {
            const m = DurableMap.readSnapshot<QueuedInstruction>(join(dataDir, 'csp-instructions.jsonl'));
            const spooled = await readdir(spoolDirFor(dataDir)).catch(() => [] as string[]);
            const pending = [...(m?.entries() ?? [])]
                .filter(([k]) => k.startsWith('i:'))
                .map(([, i]) => ({
                    id: i.id,
                    target: i.target,
                    queuedAt: new Date(i.queuedAt).toISOString(),
                    sent: i.sent,
                }));
            console.log(
                JSON.stringify({ pending, spooled: spooled.filter((n) => n.startsWith('instr-')).length }, null, 2),
            );
            return;
        }
        case 'telemetry': {
            const m = DurableMap.readSnapshot<TelemetryRecord>(join(dataDir, 'csp-telemetry.jsonl'));
            const limit = v.limit === undefined ? undefined : Number(v.limit);
            if (limit !== undefined && (!Number.isInteger(limit) || limit < 1))
                throw new ConfigError([`--limit must be a positive integer, got ${String(v.limit)}`]);
            const rows = [...(m?.values() ?? [])].filter(
                (r) =>
                    (equipment === undefined || r.equipmentId === equipment) &&
                    (route === undefined || r.routeId === route),
            );
            for (const r of limit === undefined ? rows : rows.slice(-limit)) console.log(JSON.stringify(r));
            return;
        }
        default:
            throw new ConfigError([`unknown csp action ${action}\n${CSP_USAGE}`]);
    }
}

export async function runCsp(argv: string[]): Promise<void> {
    const { values, positionals } = flags(argv, {
        ...schemaFlags(CSP_SCHEMA),
        ...CSP_ACTION_FLAGS,
        ...INIT_STORE_FLAG,
    });
    if (values.help === true) {
        console.log(`${CSP_USAGE}\n${settingsHelp('csp')}`);
        return;
    }
    const c = loadConfig(CSP_SCHEMA, {
        file: values.config as string | undefined,
        overrides: overridesFrom(values, CSP_SCHEMA),
    });
    const action = positionals[0];
    if (action === 'grant-credit') {
        const account = values.account as string | undefined;
        const amount = Number(values.amount);
        const problems = [
            ...(account === undefined || account === '' ? ['grant-credit needs --account MSPID'] : []),
            ...(!Number.isInteger(amount) || amount < 1
                ? [`--amount must be a positive integer, got ${String(values.amount)}`]
                : []),
        ];
        if (problems.length > 0) throw new ConfigError(problems);
        const ledger = await fabricClient();
        try {
            console.log(JSON.stringify(await ledger.grantCredit(account!, amount)));
        } finally {
            ledger.connection.close();
        }
        return;
    }
    if (action === 'rotate-key') {
        const overlap = Number(values.overlap);
        if (
            values.overlap === undefined ||
            !Number.isInteger(overlap) ||
            overlap < 0 ||
            overlap > MAX_CSP_KEY_OVERLAP_SECONDS
        )
            throw new ConfigError([
                `rotate-key needs --overlap SECONDS, an integer in [0, ${MAX_CSP_KEY_OVERLAP_SECONDS}], got ${String(values.overlap)}`,
            ]);
        const suite = getSuite(c.suite);
        const identityPath = join(c['data.dir'], 'keys', 'csp.json');
        const identity = await readServiceKey(identityPath, suite);
        if (identity === undefined) throw new ConfigError([`no CSP key file ${identityPath}: run the CSP first`]);
        const keyFile = (keyId: number): string => cspCaKeyPath(c['data.dir'], keyId);
        const newSuiteId = values['new-suite'];
        let newSuite: Suite | undefined;
        try {
            newSuite = typeof newSuiteId === 'string' ? getSuite(newSuiteId) : undefined;
        } catch {
            throw new ConfigError([
                `--new-suite must be one of ${ALL_SUITES.map((x) => x.id).join(', ')}, got ${String(newSuiteId)}`,
            ]);
        }
        const ledger = await fabricClient();
        try {
            const epoch = await rotateCspCaKey(ledger, new CspCaKeys(identity, keyFile), keyFile, overlap, newSuite);
            console.log(JSON.stringify(epoch));
        } finally {
            ledger.connection.close();
        }
        return;
    }
    if (action !== undefined) return cspAction(action, c['data.dir'], values);
    const suite = getSuite(c.suite);
    const log = createLogger('csp', c['log.level'] as LogLevel);
    setConnectionLogger(log.child('mqtt'));
    const store = await openObjectStore(serviceStorageConfig(values, c['data.dir']));
    const csp = new CspBackend({
        key: await loadOrCreateServiceKey(join(c['data.dir'], 'keys', 'csp.json'), suite),
        ledger: await fabricClient(),
        store,
        dataDir: c['data.dir'],
        ...(c['mqtt.url'] !== undefined ? { brokerUrl: c['mqtt.url'] } : { brokerPort: c['mqtt.port'] }),
        ...(c['mqtt.password'] !== undefined ? { brokerPassword: c['mqtt.password'] } : {}),
        topics: new TopicLayout(c['topics.prefix']),
        logger: log,
    });
    await csp.start();
    const metrics =
        c['metrics.port'] > 0
            ? await startMetricsServer(
                  csp.metrics,
                  async () => ({ store: (await store.health()).ok, ...brokerHealthChecks() }),
                  c['metrics.port'],
              )
            : undefined;
    log.info('CSP backend running', { broker: csp.brokerUrl, metrics: metrics?.url });
    await waitForSignal();
    await metrics?.close();
    await csp.close();
}

// ---- serve: the embedded network for separate device processes ----

export async function runServe(argv: string[]): Promise<void> {
    const { values } = flags(argv, schemaFlags(SERVE_SCHEMA));
    if (values.help === true) {
        console.log(`m2m serve [--config file] [--<key> value ...]\n${settingsHelp('serve')}`);
        return;
    }
    const c = loadConfig(SERVE_SCHEMA, {
        file: values.config as string | undefined,
        overrides: overridesFrom(values, SERVE_SCHEMA),
    });
    const dataDir = c['data-dir'];
    const fogs = c.fogs;
    const devices = c.devices;
    const sessions = c.sessions;
    const metricsPort = c['metrics-port'];
    const batchSeconds = c['batch-timeout'];
    const net = new EmbeddedNetwork({
        dataDir,
        fogs,
        batchTimeoutMs: Math.round(batchSeconds * 1000),
    });
    await net.start();
    const servers = [];
    if (metricsPort > 0) {
        servers.push(await startMetricsServer(net.csp.metrics, () => ({ csp: true }), metricsPort));
        for (let i = 0; i < net.fogs.length; i++) {
            const fog = net.fogs[i]!;
            servers.push(
                await startMetricsServer(
                    fog.metrics,
                    () => ({
                        outbox: fog.outboxDepth < 10_000,
                        cspLink: fog.cspLinkConnected,
                        ...brokerHealthChecks(),
                    }),
                    metricsPort + 1 + i,
                ),
            );
        }
    }
    console.log(`CSP link broker ${net.csp.brokerUrl}`);
    for (const f of net.fogs) console.log(`fog ${f.fogId}: devices connect to ${f.deviceBrokerUrl}`);
    for (const s of servers) console.log(`metrics ${s.url}/metrics`);
    if (devices > 0) {
        await net.csp.grantCredit(MANUFACTURER_MSP, devices * sessions);
        for (let i = 0; i < devices; i++) {
            const id = `pi-${String(i + 1).padStart(4, '0')}`;
            const fog = net.fogs[i % fogs]!;
            await net.manufacturer.registerEquipment({
                equipmentId: id,
                kind: 'sensor',
                model: 'rpi-4b',
                fogGroup: fog.fogId,
                privilegeLevel: 1,
                serviceType: 'upload-download',
                accessTime: 'always',
            });
            await net.manufacturer.buySessions(id, sessions);
            const path = join(dataDir, 'devices', `${id}.json`);
            await net.manufacturer.provisionDevice(id, path, { id: fog.fogId, brokerUrl: fog.deviceBrokerUrl });
            console.log(`provisioned ${path}: m2m device --device.state ${path}`);
        }
    }
    net.csp.onTelemetry((r) => console.log(`telemetry ${r.equipmentId ?? r.routeId}: ${r.payload}`));
    console.log('running; Ctrl-C to stop');
    await waitForSignal();
    for (const s of servers) await s.close();
    await net.close();
}

// ---- manufacturer ----

export async function runManufacturer(argv: string[]): Promise<void> {
    const { values, positionals } = flags(argv, {
        ...schemaFlags(MANUFACTURER_SCHEMA),
        n: { type: 'string' },
        fog: { type: 'string' },
        state: { type: 'string' },
        'broker-url': { type: 'string' },
        ...INIT_STORE_FLAG,
        kind: { type: 'string' },
        model: { type: 'string' },
        status: { type: 'string' },
    });
    const [action, equipmentId] = positionals;
    if (values.help === true || action === undefined) {
        console.log(
            'm2m manufacturer register|replace <old> <new>|decommission|status|buy|provision|list|history <equipmentId>\n' +
                '                 [--n N] [--fog ID] [--state path] [--broker-url URL] [--kind K] [--model M] [--status S]\n' +
                `${settingsHelp('manufacturer')}`,
        );
        return;
    }
    const c = loadConfig(MANUFACTURER_SCHEMA, {
        file: values.config as string | undefined,
        overrides: overridesFrom(values, MANUFACTURER_SCHEMA),
    });
    const suite = getSuite(c.suite);
    const dataDir = c['data-dir'];
    const ledger = await fabricClient();
    const m = new ManufacturerClient({
        suite,
        ledger,
        store: await openObjectStore(serviceStorageConfig(values, dataDir)),
        dataDir,
    });
    const need = (v: string | undefined, what: string): string => {
        if (v === undefined) throw new Error(`${action} needs ${what}`);
        return v;
    };
    const spec = (id: string): Omit<EquipmentSpec, 'publicKey'> => ({
        equipmentId: id,
        kind: (values.kind as string | undefined) ?? 'sensor',
        model: (values.model as string | undefined) ?? 'rpi-4b',
        fogGroup: (values.fog as string | undefined) ?? 'default',
        privilegeLevel: 1,
        serviceType: 'upload-download' as const,
        accessTime: 'always',
    });
    let out: unknown;
    switch (action) {
        case 'register':
            out = await m.registerEquipment(spec(need(equipmentId, 'an equipment id')));
            break;
        case 'replace':
            out = await m.replaceEquipment(need(equipmentId, 'the old equipment id'), {
                ...spec(need(positionals[2], 'the new equipment id')),
                publicKey: need(c['public-key'], '--public-key or M2M_EQUIPMENT_PUBLIC_KEY (hex)'),
            });
            break;
        case 'decommission':
            out = await m.decommission(need(equipmentId, 'an equipment id'));
            break;
        case 'status':
            out = await m.setStatus(
                need(equipmentId, 'an equipment id'),
                need(values.status as string | undefined, '--status'),
            );
            break;
        case 'buy':
            out = await m.buySessions(
                need(equipmentId, 'an equipment id'),
                integerFlag(values, 'n', 10, 1, 1000, [], true),
            );
            break;
        case 'provision':
            out = await m.provisionDevice(
                need(equipmentId, 'an equipment id'),
                need(values.state as string | undefined, '--state'),
                {
                    id: need(values.fog as string | undefined, '--fog'),
                    ...(values['broker-url'] !== undefined ? { brokerUrl: values['broker-url'] as string } : {}),
                },
            );
            out = { provisioned: values.state };
            break;
        case 'list':
            out = await m.listEquipment();
            break;
        case 'history':
            out = await m.history(need(equipmentId, 'an equipment id'));
            break;
        default:
            throw new Error(`unknown manufacturer action ${action}`);
    }
    console.log(JSON.stringify(out, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2));
    ledger.connection.close();
}
