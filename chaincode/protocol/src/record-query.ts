/**
 * Paper 000's record query (Figs. 6-8): a machine M1 asks another machine M2, through the public
 * network area (the fog), for M2's communication records in a time range.
 *
 *   Fig. 6 query packet:       receiver (M2) | sender (M1) | data to be inquired | M1's signature | inspection
 *   Fig. 7 information packet: receiver (M1) | sender (M2) | encrypted data      | M2's signature | inspection
 *
 * "Inspection information" is the packet's digest of itself (DST PacketInspection over everything
 * before it): the fog checks it at step 2 and step 7 without being able to read the answer. The
 * signatures are Schnorr by the machines' static M-EB keys (contexts QueryPacket /
 * InformationPacket); the answer is HPKE-sealed to M1's static key (info QueryAnswer) with the
 * query digest as associated data, so an answer can be opened only for the query it names. A CSP
 * answering for an offline machine signs with Q_c's secret instead (responder = csp).
 *
 * Every failure carries the step of Fig. 8 it belongs to and the paper's retry: resend the query
 * (back to step 1), have the target resend its answer (back to step 6), try later, or give up.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

import { ByteReader, ByteWriter, bigIntToBytes, equalBytes, toBase64Url } from './encoding.js';
import { DecodeError, ErrorCode, ProtocolError } from './errors.js';
import { hashBytes } from './hashing.js';
import { HpkeInfo, hpkeEncBytes, hpkeOpen, hpkeSeal, type HpkeRecipient } from './hpke.js';
import { merkleLeafHash } from './merkle.js';
import { ReceiptError, decodeReceipt, type ReceiptVerifier } from './receipt.js';
import { decodeRecord, type CommunicationRecord } from './record.js';
import {
    SchnorrContext,
    decodeSchnorrSignature,
    encodeSchnorrSignature,
    schnorrSign,
    schnorrVerify,
} from './schnorr.js';
import type { Point, Suite } from './suite.js';

export const QUERY_PACKET_VERSION = 1;
export const QueryPacketType = { Query: 0x51, Information: 0x52, Failure: 0x53 } as const;

export const QUERY_NONCE_BYTES = 16;
export const MAX_QUERY_KINDS = 16;
export const MAX_QUERY_ID_BYTES = 128;
/** Records one answer may carry, and the size of its sealed plaintext. */
export const MAX_ANSWER_RECORDS = 1000;
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
/** Longest a query may live (issuedAt -> expiresAt); a fog refuses longer ones. */
export const MAX_QUERY_LIFETIME_MS = 120_000;

/** What the paper says to do after each failure of Fig. 8. */
export const QueryRetry = {
    /** Back to step 1: M1 sends a new query packet (steps 2 and 5). */
    ResendQuery: 'resendQuery',
    /** Back to step 6: the target is asked to resend its information packet (steps 7 and 9). */
    ResendAnswer: 'resendAnswer',
    /** The target cannot be reached now; the same query may be sent again later (step 4). */
    Later: 'later',
    /** The query fails for good (step 3's null answer, a denial by the access rule, a hidden record). */
    None: 'none',
} as const;
export type QueryRetry = (typeof QueryRetry)[keyof typeof QueryRetry];

/** A typed failure of the query protocol, naming its Fig. 8 step and the retry the paper prescribes. */
export class QueryError extends ProtocolError {
    constructor(
        code: ErrorCode,
        readonly step: number,
        readonly retry: QueryRetry,
        readonly detail: string,
        options?: ErrorOptions,
    ) {
        super(code, `step ${step}: ${detail}`, options);
        this.name = 'QueryError';
    }
}

/** Fig. 6 "data to be inquired". */
export interface QueryRequest {
    /** M2, the machine whose history is asked for. */
    receiverId: string;
    /** M1, the asker. */
    senderId: string;
    /** Time range, ms since the epoch, inclusive. */
    since: number;
    until: number;
    /** Record kinds wanted; empty for all. */
    kinds: string[];
    nonce: Uint8Array;
    issuedAt: number;
    expiresAt: number;
}

