/** Helpers for the protocol-level tests (hpke, session channel, messages, session); extends helpers.ts. */
import assert from 'node:assert/strict';
import { DecodeError, ProtocolError, type DecodeReason, type ErrorCode, type Suite } from '@m2m-fabric/protocol';
import { randomScalar } from './helpers.js';

export { SUITES, randomScalar } from './helpers.js';

export const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
export const toHexString = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export function randomPoint(suite: Suite): ReturnType<Suite['Point']['BASE']['multiply']> {
    return suite.Point.BASE.multiply(randomScalar(suite));
}

/** Asserts `fn` throws (or rejects with) a ProtocolError carrying `code`. */
export async function rejectsWithCode(fn: () => unknown, code: ErrorCode, message?: string): Promise<void> {
    await assert.rejects(
        async () => {
            await fn();
        },
        (e: unknown) => {
            assert.ok(e instanceof ProtocolError, `expected ProtocolError, got ${String(e)}`);
            assert.equal(e.code, code, message);
            return true;
        },
        message,
    );
}

/** Asserts `fn` throws a DecodeError, optionally with a given reason. */
export function throwsDecode(fn: () => unknown, reason?: DecodeReason, message?: string): void {
    assert.throws(
        fn,
        (e: unknown) => {
            assert.ok(e instanceof DecodeError, `expected DecodeError, got ${String(e)} ${message ?? ''}`);
            if (reason !== undefined) assert.equal(e.reason, reason, `${message ?? ''}: ${e.message}`);
            return true;
        },
        message,
    );
}

export async function rejectsDecode(fn: () => Promise<unknown>, reason?: DecodeReason): Promise<void> {
    await assert.rejects(fn, (e: unknown) => {
        assert.ok(e instanceof DecodeError, `expected DecodeError, got ${String(e)}`);
        if (reason !== undefined) assert.equal(e.reason, reason, e.message);
        return true;
    });
}
