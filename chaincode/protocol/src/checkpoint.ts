/**
 * Checkpoint proofs (docs/records.md, "Checkpoints"): what one channel exports so that another
 * channel or consortium can import a checkpoint of every writer's batch head and verify it offline,
 * with nothing but the source channel's orderer root certificates. The proof is the source block of
 * a `recordCheckpoint` transaction reduced to what the check needs — the header fields, the
 * orderer's SIGNATURES metadata, every envelope (the data hash covers them all), the transaction's
 * index and validation code — so that every byte of the proof is checked (a block's other metadata
 * slots are signed by nobody and are left out).
 *
 * Encoding (big-endian): "M2M-CHECKPOINT" | version 1 | channel (u16 length + UTF-8) | transaction id
 * (u16 + UTF-8) | block number (u64) | previous hash (u16 + bytes) | data hash (u16 + bytes) |
 * signatures metadata (u32 + bytes) | envelope count (u32) | envelopes (u32 + bytes each) |
 * transaction index (u32) | validation code (u8).
 */
import { DecodeError } from './errors.js';

export const CHECKPOINT_PROOF_MAGIC = 'M2M-CHECKPOINT';
export const CHECKPOINT_PROOF_VERSION = 1;
/** The key prefix of a checkpoint written by `recordCheckpoint` (then the 16-digit tx time in ms). */
export const CHECKPOINT_KEY_PREFIX = 'checkpoint/';
/** Largest accepted proof (a block of the source channel is at most a few MB). */
export const MAX_CHECKPOINT_PROOF_BYTES = 8 * 1024 * 1024;

export interface CheckpointProof {
    readonly channel: string;
    readonly transactionId: string;
    readonly blockNumber: bigint;
    readonly previousHash: Uint8Array;
    readonly dataHash: Uint8Array;
    /** The block's SIGNATURES metadata (a `common.Metadata`). */
    readonly signatures: Uint8Array;
    readonly envelopes: readonly Uint8Array[];
    readonly transactionIndex: number;
    readonly validationCode: number;
}

export function checkpointKey(timeMs: number): string {
    return `${CHECKPOINT_KEY_PREFIX}${String(timeMs).padStart(16, '0')}`;
}

const utf8 = new TextEncoder();

export function encodeCheckpointProof(proof: CheckpointProof): Uint8Array {
    const parts: Uint8Array[] = [];
    const u8 = (n: number): void => void parts.push(Uint8Array.of(n));
    const u16 = (n: number): void => void parts.push(Uint8Array.of(n >> 8, n & 0xff));
    const u32 = (n: number): void => {
        const b = new Uint8Array(4);
        new DataView(b.buffer).setUint32(0, n);
        parts.push(b);
    };
    const short = (b: Uint8Array): void => {
        if (b.length > 0xffff) throw new RangeError('field too long');
        u16(b.length);
        parts.push(b);
    };
    const long = (b: Uint8Array): void => {
        u32(b.length);
        parts.push(b);
    };
    parts.push(utf8.encode(CHECKPOINT_PROOF_MAGIC));
    u8(CHECKPOINT_PROOF_VERSION);
    short(utf8.encode(proof.channel));
    short(utf8.encode(proof.transactionId));
    const number = new Uint8Array(8);
    new DataView(number.buffer).setBigUint64(0, proof.blockNumber);
    parts.push(number);
    short(proof.previousHash);
    short(proof.dataHash);
    long(proof.signatures);
    u32(proof.envelopes.length);
    for (const envelope of proof.envelopes) long(envelope);
    u32(proof.transactionIndex);
    u8(proof.validationCode);
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
        out.set(p, at);
        at += p.length;
    }
    return out;
}

/** @throws DecodeError for anything but one well-formed proof (trailing bytes included). */
export function decodeCheckpointProof(bytes: Uint8Array): CheckpointProof {
    if (bytes.length > MAX_CHECKPOINT_PROOF_BYTES) throw new DecodeError('wrongLength', 'checkpoint proof too large');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 0;
    const need = (n: number): void => {
        if (at + n > bytes.length) throw new DecodeError('truncated', 'truncated checkpoint proof');
    };
    const take = (n: number): Uint8Array => {
        need(n);
        const out = bytes.slice(at, at + n);
        at += n;
        return out;
    };
    const u8 = (): number => take(1)[0] as number;
    const u16 = (): number => {
        need(2);
        at += 2;
        return view.getUint16(at - 2);
    };
    const u32 = (): number => {
        need(4);
        at += 4;
        return view.getUint32(at - 4);
    };
    const text = (b: Uint8Array): string => {
        try {
            return new TextDecoder('utf-8', { fatal: true }).decode(b);
        } catch (cause) {
            throw new DecodeError('invalidValue', 'checkpoint proof text is not UTF-8', { cause });
        }
    };
    if (text(take(CHECKPOINT_PROOF_MAGIC.length)) !== CHECKPOINT_PROOF_MAGIC)
        throw new DecodeError('invalidValue', 'not a checkpoint proof');
    if (u8() !== CHECKPOINT_PROOF_VERSION) throw new DecodeError('unknownVersion', 'unknown checkpoint proof version');
    const channel = text(take(u16()));
    const transactionId = text(take(u16()));
    need(8);
    const blockNumber = view.getBigUint64(at);
    at += 8;
    const previousHash = take(u16());
    const dataHash = take(u16());
    const signatures = take(u32());
    const count = u32();
    if (count > bytes.length) throw new DecodeError('wrongLength', 'envelope count exceeds the proof');
    const envelopes: Uint8Array[] = [];
    for (let i = 0; i < count; i++) envelopes.push(take(u32()));
    const transactionIndex = u32();
    const validationCode = u8();
    if (at !== bytes.length) throw new DecodeError('trailingBytes', 'trailing bytes after the checkpoint proof');
    return {
        channel,
        transactionId,
        blockNumber,
        previousHash,
        dataHash,
        signatures,
        envelopes,
        transactionIndex,
        validationCode,
    };
}
