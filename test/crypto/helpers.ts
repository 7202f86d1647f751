/** Shared helpers for the crypto tests (not a test file itself). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DecodeError, P256_SHA256, P384_SHA384, type DecodeReason, type Suite } from '@m2m-fabric/chaincode/protocol';

export const SUITES: readonly Suite[] = [P256_SHA256, P384_SHA384];

/** A uniformly random scalar in [1, n-1]. */
export function randomScalar(suite: Suite): bigint {
    for (;;) {
        const v = BigInt('0x' + randomBytes(suite.scalarBytes + 8).toString('hex')) % suite.n;
        if (v !== 0n) return v;
    }
}

/** Asserts fn throws a DecodeError, with the given reason when one is named. */
export function assertDecodeError(fn: () => unknown, reason?: DecodeReason): void {
    assert.throws(fn, (err: unknown) => {
        assert.ok(err instanceof DecodeError, `expected DecodeError, got ${String(err)}`);
        assert.equal(err.code, 'malformedInput');
        if (reason !== undefined) assert.equal(err.reason, reason);
        return true;
    });
}

/** A copy of `bytes` with one bit flipped at byte `index`. */
export function flipBit(bytes: Uint8Array, index: number, bit = 0): Uint8Array {
    const out = bytes.slice();
    out[index] = (out[index] ?? 0) ^ (1 << bit);
    return out;
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

export function hexToBigInt(hex: string): bigint {
    return BigInt('0x' + hex);
}
