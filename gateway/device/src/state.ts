/**
 * The device's local state file (mode 0600, replaced atomically): its secrets (w, equipment id),
 * the fog and CSP keys it was provisioned with, the purchased counter range and the current
 * session. A counter is reserved — written as used — BEFORE M1 leaves the device, so it is never
 * reused, even after a crash between send and reply.
 */
import { readJsonFile, writeJsonAtomic } from '@m2m-fabric/common';
import type { SessionChannelState } from '@m2m-fabric/protocol';

export interface DeviceSessionState {
    counter: string;
    routeId: string;
    symKey: string;
    established: boolean;
    channel: SessionChannelState;
}

export interface DeviceStateFile {
    version: 1;
    suite: string;
    equipmentId: string;
    /** Owner secret w, hex scalar. */
    w: string;
    fog: { id: string; publicKey: string; brokerUrl?: string };
    cspPublicKey: string;
    /** Next unused counter i (decimal). */
    nextCounter: string;
    /** One past the last purchased counter (decimal). */
    endCounter: string;
    /**
     * Highest CSP instruction id handed to the device's handlers: a re-delivered instruction (the
     * CSP did not see the acknowledgement) is acknowledged again but not handled twice.
     */
    lastInstructionId?: string;
    session?: DeviceSessionState;
}

function check(cond: boolean, path: string, what: string): void {
    if (!cond) throw new Error(`device state ${path}: ${what}`);
}

export async function readDeviceState(path: string): Promise<DeviceStateFile | undefined> {
    const raw = (await readJsonFile(path)) as DeviceStateFile | undefined;
    if (raw === undefined) return undefined;
    check(raw.version === 1, path, 'unknown version');
    check(typeof raw.equipmentId === 'string' && raw.equipmentId !== '', path, 'equipmentId missing');
    check(/^[0-9a-f]+$/.test(raw.w), path, 'w must be hex');
    check(/^\d+$/.test(raw.nextCounter) && /^\d+$/.test(raw.endCounter), path, 'counters must be decimal');
    check(typeof raw.fog?.id === 'string' && /^[0-9a-f]+$/.test(raw.fog.publicKey), path, 'fog id/key missing');
    check(/^[0-9a-f]+$/.test(raw.cspPublicKey), path, 'cspPublicKey missing');
    return raw;
}

export async function writeDeviceState(path: string, state: DeviceStateFile): Promise<void> {
    await writeJsonAtomic(path, state);
}
