/**
 * Serves an embedded ledger as a set of Fabric peers: one Gateway endpoint per organisation (TLS,
 * its own port) and, for each service identity, a connection file in the `FABRIC_*` format the
 * fog gateway, CSP backend and manufacturer client read from `FABRIC_CONNECTION` — the same files
 * `fabric-network/connection/` holds for a real network. A service started with such a file runs
 * the real-Fabric code path (fabric-gateway over gRPC) against the embedded ledger.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join, relative, resolve } from 'node:path';

import { EmbeddedGatewayServer } from './gateway-server.js';
import type { EmbeddedLedger } from './ledger.js';
import { loadOrCreateTlsServer } from './tls.js';

/** The DNS name every endpoint's TLS certificate carries besides its listening host. */
const TLS_LOCAL_NAME = 'localhost';

/** One service identity to enrol and describe in a connection file. */
export interface PeerClient {
    /** Connection file name without extension, e.g. `foga` → `foga.env`. */
    readonly file: string;
    readonly mspId: string;
    /** Enrolment name of the service identity (reused if already enrolled). */
    readonly identity: string;
    /** Certificate attributes, e.g. `{ 'm2m.role': 'fog' }`. */
    readonly attributes?: Readonly<Record<string, string>>;
}

export interface ServePeersOptions {
    readonly ledger: EmbeddedLedger;
    readonly clients: readonly PeerClient[];
    readonly chaincodeName: string;
    /** Directory for the `.env` connection files. */
    readonly connectionDir: string;
    /** Listen address; default 127.0.0.1. */
    readonly host?: string;
    /** Port of the first organisation's endpoint; the others follow (+1 each). 0 = any free ports. */
    readonly basePort?: number;
}

export interface ServedPeers {
    /** Endpoint (`host:port`) of each organisation. */
    readonly endpoints: ReadonlyMap<string, string>;
    /** Connection file of each client, by `file` name. */
    readonly connectionFiles: ReadonlyMap<string, string>;
    close(): Promise<void>;
}

/**
 * @throws {RangeError} when: organisation … is not on the channel
 */
export async function serveEmbeddedPeers(options: ServePeersOptions): Promise<ServedPeers> {
    const host = options.host ?? '127.0.0.1';
    const servers: EmbeddedGatewayServer[] = [];
    const endpoints = new Map<string, string>();
    const tlsCaPaths = new Map<string, string>();
    try {
        for (const [index, mspId] of options.ledger.organisations.entries()) {
            const orgDir = options.ledger.organisation(mspId).dir;
            const tls = await loadOrCreateTlsServer(orgDir, mspId, [host, TLS_LOCAL_NAME]);
            const port = options.basePort === undefined || options.basePort === 0 ? 0 : options.basePort + index;
            const server = await EmbeddedGatewayServer.start(options.ledger, { mspId, host, port, tls });
            servers.push(server);
            endpoints.set(mspId, server.endpoint);
            tlsCaPaths.set(mspId, join(orgDir, 'tls', 'ca-cert.pem'));
        }
        await mkdir(options.connectionDir, { recursive: true, mode: 0o700 });
        const connectionFiles = new Map<string, string>();
        for (const client of options.clients) {
            const endpoint = endpoints.get(client.mspId);
            if (endpoint === undefined) throw new RangeError(`organisation ${client.mspId} is not on the channel`);
            const organisation = options.ledger.organisation(client.mspId);
            await organisation.loadOrEnrol(client.identity, { attributes: { ...client.attributes } });
            const identityDir = join(organisation.dir, 'clients', client.identity);
            const file = resolve(options.connectionDir, `${client.file}.env`);
            // Paths relative to the file, as in fabric-network/connection, so the directory can move.
            const rel = (path: string): string => relative(options.connectionDir, path);
            const lines = [
                `# Embedded peer of ${client.mspId} (m2m peer); identity ${client.identity}.`,
                `FABRIC_PEER_ENDPOINT=${endpoint}`,
                // TLS may not name a server by IP address (RFC 6066; Node warns DEP0123 when gRPC
                // does), so clients of an IP endpoint ask for 'localhost', which the certificate covers.
                ...(isIP(host) === 0 ? [] : [`FABRIC_PEER_HOST_ALIAS=${TLS_LOCAL_NAME}`]),
                `FABRIC_TLS_CA_CERT=${rel(tlsCaPaths.get(client.mspId) ?? '')}`,
                `FABRIC_MSP_ID=${client.mspId}`,
                `FABRIC_CERT=${rel(join(identityDir, 'cert.pem'))}`,
                `FABRIC_KEY=${rel(join(identityDir, 'key.pem'))}`,
                `FABRIC_CHANNEL=${options.ledger.channelName}`,
                `FABRIC_CHAINCODE=${options.chaincodeName}`,
            ];
            await writeFile(file, `${lines.join('\n')}\n`, { mode: 0o600 });
            connectionFiles.set(client.file, file);
        }
        return {
            endpoints,
            connectionFiles,
            close: async () => {
                await Promise.all(servers.map((server) => server.close()));
            },
        };
    } catch (err) {
        await Promise.all(servers.map((server) => server.close()));
        throw err;
    }
}
