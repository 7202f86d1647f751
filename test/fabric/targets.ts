/**
 * Where the `npm run test:fabric` suite runs. The suite sees only the ledger client interface
 * (LedgerConnector → LedgerConnection → LedgerContract), so every target runs exactly the same test
 * code:
 *   fabric      a real Fabric network: the four organisations' connection files (FABRIC_CONNECTION),
 *               each organisation through its own peer's Gateway with @hyperledger/fabric-gateway;
 *   embedded    the embedded ledger behind one Fabric Gateway gRPC endpoint per organisation
 *               (EmbeddedGatewayServer, TLS), reached through the same code as `fabric`: connection
 *               files written here, loadFabricConfig, FabricLedgerConnector, fabric-gateway;
 *   in-process  the embedded ledger's own in-process connections (no gRPC): the quickest check of the
 *               chaincode, not of the Fabric client path.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

import { FabricLedgerConnector, fabricIdentity, loadFabricConfig } from '@m2m-fabric/sdk';
import { EmbeddedGatewayServer, EmbeddedLedger, loadOrCreateTlsServer } from '@m2m-fabric/embedded-ledger';
import { type LedgerConnection, type LedgerConnector, type LedgerIdentity, type LedgerSigner } from '@m2m-fabric/sdk';
import type { ChannelTrust } from '@m2m-fabric/sdk';

export type TargetName = 'fabric' | 'embedded' | 'in-process';
const TARGETS: readonly TargetName[] = ['fabric', 'embedded', 'in-process'];

export const ORGS = ['csp', 'foga', 'fogb', 'manufacturer'] as const;
export type Org = (typeof ORGS)[number];

export const MSP: Record<Org, string> = {
    csp: 'CSPMSP',
    foga: 'FogAMSP',
    fogb: 'FogBMSP',
    manufacturer: 'ManufacturerMSP',
};

/** The chaincode's role of each organisation (its `m2m.role` attribute). */
export const ROLE: Record<Org, 'csp' | 'fog' | 'manufacturer'> = {
    csp: 'csp',
    foga: 'fog',
    fogb: 'fog',
    manufacturer: 'manufacturer',
};

export interface SuiteTarget {
    readonly name: TargetName;
    readonly chaincodeName: string;
    /** Opens a connection of `org`'s service identity (through `org`'s own peer on Fabric). */
    connect(org: Org): Promise<LedgerConnection>;
    /**
     * Restarts the peer `org`'s connections use, under the live clients. Fabric: runs
     * M2M_FABRIC_RESTART_PEER_CMD with {org} replaced (e.g. `docker restart peer0.{org}.m2m.example.com`);
     * undefined when not set. Embedded: stops `org`'s Gateway endpoint and starts it again on the same
     * port. In-process: closes the ledger and reopens it from disk (clients must reconnect).
     */
    readonly restartPeer: ((org: Org) => Promise<void>) | undefined;
    /** Whether clients survive `restartPeer` (a gRPC client reconnects; an in-process one cannot). */
    readonly clientsSurviveRestart: boolean;
    /**
     * Freezes the process of `org`'s peer (SIGSTOP) until the returned peer is resumed (SIGCONT):
     * the peer neither endorses nor commits meanwhile, and its connections stay open. Fabric: the
     * process whose pid is in M2M_FABRIC_PEER_PID_FILE with {org} replaced (run-suite.sh points it
     * at the native network's node.pid files); undefined when that is not set (a Docker network,
     * the embedded targets), with the reason in `pausePeerUnavailable`.
     */
    readonly pausePeer: ((org: Org) => Promise<PausedPeer>) | undefined;
    /** Why `pausePeer` is undefined. */
    readonly pausePeerUnavailable?: string;
    /**
     * The channel's orderer MSP roots, for offline checks (checkpoint import). Embedded: the ledger's;
     * Fabric: the `orderers` of the channel trust file M2M_CHANNEL_TRUST (undefined when not set).
     */
    readonly ordererRoots?: readonly { mspId: string; rootCertificates: readonly string[] }[] | undefined;
    /**
     * The channel's MSP roots for offline receipt verification (records.suite.ts). Fabric: the
     * orderer's and peer organisations' msp/cacerts under M2M_FABRIC_ORGANIZATIONS (default
     * fabric-network/organizations, as the network scripts write it); embedded: the ledger's own.
     */
    channelTrust(): Promise<ChannelTrust>;
    close(): Promise<void>;
}

