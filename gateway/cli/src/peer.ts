/**
 * `m2m peer`: the embedded ledger as a stand-alone "Fabric network" process. It runs the m2m
 * chaincode on the four organisations of fabric-network/ (CSP, FogA, FogB, Manufacturer), serves a
 * Fabric Gateway endpoint per organisation over TLS, and writes one connection file per service
 * identity. The fog gateway, CSP backend and manufacturer client then run as separate processes
 * with `FABRIC_CONNECTION=<dir>/<org>.env` — the code path they use against a real Fabric network.
 */
import '@m2m-fabric/embedded-ledger'; // first: quiets fabric-contract-api's load-time logging

import { rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { DEFAULT_CHAINCODE_NAME } from '@m2m-fabric/sdk';
import { ConfigError, loadConfig } from '@m2m-fabric/common';
import { flags, overridesFrom, schemaFlags } from './services.js';
import { PEER_SCHEMA, settingsHelp } from './settings.js';
import { CHAINCODE_MODULE, CSP_MSP, FOG_MSPS, MANUFACTURER_MSP } from './demo/network.js';
import {
    EmbeddedLedger,
    EndpointInUseError,
    quietBindFailureLog,
    serveEmbeddedPeers,
    type PeerClient,
} from '@m2m-fabric/embedded-ledger';
import { ensureSecretDir } from '@m2m-fabric/common';

const USAGE = `usage: m2m peer [--data-dir DIR] [--batch-timeout S] [--host H] [--base-port P] [--connection-dir DIR]

Runs the embedded ledger with the m2m chaincode for ${CSP_MSP}, ${FOG_MSPS.join(', ')} and ${MANUFACTURER_MSP}, one
Fabric Gateway endpoint (TLS) per organisation on ports P, P+1, ... (default 7051; 0 = any free port),
and writes connection files csp.env, foga.env, fogb.env, manufacturer.env to --connection-dir
(default <data-dir>/connection). Then, in other terminals:
  FABRIC_CONNECTION=<dir>/csp.env M2M_STORE_DIR=<shared dir> m2m csp ...
  FABRIC_CONNECTION=<dir>/foga.env M2M_STORE_DIR=<shared dir> m2m fog --fog.id fog-1 ...
  FABRIC_CONNECTION=<dir>/manufacturer.env m2m manufacturer ...
The process id is written to <data-dir>/peer.pid; SIGINT/SIGTERM stop it cleanly.`;

/** The service identities of fabric-network/connection, with the chaincode role attribute each needs. */
export const PEER_CLIENTS: readonly PeerClient[] = [
    { file: 'csp', mspId: CSP_MSP, identity: 'csp-backend', attributes: { 'm2m.role': 'csp' } },
    { file: 'foga', mspId: FOG_MSPS[0], identity: 'fog-svc', attributes: { 'm2m.role': 'fog' } },
    { file: 'fogb', mspId: FOG_MSPS[1], identity: 'fog-svc', attributes: { 'm2m.role': 'fog' } },
    {
        file: 'manufacturer',
        mspId: MANUFACTURER_MSP,
        identity: 'manufacturer',
        attributes: { 'm2m.role': 'manufacturer' },
    },
];

export async function runPeer(argv: string[]): Promise<void> {
    const { values } = flags(argv, schemaFlags(PEER_SCHEMA));
    if (values.help === true) {
        console.log(`${USAGE}\n${settingsHelp('peer')}`);
        return;
    }
    const c = loadConfig(PEER_SCHEMA, {
        file: values.config as string | undefined,
        overrides: overridesFrom(values, PEER_SCHEMA),
    });
    const batchSeconds = c['batch-timeout'];
    const basePort = c['base-port'];

    quietBindFailureLog();
    const dataDir = resolve(c['data-dir']);
    const connectionDir = resolve(c['connection-dir'] ?? join(dataDir, 'connection'));
    await ensureSecretDir(dataDir);
    const { contracts } = await import('@m2m-fabric/chaincode');
    const ledger = await EmbeddedLedger.open({
        dataDir: join(dataDir, 'ledger'),
        organisations: [CSP_MSP, ...FOG_MSPS, MANUFACTURER_MSP],
        chaincodes: [{ name: DEFAULT_CHAINCODE_NAME, contracts, module: CHAINCODE_MODULE }],
        batch: { batchTimeoutMs: Math.round(batchSeconds * 1000) },
        // As on Fabric: each peer runs its own chaincode, apart from the peer (docs/ledger.md).
        chaincodeExecution: 'worker-per-peer',
    });
    try {
        const peers = await serveEmbeddedPeers({
            ledger,
            clients: PEER_CLIENTS,
            chaincodeName: DEFAULT_CHAINCODE_NAME,
            connectionDir,
            host: c.host,
            basePort,
        }).catch((err: unknown) => {
            if (!(err instanceof EndpointInUseError)) throw err;
            const port = err.address.slice(err.address.lastIndexOf(':') + 1);
            throw new ConfigError([
                `port ${port} is already in use (${err.address}, the Gateway endpoint of ${err.mspId}'s peer); ` +
                    `m2m peer listens on --base-port ` +
                    `${basePort}..${basePort + PEER_CLIENTS.length - 1}: stop the process holding it, ` +
                    `choose another --base-port, or pass --base-port 0 for free ports`,
            ]);
        });
        console.log(
            `embedded ledger ${join(dataDir, 'ledger')}: channel ${ledger.channelName}, height ${ledger.height}`,
        );
        for (const [mspId, endpoint] of peers.endpoints) console.log(`peer of ${mspId}: ${endpoint}`);
        for (const [name, file] of peers.connectionFiles) console.log(`connection ${name}: FABRIC_CONNECTION=${file}`);
        // For scripts that restart the "peer" (e.g. M2M_FABRIC_RESTART_PEER_CMD of npm run test:fabric).
        const pidFile = join(dataDir, 'peer.pid');
        await writeFile(pidFile, `${process.pid}\n`);
        console.log(`running (pid ${process.pid} in ${pidFile}); Ctrl-C to stop`);
        await new Promise<void>((done) => {
            process.once('SIGINT', () => done());
            process.once('SIGTERM', () => done());
        });
        await peers.close();
        await rm(pidFile, { force: true });
    } finally {
        await ledger.close();
    }
}
