/**
 * Retrying a submit that lost an MVCC race. Fabric's answer to MVCC_READ_CONFLICT is to run the
 * transaction again against the newer state: a new proposal, so a new transaction ID, endorsed
 * afresh. Every `submit` call creates a new transaction ID, so calling it again is exactly that.
 * Only MVCC_READ_CONFLICT and PHANTOM_READ_CONFLICT are retried: any other failure would repeat.
 */
import { CommitError } from './errors.js';
import type { LedgerContract, TransactionOptions } from './types.js';

export interface RetryOptions {
    /** Total attempts including the first; default 5. */
    attempts?: number;
    /** Delay before the second attempt in ms, doubled each time with ±50 % jitter; default 10. */
    backoffMs?: number;
    /** Called before each retry with the conflict that caused it. */
    onRetry?: (error: CommitError, attempt: number) => void;
}

const RETRYABLE = new Set(['MVCC_READ_CONFLICT', 'PHANTOM_READ_CONFLICT']);

/** True if re-endorsing the same call may succeed. */
export function isRetryableConflict(error: unknown): error is CommitError {
    return error instanceof CommitError && RETRYABLE.has(error.code);
}

/**
 * `contract.submit(name, options)`, re-endorsed with a new transaction ID after a read conflict,
 * up to `attempts` times. Rethrows the last conflict, or the first non-conflict error at once.
 */
export async function submitWithRetry(
    contract: LedgerContract,
    transactionName: string,
    options: TransactionOptions = {},
    retry: RetryOptions = {},
): Promise<Uint8Array> {
    const attempts = retry.attempts ?? 5;
    if (!Number.isInteger(attempts) || attempts < 1) throw new RangeError(`attempts must be a positive integer`);
    let delay = retry.backoffMs ?? 10;
    for (let attempt = 1; ; attempt++) {
        try {
            return await contract.submit(transactionName, options);
        } catch (err) {
            if (!isRetryableConflict(err) || attempt >= attempts) throw err;
            retry.onRetry?.(err, attempt);
            await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random())));
            delay *= 2;
        }
    }
}