/** A peer frozen by `SuiteTarget.pausePeer`. */
export interface PausedPeer {
    readonly pid: number;
    /** Lets the peer run again (SIGCONT); calling it again does nothing. */
    resume(): void;
}

/** Organisation domains of fabric-network/config/configtx.yaml. */
const ORG_DOMAIN: Record<Org, string> = {
    csp: 'csp.m2m.example.com',
    foga: 'foga.m2m.example.com',
    fogb: 'fogb.m2m.example.com',
    manufacturer: 'manufacturer.m2m.example.com',
};

async function cacerts(mspDir: string): Promise<string[]> {
    const dir = join(mspDir, 'cacerts');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.pem')).sort();
    if (files.length === 0) throw new Error(`no root certificate in ${dir}`);
    return await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')));
}

/** The trust of a network laid out as fabric-network's scripts do (cryptogen / Fabric CA MSP folders). */
export async function fabricChannelTrust(
    organizations: string,
    channel: string,
    chaincode: string,
): Promise<ChannelTrust> {
    return {
        channel,
        chaincode,
        orderers: [
            {
                mspId: 'OrdererMSP',
                rootCertificates: await cacerts(join(organizations, 'ordererOrganizations', 'm2m.example.com', 'msp')),
            },
        ],
        organisations: await Promise.all(
            ORGS.map(async (org) => ({
                mspId: MSP[org],
                rootCertificates: await cacerts(join(organizations, 'peerOrganizations', ORG_DOMAIN[org], 'msp')),
            })),
        ),
        // The channel's Application Endorsement policy in configtx.yaml.
        endorsementPolicy: 'MAJORITY Endorsement',
    };
}

/** How the suite was asked to run, or why it is skipped. */
export function chooseTarget(argv: readonly string[], env: NodeJS.ProcessEnv): TargetName | { skip: string } {
    const flag = TARGETS.find((name) => argv.includes(`--${name}`));
    const requested = flag ?? env.M2M_FABRIC_TEST_TARGET;
    if (requested !== undefined && requested !== '') {
        if (!(TARGETS as readonly string[]).includes(requested)) {
            return { skip: `M2M_FABRIC_TEST_TARGET must be one of ${TARGETS.join(', ')}, got '${requested}'` };
        }
        if (requested !== 'fabric') return requested as TargetName;
    }
    if (env.FABRIC_CONNECTION === undefined || env.FABRIC_CONNECTION === '') {
        return {
            skip:
                'no Fabric network configured: set FABRIC_CONNECTION to a directory holding csp, foga, fogb and ' +
                'manufacturer .env/.json connection files (e.g. fabric-network/connection), or run ' +
                '`npm run test:fabric -- --embedded` to run the suite on the embedded ledger behind its Fabric ' +
                'Gateway endpoints',
        };
    }
    return 'fabric';
}

function connectionFile(dir: string, org: Org): string {
    for (const extension of ['.env', '.json']) {
        const file = join(dir, `${org}${extension}`);
        if (existsSync(file)) return file;
    }
    throw new Error(`FABRIC_CONNECTION=${dir} has no ${org}.env or ${org}.json`);
}

/**
 * The four organisations' connection files in `env.FABRIC_CONNECTION`, each opened with the Fabric
 * client exactly as a service opens its own (`loadFabricConfig` → `FabricLedgerConnector`).
 */
