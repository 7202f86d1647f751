/**
 * Every setting of every `m2m` command, in one place and one shape. A command's own settings are a
 * typed {@link ConfigSchema} (key = flag name, environment variable, type, range, default), read
 * with `loadConfig` (flag > variable > `--config` file > default); the settings other packages
 * read themselves are listed from where they are defined: FABRIC_* and the object store
 * (FABRIC_SETTINGS, STORAGE_SETTINGS of @m2m-fabric/sdk) and the chaincode's access policy
 * (ACCESS_POLICY_SETTINGS of @m2m-fabric/chaincode, read by the chaincode process, i.e. by the
 * commands that host the embedded peers). {@link COMMAND_SETTINGS} says which groups each command
 * uses; its `--help` prints them all ({@link settingsHelp}), and test/services/cli.test.ts checks
 * every variable and default against this table and every variable the code reads against it.
 */
import { ACCESS_POLICY_SETTINGS } from '@m2m-fabric/chaincode';
import { describeSchema, type ConfigSchema } from '@m2m-fabric/common';
import { describeSettings, type EnvSetting } from '@m2m-fabric/protocol';
import { FABRIC_SETTINGS, STORAGE_SETTINGS } from '@m2m-fabric/sdk';

const SUITE_FIELD = {
    type: 'string',
    env: 'M2M_SUITE',
    default: 'P256-SHA256',
    oneOf: ['P256-SHA256', 'P384-SHA384'],
    description: 'crypto suite',
} as const;

const BATCH_TIMEOUT_FIELD = {
    type: 'number',
    env: 'M2M_BATCH_TIMEOUT',
    min: 0.001,
    max: 60,
    unit: 'seconds',
    description: "the embedded orderer's BatchTimeout, seconds",
} as const;

/** Sessions bought per device by the commands that run the embedded network. */
const SESSIONS_FIELD = {
    type: 'integer',
    env: 'M2M_SESSIONS',
    default: 3,
    min: 1,
    max: 1000,
    description: 'sessions per device',
} as const;

const FOGS_FIELD = {
    type: 'integer',
    env: 'M2M_FOGS',
    default: 2,
    min: 1,
    max: 32,
    description: 'fog gateways',
} as const;

// ---- fog / csp ----

const COMMON_SERVICE_SCHEMA = {
    'data.dir': {
        type: 'string',
        env: 'M2M_DATA_DIR',
        default: '.data/service',
        description: 'keys, outbox, session store',
    },
    suite: SUITE_FIELD,
    'metrics.port': {
        type: 'integer',
        env: 'M2M_METRICS_PORT',
        default: 0,
        min: 0,
        max: 65535,
        description: '/metrics and /healthz port (0 = off)',
    },
    'topics.prefix': { type: 'string', env: 'M2M_TOPIC_PREFIX', default: 'm2m/v1', description: 'MQTT topic prefix' },
    'log.level': {
        type: 'string',
        env: 'M2M_LOG_LEVEL',
        default: 'info',
        oneOf: ['debug', 'info', 'warn', 'error', 'silent'],
        description: 'log level',
    },
} as const satisfies ConfigSchema;

export const FOG_SCHEMA = {
    ...COMMON_SERVICE_SCHEMA,
    'fog.id': { type: 'string', env: 'M2M_FOG_ID', required: true, format: 'identifier', description: 'fog id (ID_f)' },
    'mqtt.url': {
        type: 'string',
        env: 'M2M_MQTT_URL',
        format: 'url',
        description: 'external device broker (unset: embedded)',
    },
    'mqtt.port': {
        type: 'integer',
        env: 'M2M_MQTT_PORT',
        default: 1883,
        min: 0,
        max: 65535,
        description: 'embedded broker port',
    },
    'mqtt.password': {
        type: 'string',
        env: 'M2M_MQTT_PASSWORD',
        secret: true,
        description: "the fog's password on an external broker",
    },
    'limits.ledgerReadsPerSecond': {
        type: 'integer',
        env: 'M2M_FOG_LEDGER_READS_PER_S',
        min: 1,
        description: 'M1 ledger reads per second overall, burst twice that (unset: 25 per CPU core)',
    },
    'csp.url': { type: 'string', env: 'M2M_CSP_URL', required: true, format: 'url', description: "the CSP's broker" },
    'records.enabled': {
        type: 'boolean',
        env: 'M2M_FOG_RECORDS',
        default: false,
        description: 'record every record-query packet relayed (journal <data dir>/records, anchored as fog:<id>)',
    },
    'records.batchSize': {
        type: 'integer',
        env: 'M2M_FOG_RECORDS_BATCH_SIZE',
        default: 1000,
        min: 1,
        max: 100_000,
        description: 'relay records per anchored batch at most',
    },
    'records.maxDelayMs': {
        type: 'integer',
        env: 'M2M_FOG_RECORDS_MAX_DELAY_MS',
        default: 2000,
        min: 1,
        max: 3_600_000,
        description: "a batch is cut this long after its first record, ms (Fabric's default BatchTimeout)",
    },
    'csp.password': {
        type: 'string',
        env: 'M2M_CSP_PASSWORD',
        secret: true,
        description: "the fog's password on the CSP's broker (unset: signed token)",
    },
} as const satisfies ConfigSchema;