export interface QueryPacket extends QueryRequest {
    signature: Uint8Array;
    /** The packet's bytes, as received (what the digest and the inspection cover). */
    bytes: Uint8Array;
    /** Names this query; the information packet repeats it. */
    digest: Uint8Array;
}

/** One record of an answer, with the receipt that proves it was recorded. */
export interface AnsweredRecord {
    /** The record's id (its digest in the records' encoding). */
    recordId: Uint8Array;
    kind: string;
    /** ms since the epoch. */
    time: number;
    /** The other machine of the communication. */
    counterpart: string;
    /** The record as encoded by the records module. */
    body: Uint8Array;
    /** The receipt (e.g. a Merkle inclusion proof under a batch root on the ledger). */
    receipt: Uint8Array;
}

export const Responder = { Target: 0, Csp: 1 } as const;
export type Responder = (typeof Responder)[keyof typeof Responder];

export interface InformationPacket {
    /** M1. */
    receiverId: string;
    /** M2. */
    senderId: string;
    responder: Responder;
    queryDigest: Uint8Array;
    enc: Uint8Array;
    ct: Uint8Array;
    signature: Uint8Array;
    bytes: Uint8Array;
}

export interface FailurePacket {
    queryDigest: Uint8Array;
    step: number;
    code: ErrorCode;
    retry: QueryRetry;
    detail: string;
}

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));
const RETRIES: readonly QueryRetry[] = Object.values(QueryRetry);

function inspection(suite: Suite, covered: Uint8Array): Uint8Array {
    return hashBytes(suite, 'PacketInspection', covered);
}

/** Splits packet || inspection and checks it (steps 2 and 7); IncompletePacket when it does not match. */
function checkInspection(suite: Suite, bytes: Uint8Array, step: number, retry: QueryRetry): Uint8Array {
    if (bytes.length <= suite.hashBytes) {
        throw new QueryError(ErrorCode.IncompletePacket, step, retry, 'packet is shorter than its inspection');
    }
    const covered = bytes.subarray(0, bytes.length - suite.hashBytes);
    if (!equalBytes(inspection(suite, covered), bytes.subarray(bytes.length - suite.hashBytes))) {
        throw new QueryError(ErrorCode.IncompletePacket, step, retry, 'inspection information does not match');
    }
    return covered;
}

function writeQueryBody(w: ByteWriter, q: QueryRequest): void {
    checkId(q.receiverId);
    checkId(q.senderId);
    if (q.nonce.length !== QUERY_NONCE_BYTES) throw new RangeError(`nonce must be ${QUERY_NONCE_BYTES} bytes`);
    if (q.kinds.length > MAX_QUERY_KINDS) throw new RangeError(`at most ${MAX_QUERY_KINDS} kinds`);
    w.u8(QUERY_PACKET_VERSION).u8(QueryPacketType.Query).string(q.receiverId).string(q.senderId);
    w.u64(BigInt(q.since)).u64(BigInt(q.until)).u8(q.kinds.length);
    for (const kind of q.kinds) w.string(kind);
    w.raw(q.nonce).u64(BigInt(q.issuedAt)).u64(BigInt(q.expiresAt));
}

function checkId(id: string): void {
    if (id.length === 0 || new TextEncoder().encode(id).length > MAX_QUERY_ID_BYTES) {
        throw new RangeError(`an equipment id must be 1 to ${MAX_QUERY_ID_BYTES} bytes`);
    }
}

/** Step 1: M1 builds and signs the query packet with its static secret. */
export function createQueryPacket(suite: Suite, request: QueryRequest, askerSecret: bigint): QueryPacket {
    const w = new ByteWriter();
    writeQueryBody(w, request);
    const { signature, bytes } = signPacket(suite, SchnorrContext.QueryPacket, askerSecret, w.finish());
    return { ...request, kinds: [...request.kinds], signature, bytes, digest: queryDigest(suite, bytes) };
}

