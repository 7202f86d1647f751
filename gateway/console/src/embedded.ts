/**
 * The console over an embedded network in this process (what `npm start` runs): one console
 * identity per org of the network, enrolled with the same `m2m.role` attributes as the services,
 * blocks from the embedded ledger, metrics from the services' own registries.
 */
import { createConnection } from 'node:net';
import { join } from 'node:path';
import type { EmbeddedLedger } from '@m2m-fabric/embedded-ledger';
import { CSP_WRITER, fogWriter, type Suite } from '@m2m-fabric/protocol';
import { ChaincodeClient, DEFAULT_CHAINCODE_NAME, type LedgerConnection } from '@m2m-fabric/sdk';
import type { ManufacturerClient, MetricsRegistry } from '@m2m-fabric/services';
import { ActivityFeed } from './activity-feed.js';
import { embeddedBlockSource } from './block-source.js';
import type { ConsoleAction, ConsoleIdentity, ConsoleRole } from './identity.js';
import { registrySource, type MetricsSource } from './metrics-source.js';
import type { RecordLog } from './records-routes.js';
import { startConsole, type ConsoleServer } from './server.js';

/** Whether a TCP connection to the broker of an `mqtt://host:port` URL opens within 500 ms. */
export function probeBroker(url: string, timeoutMs = 500): Promise<boolean> {
    return new Promise((resolve) => {
        let u: URL;
        try {
            u = new URL(url);
        } catch {
            resolve(false);
            return;
        }
        const socket = createConnection({ host: u.hostname, port: Number(u.port || 1883) });
        const done = (ok: boolean): void => {
            socket.destroy();
            resolve(ok);
        };
        socket.setTimeout(timeoutMs, () => done(false));
        socket.once('connect', () => done(true));
        socket.once('error', () => done(false));
    });
}

/**
 * What the console needs of an embedded deployment in this process (the CLI's EmbeddedNetwork has
 * this shape): its ledger, services and the organisations its identities belong to. Services are
 * read through these properties on each request, so a restarted fog or CSP is picked up.
 */
export interface EmbeddedDeployment {
    readonly ledger: EmbeddedLedger;
    readonly suite: Suite;
    readonly csp: { readonly metrics: MetricsRegistry; readonly brokerUrl: string };
    readonly fogs: readonly {
        readonly fogId: string;
        readonly metrics: MetricsRegistry;
        readonly outboxDepth: number;
        readonly cspLinkConnected: boolean;
        readonly deviceBrokerUrl: string;
    }[];
    readonly manufacturer: ManufacturerClient;
    /** The data directory: the manufacturer's device records are under `<dataDir>/manufacturer`. */
    readonly options: { readonly dataDir: string };
    /** The CSP's communication-record journal, when the deployment records its session channel. */
    readonly recordJournalDir?: string | undefined;
    /** Where fog i journals its relay records, when the deployment records them. */
    fogRecordJournalDir?(index: number): string | undefined;
}

/** MSP IDs of the deployment's organisations. */
export interface DeploymentOrganisations {
    csp: string;
    /** One per fog, in the order of `fogs` (several fogs may share an org). */
    fogs: readonly string[];
    manufacturer: string;
}

export interface EmbeddedConsoleOptions {
    organisations: DeploymentOrganisations;
    port?: number;
    host?: string;
    /** Write actions to enable (per role: register/decommission for the manufacturer, grantCredit for the CSP). */
    actions?: readonly ConsoleAction[];
    /** Extra manufacturer orgs of the ledger to serve (each sees only its own equipment). */
    manufacturers?: readonly string[];
    /** Writers' journals the records view may read (each shown to its own organisation only). */
    recordLogs?: readonly RecordLog[];
    /** Where the feed keeps its checkpoint and tallies (default `<dataDir>/console/feed.json`). */
    statePath?: string;
}

export interface EmbeddedConsole extends ConsoleServer {
    readonly feed: ActivityFeed;
}

async function consoleClient(
    ledger: EmbeddedLedger,
    mspId: string,
    role: ConsoleRole,
    connections: LedgerConnection[],
): Promise<ChaincodeClient> {
    const enrolment = await ledger.loadOrEnrol(mspId, `console-${role}`, { attributes: { 'm2m.role': role } });
    const connection = await ledger.connect({ identity: enrolment.identity, signer: enrolment.signer });
    connections.push(connection);
    return new ChaincodeClient(connection, DEFAULT_CHAINCODE_NAME, 30_000);
}