export const CSP_SCHEMA = {
    ...COMMON_SERVICE_SCHEMA,
    'mqtt.url': {
        type: 'string',
        env: 'M2M_MQTT_URL',
        format: 'url',
        description: 'external link broker (unset: embedded)',
    },
    'mqtt.port': {
        type: 'integer',
        env: 'M2M_MQTT_PORT',
        default: 8883,
        min: 0,
        max: 65535,
        description: 'embedded link broker port',
    },
    'mqtt.password': {
        type: 'string',
        env: 'M2M_MQTT_PASSWORD',
        secret: true,
        description: "the CSP's password on an external broker",
    },
} as const satisfies ConfigSchema;

/**
 * `--init-store` (or M2M_INIT_STORE=1): the only way a service creates a new embedded store. Read
 * by serviceStorageConfig beside the SDK's storage settings, not by loadConfig.
 */
export const INIT_STORE_SCHEMA = {
    'init-store': {
        type: 'boolean',
        env: 'M2M_INIT_STORE',
        default: false,
        description: 'create the embedded object store if M2M_STORE_DIR (or <data dir>/objects) holds none',
    },
} as const satisfies ConfigSchema;

// ---- the embedded network: demo, serve, peer ----

/** `m2m demo` (what `npm start` runs). */
export const DEMO_SCHEMA = {
    devices: {
        type: 'integer',
        env: 'M2M_DEVICES',
        default: 10,
        min: 1,
        max: 1000,
        description: 'devices (equipment), one device agent each',
    },
    sessions: SESSIONS_FIELD,
    fogs: FOGS_FIELD,
    'batch-timeout': { ...BATCH_TIMEOUT_FIELD, default: 0.5 },
    'data-dir': {
        type: 'string',
        env: 'M2M_DATA_DIR',
        description: 'ledger, object store, keys, device state (unset: .data/demo, .data/spinning for spinning)',
    },
    scenario: {
        type: 'string',
        env: 'M2M_SCENARIO',
        default: 'sessions',
        oneOf: ['sessions', 'spinning'],
        description: "sessions: N devices x K sessions; spinning: paper 000's cotton-spinning line",
    },
    'console-port': {
        type: 'integer',
        env: 'M2M_CONSOLE_PORT',
        default: 0,
        min: 0,
        max: 65535,
        description: 'operator console port (0: any free port)',
    },
    'console-host': {
        type: 'string',
        env: 'M2M_CONSOLE_HOST',
        default: '127.0.0.1',
        description: 'operator console address',
    },
    'console-enable': {
        type: 'string',
        env: 'M2M_CONSOLE_ENABLE',
        description: 'console actions to allow, comma-separated: register, decommission, grantCredit',
    },
    'no-console': {
        type: 'boolean',
        env: 'M2M_NO_CONSOLE',
        default: false,
        description: 'no operator console (with it, the demo serves it after the sessions until Ctrl-C)',
    },
} as const satisfies ConfigSchema;

/** `m2m serve`: the embedded network kept running for separate `m2m device` processes. */
export const SERVE_SCHEMA = {
    'data-dir': { type: 'string', env: 'M2M_DATA_DIR', default: '.data/serve', description: 'ledger, store, keys' },
    fogs: FOGS_FIELD,
    devices: {
        type: 'integer',
        env: 'M2M_DEVICES',
        default: 0,
        min: 0,
        max: 1000,
        description: 'device state files to provision for "m2m device"',
    },
    sessions: SESSIONS_FIELD,
    'batch-timeout': { ...BATCH_TIMEOUT_FIELD, default: 0.5 },
    'metrics-port': {
        type: 'integer',
        env: 'M2M_METRICS_PORT',
        default: 0,
        min: 0,
        max: 65000,
        description: "CSP's /metrics port, fogs' on the next ones (0 = off)",
    },
} as const satisfies ConfigSchema;

