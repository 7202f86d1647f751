/** What the CSP keeps per session and per telemetry frame (durable maps, 0600 files). */
import type { SessionChannelState } from '@m2m-fabric/protocol';

/** A session in the store. symKey is secret: the store file is 0600 and never logged. */
export interface StoredSession {
    state: 'syncing' | 'established';
    routeId: string;
    primaryHash: string;
    idCert: string;
    fogId: string;
    counter: string;
    dynamicId: string;
    symKey: string;
    synchronisation: string;
    channel?: SessionChannelState;
    /** Revealed by the device inside the channel (never on the ledger). */
    equipmentId?: string;
    /** Where the device was last seen, for pushing instructions. */
    lastClientId?: string;
    establishedAt?: number;
    /**
     * H(Q_i) from the ledger's session record: the keyId the device's communication records name
     * as their sender (absent in sessions stored before records; read from the ledger then).
     */
    publicKeyCommitment?: string;
}

/** One Upload frame's payload as the CSP received it. */
export interface TelemetryRecord {
    routeId: string;
    equipmentId?: string;
    seq: string;
    receivedAt: number;
    payload: string;
}