/** Both packets' tail: body || Schnorr signature over the body || inspection information. */
function signPacket(
    suite: Suite,
    context: SchnorrContext,
    secret: bigint,
    body: Uint8Array,
): { signature: Uint8Array; bytes: Uint8Array } {
    const signature = encodeSchnorrSignature(suite, schnorrSign(suite, context, secret, body));
    const signed = new ByteWriter().raw(body).raw(signature).finish();
    return { signature, bytes: new ByteWriter().raw(signed).raw(inspection(suite, signed)).finish() };
}

export function queryDigest(suite: Suite, packetBytes: Uint8Array): Uint8Array {
    return hashBytes(suite, 'QueryDigest', packetBytes);
}

/**
 * Step 2 (the fog) and step 5 (the target): checks the inspection information and parses the
 * packet. Does not verify the signature (see {@link verifyQuerySignature}).
 * @throws QueryError IncompletePacket (resend the query).
 */
export function decodeQueryPacket(suite: Suite, bytes: Uint8Array, step = 2): QueryPacket {
    const signed = checkInspection(suite, bytes, step, QueryRetry.ResendQuery);
    try {
        const r = new ByteReader(signed);
        if (r.u8() !== QUERY_PACKET_VERSION) throw new DecodeError('unknownVersion', 'query packet version');
        if (r.u8() !== QueryPacketType.Query) throw new DecodeError('unknownType', 'not a query packet');
        const receiverId = r.string();
        const senderId = r.string();
        checkId(receiverId);
        checkId(senderId);
        const since = safeNumber(r.u64());
        const until = safeNumber(r.u64());
        const count = r.u8();
        if (count > MAX_QUERY_KINDS) throw new DecodeError('invalidValue', 'too many kinds');
        const kinds: string[] = [];
        for (let k = 0; k < count; k++) kinds.push(r.string());
        const nonce = r.raw(QUERY_NONCE_BYTES);
        const issuedAt = safeNumber(r.u64());
        const expiresAt = safeNumber(r.u64());
        const signature = r.raw(2 * suite.scalarBytes);
        r.end();
        if (until < since) throw new DecodeError('invalidValue', 'until is before since');
        decodeSchnorrSignature(suite, signature);
        return {
            receiverId,
            senderId,
            since,
            until,
            kinds,
            nonce,
            issuedAt,
            expiresAt,
            signature,
            bytes,
            digest: queryDigest(suite, bytes),
        };
    } catch (cause) {
        if (cause instanceof QueryError) throw cause;
        throw new QueryError(
            ErrorCode.IncompletePacket,
            step,
            QueryRetry.ResendQuery,
            `query packet does not parse: ${String(cause)}`,
            { cause },
        );
    }
}

/** True iff the packet is signed by `askerKey` (the asker's registered M-EB key). */
export function verifyQuerySignature(suite: Suite, packet: QueryPacket, askerKey: Point): boolean {
    return verifyPacketSignature(suite, SchnorrContext.QueryPacket, packet, askerKey);
}

/**
 * The signature check of both packets: `bytes` is body || signature || inspection, the signature
 * covers the body under the packet's context.
 */
function verifyPacketSignature(
    suite: Suite,
    context: SchnorrContext,
    packet: { bytes: Uint8Array; signature: Uint8Array },
    key: Point,
): boolean {
    const body = packet.bytes.subarray(0, packet.bytes.length - suite.hashBytes - packet.signature.length);
    return schnorrVerify(suite, context, key, body, decodeSchnorrSignature(suite, packet.signature));
}

function safeNumber(v: bigint): number {
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DecodeError('invalidValue', 'time out of range');
    return Number(v);
}

