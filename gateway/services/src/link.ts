/**
 * The fog <-> CSP link (docs/design.md#transport: authenticated both ways). Every link message is signed by
 * its sender's service key (fog: d_f, CSP: d_c) with ECDSA under a link label, and names the
 * sender; the receiver checks the signature against the key the ledger holds for that sender
 * (an approved fog's Q_f, the registered Q_c) and that the sender matches the topic. M4 inside a
 * Forward carries s_f as well, which Algorithm 3 verifies on its own.
 *
 *   u8 version | u8 kind | string sender | u64 timestamp ms | bytes32 body | bytes16 DER signature
 */
import type { KeyObject } from 'node:crypto';
import { ByteReader, ByteWriter, DecodeError, type Suite } from '@m2m-fabric/protocol';
import { signLabelled, verifyLabelled, type ServiceKey } from './keys.js';
import {
    CORRELATION_ID_BYTES,
    errorDetail,
    ROUTE_ID_BYTES,
    ServiceError,
    ServiceErrorCode,
    type AnyErrorCode,
} from '@m2m-fabric/common';

const LINK_LABEL = 'M2M-V1-FOG-CSP-LINK';
const LINK_VERSION = 1;
/** Messages older (or further in the future) than this are refused. */
export const LINK_MAX_SKEW_MS = 5 * 60_000;

export const LinkKind = {
    /** fog -> CSP: M4 and what Alg. 3 needs beside it. */
    Forward: 1,
    /** CSP -> fog: Alg. 3 outcome for a Forward. */
    Result: 2,
    /** fog -> CSP: a device's session-channel frame. */
    FrameUp: 3,
    /** CSP -> fog: a frame for a device, or a typed error for one it sent. */
    FrameDown: 4,
    /** fog -> CSP: a query packet for an offline machine the CSP answers for (paper 000 step 4). */
    Query: 5,
    /** CSP -> fog: the CSP's reply to a Query (information or failure packet). */
    QueryAnswer: 6,
} as const;
export type LinkKind = (typeof LinkKind)[keyof typeof LinkKind];

export interface LinkMessage {
    kind: LinkKind;
    sender: string;
    timestampMs: number;
    body: Uint8Array;
}

export function encodeLinkMessage(key: ServiceKey, kind: LinkKind, sender: string, body: Uint8Array): Uint8Array {
    const unsigned = new ByteWriter()
        .u8(LINK_VERSION)
        .u8(kind)
        .string(sender)
        .u64(BigInt(Date.now()))
        .bytes32(body)
        .finish();
    const signature = signLabelled(key, LINK_LABEL, unsigned);
    return new ByteWriter().raw(unsigned).bytes16(signature).finish();
}

/**
 * Parses without verifying (the sender decides which key verifies); DecodeError on bad bytes.
 * @throws {DecodeError} `unknownVersion` when: link version …
 * @throws {DecodeError} `unknownType` when: link kind …
 */
export function parseLinkMessage(bytes: Uint8Array): {
    message: LinkMessage;
    unsigned: Uint8Array;
    signature: Uint8Array;
} {
    const r = new ByteReader(bytes);
    const version = r.u8();
    if (version !== LINK_VERSION) throw new DecodeError('unknownVersion', `link version ${version}`);
    const kind = r.u8();
    if (kind < LinkKind.Forward || kind > LinkKind.QueryAnswer)
        throw new DecodeError('unknownType', `link kind ${kind}`);
    const sender = r.string();
    const timestampMs = Number(r.u64());
    const body = r.bytes32();
    const signature = r.bytes16();
    r.end();
    const unsigned = bytes.subarray(0, bytes.length - 2 - signature.length);
    return { message: { kind: kind as LinkKind, sender, timestampMs, body }, unsigned, signature };
}

/**
 * Verifies signature and freshness; throws ServiceError(failedSignatureVerification / malformedInput).
 * @throws {ServiceError} `failedSignatureVerification` when: link message from … not signed by its key
 * @throws {ServiceError} `timeout` when: stale link message from …
 */
export function verifyLinkMessage(
    suite: Suite,
    senderKey: KeyObject,
    parsed: { message: LinkMessage; unsigned: Uint8Array; signature: Uint8Array },
    now = Date.now(),
): LinkMessage {
    if (!verifyLabelled(suite, senderKey, LINK_LABEL, parsed.unsigned, parsed.signature)) {
        throw new ServiceError(
            'failedSignatureVerification',
            `link message from ${parsed.message.sender} not signed by its key`,
        );
    }
    if (Math.abs(now - parsed.message.timestampMs) > LINK_MAX_SKEW_MS) {
        throw new ServiceError(ServiceErrorCode.Timeout, `stale link message from ${parsed.message.sender}`);
    }
    return parsed.message;
}

