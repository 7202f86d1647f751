/**
 * `m2m device`: one device agent, as on a Raspberry Pi. This module imports only the agent and its
 * MQTT client (pure JavaScript; no ledger, store or broker code), so the command runs wherever
 * Node 20 runs, without native addons.
 */
import { parseArgs } from 'node:util';
import { loadConfig, describeSchema, type ConfigSchema } from '@m2m-fabric/common';
import { DeviceAgent } from './agent.js';
import { runDeviceQuery } from './query-cli.js';
import { TopicLayout } from '@m2m-fabric/common';
import { createLogger } from '@m2m-fabric/common';

function flags(
    argv: string[],
    extra: Record<string, { type: 'string' }>,
): Record<string, string | boolean | undefined> {
    return parseArgs({
        args: argv,
        options: { config: { type: 'string' }, help: { type: 'boolean' }, ...extra },
        allowPositionals: false,
        strict: true,
    }).values;
}

export const DEVICE_SCHEMA = {
    'device.state': {
        type: 'string',
        env: 'M2M_DEVICE_STATE',
        required: true,
        description: 'device state file (0600)',
    },
    'mqtt.url': {
        type: 'string',
        env: 'M2M_MQTT_URL',
        format: 'url',
        description: "fog broker (default: the state file's)",
    },
    'topics.prefix': { type: 'string', env: 'M2M_TOPIC_PREFIX', default: 'm2m/v1', description: 'MQTT topic prefix' },
    sessions: {
        type: 'integer',
        env: 'M2M_DEVICE_SESSIONS',
        default: 1,
        min: 0,
        max: 100000,
        description: 'sessions to run',
    },
    uploads: {
        type: 'integer',
        env: 'M2M_DEVICE_UPLOADS',
        default: 1,
        min: 0,
        max: 100000,
        description: 'telemetry uploads per session',
    },
    'interval.ms': {
        type: 'integer',
        env: 'M2M_DEVICE_INTERVAL_MS',
        default: 1000,
        min: 0,
        max: 3600000,
        description: 'pause between uploads',
    },
    'listen.ms': {
        type: 'integer',
        env: 'M2M_DEVICE_LISTEN_MS',
        default: 0,
        min: 0,
        max: 86400000,
        description: 'stay connected this long after the sessions, printing instructions (0 = exit)',
    },
    'session.timeout.ms': {
        type: 'integer',
        env: 'M2M_SESSION_TIMEOUT_MS',
        default: 30000,
        min: 100,
        max: 600000,
        description: 'M3 to confirmation',
    },
} as const satisfies ConfigSchema;

export async function runDevice(argv: string[]): Promise<void> {
    if (argv[0] === 'query') return runDeviceQuery(argv.slice(1));
    const keys = Object.keys(DEVICE_SCHEMA) as (keyof typeof DEVICE_SCHEMA)[];
    const values = flags(argv, Object.fromEntries(keys.map((k) => [k, { type: 'string' as const }])));
    if (values.help === true) {
        console.log(
            `m2m device [--config file] [--device.state path] [--mqtt.url url] ...\n${describeSchema(DEVICE_SCHEMA)}\n` +
                'm2m device query <target> --since ISO --until ISO ... (paper 000 record query; --help for more)',
        );
        return;
    }
    const c = loadConfig(DEVICE_SCHEMA, {
        file: values.config as string | undefined,
        overrides: Object.fromEntries(keys.filter((k) => values[k] !== undefined).map((k) => [k, values[k]])),
    });
    const agent = await DeviceAgent.open({
        statePath: c['device.state'],
        ...(c['mqtt.url'] !== undefined ? { brokerUrl: c['mqtt.url'] } : {}),
        topics: new TopicLayout(c['topics.prefix']),
        sessionTimeoutMs: c['session.timeout.ms'],
        logger: createLogger('device', 'warn'),
    });
    agent.onInstruction((p) => console.log(`instruction: ${new TextDecoder().decode(p)}`));
    await agent.connect();
    console.log(`device ${agent.equipmentId} connected; ${agent.remainingSessions} session(s) left`);
    try {
        // An unfinished session with a pending counter is retried by establishSession (a fresh M1
        // tells whether its certificate is still unused); only one without is polled here.
        if (agent.session !== undefined && !agent.session.established && agent.pendingCounter === undefined) {
            await agent.resume().then(
                () => console.log('resumed the interrupted session'),
                (err: unknown) => console.log(`interrupted session not confirmed: ${(err as Error).message}`),
            );
        }
        for (let s = 0; s < c.sessions; s++) {
            const retrying = agent.pendingCounter;
            if (retrying !== undefined) console.log(`retrying the unfinished session of counter ${retrying}`);
            const session = await agent.establishSession();
            console.log(`session counter ${session.counter} established in ${session.latencyMs.toFixed(0)} ms`);
            for (let u = 0; u < c.uploads; u++) {
                const seq = await agent.upload({ reading: Math.random(), at: new Date().toISOString() });
                // The Ack's identity (route, sequence) is printed so a run's acknowledgements can be checked
                // one by one at the CSP (the fault matrix does).
                console.log(`telemetry frame ${seq} acknowledged by the CSP on route ${session.routeId}`);
                if (u + 1 < c.uploads) await new Promise((r) => setTimeout(r, c['interval.ms']));
            }
        }
        if (c['listen.ms'] > 0) {
            console.log(`listening for instructions for ${c['listen.ms']} ms`);
            await new Promise((r) => setTimeout(r, c['listen.ms']));
        }
    } finally {
        await agent.close();
    }
}