function encodeRecords(records: readonly AnsweredRecord[]): Uint8Array {
    if (records.length > MAX_ANSWER_RECORDS) throw new RangeError(`at most ${MAX_ANSWER_RECORDS} records per answer`);
    const w = new ByteWriter().u32(records.length);
    for (const record of records) {
        w.bytes16(record.recordId).string(record.kind).u64(BigInt(record.time)).string(record.counterpart);
        w.bytes32(record.body).bytes32(record.receipt);
    }
    return w.finish();
}

function decodeRecords(bytes: Uint8Array): AnsweredRecord[] {
    const r = new ByteReader(bytes);
    const count = r.u32();
    if (count > MAX_ANSWER_RECORDS) throw new DecodeError('invalidValue', 'too many records');
    const records: AnsweredRecord[] = [];
    for (let k = 0; k < count; k++) {
        records.push({
            recordId: r.bytes16(),
            kind: r.string(),
            time: safeNumber(r.u64()),
            counterpart: r.string(),
            body: r.bytes32(),
            receipt: r.bytes32(),
        });
    }
    r.end();
    return records;
}

/**
 * Step 6: the target (or the CSP for it) seals `records` to the asker's static key and signs the
 * packet with `responderSecret`.
 * @throws {RangeError} when: answer exceeds … bytes
 */
export async function createInformationPacket(
    suite: Suite,
    query: QueryPacket,
    records: readonly AnsweredRecord[],
    askerKey: Uint8Array,
    responder: Responder,
    responderSecret: bigint,
): Promise<InformationPacket> {
    const plaintext = encodeRecords(records);
    if (plaintext.length > MAX_ANSWER_BYTES) throw new RangeError(`answer exceeds ${MAX_ANSWER_BYTES} bytes`);
    const sealed = await hpkeSeal(suite, askerKey, HpkeInfo.QueryAnswer, plaintext, query.digest);
    const w = new ByteWriter()
        .u8(QUERY_PACKET_VERSION)
        .u8(QueryPacketType.Information)
        .string(query.senderId)
        .string(query.receiverId)
        .u8(responder)
        .raw(query.digest)
        .raw(sealed.enc)
        .bytes32(sealed.ct);
    const { signature, bytes } = signPacket(suite, SchnorrContext.InformationPacket, responderSecret, w.finish());
    return {
        receiverId: query.senderId,
        senderId: query.receiverId,
        responder,
        queryDigest: query.digest,
        enc: sealed.enc,
        ct: sealed.ct,
        signature,
        bytes,
    };
}

/**
 * Step 7 (the fog) and step 9 (the asker): checks the inspection information and parses the
 * information packet; the fog learns who answered which query, never the records.
 * @throws QueryError IncompletePacket (the target resends).
 */
export function decodeInformationPacket(suite: Suite, bytes: Uint8Array, step = 7): InformationPacket {
    const signed = checkInspection(suite, bytes, step, QueryRetry.ResendAnswer);
    try {
        const r = new ByteReader(signed);
        if (r.u8() !== QUERY_PACKET_VERSION) throw new DecodeError('unknownVersion', 'information packet version');
        if (r.u8() !== QueryPacketType.Information) throw new DecodeError('unknownType', 'not an information packet');
        const receiverId = r.string();
        const senderId = r.string();
        const responder = r.u8();
        if (responder !== Responder.Target && responder !== Responder.Csp) {
            throw new DecodeError('invalidValue', 'unknown responder');
        }
        const digest = r.raw(suite.hashBytes);
        const enc = r.raw(hpkeEncBytes(suite));
        const ct = r.bytes32();
        const signature = r.raw(2 * suite.scalarBytes);
        r.end();
        decodeSchnorrSignature(suite, signature);
        return { receiverId, senderId, responder, queryDigest: digest, enc, ct, signature, bytes };
    } catch (cause) {
        throw new QueryError(
            ErrorCode.IncompletePacket,
            step,
            QueryRetry.ResendAnswer,
            `information packet does not parse: ${String(cause)}`,
            { cause },
        );
    }
}

