/**
 * Runtime validation of transaction arguments and transient entries. Fabric delivers every argument
 * as a string the caller chose, so each one is treated as `unknown` and checked against an exact
 * pattern before use; a failure is a MalformedInput rejection naming the argument.
 */
import type { Context } from 'fabric-contract-api';

import { decodePoint, fromHex, isWeakCspKey } from '@m2m-fabric/protocol';
import { MAX_OBJECT_BYTES, parseContentAddress } from '@m2m-fabric/protocol';
import type { Point, Suite } from '@m2m-fabric/protocol';
import { ErrorCode, reject } from './errors.js';

/** Identifiers chosen by users (equipment ids, fog ids, MSP ids, labels). */
export const IDENTIFIER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
/** Free-text labels such as an equipment kind or model. */
export const LABEL_PATTERN = /^[\x20-\x7e]{1,128}$/;
/** Decimal integers without sign or leading zeros. */
const DECIMAL_PATTERN = /^(0|[1-9][0-9]{0,15})$/;

export function requireString(name: string, value: unknown, pattern: RegExp): string {
    if (typeof value !== 'string') {
        return reject(ErrorCode.MalformedInput, `${name} must be a string`);
    }
    if (!pattern.test(value)) {
        return reject(ErrorCode.MalformedInput, `${name} does not match ${pattern.source}`);
    }
    return value;
}

export function requireIdentifier(name: string, value: unknown): string {
    return requireString(name, value, IDENTIFIER_PATTERN);
}

export function requireLabel(name: string, value: unknown): string {
    return requireString(name, value, LABEL_PATTERN);
}

/** One of a closed set of values. */
export function requireOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
        return reject(ErrorCode.MalformedInput, `${name} must be one of ${allowed.join(', ')}`);
    }
    return value as T;
}

/** A decimal integer argument in [min, max]. */
export function requireInteger(name: string, value: unknown, min: number, max: number): number {
    if (typeof value !== 'string' || !DECIMAL_PATTERN.test(value)) {
        return reject(ErrorCode.MalformedInput, `${name} must be a decimal integer`);
    }
    const parsed = Number(value);
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
        return reject(ErrorCode.MalformedInput, `${name} must be between ${min} and ${max}`);
    }
    return parsed;
}

/** Canonical lowercase hex of exactly `length` bytes. */
export function requireHexBytes(name: string, value: unknown, length: number): Uint8Array {
    if (typeof value !== 'string' || value.length !== length * 2) {
        return reject(ErrorCode.MalformedInput, `${name} must be ${length} bytes of lowercase hex`);
    }
    try {
        return fromHex(value);
    } catch {
        return reject(ErrorCode.MalformedInput, `${name} must be ${length} bytes of lowercase hex`);
    }
}

/** Lowercase hex of one of several lengths (a value whose width depends on the suite it is of). */
export function requireHexBytesOf(name: string, value: unknown, lengths: readonly number[]): Uint8Array {
    const length = typeof value === 'string' ? lengths.find((l) => value.length === l * 2) : undefined;
    if (length === undefined) {
        return reject(
            ErrorCode.MalformedInput,
            `${name} must be ${[...new Set(lengths)].join(' or ')} bytes of lowercase hex`,
        );
    }
    return requireHexBytes(name, value, length);
}

/**
 * A public key no party may register (a CA key, a fog's suite key): a valid point of `suite`, not
 * the identity (whose SEC1 encoding is 0x00) nor a tiny multiple of G (isWeakCspKey).
 * @throws weakKey for the identity or ±k*G, k small; malformedInput for anything not a point
 */
export function requireStrongKey(name: string, value: unknown, suite: Suite): { point: Point; bytes: Uint8Array } {
    if (value === '00') return reject(ErrorCode.WeakKey, `${name} is the identity`);
    const key = requirePoint(name, value, suite);
    if (isWeakCspKey(suite, key.point))
        return reject(ErrorCode.WeakKey, `${name} is the identity or a tiny multiple of G`);
    return key;
}

/** A SEC1-compressed point of the deployment's suite, in lowercase hex. */
export function requirePoint(name: string, value: unknown, suite: Suite): { point: Point; bytes: Uint8Array } {
    const bytes = requireHexBytes(name, value, suite.pointBytes);
    try {
        return { point: decodePoint(suite, bytes), bytes };
    } catch {
        return reject(ErrorCode.MalformedInput, `${name} is not a valid ${suite.id} point`);
    }
}

/** A CIDv1 raw sha2-256 content address in its base32 string form; returns the binary CID. */
export function requireContentAddress(name: string, value: unknown): Uint8Array {
    if (typeof value !== 'string' || value.length > 128) {
        return reject(ErrorCode.MalformedInput, `${name} must be a CIDv1 string`);
    }
    try {
        return parseContentAddress(value);
    } catch {
        return reject(ErrorCode.MalformedInput, `${name} is not a CIDv1 raw sha2-256 content address`);
    }
}

/** A pagination bookmark: '' for the first page, else the bookmark a previous page returned. */
export function requireBookmark(name: string, value: unknown): string {
    if (value === '') {
        return '';
    }
    return requireIdentifier(name, value);
}

/** A required transient-map entry: sensitive inputs never travel as arguments. */
export function requireTransient(ctx: Context, key: string): Uint8Array {
    const value = ctx.stub.getTransient().get(key);
    if (value === undefined || value.length === 0) {
        return reject(ErrorCode.MalformedInput, `transient entry '${key}' is missing`);
    }
    if (value.length > MAX_OBJECT_BYTES) {
        return reject(ErrorCode.MalformedInput, `transient entry '${key}' exceeds ${MAX_OBJECT_BYTES} bytes`);
    }
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

/** Rejects transient entries the transaction does not define, so nothing unchecked rides along. */
export function requireOnlyTransientKeys(ctx: Context, allowed: (key: string) => boolean): void {
    for (const key of [...ctx.stub.getTransient().keys()].sort()) {
        if (!allowed(key)) {
            reject(ErrorCode.MalformedInput, `unexpected transient entry '${key}'`);
        }
    }
}