export async function openFabricTarget(
    env: NodeJS.ProcessEnv,
    options: {
        name?: TargetName;
        restartPeer?: (org: Org) => Promise<void>;
        close?: () => Promise<void>;
        ordererRoots?: SuiteTarget['ordererRoots'];
        channelTrust?: () => Promise<ChannelTrust>;
    } = {},
): Promise<SuiteTarget> {
    const dir = env.FABRIC_CONNECTION ?? '';
    const configs = Object.fromEntries(
        // Each organisation's file alone: FABRIC_* variables of this process would apply to all four.
        ORGS.map((org) => [org, loadFabricConfig({ file: connectionFile(dir, org), env: {} })]),
    ) as Record<Org, ReturnType<typeof loadFabricConfig>>;
    const chaincodeNames = new Set(ORGS.map((org) => configs[org].chaincodeName));
    if (chaincodeNames.size !== 1)
        throw new Error(`the connection files name different chaincodes: ${[...chaincodeNames].join(', ')}`);
    const restartCommand = env.M2M_FABRIC_RESTART_PEER_CMD;
    const pidFile = env.M2M_FABRIC_PEER_PID_FILE;
    return {
        name: options.name ?? 'fabric',
        chaincodeName: configs.csp.chaincodeName,
        clientsSurviveRestart: true,
        pausePeer: pidFile === undefined || pidFile === '' ? undefined : async (org) => await pausePeer(pidFile, org),
        pausePeerUnavailable:
            pidFile === undefined || pidFile === ''
                ? options.name === 'embedded'
                    ? "the embedded target's peers are Gateway endpoints in this process: no peer process to pause"
                    : 'no peer process to pause: set M2M_FABRIC_PEER_PID_FILE (e.g. ' +
                      'fabric-network/.native/peer0.{org}.m2m.example.com/node.pid of a native network)'
                : undefined,
        async connect(org) {
            const config = configs[org];
            const { identity, signer } = fabricIdentity(config);
            return await FabricLedgerConnector.fromConfig(config, {
                eventReconnect: { initialDelayMs: 250, maxDelayMs: 2000 },
            }).connect({ identity, signer, channelName: config.channelName });
        },
        restartPeer:
            options.restartPeer ??
            (restartCommand === undefined || restartCommand === ''
                ? undefined
                : async (org) => {
                      await runShell(restartCommand.replaceAll('{org}', org));
                  }),
        ordererRoots:
            options.ordererRoots ??
            (env.M2M_CHANNEL_TRUST === undefined || env.M2M_CHANNEL_TRUST === ''
                ? undefined
                : (
                      JSON.parse(readFileSync(env.M2M_CHANNEL_TRUST, 'utf8')) as {
                          orderers: { mspId: string; rootCertificates: string[] }[];
                      }
                  ).orderers),
        channelTrust:
            options.channelTrust ??
            (async () =>
                await fabricChannelTrust(
                    env.M2M_FABRIC_ORGANIZATIONS ?? join('fabric-network', 'organizations'),
                    configs.csp.channelName,
                    configs.csp.chaincodeName,
                )),
        close: options.close ?? (async () => {}),
    };
}

async function pausePeer(pidFileTemplate: string, org: Org): Promise<PausedPeer> {
    const file = pidFileTemplate.replaceAll('{org}', org);
    const pid = Number((await readFile(file, 'utf8')).trim());
    if (!Number.isSafeInteger(pid) || pid <= 1) throw new Error(`${file} holds no process id`);
    let stopped = true;
    const resume = (): void => {
        if (!stopped) return;
        stopped = false;
        process.off('exit', resume);
        process.kill(pid, 'SIGCONT');
    };
    // A test that dies between the two signals must not leave the network with a frozen peer.
    process.once('exit', resume);
    process.kill(pid, 'SIGSTOP');
    return { pid, resume };
}

async function runShell(command: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
        const child = spawn('sh', ['-c', command], { stdio: 'inherit' });
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`'${command}' exited with ${code}`))));
    });
}

/** The options every embedded target opens its ledger with. */
async function openSuiteLedger(dataDir: string): Promise<EmbeddedLedger> {
    // Loaded here, not at module load, so that a skipped run does not need the chaincode at all.
    const { contracts } = await import('@m2m-fabric/chaincode');
    return await EmbeddedLedger.open({
        dataDir,
        organisations: ORGS.map((org) => MSP[org]),
        chaincodes: [{ name: 'm2m', contracts }],
        // Short batches keep the suite fast; block cutting is otherwise Fabric's.
        batch: { batchTimeoutMs: 20 },
    });
}

/**
 * The embedded ledger behind one Fabric Gateway endpoint per organisation (its "peer"), and a
 * directory of connection files like fabric-network/connection/ naming them; the suite then opens
 * them with openFabricTarget, the code it runs against a real network.
 */
