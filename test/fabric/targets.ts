/**
 * Where the `npm run test:fabric` suite runs: a real Fabric network (connection files of the four
 * organisations, through @hyperledger/fabric-gateway) or the embedded ledger. The suite sees only
 * the ledger client interface (LedgerConnector → LedgerConnection → LedgerContract), so both
 * targets run exactly the same test code.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

import { FabricLedgerConnector, fabricIdentity, loadFabricConfig } from '@m2m-fabric/gateway/ledger/fabric/index';
import {
    EmbeddedLedger,
    type LedgerConnection,
    type LedgerConnector,
    type LedgerIdentity,
    type LedgerSigner,
} from '@m2m-fabric/gateway/ledger/index';

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
    readonly name: 'embedded' | 'fabric';
    readonly chaincodeName: string;
    /** Opens a connection of `org`'s service identity (through `org`'s own peer on Fabric). */
    connect(org: Org): Promise<LedgerConnection>;
    /**
     * Restarts the peer `org`'s connections use. Fabric: runs M2M_FABRIC_RESTART_PEER_CMD with
     * {org} replaced (e.g. `docker restart peer0.{org}.m2m.example.com`); undefined when not set.
     * Embedded: closes the ledger process state and reopens it from disk.
     */
    readonly restartPeer: ((org: Org) => Promise<void>) | undefined;
    close(): Promise<void>;
}

/** How the suite was asked to run, or why it is skipped. */
export function chooseTarget(
    argv: readonly string[],
    env: NodeJS.ProcessEnv,
): 'embedded' | 'fabric' | { skip: string } {
    const requested = argv.includes('--embedded') ? 'embedded' : env.M2M_FABRIC_TEST_TARGET;
    if (requested === 'embedded') return 'embedded';
    if (requested !== undefined && requested !== 'fabric') {
        return { skip: `M2M_FABRIC_TEST_TARGET must be 'fabric' or 'embedded', got '${requested}'` };
    }
    if (env.FABRIC_CONNECTION === undefined || env.FABRIC_CONNECTION === '') {
        return {
            skip:
                'no Fabric network configured: set FABRIC_CONNECTION to a directory holding csp, foga, fogb and ' +
                'manufacturer .env/.json connection files (e.g. fabric-network/connection), or run ' +
                '`npm run test:fabric -- --embedded` to run the suite on the embedded ledger',
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

export async function openFabricTarget(env: NodeJS.ProcessEnv): Promise<SuiteTarget> {
    const dir = env.FABRIC_CONNECTION ?? '';
    const configs = Object.fromEntries(
        // Each organisation's file alone: FABRIC_* variables of this process would apply to all four.
        ORGS.map((org) => [org, loadFabricConfig({ file: connectionFile(dir, org), env: {} })]),
    ) as Record<Org, ReturnType<typeof loadFabricConfig>>;
    const chaincodeNames = new Set(ORGS.map((org) => configs[org].chaincodeName));
    if (chaincodeNames.size !== 1)
        throw new Error(`the connection files name different chaincodes: ${[...chaincodeNames].join(', ')}`);
    const restartCommand = env.M2M_FABRIC_RESTART_PEER_CMD;
    return {
        name: 'fabric',
        chaincodeName: configs.csp.chaincodeName,
        async connect(org) {
            const config = configs[org];
            const { identity, signer } = fabricIdentity(config);
            return await FabricLedgerConnector.fromConfig(config, {
                eventReconnect: { initialDelayMs: 250, maxDelayMs: 2000 },
            }).connect({ identity, signer, channelName: config.channelName });
        },
        restartPeer:
            restartCommand === undefined || restartCommand === ''
                ? undefined
                : async (org) => {
                      await runShell(restartCommand.replaceAll('{org}', org));
                  },
        async close() {},
    };
}

async function runShell(command: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
        const child = spawn('sh', ['-c', command], { stdio: 'inherit' });
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`'${command}' exited with ${code}`))));
    });
}

export async function openEmbeddedTarget(): Promise<SuiteTarget> {
    // Loaded here, not at module load, so that a skipped run does not need the chaincode at all.
    const { contracts } = await import('@m2m-fabric/chaincode');
    const dir = await mkdtemp(join(tmpdir(), 'm2m-fabric-suite-'));
    const open = async (): Promise<EmbeddedLedger> =>
        await EmbeddedLedger.open({
            dataDir: dir,
            organisations: ORGS.map((org) => MSP[org]),
            chaincodes: [{ name: 'm2m', contracts }],
            // Short batches keep the suite fast; block cutting is otherwise Fabric's.
            batch: { batchTimeoutMs: 20 },
        });
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
        name: 'embedded',
        chaincodeName: 'm2m',
        async connect(org) {
            const { identity, signer } = await identityOf(org);
            return await connector().connect({ identity, signer });
        },
        restartPeer: async () => {
            await ledger.close();
            ledger = await open();
        },
        async close() {
            await ledger.close();
            await rm(dir, { recursive: true, force: true });
        },
    };
}
