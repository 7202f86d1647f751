/**
 * Batch anchors: what the ledger keeps per anchored batch of communication records, shared by the
 * anchors contract (which writes it) and receipts (which find it in the anchoring transaction's
 * write set). One writer (the CSP, or one fog) keeps one RFC 9162 log of its records; batch k
 * anchors the log's root at its size after the batch, so consecutive anchors are linked by a
 * consistency proof the contract checks.
 *
 *   key    anchor/<writer>/<sequence as 16 lowercase hex digits>      (a simple key: range-queryable)
 *   value  version u8 | sequence u64 | tree size u64 | anchoredAt ms u64 | root (32)   = 57 bytes
 *   head   anchor-head/<writer> -> the value of the writer's latest anchor
 *
 * A writer is `csp` or `fog:<fog id>`. The signed batch head (Schnorr, context BatchHead, by the
 * writer's registered key Q_c or Q_f) covers writer, sequence, tree size and root.
 */
import { ByteReader, ByteWriter } from './encoding.js';
import { DecodeError } from './errors.js';
import { MERKLE_HASH_BYTES } from './merkle.js';

export const ANCHOR_VERSION = 1;
export const ANCHOR_VALUE_BYTES = 1 + 8 + 8 + 8 + MERKLE_HASH_BYTES;
export const ANCHOR_KEY_PREFIX = 'anchor/';
export const ANCHOR_HEAD_PREFIX = 'anchor-head/';
/** The CSP's writer name; a fog writes as `fog:<fog id>`. */
export const CSP_WRITER = 'csp';
const FOG_WRITER_PREFIX = 'fog:';
/** Longest consistency proof accepted: a log of 2^64 leaves has at most 2 * 64 hashes. */
export const MAX_CONSISTENCY_PROOF_HASHES = 128;

const FOG_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

export interface AnchorValue {
    sequence: number;
    treeSize: number;
    /** Transaction timestamp of the anchoring transaction, ms since the epoch. */
    anchoredAt: number;
    root: Uint8Array;
}

export type Writer = { kind: 'csp' } | { kind: 'fog'; fogId: string };

/** Parses `csp` or `fog:<fog id>`; undefined for anything else. */
export function parseWriter(writer: string): Writer | undefined {
    if (writer === CSP_WRITER) return { kind: 'csp' };
    if (writer.startsWith(FOG_WRITER_PREFIX) && FOG_ID.test(writer.slice(FOG_WRITER_PREFIX.length))) {
        return { kind: 'fog', fogId: writer.slice(FOG_WRITER_PREFIX.length) };
    }
    return undefined;
}

export function fogWriter(fogId: string): string {
    return FOG_WRITER_PREFIX + fogId;
}

function sequenceHex(sequence: number): string {
    if (!Number.isSafeInteger(sequence) || sequence < 0) throw new RangeError(`bad sequence ${sequence}`);
    return sequence.toString(16).padStart(16, '0');
}

export function anchorKey(writer: string, sequence: number): string {
    return `${ANCHOR_KEY_PREFIX}${writer}/${sequenceHex(sequence)}`;
}

/** Half-open key range [start, end) of a writer's anchors from `fromSequence` on. */
export function anchorRange(writer: string, fromSequence: number): { start: string; end: string } {
    // 'g' sorts after every hex digit.
    return { start: anchorKey(writer, fromSequence), end: `${ANCHOR_KEY_PREFIX}${writer}/g` };
}

export function anchorHeadKey(writer: string): string {
    return ANCHOR_HEAD_PREFIX + writer;
}

/** Parses an anchor key back into writer and sequence; undefined if it is not one. */
export function parseAnchorKey(key: string): { writer: string; sequence: number } | undefined {
    if (!key.startsWith(ANCHOR_KEY_PREFIX)) return undefined;
    const rest = key.slice(ANCHOR_KEY_PREFIX.length);
    const slash = rest.lastIndexOf('/');
    const writer = rest.slice(0, slash);
    const hex = rest.slice(slash + 1);
    if (slash < 0 || !/^[0-9a-f]{16}$/.test(hex) || parseWriter(writer) === undefined) return undefined;
    const sequence = Number.parseInt(hex, 16);
    return Number.isSafeInteger(sequence) ? { writer, sequence } : undefined;
}

/**
 * @throws {RangeError} when: root is 32 bytes
 */
export function encodeAnchorValue(value: AnchorValue): Uint8Array {
    if (value.root.length !== MERKLE_HASH_BYTES) throw new RangeError('root is 32 bytes');
    return new ByteWriter()
        .u8(ANCHOR_VERSION)
        .u64(BigInt(value.sequence))
        .u64(BigInt(value.treeSize))
        .u64(BigInt(value.anchoredAt))
        .raw(value.root)
        .finish();
}

/** @throws DecodeError */
export function decodeAnchorValue(bytes: Uint8Array): AnchorValue {
    const r = new ByteReader(bytes);
    const version = r.u8();
    if (version !== ANCHOR_VERSION) throw new DecodeError('unknownVersion', `anchor version ${version}`);
    const safe = (v: bigint, name: string): number => {
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DecodeError('invalidValue', `${name} out of range`);
        return Number(v);
    };
    const sequence = safe(r.u64(), 'sequence');
    const treeSize = safe(r.u64(), 'tree size');
    const anchoredAt = safe(r.u64(), 'anchoredAt');
    const root = r.raw(MERKLE_HASH_BYTES);
    r.end();
    return { sequence, treeSize, anchoredAt, root };
}

/**
 * The message a writer signs for a batch: "M2M-V1-BATCH-HEAD" | writer | sequence | tree size | root.
 * @throws {RangeError} when: root is 32 bytes
 */
export function batchHeadMessage(writer: string, sequence: number, treeSize: number, root: Uint8Array): Uint8Array {
    if (root.length !== MERKLE_HASH_BYTES) throw new RangeError('root is 32 bytes');
    return new ByteWriter()
        .string('M2M-V1-BATCH-HEAD')
        .string(writer)
        .u64(BigInt(sequence))
        .u64(BigInt(treeSize))
        .raw(root)
        .finish();
}