/** True iff the information packet is signed by `responderKey`. */
export function verifyInformationSignature(suite: Suite, packet: InformationPacket, responderKey: Point): boolean {
    return verifyPacketSignature(suite, SchnorrContext.InformationPacket, packet, responderKey);
}

/**
 * Step 9: the asker opens the records with its static key (bound to its own query's digest).
 * @throws {QueryError} `incompletePacket` when: answer records do not parse
 */
export async function openInformationPacket(
    recipient: HpkeRecipient,
    packet: InformationPacket,
): Promise<AnsweredRecord[]> {
    const plaintext = await hpkeOpen(
        recipient,
        HpkeInfo.QueryAnswer,
        { enc: packet.enc, ct: packet.ct },
        packet.queryDigest,
    );
    try {
        return decodeRecords(plaintext);
    } catch (cause) {
        throw new QueryError(ErrorCode.IncompletePacket, 9, QueryRetry.ResendAnswer, 'answer records do not parse', {
            cause,
        });
    }
}

export function encodeFailurePacket(f: FailurePacket): Uint8Array {
    return new ByteWriter()
        .u8(QUERY_PACKET_VERSION)
        .u8(QueryPacketType.Failure)
        .bytes16(f.queryDigest)
        .u8(f.step)
        .string(f.code)
        .string(f.retry)
        .string(f.detail.slice(0, 512))
        .finish();
}

/**
 * @throws {DecodeError} `unknownVersion` when: failure packet version
 * @throws {DecodeError} `unknownType` when: not a failure packet
 * @throws {DecodeError} `invalidValue` when: unknown failure code, retry or step
 */
export function decodeFailurePacket(bytes: Uint8Array): FailurePacket {
    const r = new ByteReader(bytes);
    if (r.u8() !== QUERY_PACKET_VERSION) throw new DecodeError('unknownVersion', 'failure packet version');
    if (r.u8() !== QueryPacketType.Failure) throw new DecodeError('unknownType', 'not a failure packet');
    const queryDigest = r.bytes16();
    const step = r.u8();
    const code = r.string();
    const retry = r.string();
    const detail = r.string();
    r.end();
    if (!KNOWN_CODES.has(code) || !(RETRIES as readonly string[]).includes(retry) || step < 1 || step > 9) {
        throw new DecodeError('invalidValue', 'unknown failure code, retry or step');
    }
    return { queryDigest, step, code: code as ErrorCode, retry: retry as QueryRetry, detail };
}

/** The packet type of a reply (information or failure), from its second byte. */
export function replyType(bytes: Uint8Array): number | undefined {
    return bytes.length >= 2 && bytes[0] === QUERY_PACKET_VERSION ? bytes[1] : undefined;
}

export function failureOf(error: QueryError, queryDigestBytes: Uint8Array): FailurePacket {
    return {
        queryDigest: queryDigestBytes,
        step: error.step,
        code: error.code,
        retry: error.retry,
        detail: error.message,
    };
}

export function errorOfFailure(f: FailurePacket): QueryError {
    return new QueryError(f.code, f.step, f.retry, f.detail);
}

/**
 * The CSP's ECDSA signature (OpenSSL, IEEE P1363 r || s) over a label, a record id and a machine:
 * the stand-in receipt the record query used before the records issue's Merkle receipts. Step 9
 * now verifies Merkle receipts (verifyAnsweredRecord); this remains only for the trace bench's
 * synthetic answers (scripts/bench/trace.ts).
 * @deprecated use Merkle receipts: answeredRecordOfReceipt and verifyAnsweredRecord
 */
