/**
 * A protocol-buffers wire-format reader (https://protobuf.dev/programming-guides/encoding/), just
 * enough for the Fabric messages an offline receipt check reads (fabric-messages.ts). The device
 * agent verifies receipts with it and so does not need fabric-protos and google-protobuf.
 *
 * Stricter than a general decoder, because what it reads is evidence: a singular field that
 * appears twice, a group (wire types 3/4), a varint longer than ten bytes, a length past the end
 * of the message, or a field number 0 is a DecodeError. Fabric's own encoders (Go's
 * protobuf-go, google-protobuf in JS) never emit any of these, so a well-formed block reads
 * exactly as Fabric reads it; unknown fields are skipped, as proto3 requires.
 */
import { DecodeError } from './errors.js';

export const WireType = { Varint: 0, Fixed64: 1, LengthDelimited: 2, Fixed32: 5 } as const;
export type WireType = (typeof WireType)[keyof typeof WireType];

/** One field of a message as it appears on the wire. */
export interface WireField {
    readonly number: number;
    readonly wireType: WireType;
    /** Varint fields: the value (uint64 range). */
    readonly varint?: bigint;
    /** Length-delimited fields: a view of the bytes (not a copy). Fixed fields: their 4 or 8 bytes. */
    readonly bytes?: Uint8Array;
}

const MAX_VARINT_BYTES = 10;

function readVarint(bytes: Uint8Array, at: number): { value: bigint; next: number } {
    let value = 0n;
    let shift = 0n;
    for (let k = 0; k < MAX_VARINT_BYTES; k++) {
        const byte = bytes[at + k];
        if (byte === undefined) throw new DecodeError('truncated', 'varint past the end');
        value |= BigInt(byte & 0x7f) << shift;
        if ((byte & 0x80) === 0) {
            if (k === MAX_VARINT_BYTES - 1 && byte > 1) throw new DecodeError('invalidValue', 'varint over 64 bits');
            return { value, next: at + k + 1 };
        }
        shift += 7n;
    }
    throw new DecodeError('invalidValue', 'varint longer than ten bytes');
}

/**
 * The fields of one message in wire order.
 * @throws {DecodeError} when: truncated, a group or unknown wire type, field number 0, varint over 64 bits
 */
export function readFields(bytes: Uint8Array): WireField[] {
    const fields: WireField[] = [];
    let at = 0;
    while (at < bytes.length) {
        const tag = readVarint(bytes, at);
        at = tag.next;
        if (tag.value > 0xffffffffn) throw new DecodeError('invalidValue', 'field tag out of range');
        const number = Number(tag.value >> 3n);
        const wireType = Number(tag.value & 7n);
        if (number === 0) throw new DecodeError('invalidValue', 'field number 0');
        switch (wireType) {
            case WireType.Varint: {
                const v = readVarint(bytes, at);
                at = v.next;
                fields.push({ number, wireType, varint: v.value });
                break;
            }
            case WireType.LengthDelimited: {
                const length = readVarint(bytes, at);
                at = length.next;
                if (length.value > BigInt(bytes.length - at))
                    throw new DecodeError('truncated', `field ${number} past the end`);
                const end = at + Number(length.value);
                fields.push({ number, wireType, bytes: bytes.subarray(at, end) });
                at = end;
                break;
            }
            case WireType.Fixed64:
            case WireType.Fixed32: {
                const size = wireType === WireType.Fixed64 ? 8 : 4;
                if (at + size > bytes.length) throw new DecodeError('truncated', `field ${number} past the end`);
                fields.push({ number, wireType, bytes: bytes.subarray(at, at + size) });
                at += size;
                break;
            }
            default:
                throw new DecodeError('unknownType', `wire type ${wireType} (field ${number})`);
        }
    }
    return fields;
}

const EMPTY = new Uint8Array(0);

/**
 * A decoded message read by field number: proto3 defaults for absent fields, a DecodeError for a
 * field of the wrong wire type or a singular field given twice.
 */
export class WireMessage {
    readonly #fields: WireField[];

    /** @throws {DecodeError} as readFields */
    constructor(bytes: Uint8Array) {
        this.#fields = readFields(bytes);
    }

    #all(number: number, wireType: WireType): WireField[] {
        const out = this.#fields.filter((f) => f.number === number);
        for (const f of out) {
            if (f.wireType !== wireType)
                throw new DecodeError('invalidValue', `field ${number} has wire type ${f.wireType}`);
        }
        return out;
    }

    #one(number: number, wireType: WireType): WireField | undefined {
        const all = this.#all(number, wireType);
        if (all.length > 1) throw new DecodeError('nonCanonical', `field ${number} given ${all.length} times`);
        return all[0];
    }

    /** A `bytes` or embedded-message field; empty when absent. @throws {DecodeError} */
    bytes(number: number): Uint8Array {
        return this.#one(number, WireType.LengthDelimited)?.bytes ?? EMPTY;
    }

    /** Whether a length-delimited field is present (an embedded message set, even if empty). @throws {DecodeError} */
    has(number: number): boolean {
        return this.#one(number, WireType.LengthDelimited) !== undefined;
    }

    /** A `string` field (UTF-8, refused when invalid); '' when absent. @throws {DecodeError} */
    string(number: number): string {
        try {
            return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes(number));
        } catch (cause) {
            if (cause instanceof DecodeError) throw cause;
            throw new DecodeError('invalidValue', `field ${number} is not UTF-8`, { cause });
        }
    }

    /** A `repeated bytes` or repeated message field, in order. @throws {DecodeError} */
    repeated(number: number): Uint8Array[] {
        return this.#all(number, WireType.LengthDelimited).map((f) => f.bytes ?? EMPTY);
    }

    /** A `uint64` / `uint32` / `bool` / enum field; 0 when absent. @throws {DecodeError} */
    uint(number: number): bigint {
        return this.#one(number, WireType.Varint)?.varint ?? 0n;
    }

    /** An `int32` field (a negative value is sign-extended to 64 bits on the wire). @throws {DecodeError} */
    int32(number: number): number {
        return Number(BigInt.asIntN(32, this.uint(number)));
    }

    /** A `uint64` field as a safe integer. @throws {DecodeError} when: above 2^53 - 1 */
    safeUint(number: number): number {
        const value = this.uint(number);
        if (value > BigInt(Number.MAX_SAFE_INTEGER))
            throw new DecodeError('invalidValue', `field ${number} out of range`);
        return Number(value);
    }

    /** A `bool` field. @throws {DecodeError} */
    bool(number: number): boolean {
        return this.uint(number) !== 0n;
    }
}
