/**
 * The IoT-CSP session channel keyed from symKey_i: AES-256-GCM, one key per direction derived with
 * HKDF, per-direction 64-bit sequence numbers as nonces, a sliding replay window, and typed
 * messages (upload = telemetry, download = instructions/parameters, as in paper 000).
 */
import type { Suite } from './suite.js';

export const FrameType = {
    /** CSP -> device: "session established", the first frame under the new key. */
    Confirm: 1,
    /** Device -> CSP telemetry. */
    Upload: 2,
    /** CSP -> device instructions / parameters. */
    Download: 3,
    /** Acknowledgement of a frame's sequence number. */
    Ack: 4,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export type ChannelRole = 'device' | 'csp';

export interface OpenedFrame {
    type: FrameType;
    seq: bigint;
    payload: Uint8Array;
}

/** Stateful endpoint of one session; `exportState`/`restore` let a restarted service resume. */
export declare class SessionChannel {
    static create(suite: Suite, symKey: Uint8Array, role: ChannelRole, sessionId: Uint8Array): Promise<SessionChannel>;
    /** Encrypts; the frame header (version, type, seq) is authenticated as AAD. */
    seal(type: FrameType, payload: Uint8Array): Promise<Uint8Array>;
    /**
     * Decrypts and enforces the replay window. Throws ProtocolError(DecryptionFailed) for a
     * tampered frame or wrong key, ProtocolError(ReplayDetected) for a replayed or too-old frame,
     * DecodeError for a malformed one. A rejected frame does not change the channel state.
     */
    open(frame: Uint8Array): Promise<OpenedFrame>;
    exportState(): { sendSeq: string; recvHighest: string; recvWindow: string };
}