export function signRecordReceipt(
    suite: Suite,
    cspSecret: bigint,
    recordId: Uint8Array,
    machineId: string,
): Uint8Array {
    const publicKey = suite.Point.BASE.multiply(cspSecret);
    const key = createPrivateKey({
        key: {
            kty: 'EC',
            crv: suite.webCryptoCurve,
            ...jwkCoordinates(suite, publicKey),
            d: toBase64Url(bigIntToBytes(cspSecret, suite.scalarBytes)),
        },
        format: 'jwk',
    });
    return new Uint8Array(
        sign(digestName(suite), recordReceiptMessage(recordId, machineId), { key, dsaEncoding: 'ieee-p1363' }),
    );
}

const receiptKeys = new WeakMap<Point, KeyObject>();

export function verifyRecordReceipt(
    suite: Suite,
    cspKey: Point,
    recordId: Uint8Array,
    machineId: string,
    receipt: Uint8Array,
): boolean {
    if (receipt.length !== 2 * suite.scalarBytes) return false;
    let key = receiptKeys.get(cspKey);
    if (key === undefined) {
        key = createPublicKey({
            key: { kty: 'EC', crv: suite.webCryptoCurve, ...jwkCoordinates(suite, cspKey) },
            format: 'jwk',
        });
        receiptKeys.set(cspKey, key);
    }
    try {
        return verify(
            digestName(suite),
            recordReceiptMessage(recordId, machineId),
            { key, dsaEncoding: 'ieee-p1363' },
            receipt,
        );
    } catch {
        return false;
    }
}

function digestName(suite: Suite): string {
    return suite.hashBytes === 32 ? 'sha256' : 'sha384';
}

function jwkCoordinates(suite: Suite, p: Point): { x: string; y: string } {
    const affine = p.toAffine();
    return {
        x: toBase64Url(bigIntToBytes(affine.x, suite.scalarBytes)),
        y: toBase64Url(bigIntToBytes(affine.y, suite.scalarBytes)),
    };
}

export function recordReceiptMessage(recordId: Uint8Array, machineId: string): Uint8Array {
    return new ByteWriter().string('M2M-V1-RECORD-RECEIPT').bytes16(recordId).string(machineId).finish();
}

/**
 * A communication record's id in an answer: its RFC 9162 leaf hash, the hash the writer's Merkle
 * log holds it under (so the id names the record and nothing else).
 */
export function communicationRecordId(recordBytes: Uint8Array): Uint8Array {
    return merkleLeafHash(recordBytes);
}

/**
 * An answer's entry for an anchored communication record, built from its Merkle receipt: the body
 * is the receipt's record, the id its leaf hash, the time its signed timestamp.
 * @throws ReceiptError('encoding') when: the receipt does not decode
 * @throws {DecodeError} when: the record in it does not decode
 */
export function answeredRecordOfReceipt(kind: string, counterpart: string, receipt: Uint8Array): AnsweredRecord {
    const body = decodeReceipt(receipt).record;
    return {
        recordId: communicationRecordId(body),
        kind,
        time: Number(decodeRecord(body).timestamp),
        counterpart,
        body,
        receipt,
    };
}

/**
 * Step 9 for one answered record: its receipt is a valid Merkle receipt under the channel's trust
 * roots (verifier), for this very record (the receipt's record is the body, the id its leaf hash),
 * and the answer's time is the record's signed timestamp (so the range check of step 9 is on
 * signed data). Returns the verified record.
 * @throws ReceiptError naming the failed check (`record` for a receipt of another record or a
 *   time that is not the record's)
 */
export function verifyAnsweredRecord(verifier: ReceiptVerifier, record: AnsweredRecord): CommunicationRecord {
    const receipt = decodeReceipt(record.receipt);
    const verified = verifier.verify(receipt);
    if (!equalBytes(receipt.record, record.body)) {
        throw new ReceiptError('record', 'the receipt is for another record than the one answered');
    }
    if (!equalBytes(record.recordId, merkleLeafHash(record.body))) {
        throw new ReceiptError('record', "the record id is not the record's leaf hash");
    }
    if (BigInt(record.time) !== verified.timestamp) {
        throw new ReceiptError('record', "the answered time is not the record's signed timestamp");
    }
    return verified;
}