// ---- bodies ----

export interface ForwardBody {
    correlationId: Uint8Array;
    clientId: string;
    routeId: Uint8Array;
    m4: Uint8Array;
    /** Q_i from M3 (encoded point): the CSP computes symKey_i = H(d_c*Q_i) and checks H(Q_i) on the ledger. */
    devicePublicKey: Uint8Array;
}
export function encodeForward(b: ForwardBody): Uint8Array {
    return new ByteWriter()
        .raw(b.correlationId)
        .string(b.clientId)
        .raw(b.routeId)
        .bytes32(b.m4)
        .bytes16(b.devicePublicKey)
        .finish();
}
export function decodeForward(bytes: Uint8Array): ForwardBody {
    const r = new ByteReader(bytes);
    const b = {
        correlationId: r.raw(CORRELATION_ID_BYTES),
        clientId: r.string(),
        routeId: r.raw(ROUTE_ID_BYTES),
        m4: r.bytes32(),
        devicePublicKey: r.bytes16(),
    };
    r.end();
    return b;
}

/** Result of a Forward, or a frame / error for a device: ok carries a sealed frame, else a code. */
export interface DeviceBoundBody {
    correlationId: Uint8Array;
    clientId: string;
    routeId: Uint8Array;
    outcome: { ok: true; frame: Uint8Array } | { ok: false; code: AnyErrorCode; detail: string };
}
export function encodeDeviceBound(b: DeviceBoundBody): Uint8Array {
    const w = new ByteWriter().raw(b.correlationId).string(b.clientId).raw(b.routeId);
    if (b.outcome.ok) w.u8(0).bytes32(b.outcome.frame);
    else w.u8(1).string(b.outcome.code).string(errorDetail(b.outcome.code, b.outcome.detail).slice(0, 512));
    return w.finish();
}
/**
 * @throws {DecodeError} `invalidValue` when: outcome tag …
 */
export function decodeDeviceBound(bytes: Uint8Array): DeviceBoundBody {
    const r = new ByteReader(bytes);
    const correlationId = r.raw(CORRELATION_ID_BYTES);
    const clientId = r.string();
    const routeId = r.raw(ROUTE_ID_BYTES);
    const tag = r.u8();
    let outcome: DeviceBoundBody['outcome'];
    if (tag === 0) outcome = { ok: true, frame: r.bytes32() };
    else if (tag === 1) outcome = { ok: false, code: r.string() as AnyErrorCode, detail: r.string() };
    else throw new DecodeError('invalidValue', `outcome tag ${tag}`);
    r.end();
    return { correlationId, clientId, routeId, outcome };
}

export interface FrameUpBody {
    correlationId: Uint8Array;
    clientId: string;
    routeId: Uint8Array;
    frame: Uint8Array;
    /** The device's communication record of the frame (frame-record.ts), when it sent one. */
    record?: Uint8Array;
}
export function encodeFrameUp(b: FrameUpBody): Uint8Array {
    const w = new ByteWriter().raw(b.correlationId).string(b.clientId).raw(b.routeId).bytes32(b.frame);
    // The record trails the frame, so a body without one is the pre-records encoding.
    if (b.record !== undefined) w.bytes16(b.record);
    return w.finish();
}
export function decodeFrameUp(bytes: Uint8Array): FrameUpBody {
    const r = new ByteReader(bytes);
    const b: FrameUpBody = {
        correlationId: r.raw(CORRELATION_ID_BYTES),
        clientId: r.string(),
        routeId: r.raw(ROUTE_ID_BYTES),
        frame: r.bytes32(),
    };
    if (r.remaining() > 0) b.record = r.bytes16();
    r.end();
    return b;
}

/** Query and QueryAnswer: the packet (opaque to the link) under the fog's correlation id. */
export interface QueryLinkBody {
    correlationId: Uint8Array;
    packet: Uint8Array;
}
export function encodeQueryLink(b: QueryLinkBody): Uint8Array {
    return new ByteWriter().raw(b.correlationId).bytes32(b.packet).finish();
}
export function decodeQueryLink(bytes: Uint8Array): QueryLinkBody {
    const r = new ByteReader(bytes);
    const b = { correlationId: r.raw(CORRELATION_ID_BYTES), packet: r.bytes32() };
    r.end();
    return b;
}