export async function openEmbeddedGatewayTarget(): Promise<SuiteTarget> {
    const dir = await mkdtemp(join(tmpdir(), 'm2m-fabric-suite-'));
    const ledger = await openSuiteLedger(join(dir, 'ledger'));
    const servers = new Map<Org, EmbeddedGatewayServer>();
    const tls = new Map<Org, Awaited<ReturnType<typeof loadOrCreateTlsServer>>>();
    const connectionDir = join(dir, 'connection');
    try {
        for (const org of ORGS) {
            const orgDir = join(dir, 'organisations', org);
            const material = await loadOrCreateTlsServer(orgDir, MSP[org], ['127.0.0.1', 'localhost']);
            tls.set(org, material);
            servers.set(org, await EmbeddedGatewayServer.start(ledger, { mspId: MSP[org], tls: material }));
            // The service identity, with the role attribute a Fabric CA registration would give it.
            const user = await ledger.loadOrEnrol(MSP[org], `${org}-service`, {
                attributes: { 'm2m.role': ROLE[org] },
            });
            await mkdir(join(connectionDir, org), { recursive: true, mode: 0o700 });
            await writeFile(join(connectionDir, org, 'tls-ca.pem'), material.caCertificatePem);
            await writeFile(join(connectionDir, org, 'cert.pem'), user.certificatePem);
            await writeFile(join(connectionDir, org, 'key.pem'), user.privateKeyPem, { mode: 0o600 });
            const settings = {
                FABRIC_PEER_ENDPOINT: servers.get(org)?.endpoint ?? '',
                // TLS names a server, not an IP address (RFC 6066; Node warns DEP0123 otherwise).
                FABRIC_PEER_HOST_ALIAS: 'localhost',
                FABRIC_TLS_CA_CERT: `${org}/tls-ca.pem`,
                FABRIC_MSP_ID: MSP[org],
                FABRIC_CERT: `${org}/cert.pem`,
                FABRIC_KEY: `${org}/key.pem`,
                FABRIC_CHANNEL: ledger.channelName,
                FABRIC_CHAINCODE: 'm2m',
            };
            await writeFile(
                join(connectionDir, `${org}.env`),
                Object.entries(settings)
                    .map(([name, value]) => `${name}=${value}\n`)
                    .join(''),
            );
        }
    } catch (err) {
        for (const server of servers.values()) await server.close();
        await ledger.close();
        await rm(dir, { recursive: true, force: true });
        throw err;
    }
    return await openFabricTarget(
        { FABRIC_CONNECTION: connectionDir },
        {
            name: 'embedded',
            ordererRoots: ledger.channelTrust('m2m').orderers,
            // The peer goes away and comes back on the same address, as `docker restart` does.
            restartPeer: async (org) => {
                const server = servers.get(org);
                const material = tls.get(org);
                if (server === undefined || material === undefined) throw new Error(`no endpoint for ${org}`);
                const port = Number(server.endpoint.slice(server.endpoint.lastIndexOf(':') + 1));
                await server.close();
                await new Promise((resolve) => setTimeout(resolve, 500));
                servers.set(org, await EmbeddedGatewayServer.start(ledger, { mspId: MSP[org], tls: material, port }));
            },
            channelTrust: async () => ledger.channelTrust('m2m'),
            close: async () => {
                for (const server of servers.values()) await server.close();
                await ledger.close();
                await rm(dir, { recursive: true, force: true });
            },
        },
    );
}

export async function openInProcessTarget(): Promise<SuiteTarget> {
    const dir = await mkdtemp(join(tmpdir(), 'm2m-fabric-suite-'));
    const open = async (): Promise<EmbeddedLedger> => await openSuiteLedger(dir);
    let ledger = await open();
    const identities = new Map<Org, { identity: LedgerIdentity; signer: LedgerSigner }>();
    const identityOf = async (org: Org): Promise<{ identity: LedgerIdentity; signer: LedgerSigner }> => {
        let entry = identities.get(org);
        if (entry === undefined) {
            // The role attribute a Fabric CA registration would put in the certificate.
            const enrolment = await ledger.loadOrEnrol(MSP[org], `${org}-service`, {
                attributes: { 'm2m.role': ROLE[org] },
            });
            entry = { identity: enrolment.identity, signer: enrolment.signer };
            identities.set(org, entry);
        }
        return entry;
    };
    const connector = (): LedgerConnector => ledger;
    return {
        name: 'in-process',
        chaincodeName: 'm2m',
        clientsSurviveRestart: false,
        pausePeer: undefined,
        pausePeerUnavailable: 'the in-process target has no peer process to pause',
        async connect(org) {
            const { identity, signer } = await identityOf(org);
            return await connector().connect({ identity, signer });
        },
        restartPeer: async () => {
            await ledger.close();
            ledger = await open();
        },
        channelTrust: async () => ledger.channelTrust('m2m'),
        async close() {
            await ledger.close();
            await rm(dir, { recursive: true, force: true });
        },
    };
}
