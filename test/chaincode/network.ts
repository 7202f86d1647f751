/**
 * A test network on the embedded ledger: the channel's organisations (CSP, two fogs, a
 * manufacturer, and an organisation the chaincode gives no role), one identity per role carrying
 * the `m2m.role` attribute, identities with a wrong or missing attribute, the chaincode's
 * contracts plus the test-only inspect contract, and the off-chain actors' keys.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { contracts } from '@m2m-fabric/chaincode';
import type { Suite } from '@m2m-fabric/protocol';
import type { ChaincodeEvent, LedgerConnection, LedgerContract } from '@m2m-fabric/sdk';
import { EmbeddedLedger } from '@m2m-fabric/embedded-ledger';

import { newCsp, newFog } from './actors.js';
import type { CspActor, FogActor } from './actors.js';
import { InspectContract } from './inspect-contract.js';
import type { StateEntry } from './inspect-contract.js';

export const CHAINCODE = 'm2m';
export const ORGANISATIONS = ['CSPMSP', 'FogAMSP', 'FogBMSP', 'ManufacturerMSP', 'OtherMSP'] as const;

/** A client identity connected to the channel. */
export interface Party {
    readonly label: string;
    readonly mspId: string;
    contract(name: string): LedgerContract;
}

export interface Parties {
    csp: Party;
    fogA: Party;
    fogB: Party;
    manufacturer: Party;
    /** An organisation on the channel that the chaincode gives no role (holds the csp attribute). */
    outsider: Party;
    /** CSPMSP identity without the role attribute. */
    cspWithoutRole: Party;
    /** FogAMSP identity whose attribute claims the manufacturer role. */
    fogAsManufacturer: Party;
}

export interface EventRecorder {
    /** Events received so far (waits until a commit has delivered every pending one). */
    drain(): Promise<ChaincodeEvent[]>;
}

export interface TestNetwork {
    readonly suite: Suite;
    readonly csp: CspActor;
    readonly fogA: FogActor;
    readonly fogB: FogActor;
    readonly parties: Parties;
    readonly ledger: EmbeddedLedger;
    /** The whole world state of the chaincode, as the inspect contract lists it. */
    dumpState(): Promise<StateEntry[]>;
    /** A digest of the world state (keys and values). */
    stateFingerprint(): Promise<string>;
    recordEvents(): Promise<EventRecorder>;
    close(): Promise<void>;
}

export async function startNetwork(
    suite: Suite,
    options: { batchTimeoutMs?: number; channelName?: string } = {},
): Promise<TestNetwork> {
    const dataDir = mkdtempSync(join(tmpdir(), 'm2m-chaincode-'));
    const ledger = await EmbeddedLedger.open({
        dataDir,
        organisations: ORGANISATIONS,
        chaincodes: [{ name: CHAINCODE, contracts: [...contracts, InspectContract] }],
        batch: { batchTimeoutMs: options.batchTimeoutMs ?? 5 },
        sync: false,
        ...(options.channelName === undefined ? {} : { channelName: options.channelName }),
    });
    const connections: LedgerConnection[] = [];
    const party = async (label: string, mspId: string, role: string | undefined): Promise<Party> => {
        const enrolment = await ledger.enrol(
            mspId,
            label,
            role === undefined ? {} : { attributes: { 'm2m.role': role } },
        );
        const connection = await ledger.connect({ identity: enrolment.identity, signer: enrolment.signer });
        connections.push(connection);
        return { label, mspId, contract: (name: string) => connection.getContract(CHAINCODE, name) };
    };
    const parties: Parties = {
        csp: await party('csp', 'CSPMSP', 'csp'),
        fogA: await party('fog-a', 'FogAMSP', 'fog'),
        fogB: await party('fog-b', 'FogBMSP', 'fog'),
        manufacturer: await party('manufacturer', 'ManufacturerMSP', 'manufacturer'),
        outsider: await party('outsider', 'OtherMSP', 'csp'),
        cspWithoutRole: await party('csp-plain', 'CSPMSP', undefined),
        fogAsManufacturer: await party('fog-a-manufacturer', 'FogAMSP', 'manufacturer'),
    };
    const csp = await newCsp(suite);
    const fogA = await newFog(csp, 'fog-a', 'FogAMSP');
    const fogB = await newFog(csp, 'fog-b', 'FogBMSP');

    const dumpState = async (): Promise<StateEntry[]> => {
        const payload = await parties.csp.contract('inspect').evaluate('dumpState');
        return JSON.parse(new TextDecoder().decode(payload)) as StateEntry[];
    };
    const streams: { close(): void }[] = [];
    return {
        suite,
        csp,
        fogA,
        fogB,
        parties,
        ledger,
        dumpState,
        async stateFingerprint() {
            const entries = await dumpState();
            return createHash('sha256').update(JSON.stringify(entries)).digest('hex');
        },
        async recordEvents() {
            const connection = connections[0];
            if (connection === undefined) throw new Error('no connection');
            const stream = await connection.getChaincodeEvents(CHAINCODE);
            streams.push(stream);
            const received: ChaincodeEvent[] = [];
            const pump = (async () => {
                for await (const event of stream) received.push(event);
            })();
            return {
                async drain() {
                    // An evaluate cannot flush events; a short wait lets the stream catch up with the last commit.
                    for (let spins = 0; spins < 50; spins++) {
                        const before = received.length;
                        await new Promise((resolve) => setTimeout(resolve, 20));
                        if (received.length === before && spins > 2) break;
                    }
                    void pump;
                    return [...received];
                },
            };
        },
        async close() {
            for (const stream of streams) stream.close();
            for (const connection of connections) connection.close();
            await ledger.close();
            rmSync(dataDir, { recursive: true, force: true });
        },
    };
}
