/** Shared helpers for the crypto tests (not a test file itself). */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { DecodeError, P256_SHA256, P384_SHA384, type DecodeReason, type Suite } from '@m2m-fabric/protocol';

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

/**
 * RFC 9380 §5.3.1 expand_message_xmd written out with node:crypto's hash, independent of noble, to
 * cross-check the hash-to-field parameters (hash, L) our wrapper uses.
 */
export function expandMessageXmd(
    hash: 'sha256' | 'sha384',
    msg: Uint8Array,
    dst: Uint8Array,
    lenInBytes: number,
): Uint8Array {
    const H = (data: Uint8Array): Buffer => createHash(hash).update(data).digest();
    const bInBytes = hash === 'sha256' ? 32 : 48;
    const sInBytes = hash === 'sha256' ? 64 : 128;
    const ell = Math.ceil(lenInBytes / bInBytes);
    assert.ok(ell <= 255 && dst.length <= 255);
    const dstPrime = Buffer.concat([dst, Uint8Array.of(dst.length)]);
    const zPad = new Uint8Array(sInBytes);
    const libStr = Uint8Array.of(lenInBytes >> 8, lenInBytes & 0xff);
    const b0 = H(Buffer.concat([zPad, msg, libStr, Uint8Array.of(0), dstPrime]));
    const blocks = [H(Buffer.concat([b0, Uint8Array.of(1), dstPrime]))];
    for (let i = 2; i <= ell; i++) {
        const prev = blocks[blocks.length - 1] ?? Buffer.alloc(0);
        const xored = Buffer.from(b0.map((v, j) => v ^ (prev[j] ?? 0)));
        blocks.push(H(Buffer.concat([xored, Uint8Array.of(i), dstPrime])));
    }
    return new Uint8Array(Buffer.concat(blocks).subarray(0, lenInBytes));
}
