/**
 * Canonical encodings (docs/design.md#cryptographic-suite): SEC1 compressed points, fixed-width big-endian scalars, and a
 * strict byte reader/writer used by every structured object that is hashed, signed,
 * content-addressed or sent. Decoders reject non-canonical input with a typed DecodeError.
 */
import { DecodeError } from './errors.js';
import { normalized } from './affine.js';
import { opensslDecompress } from './openssl-ec.js';
import type { Point, Suite } from './suite.js';

/**
 * SEC1 compressed point, 1 + field-size bytes. Throws RangeError for the identity or a point of another suite's curve.
 * @throws {RangeError} when: the identity point has no compressed encoding; point is not on the … curve
 */
export function encodePoint(suite: Suite, p: Point): Uint8Array {
    if (p.is0()) {
        throw new RangeError('the identity point has no compressed encoding');
    }
    const bytes = normalized(suite, p).toBytes(true);
    if (bytes.length !== suite.pointBytes) {
        throw new RangeError(`point is not on the ${suite.id} curve`);
    }
    return bytes;
}

/**
 * Rejects wrong length, non-compressed/invalid prefix, off-curve and identity.
 * @throws {DecodeError} `wrongLength` when: point: expected … bytes, got …
 * @throws {DecodeError} `nonCanonical` when: point: prefix 0x…; point: x coordinate is not reduced modulo p
 * @throws {DecodeError} `offCurve` when: point: x is not the coordinate of a curve point
 * @throws {DecodeError} `identityPoint` when: point: identity
 */
export function decodePoint(suite: Suite, bytes: Uint8Array): Point {
    if (bytes.length !== suite.pointBytes) {
        throw new DecodeError('wrongLength', `point: expected ${suite.pointBytes} bytes, got ${bytes.length}`);
    }
    const prefix = bytes[0];
    if (prefix !== 0x02 && prefix !== 0x03) {
        // 0x04 (uncompressed), 0x00 (identity) and anything else are not the canonical form.
        throw new DecodeError('nonCanonical', `point: prefix 0x${(prefix ?? 0).toString(16).padStart(2, '0')}`);
    }
    // x must be a reduced field element; x >= p would be a second spelling of x - p.
    if (bytesToBigInt(bytes.subarray(1)) >= suite.Point.Fp.ORDER) {
        throw new DecodeError('nonCanonical', 'point: x coordinate is not reduced modulo p');
    }
    let point: Point;
    try {
        point = opensslDecompress(suite, bytes);
        point.assertValidity();
    } catch (cause) {
        throw new DecodeError('offCurve', 'point: x is not the coordinate of a curve point', { cause });
    }
    if (point.is0()) {
        throw new DecodeError('identityPoint', 'point: identity');
    }
    return point;
}

/**
 * Fixed-width big-endian encoding of a scalar in [0, n-1]. Throws RangeError outside it.
 * @throws {RangeError} when: scalar outside [0, n-1]
 */
export function encodeScalar(suite: Suite, s: bigint): Uint8Array {
    if (s < 0n || s >= suite.n) {
        throw new RangeError('scalar outside [0, n-1]');
    }
    return bigIntToBytes(s, suite.scalarBytes);
}

/**
 * Rejects wrong length and values outside [1, n-1] (or [0, n-1] when allowZero).
 * @throws {DecodeError} `wrongLength` when: scalar: expected … bytes, got …
 * @throws {DecodeError} `scalarOutOfRange` when: scalar outside […, n-1]
 */
export function decodeScalar(suite: Suite, bytes: Uint8Array, allowZero = false): bigint {
    if (bytes.length !== suite.scalarBytes) {
        throw new DecodeError('wrongLength', `scalar: expected ${suite.scalarBytes} bytes, got ${bytes.length}`);
    }
    const s = bytesToBigInt(bytes);
    if (s >= suite.n || (s === 0n && !allowZero)) {
        throw new DecodeError('scalarOutOfRange', `scalar outside [${allowZero ? 0 : 1}, n-1]`);
    }
    return s;
}

