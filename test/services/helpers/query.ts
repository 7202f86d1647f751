/** Shared assertion of the record-query tests: a typed QueryError with its Fig. 8 step and retry. */
import assert from 'node:assert/strict';

import { QueryError, type ErrorCode, type QueryRetry } from '@m2m-fabric/protocol';

export async function assertQueryError(
    call: Promise<unknown>,
    code: ErrorCode,
    step: number,
    retry?: QueryRetry,
): Promise<void> {
    await assert.rejects(call, (error: unknown) => {
        assert.ok(error instanceof QueryError, String(error));
        assert.equal(error.code, code, error.message);
        assert.equal(error.step, step, error.message);
        if (retry !== undefined) assert.equal(error.retry, retry);
        return true;
    });
}
