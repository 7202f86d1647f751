/**
 * The IoT-CSP session channel keyed from symKey_i: AES-256-GCM, one key per direction derived with
 * HKDF, per-direction 64-bit sequence numbers as nonces, a sliding replay window, and typed
 * messages (upload = telemetry, download = instructions/parameters, as in paper 000).
 *
 * Frame: version (1) | type (1) | seq (u64 BE) | AES-256-GCM(payload) | tag (16). The 10-byte
 * header is the AAD. The nonce is 0x00000000 || seq: each direction has its own key, so a
 * (key, nonce) pair is never reused as long as the sender never reuses a sequence number — which
 * is why a restarted endpoint must resume from exportState(), never from zero.
 */
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';
import { DecodeError, ErrorCode, ProtocolError } from './errors.js';
import { DST } from './hashing.js';
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

/** What exportState() returns: decimal sequence numbers and the window bitmap in hex. */
export interface SessionChannelState {
    /** Next sequence number this endpoint will send. */
    sendSeq: string;
    /** Highest sequence number accepted from the peer, or '-1' before the first. */
    recvHighest: string;
    /** Bit k set = frame (recvHighest - k) was accepted; 16 hex digits. */
    recvWindow: string;
}

export const FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES = 10;
export const FRAME_TAG_BYTES = 16;
/** Frames up to this many sequence numbers behind the highest accepted one can still arrive once. */
export const REPLAY_WINDOW = 64;
const MAX_SEQ = (1n << 64n) - 1n;
const WINDOW_MASK = (1n << BigInt(REPLAY_WINDOW)) - 1n;
const KEY_BYTES = 32;

/** Which frame types each sender may produce; a frame of another type is refused on both ends. */
const TYPES_SENT_BY: Record<ChannelRole, ReadonlySet<number>> = {
    device: new Set([FrameType.Upload, FrameType.Ack]),
    csp: new Set([FrameType.Confirm, FrameType.Download, FrameType.Ack]),
};
const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(FrameType));

function peerOf(role: ChannelRole): ChannelRole {
    return role === 'device' ? 'csp' : 'device';
}

/**
 * K_dir = HKDF-<suite hash>(ikm = symKey_i, salt = sessionId, info = DST || suite || direction ||
 * sessionId), 32 bytes. The session id goes into both so two sessions never share a key even if a
 * symKey repeated.
 */
function deriveDirectionKey(suite: Suite, symKey: Uint8Array, sessionId: Uint8Array, sender: ChannelRole): Buffer {
    const hash = suite.hashBytes === 32 ? 'sha256' : 'sha384';
    const label = Buffer.from(`${DST.SessionChannel}|${suite.id}|${sender}-to-${peerOf(sender)}|`, 'utf8');
    const info = Buffer.concat([label, sessionId]);
    return Buffer.from(hkdfSync(hash, symKey, sessionId, info, KEY_BYTES));
}

function encodeHeader(type: number, seq: bigint): Buffer {
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header[0] = FRAME_VERSION;
    header[1] = type;
    header.writeBigUInt64BE(seq, 2);
    return header;
}

function nonceFor(seq: bigint): Buffer {
    const nonce = Buffer.alloc(12);
    nonce.writeBigUInt64BE(seq, 4);
    return nonce;
}

/** Stateful endpoint of one session; `exportState`/`restore` let a restarted service resume. */
export class SessionChannel {
    readonly suite: Suite;
    readonly role: ChannelRole;
    readonly #sendKey: Buffer;
    readonly #recvKey: Buffer;
    #sendSeq = 0n;
    /** -1n until the first frame is accepted. */
    #recvHighest = -1n;
    #recvWindow = 0n;

    private constructor(suite: Suite, role: ChannelRole, sendKey: Buffer, recvKey: Buffer) {
        this.suite = suite;
        this.role = role;
        this.#sendKey = sendKey;
        this.#recvKey = recvKey;
    }