/** Unsigned big-endian integer of a byte string (empty = 0). */
export function bytesToBigInt(bytes: Uint8Array): bigint {
    let v = 0n;
    for (const b of bytes) {
        v = (v << 8n) | BigInt(b);
    }
    return v;
}

/**
 * Unsigned big-endian, exactly `length` bytes; RangeError if v does not fit.
 * @throws {RangeError} when: integer does not fit in … bytes
 */
export function bigIntToBytes(v: bigint, length: number): Uint8Array {
    if (v < 0n || v >> BigInt(8 * length) !== 0n) {
        throw new RangeError(`integer does not fit in ${length} bytes`);
    }
    const out = new Uint8Array(length);
    for (let i = length - 1; i >= 0; i--) {
        out[i] = Number(v & 0xffn);
        v >>= 8n;
    }
    return out;
}

const UTF8_ENCODER = new TextEncoder();
// fatal: invalid UTF-8 is refused instead of replaced; ignoreBOM: a leading BOM stays part of the
// string, so decode(encode(s)) is the identity and no two byte strings decode to the same string.
// With the u flag a surrogate pair is one code point, so this matches only unpaired surrogates.
const LONE_SURROGATE = /\p{Surrogate}/u;
const UTF8_DECODER = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Appends fields in canonical order; lengths are big-endian, variable fields are length-prefixed. */
export class ByteWriter {
    private buffer = new Uint8Array(256);
    private length = 0;

    private reserve(extra: number): Uint8Array {
        const needed = this.length + extra;
        if (needed > this.buffer.length) {
            const grown = new Uint8Array(Math.max(needed, this.buffer.length * 2));
            grown.set(this.buffer.subarray(0, this.length));
            this.buffer = grown;
        }
        const view = this.buffer.subarray(this.length, needed);
        this.length = needed;
        return view;
    }

    private uint(v: number, bytes: number): this {
        if (!Number.isInteger(v) || v < 0 || v >= 2 ** (8 * bytes)) {
            throw new RangeError(`value ${v} does not fit in an unsigned ${8 * bytes}-bit integer`);
        }
        const view = this.reserve(bytes);
        for (let i = bytes - 1; i >= 0; i--) {
            view[i] = v % 256;
            v = Math.floor(v / 256);
        }
        return this;
    }

    u8(v: number): this {
        return this.uint(v, 1);
    }
    u16(v: number): this {
        return this.uint(v, 2);
    }
    u32(v: number): this {
        return this.uint(v, 4);
    }
    /** Unsigned 64-bit big-endian (counters, sequence numbers). */
    u64(v: bigint): this {
        this.reserve(8).set(bigIntToBytes(v, 8));
        return this;
    }
    /** Fixed-length bytes, written as-is. */
    raw(b: Uint8Array): this {
        this.reserve(b.length).set(b);
        return this;
    }
    /** u16 length prefix + bytes. */
    bytes16(b: Uint8Array): this {
        return this.u16(b.length).raw(b);
    }
    /** u32 length prefix + bytes. */
    bytes32(b: Uint8Array): this {
        return this.u32(b.length).raw(b);
    }
    /**
     * UTF-8 string with a u16 length prefix.
     * @throws {RangeError} when: string contains a lone surrogate and has no UTF-8 encoding
     */
    string(s: string): this {
        if (LONE_SURROGATE.test(s)) {
            throw new RangeError('string contains a lone surrogate and has no UTF-8 encoding');
        }
        return this.bytes16(UTF8_ENCODER.encode(s));
    }
    point(suite: Suite, p: Point): this {
        return this.raw(encodePoint(suite, p));
    }
    scalar(suite: Suite, s: bigint): this {
        return this.raw(encodeScalar(suite, s));
    }
    finish(): Uint8Array {
        return this.buffer.slice(0, this.length);
    }
}

