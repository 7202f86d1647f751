/** An embedded network with provisioned devices for the services tests. */
import { tempDir } from './temp-dir.js';
import { join } from 'node:path';
import { EmbeddedNetwork, MANUFACTURER_MSP, type EmbeddedNetworkOptions } from '@m2m-fabric/cli';
import { DeviceAgent } from '@m2m-fabric/device';

process.env.CORE_CHAINCODE_LOGGING_LEVEL ??= 'ERROR';

export interface TestBed {
    net: EmbeddedNetwork;
    dataDir: string;
    statePath(id: string): string;
    /** Registers, buys `sessions` for and provisions a device on fog `fogIndex`. */
    provision(id: string, sessions: number, fogIndex?: number): Promise<string>;
    agent(id: string, fogIndex?: number): Promise<DeviceAgent>;
    close(): Promise<void>;
}

export async function startTestBed(options: Partial<EmbeddedNetworkOptions> = {}): Promise<TestBed> {
    const dataDir = await tempDir('m2m-services-e2e-');
    const net = new EmbeddedNetwork({ dataDir, fogs: 1, batchTimeoutMs: 50, ...options });
    await net.start();
    const agents: DeviceAgent[] = [];
    const statePath = (id: string): string => join(dataDir, 'devices', `${id}.json`);
    return {
        net,
        dataDir,
        statePath,
        async provision(id, sessions, fogIndex = 0) {
            await net.manufacturer.registerEquipment({
                equipmentId: id,
                kind: 'sensor',
                model: 'rpi-4b',
                fogGroup: net.fogId(fogIndex),
                privilegeLevel: 1,
                serviceType: 'upload-download',
                accessTime: 'always',
            });
            await net.csp.grantCredit(MANUFACTURER_MSP, sessions);
            await net.manufacturer.buySessions(id, sessions);
            await net.manufacturer.provisionDevice(id, statePath(id), { id: net.fogId(fogIndex) });
            return statePath(id);
        },
        async agent(id, fogIndex = 0) {
            const a = await DeviceAgent.open({
                statePath: statePath(id),
                brokerUrl: options.externalBroker?.url ?? net.fogs[fogIndex]!.deviceBrokerUrl,
                sessionTimeoutMs: 15_000,
            });
            agents.push(a);
            return a;
        },
        async close() {
            await Promise.allSettled(agents.map((a) => a.close()));
            await net.close();
        },
    };
}