    static create(suite: Suite, symKey: Uint8Array, role: ChannelRole, sessionId: Uint8Array): Promise<SessionChannel> {
        return settle(() => SessionChannel.#create(suite, symKey, role, sessionId));
    }

    static #create(suite: Suite, symKey: Uint8Array, role: ChannelRole, sessionId: Uint8Array): SessionChannel {
        if (role !== 'device' && role !== 'csp') {
            throw new TypeError(`unknown channel role ${String(role)}`);
        }
        if (symKey.length !== suite.hashBytes) {
            throw new RangeError(`symKey must be ${suite.hashBytes} bytes for ${suite.id}`);
        }
        if (sessionId.length === 0 || sessionId.length > 255) {
            throw new RangeError('sessionId must be 1..255 bytes');
        }
        const sendKey = deriveDirectionKey(suite, symKey, sessionId, role);
        const recvKey = deriveDirectionKey(suite, symKey, sessionId, peerOf(role));
        return new SessionChannel(suite, role, sendKey, recvKey);
    }

    /**
     * A channel resumed from exportState(); the state is validated before anything is used.
     * @throws {DecodeError} `invalidValue` when: recvWindow must be 16 lowercase hex digits; recvWindow does not match recvHighest
     */
    static async restore(
        suite: Suite,
        symKey: Uint8Array,
        role: ChannelRole,
        sessionId: Uint8Array,
        state: SessionChannelState,
    ): Promise<SessionChannel> {
        const channel = await SessionChannel.create(suite, symKey, role, sessionId);
        const sendSeq = parseDecimal(state.sendSeq, 0n, MAX_SEQ + 1n, 'sendSeq');
        const recvHighest = parseDecimal(state.recvHighest, -1n, MAX_SEQ, 'recvHighest');
        if (!/^[0-9a-f]{16}$/.test(state.recvWindow)) {
            throw new DecodeError('invalidValue', 'recvWindow must be 16 lowercase hex digits');
        }
        const recvWindow = BigInt(`0x${state.recvWindow}`);
        // Bit 0 stands for recvHighest itself, so it is set exactly when a frame was accepted, and
        // no bit may point below sequence number 0.
        const consistent =
            recvHighest < 0n ? recvWindow === 0n : (recvWindow & 1n) === 1n && recvWindow >> (recvHighest + 1n) === 0n;
        if (!consistent) {
            throw new DecodeError('invalidValue', 'recvWindow does not match recvHighest');
        }
        channel.#sendSeq = sendSeq;
        channel.#recvHighest = recvHighest;
        channel.#recvWindow = recvWindow;
        return channel;
    }