/** Reads what ByteWriter wrote; every read checks bounds; `end()` rejects trailing bytes. */
export class ByteReader {
    private offset = 0;
    private readonly bytes: Uint8Array;

    constructor(bytes: Uint8Array) {
        this.bytes = bytes;
    }

    private take(length: number): Uint8Array {
        if (length > this.bytes.length - this.offset) {
            throw new DecodeError(
                'truncated',
                `need ${length} bytes at offset ${this.offset}, have ${this.bytes.length - this.offset}`,
            );
        }
        const view = this.bytes.subarray(this.offset, this.offset + length);
        this.offset += length;
        return view;
    }

    u8(): number {
        return Number(bytesToBigInt(this.take(1)));
    }
    u16(): number {
        return Number(bytesToBigInt(this.take(2)));
    }
    u32(): number {
        return Number(bytesToBigInt(this.take(4)));
    }
    u64(): bigint {
        return bytesToBigInt(this.take(8));
    }
    /** A copy, so later mutation of the input cannot change decoded values. */
    raw(length: number): Uint8Array {
        return this.take(length).slice();
    }
    bytes16(): Uint8Array {
        return this.raw(this.u16());
    }
    bytes32(): Uint8Array {
        return this.raw(this.u32());
    }
    /**
     * @throws {DecodeError} `nonCanonical` when: string is not valid UTF-8
     */
    string(): string {
        const bytes = this.bytes16();
        try {
            return UTF8_DECODER.decode(bytes);
        } catch (cause) {
            throw new DecodeError('nonCanonical', 'string is not valid UTF-8', { cause });
        }
    }
    point(suite: Suite): Point {
        return decodePoint(suite, this.take(suite.pointBytes));
    }
    scalar(suite: Suite, allowZero = false): bigint {
        return decodeScalar(suite, this.take(suite.scalarBytes), allowZero);
    }
    /** Number of unread bytes. */
    remaining(): number {
        return this.bytes.length - this.offset;
    }
    /**
     * @throws {DecodeError} `trailingBytes` when: … unread bytes
     */
    end(): void {
        if (this.offset !== this.bytes.length) {
            throw new DecodeError('trailingBytes', `${this.bytes.length - this.offset} unread bytes`);
        }
    }
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
    let total = 0;
    for (const p of parts) total += p.length;
    const out = new Uint8Array(total);
    let offset = 0;
    for (const p of parts) {
        out.set(p, offset);
        offset += p.length;
    }
    return out;
}

/** Equality whose running time depends only on the lengths (for MACs, hashes and keys). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) {
        diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
    }
    return diff === 0;
}

export function toHex(b: Uint8Array): string {
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/**
 * Rejects odd length / non-hex characters / uppercase (canonical lowercase only).
 * @throws {DecodeError} `nonCanonical` when: hex: expected an even number of lowercase hex digits
 */
export function fromHex(s: string): Uint8Array {
    if (s.length % 2 !== 0 || !/^[0-9a-f]*$/.test(s)) {
        throw new DecodeError('nonCanonical', 'hex: expected an even number of lowercase hex digits');
    }
    return new Uint8Array(Buffer.from(s, 'hex'));
}

export function toBase64Url(b: Uint8Array): string {
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

/**
 * Rejects padding and non-canonical base64url.
 * @throws {DecodeError} `nonCanonical` when: base64url: invalid characters, padding or length; base64url: non-zero trailing bits
 */
export function fromBase64Url(s: string): Uint8Array {
    if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) {
        throw new DecodeError('nonCanonical', 'base64url: invalid characters, padding or length');
    }
    const bytes = new Uint8Array(Buffer.from(s, 'base64url'));
    // Unused low bits of the last character must be zero, otherwise two strings decode alike.
    if (toBase64Url(bytes) !== s) {
        throw new DecodeError('nonCanonical', 'base64url: non-zero trailing bits');
    }
    return bytes;
}