/** `m2m peer`: the embedded ledger as Fabric peers with Gateway endpoints. */
export const PEER_SCHEMA = {
    'data-dir': { type: 'string', env: 'M2M_DATA_DIR', default: '.data/peer', description: 'ledger and identities' },
    'batch-timeout': { ...BATCH_TIMEOUT_FIELD, default: 2, description: "orderer BatchTimeout, seconds (Fabric's 2)" },
    host: {
        type: 'string',
        env: 'M2M_PEER_HOST',
        default: '127.0.0.1',
        description: 'address to listen on and to put in the connection files',
    },
    'base-port': {
        type: 'integer',
        env: 'M2M_PEER_BASE_PORT',
        default: 7051,
        min: 0,
        max: 65531,
        description: 'first Gateway endpoint port, one per organisation (0: any free ports)',
    },
    'connection-dir': {
        type: 'string',
        env: 'M2M_CONNECTION_DIR',
        description: 'where the connection files go (unset: <data-dir>/connection)',
    },
} as const satisfies ConfigSchema;

// ---- manufacturer, material ----

export const MANUFACTURER_SCHEMA = {
    'data-dir': {
        type: 'string',
        env: 'M2M_DATA_DIR',
        default: '.data/manufacturer',
        description: 'keeps each device key (0600) and purchase',
    },
    suite: SUITE_FIELD,
    'public-key': {
        type: 'string',
        env: 'M2M_EQUIPMENT_PUBLIC_KEY',
        format: 'hex',
        description: "replace: the new equipment's static public key (SEC1 compressed hex)",
    },
} as const satisfies ConfigSchema;

export const MATERIAL_SCHEMA = {
    suite: SUITE_FIELD,
} as const satisfies ConfigSchema;

// ---- which command lists what ----

/** A titled block of settings in `--help`: a command's schema, or settings another package reads. */
export type SettingsGroup =
    | { readonly title: string; readonly schema: ConfigSchema }
    | { readonly title: string; readonly env: readonly EnvSetting[] };

const LEDGER_GROUP: SettingsGroup = {
    title: 'ledger connection (unset: the embedded ledger where the command offers one):',
    env: FABRIC_SETTINGS,
};
const STORE_GROUP: SettingsGroup = { title: 'object store:', env: STORAGE_SETTINGS };
const STORE_INIT_GROUP: SettingsGroup = { title: 'object store creation:', schema: INIT_STORE_SCHEMA };
const CHAINCODE_GROUP: SettingsGroup = {
    title: "chaincode access policy (read by the embedded peers' chaincode):",
    env: Object.values(ACCESS_POLICY_SETTINGS),
};

/** The settings of each `m2m` command that has any, in the order its `--help` lists them. */
export const COMMAND_SETTINGS = {
    demo: [{ title: 'settings:', schema: DEMO_SCHEMA }, CHAINCODE_GROUP],
    serve: [{ title: 'settings:', schema: SERVE_SCHEMA }, CHAINCODE_GROUP],
    peer: [{ title: 'settings:', schema: PEER_SCHEMA }, CHAINCODE_GROUP],
    fog: [{ title: 'settings:', schema: FOG_SCHEMA }, LEDGER_GROUP, STORE_GROUP, STORE_INIT_GROUP],
    csp: [{ title: 'settings:', schema: CSP_SCHEMA }, LEDGER_GROUP, STORE_GROUP, STORE_INIT_GROUP],
    manufacturer: [{ title: 'settings:', schema: MANUFACTURER_SCHEMA }, LEDGER_GROUP, STORE_GROUP, STORE_INIT_GROUP],
    material: [{ title: 'settings:', schema: MATERIAL_SCHEMA }, LEDGER_GROUP],
    storage: [{ title: 'object store:', env: STORAGE_SETTINGS.filter((s) => s.env === 'M2M_STORE_DIR') }],
} as const satisfies Record<string, readonly SettingsGroup[]>;

export type SettingsCommand = keyof typeof COMMAND_SETTINGS;

/** Every settings line of `command`'s `--help`, group by group. */
export function settingsHelp(command: SettingsCommand): string {
    return COMMAND_SETTINGS[command]
        .map((group: SettingsGroup) =>
            'schema' in group
                ? `${group.title}\n${describeSchema(group.schema)}`
                : describeSettings(group.title, group.env),
        )
        .join('\n');
}
