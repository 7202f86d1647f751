/**
 * The device <-> fog wire envelope carried in MQTT payloads. MQTT 3.1.1 has no response topic or
 * correlation data (the embedded broker speaks only 3.1.1, docs/design.md#transport), so every payload
 * carries its own correlation id; replies echo it. Layout (protocol module ByteWriter):
 *
 *   u8 version | u8 kind | raw(16) correlation id | bytes32 body
 *
 * Kinds with the high bit set are fog -> device replies. Bodies are the protocol module's canonical
 * encodings (M1..M3, session-channel frames) plus small fixed fields defined here.
 */
import { randomBytes } from 'node:crypto';
import { ByteReader, ByteWriter, DecodeError } from '@m2m-fabric/protocol';
import { errorDetail, isKnownErrorCode, ServiceError, type AnyErrorCode } from './errors.js';

export const ENVELOPE_VERSION = 1;
export const CORRELATION_ID_BYTES = 16;
/** Session handles (M2 -> M3) and channel route ids are 16 random / hashed bytes. */
export const HANDLE_BYTES = 16;
export const ROUTE_ID_BYTES = 16;

export const EnvelopeKind = {
    /** device -> fog: ask for the fog's identity and key. */
    Hello: 0x01,
    /** device -> fog: M1. */
    M1: 0x02,
    /** device -> fog: handle + M3. */
    M3: 0x03,
    /** either way: route id + session-channel frame (opaque to the fog). */
    Frame: 0x04,
    /** device -> fog: paper 000 step 1, a query packet (Fig. 6) for the public network area. */
    Query: 0x05,
    /** device -> fog: a signed listen notice: this connection is the machine's private area (step 4). */
    QueryListen: 0x06,
    /** device -> fog: the target's reply to a QueryDeliver (step 6: information or failure packet). */
    QueryAnswer: 0x07,
    /** fog -> device: step 8, the information packet (Fig. 7) answering a Query. */
    QueryInformation: 0x84,
    /** fog -> device: a query failure packet (Fig. 8: the step, the code and the paper's retry). */
    QueryFailure: 0x85,
    /** fog -> device: step 4, a query packet for the machine's private area; answered by QueryAnswer. */
    QueryDeliver: 0x86,
    /** fog -> device: the listen notice is accepted. */
    QueryListening: 0x87,
    /** device -> fog: route id + a session-channel frame with the device's record of it (frame-record.ts). */
    RecordedFrame: 0x08,
    /** fog -> device: fog id, suite tag, Q_f. */
    HelloReply: 0x81,
    /** fog -> device: handle + M2. */
    M2: 0x82,
    /** fog -> device: route id + the CSP's Confirm frame under the new key. */
    Established: 0x83,
    /** fog -> device: typed error. */
    Error: 0xff,
} as const;
export type EnvelopeKind = (typeof EnvelopeKind)[keyof typeof EnvelopeKind];
const KINDS: ReadonlySet<number> = new Set(Object.values(EnvelopeKind));

export interface Envelope {
    kind: EnvelopeKind;
    correlationId: Uint8Array;
    body: Uint8Array;
}

export function newCorrelationId(): Uint8Array {
    return new Uint8Array(randomBytes(CORRELATION_ID_BYTES));
}

/**
 * @throws {RangeError} when: correlation id must be 16 bytes
 */
export function encodeEnvelope(env: Envelope): Uint8Array {
    if (env.correlationId.length !== CORRELATION_ID_BYTES) throw new RangeError('correlation id must be 16 bytes');
    return new ByteWriter().u8(ENVELOPE_VERSION).u8(env.kind).raw(env.correlationId).bytes32(env.body).finish();
}

/**
 * Strict decode: unknown version/kind, truncation and trailing bytes are DecodeErrors.
 * @throws {DecodeError} `unknownVersion` when: envelope version …
 * @throws {DecodeError} `unknownType` when: envelope kind …
 */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
    const r = new ByteReader(bytes);
    const version = r.u8();
    if (version !== ENVELOPE_VERSION) throw new DecodeError('unknownVersion', `envelope version ${version}`);
    const kind = r.u8();
    if (!KINDS.has(kind)) throw new DecodeError('unknownType', `envelope kind ${kind}`);
    const correlationId = r.raw(CORRELATION_ID_BYTES);
    const body = r.bytes32();
    r.end();
    return { kind: kind as EnvelopeKind, correlationId, body };
}

/** Best effort: the correlation id of a payload that failed to decode, so the error can be matched. */
export function peekCorrelationId(bytes: Uint8Array): Uint8Array | undefined {
    if (bytes.length < 2 + CORRELATION_ID_BYTES || bytes[0] !== ENVELOPE_VERSION) return undefined;
    return bytes.slice(2, 2 + CORRELATION_ID_BYTES);
}

export function encodeErrorBody(code: AnyErrorCode, detail: string): Uint8Array {
    return new ByteWriter().string(code).string(errorDetail(code, detail).slice(0, 512)).finish();
}

/**
 * @throws {DecodeError} `invalidValue` when: unknown error code …
 */
export function decodeErrorBody(body: Uint8Array): ServiceError {
    const r = new ByteReader(body);
    const code = r.string();
    const detail = r.string();
    r.end();
    if (!isKnownErrorCode(code)) throw new DecodeError('invalidValue', `unknown error code ${code}`);
    return new ServiceError(code, detail);
}

/**
 * `raw(16) | bytes32 payload`: handle + M2/M3, route id + frame.
 * @throws {RangeError} when: tag must be 16 bytes
 */
export function encodeTagged(tag: Uint8Array, payload: Uint8Array): Uint8Array {
    if (tag.length !== HANDLE_BYTES) throw new RangeError('tag must be 16 bytes');
    return new ByteWriter().raw(tag).bytes32(payload).finish();
}

export function decodeTagged(body: Uint8Array): { tag: Uint8Array; payload: Uint8Array } {
    const r = new ByteReader(body);
    const tag = r.raw(HANDLE_BYTES);
    const payload = r.bytes32();
    r.end();
    return { tag, payload };
}