/** Serves the console over a started EmbeddedNetwork; `close()` stops it (not the network). */
export async function startEmbeddedConsole(
    net: EmbeddedDeployment,
    options: EmbeddedConsoleOptions,
): Promise<EmbeddedConsole> {
    const orgs = options.organisations;
    const connections: LedgerConnection[] = [];
    const actions = options.actions ?? [];
    const dataDir = net.options.dataDir;
    const identities: ConsoleIdentity[] = [
        {
            mspId: orgs.csp,
            role: 'csp',
            client: await consoleClient(net.ledger, orgs.csp, 'csp', connections),
            actions,
        },
    ];
    const fogMsps = [...new Set(orgs.fogs)];
    for (const msp of fogMsps)
        identities.push({ mspId: msp, role: 'fog', client: await consoleClient(net.ledger, msp, 'fog', connections) });
    identities.push({
        mspId: orgs.manufacturer,
        role: 'manufacturer',
        client: await consoleClient(net.ledger, orgs.manufacturer, 'manufacturer', connections),
        manufacturer: { client: net.manufacturer, dataDir: join(dataDir, 'manufacturer') },
        actions,
    });
    for (const msp of options.manufacturers ?? [])
        identities.push({
            mspId: msp,
            role: 'manufacturer',
            client: await consoleClient(net.ledger, msp, 'manufacturer', connections),
        });
    const blocks = embeddedBlockSource(net.ledger);
    const feed = await ActivityFeed.start({
        connection: identities[0]!.client.connection,
        chaincodeName: DEFAULT_CHAINCODE_NAME,
        blocks,
        statePath: options.statePath ?? join(dataDir, 'console-feed.json'),
    });
    const services: MetricsSource[] = [
        registrySource(
            'csp',
            'csp',
            () => net.csp.metrics,
            () => ({}),
        ),
        ...net.fogs.map((f, i) =>
            registrySource(
                f.fogId,
                'fog',
                () => net.fogs[i]!.metrics,
                () => ({ outbox: net.fogs[i]!.outboxDepth < 10_000, cspLink: net.fogs[i]!.cspLinkConnected }),
            ),
        ),
    ];
    // Broker reachability is probed when the view asks, so the health shown is current.
    const withBrokers = services.map((s, i): MetricsSource => ({
        ...s,
        health: async () => {
            const h = await s.health();
            const url = i === 0 ? net.csp.brokerUrl : net.fogs[i - 1]!.deviceBrokerUrl;
            const broker = await probeBroker(url);
            const checks = { ...h.checks, broker };
            return { ...h, checks, status: Object.values(checks).every(Boolean) ? 'ok' : 'degraded' };
        },
    }));
    const server = await startConsole({
        identities,
        feed,
        blocks,
        services: withBrokers,
        suite: net.suite,
        // Receipts are checked against the channel's MSP roots, as `m2m records verify --trust` does.
        records: {
            trust: net.ledger.channelTrust(DEFAULT_CHAINCODE_NAME),
            // Default: the CSP's own journal, shown to the CSP's identities only, and each fog's
            // relay-record journal, shown to that fog's organisation.
            logs:
                options.recordLogs ??
                (net.recordJournalDir === undefined
                    ? []
                    : [
                          { writer: CSP_WRITER, dir: net.recordJournalDir, mspId: orgs.csp },
                          ...net.fogs.flatMap((f, i) => {
                              const dir = net.fogRecordJournalDir?.(i);
                              return dir === undefined
                                  ? []
                                  : [{ writer: fogWriter(f.fogId), dir, mspId: orgs.fogs[i]! }];
                          }),
                      ]),
        },
        ...(options.host !== undefined ? { host: options.host } : {}),
        ...(options.port !== undefined ? { port: options.port } : {}),
    });
    return {
        url: server.url,
        logins: server.logins,
        feed,
        close: async () => {
            await server.close();
            await feed.close();
            for (const c of connections) c.close();
        },
    };
}
