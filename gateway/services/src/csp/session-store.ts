/** What the CSP keeps per session and per telemetry frame (durable maps, 0600 files). */
import { suiteOr, type SessionChannelState, type Suite } from '@m2m-fabric/protocol';

/**
 * A session in the store. trafficKey is secret: the store file is 0600 and never logged. Neither
 * symKey_i nor the CSP's ephemeral x_C is ever stored (forward secrecy: K_i cannot be re-derived
 * from d_c and the ledger once the session's record is gone).
 */
export interface StoredSession {
    state: 'syncing' | 'established';
    /**
     * The session's suite when it is not the ledger's (a certificate of a CA key epoch of another
     * suite): its channel, shares and Confirm are in that suite.
     */
    suite?: string;
    routeId: string;
    primaryHash: string;
    idCert: string;
    fogId: string;
    counter: string;
    dynamicId: string;
    /**
     * K_i, the forward-secret traffic key keying the session channel (hex): derived from symKey_i
     * and the ephemeral ECDH Z_e (chaincode/protocol/src/forward-secrecy.ts).
     */
    trafficKey: string;
    /** E_C (compressed, hex): public, sent in front of every forward-secret Confirm. */
    cspShare: string;
    /**
     * E_D (compressed, hex), the device's share K_i was derived from: a re-sent M4 must carry the
     * same one to get the same E_C ‖ Confirm (attempts of one certificate reuse x_D).
     */
    deviceShare: string;
    /** H(symKey_i) (hex), compared with the ledger's record when a crash left the outcome unknown. */
    symKeyCommitment: string;
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
    /**
     * Q_i (SEC1 compressed, hex) from the device's first verified record of the session: a reader
     * of the session's sealed payloads (records/envelopes.ts).
     */
    recordPublicKey?: string;
}

/** One Upload frame's payload as the CSP received it. */
export interface TelemetryRecord {
    routeId: string;
    equipmentId?: string;
    seq: string;
    receivedAt: number;
    payload: string;
}

/** The suite of a stored session: its own, or the ledger's. */
export function sessionSuite(ledgerSuite: Suite, s: Pick<StoredSession, 'suite'>): Suite {
    return suiteOr(s.suite, ledgerSuite);
}
