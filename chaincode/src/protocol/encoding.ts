/**
 * Canonical encodings (DESIGN.md §2): SEC1 compressed points, fixed-width big-endian scalars, and a
 * strict byte reader/writer used by every structured object that is hashed, signed,
 * content-addressed or sent. Decoders reject non-canonical input with a typed DecodeError.
 */
import type { Point, Suite } from './suite.js';

export declare function encodePoint(suite: Suite, p: Point): Uint8Array;
/** Rejects wrong length, non-compressed/invalid prefix, off-curve and identity. */
export declare function decodePoint(suite: Suite, bytes: Uint8Array): Point;
export declare function encodeScalar(suite: Suite, s: bigint): Uint8Array;
/** Rejects wrong length and values outside [1, n-1] (or [0, n-1] when allowZero). */
export declare function decodeScalar(suite: Suite, bytes: Uint8Array, allowZero?: boolean): bigint;

/** Appends fields in canonical order; lengths are big-endian, variable fields are length-prefixed. */
export declare class ByteWriter {
    u8(v: number): this;
    u16(v: number): this;
    u32(v: number): this;
    /** Unsigned 64-bit big-endian (counters, sequence numbers). */
    u64(v: bigint): this;
    /** Fixed-length bytes, written as-is. */
    raw(b: Uint8Array): this;
    /** u16 length prefix + bytes. */
    bytes16(b: Uint8Array): this;
    /** u32 length prefix + bytes. */
    bytes32(b: Uint8Array): this;
    /** UTF-8 string with a u16 length prefix. */
    string(s: string): this;
    point(suite: Suite, p: Point): this;
    scalar(suite: Suite, s: bigint): this;
    finish(): Uint8Array;
}

/** Reads what ByteWriter wrote; every read checks bounds; `end()` rejects trailing bytes. */
export declare class ByteReader {
    constructor(bytes: Uint8Array);
    u8(): number;
    u16(): number;
    u32(): number;
    u64(): bigint;
    raw(length: number): Uint8Array;
    bytes16(): Uint8Array;
    bytes32(): Uint8Array;
    string(): string;
    point(suite: Suite): Point;
    scalar(suite: Suite, allowZero?: boolean): bigint;
    end(): void;
}

export declare function concatBytes(...parts: Uint8Array[]): Uint8Array;
export declare function equalBytes(a: Uint8Array, b: Uint8Array): boolean;
export declare function toHex(b: Uint8Array): string;
/** Rejects odd length / non-hex characters / uppercase (canonical lowercase only). */
export declare function fromHex(s: string): Uint8Array;
export declare function toBase64Url(b: Uint8Array): string;
/** Rejects padding and non-canonical base64url. */
export declare function fromBase64Url(s: string): Uint8Array;
