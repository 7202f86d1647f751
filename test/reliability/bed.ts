/**
 * An embedded network with provisioned devices for the reliability suites. Like the services tests'
 * test bed, but without node:test (the suites also run as plain commands).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedNetwork, MANUFACTURER_MSP, type EmbeddedNetworkOptions } from '@m2m-fabric/cli';

export interface Bed {
    net: EmbeddedNetwork;
    dataDir: string;
    statePath(id: string): string;
    provision(id: string, sessions: number): Promise<string>;
    close(): Promise<void>;
}

export async function startBed(options: Partial<EmbeddedNetworkOptions> = {}): Promise<Bed> {
    const dataDir = await mkdtemp(join(tmpdir(), 'm2m-reliability-'));
    const net = new EmbeddedNetwork({ dataDir, fogs: 1, batchTimeoutMs: 50, ...options });
    await net.start();
    const statePath = (id: string): string => join(dataDir, 'devices', `${id}.json`);
    return {
        net,
        dataDir,
        statePath,
        async provision(id, sessions) {
            await net.manufacturer.registerEquipment({
                equipmentId: id,
                kind: 'sensor',
                model: 'rpi-4b',
                fogGroup: net.fogId(0),
                privilegeLevel: 1,
                serviceType: 'upload-download',
                accessTime: 'always',
            });
            await net.csp.grantCredit(MANUFACTURER_MSP, sessions);
            await net.manufacturer.buySessions(id, sessions);
            await net.manufacturer.provisionDevice(id, statePath(id), { id: net.fogId(0) });
            return statePath(id);
        },
        async close() {
            await net.close();
            await rm(dataDir, { recursive: true, force: true });
        },
    };
}
