/**
 * The kx benchmark's services: the CSP backend, the fog gateways with their MQTT brokers, the object
 * store and the manufacturer client (an EmbeddedNetwork). Either in the benchmark's process with the
 * embedded ledger beside them (`--layout single|devices`), or forked as their own process
 * (`--layout processes`), reaching the ledger, which stays in the benchmark's process, through its
 * Fabric Gateway gRPC endpoints (one per organisation) exactly as they would reach Fabric peers.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EmbeddedNetwork, MANUFACTURER_MSP } from '@m2m-fabric/cli';
import { newPrivateKeySigner, type LedgerConnection } from '@m2m-fabric/sdk';
import { FabricLedgerConnector, fabricIdentity, loadFabricConfig } from '@m2m-fabric/sdk';
import { cpuMs, serveParent } from './kx-ipc.js';
import type { DeviceSpec } from './kx-devices.js';

/** What kx.ts needs from the services, in this process or another. */
export interface Services {
    /** Registers, buys `need[j]` sessions for and provisions device j; returns each device's state file and broker. */
    provision(need: number[]): Promise<DeviceSpec[]>;
    cpuMs(): Promise<number>;
    close(): Promise<void>;
}

/** The host name in the gateway endpoints' TLS certificate (TLS clients may not use an IP as SNI). */
export const TLS_HOST = 'localhost';

/** Where the services find the ledger when it runs in another process. */
export interface RemoteLedger {
    channelName: string;
    tlsCaPem: string;
    /** Gateway endpoint (host:port) of each organisation's peer. */
    endpoints: Record<string, string>;
    /** Enrolled service identities, by `${mspId}/${name}`. */
    identities: Record<string, { certificatePem: string; privateKeyPem: string }>;
}

export interface ServicesOptions {
    dataDir: string;
    batchTimeoutMs: number;
    fogs: number;
    ledger?: RemoteLedger;
    /**
     * A real Fabric network instead: a directory of connection files named after the organisations
     * (csp, foga, fogb, manufacturer .env/.json, as fabric-network/connection/); each service uses its
     * organisation's identity and peer.
     */
    fabricConnectionDir?: string;
    /** Fog and CSP steps worked on at once (FogGateway maxConcurrentSteps, CspBackend maxConcurrentSessions). */
    serviceConcurrency?: number;
    /** Embedded ledger in this process (no `ledger`): a chaincode thread per peer instead of in process. */
    chaincodeThreads?: boolean;
}

/** The service identities an EmbeddedNetwork asks for: [mspId, name, m2m.role]. */
export function serviceIdentities(fogs: number, fogMsp: (i: number) => string): [string, string, string][] {
    return [
        ['CSPMSP', 'csp-backend', 'csp'],
        ...Array.from({ length: fogs }, (_, i): [string, string, string] => [fogMsp(i), `fog-${i + 1}-svc`, 'fog']),
        [MANUFACTURER_MSP, 'manufacturer', 'manufacturer'],
    ];
}

function remoteConnect(ledger: RemoteLedger): (mspId: string, name: string) => Promise<LedgerConnection> {
    return async (mspId, name) => {
        const id = ledger.identities[`${mspId}/${name}`];
        const endpoint = ledger.endpoints[mspId];
        if (id === undefined || endpoint === undefined)
            throw new Error(`kx services: no identity or peer for ${mspId}/${name}`);
        const connector = new FabricLedgerConnector({
            peerEndpoint: endpoint,
            hostAlias: TLS_HOST,
            tlsCaCert: Buffer.from(ledger.tlsCaPem),
            channelName: ledger.channelName,
        });
        return connector.connect({
            identity: { mspId, credentials: new Uint8Array(Buffer.from(id.certificatePem)) },
            signer: newPrivateKeySigner(id.privateKeyPem),
        });
    };
}

/** The connection file of each MSP in a fabric-network/connection/ directory. */
const FABRIC_ORG_FILES: Record<string, string> = {
    CSPMSP: 'csp.env',
    FogAMSP: 'foga.env',
    FogBMSP: 'fogb.env',
    ManufacturerMSP: 'manufacturer.env',
};

function fabricConnect(dir: string): (mspId: string) => Promise<LedgerConnection> {
    return async (mspId) => {
        const file = FABRIC_ORG_FILES[mspId];
        if (file === undefined) throw new Error(`kx services: no Fabric organisation for ${mspId}`);
        const config = loadFabricConfig({ file: join(dir, file), env: {} });
        const { identity, signer } = fabricIdentity(config);
        return await FabricLedgerConnector.fromConfig(config).connect({
            identity,
            signer,
            channelName: config.channelName,
        });
    };
}

export class LocalServices implements Services {
    private constructor(
        readonly net: EmbeddedNetwork,
        private readonly dataDir: string,
    ) {}

    static async start(o: ServicesOptions): Promise<LocalServices> {
        const net = new EmbeddedNetwork({
            dataDir: o.dataDir,
            fogs: o.fogs,
            batchTimeoutMs: o.batchTimeoutMs,
            ...(o.chaincodeThreads === true ? { chaincodeExecution: 'worker-per-peer' as const } : {}),
            ...(o.ledger !== undefined ? { connect: remoteConnect(o.ledger) } : {}),
            ...(o.fabricConnectionDir !== undefined ? { connect: fabricConnect(o.fabricConnectionDir) } : {}),
            ...(o.serviceConcurrency !== undefined
                ? {
                      fogOptions: { maxConcurrentSteps: o.serviceConcurrency },
                      cspOptions: { maxConcurrentSessions: o.serviceConcurrency },
                  }
                : {}),
        });
        await net.start();
        return new LocalServices(net, o.dataDir);
    }

    async provision(need: number[]): Promise<DeviceSpec[]> {
        const net = this.net;
        const balance = await net.csp.grantCredit(
            MANUFACTURER_MSP,
            need.reduce((a, b) => a + b, 0),
        );
        // The manufacturer buys on its own peer, which has the CSP's grant moments later.
        await net.manufacturer.waitForCredit(balance);
        return Promise.all(
            need.map(async (n, j) => {
                const id = `kx-${String(j + 1).padStart(3, '0')}`;
                const fog = j % net.fogs.length;
                await net.manufacturer.registerEquipment({
                    equipmentId: id,
                    kind: 'sensor',
                    model: 'bench',
                    fogGroup: net.fogId(fog),
                    privilegeLevel: 1,
                    serviceType: 'upload-download',
                    accessTime: 'always',
                });
                await net.manufacturer.buySessions(id, n);
                const statePath = join(this.dataDir, 'devices', `${id}.json`);
                await net.manufacturer.provisionDevice(id, statePath, { id: net.fogId(fog) });
                return { statePath, brokerUrl: net.fogs[fog]!.deviceBrokerUrl };
            }),
        );
    }

    cpuMs(): Promise<number> {
        return Promise.resolve(cpuMs());
    }

    async close(): Promise<void> {
        await this.net.close();
    }
}

// Forked by kx.ts (--layout processes): serve the services over IPC.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href && process.send) {
    let services: LocalServices | undefined;
    serveParent({
        start: async (body: ServicesOptions) => {
            services = await LocalServices.start(body);
        },
        provision: (body: { need: number[] }) => services!.provision(body.need),
        cpu: () => Promise.resolve(cpuMs()),
        close: async () => {
            await services?.close();
        },
    });
}