    /** Encrypts; the frame header (version, type, seq) is authenticated as AAD. */
    seal(type: FrameType, payload: Uint8Array): Promise<Uint8Array> {
        return settle(() => this.#seal(type, payload));
    }

    #seal(type: FrameType, payload: Uint8Array): Uint8Array {
        if (!TYPES_SENT_BY[this.role].has(type)) {
            throw new TypeError(`a ${this.role} does not send frames of type ${String(type)}`);
        }
        if (this.#sendSeq > MAX_SEQ) {
            throw new RangeError('session channel sequence numbers exhausted: establish a new session');
        }
        const seq = this.#sendSeq;
        const header = encodeHeader(type, seq);
        const cipher = createCipheriv('aes-256-gcm', this.#sendKey, nonceFor(seq), { authTagLength: FRAME_TAG_BYTES });
        cipher.setAAD(header);
        const body = Buffer.concat([cipher.update(payload), cipher.final(), cipher.getAuthTag()]);
        this.#sendSeq = seq + 1n;
        return new Uint8Array(Buffer.concat([header, body]));
    }

    /**
     * Decrypts and enforces the replay window. Throws ProtocolError(DecryptionFailed) for a
     * tampered frame or wrong key, ProtocolError(ReplayDetected) for a replayed or too-old frame,
     * DecodeError for a malformed one. A rejected frame does not change the channel state.
     */
    open(frame: Uint8Array): Promise<OpenedFrame> {
        return settle(() => this.#open(frame));
    }

    #open(frame: Uint8Array): OpenedFrame {
        if (frame.length < FRAME_HEADER_BYTES + FRAME_TAG_BYTES) {
            throw new DecodeError('truncated', `frame of ${frame.length} bytes is shorter than header and tag`);
        }
        const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.length);
        const version = buf[0];
        if (version !== FRAME_VERSION) {
            throw new DecodeError('unknownVersion', `frame version ${String(version)}`);
        }
        const type = buf[1] ?? -1;
        if (!KNOWN_TYPES.has(type)) {
            throw new DecodeError('unknownType', `frame type ${type}`);
        }
        if (!TYPES_SENT_BY[peerOf(this.role)].has(type)) {
            throw new DecodeError('unknownType', `a ${peerOf(this.role)} does not send frames of type ${type}`);
        }
        const seq = buf.readBigUInt64BE(2);
        // The window check comes before decryption (as in IPsec, RFC 4303 §3.4.3) and the window is
        // updated only after the tag verified, so neither a replay nor a forgery changes state.
        this.#checkWindow(seq);
        const header = buf.subarray(0, FRAME_HEADER_BYTES);
        const ciphertext = buf.subarray(FRAME_HEADER_BYTES, buf.length - FRAME_TAG_BYTES);
        const tag = buf.subarray(buf.length - FRAME_TAG_BYTES);
        let payload: Buffer;
        try {
            const decipher = createDecipheriv('aes-256-gcm', this.#recvKey, nonceFor(seq), {
                authTagLength: FRAME_TAG_BYTES,
            });
            decipher.setAAD(header);
            decipher.setAuthTag(tag);
            payload = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
        } catch (e) {
            throw new ProtocolError(ErrorCode.DecryptionFailed, 'session frame does not authenticate', { cause: e });
        }
        this.#accept(seq);
        return { type: type as FrameType, seq, payload: new Uint8Array(payload) };
    }

    #checkWindow(seq: bigint): void {
        if (seq > this.#recvHighest) return;
        const age = this.#recvHighest - seq;
        if (age >= BigInt(REPLAY_WINDOW)) {
            throw new ProtocolError(ErrorCode.ReplayDetected, `frame ${seq} is older than the replay window`);
        }
        if ((this.#recvWindow >> age) & 1n) {
            throw new ProtocolError(ErrorCode.ReplayDetected, `frame ${seq} was already received`);
        }
    }

    #accept(seq: bigint): void {
        if (seq > this.#recvHighest) {
            const shift = seq - this.#recvHighest;
            this.#recvWindow = shift >= BigInt(REPLAY_WINDOW) ? 1n : ((this.#recvWindow << shift) | 1n) & WINDOW_MASK;
            this.#recvHighest = seq;
        } else {
            this.#recvWindow |= 1n << (this.#recvHighest - seq);
        }
    }

    exportState(): SessionChannelState {
        return {
            sendSeq: this.#sendSeq.toString(10),
            recvHighest: this.#recvHighest.toString(10),
            recvWindow: this.#recvWindow.toString(16).padStart(16, '0'),
        };
    }

    /** Keys stay out of logs and JSON. */
    toJSON(): object {
        return { suite: this.suite.id, role: this.role, ...this.exportState() };
    }
}

/**
 * The work is synchronous (OpenSSL through node:crypto); the API is async so an endpoint could move
 * to WebCrypto without changing callers. Errors become rejections, never synchronous throws.
 */
function settle<T>(fn: () => T): Promise<T> {
    try {
        return Promise.resolve(fn());
    } catch (e) {
        return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
}

function parseDecimal(s: string, min: bigint, max: bigint, name: string): bigint {
    if (typeof s !== 'string' || !/^(-1|0|[1-9][0-9]*)$/.test(s)) {
        throw new DecodeError('invalidValue', `${name} is not a canonical decimal integer`);
    }
    const v = BigInt(s);
    if (v < min || v > max) {
        throw new DecodeError('invalidValue', `${name} out of range`);
    }
    return v;
}
