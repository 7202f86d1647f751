/**
 * Retrying a submit that lost a race. Fabric's answer to MVCC_READ_CONFLICT is to run the
 * transaction again against the newer state: a new proposal, so a new transaction ID, endorsed
 * afresh. Every `submit` call creates a new transaction ID, so calling it again is exactly that.
 *
 * Retried, because running the same call again can succeed:
 *   - MVCC_READ_CONFLICT and PHANTOM_READ_CONFLICT at commit (a key or range read changed);
 *   - `EndorsementMismatchError` at endorsement ("ProposalResponsePayloads do not match"): the
 *     endorsers were at different heights while a key the call reads was changing; once they have
 *     caught up they agree again.
 * Any other failure would repeat, and is rethrown at once. When the attempts run out the last error
 * is rethrown — for a mismatch an `EndorsementMismatchError`, never a bare policy failure.
 */
import { CommitError, EndorsementMismatchError, assertCommitted } from './errors.js';
import type { CommitStatus, LedgerContract, TransactionOptions } from './types.js';

export interface RetryOptions {
    /** Total attempts including the first; default 5. */
    attempts?: number;
    /** Delay before the second attempt in ms, doubled each time with ±50 % jitter; default 10. */
    backoffMs?: number;
    /** Called before each retry with the error that caused it. */
    onRetry?: (error: CommitError | EndorsementMismatchError, attempt: number) => void;
}

const RETRYABLE = new Set(['MVCC_READ_CONFLICT', 'PHANTOM_READ_CONFLICT']);

/** True if re-endorsing the same call may succeed: a read conflict at commit. */
export function isRetryableConflict(error: unknown): error is CommitError {
    return error instanceof CommitError && RETRYABLE.has(error.code);
}

/** True if submitting the same call again may succeed: a read conflict or an endorsement mismatch. */
export function isTransientSubmitError(error: unknown): error is CommitError | EndorsementMismatchError {
    return isRetryableConflict(error) || error instanceof EndorsementMismatchError;
}

/**
 * `contract.submit(name, options)`, submitted again with a new transaction ID after a read conflict
 * or an endorsement mismatch, up to `attempts` times.
 *
 * @throws the last `CommitError` (MVCC/phantom) or `EndorsementMismatchError` when the attempts ran
 *   out; any other error of `submit` at once.
 */
export async function submitWithRetry(
    contract: LedgerContract,
    transactionName: string,
    options: TransactionOptions = {},
    retry: RetryOptions = {},
): Promise<Uint8Array> {
    return await retrying(async () => await contract.submit(transactionName, options), retry);
}

/** A transaction that committed VALID: the chaincode's response and where it committed. */
export interface CommittedResult {
    readonly result: Uint8Array;
    readonly status: CommitStatus;
}

/**
 * As {@link submitWithRetry}, but also returns the commit status, so that the caller can wait for
 * the same transaction on another organisation's peer ({@link waitForCommit}) before that party
 * acts on it.
 *
 * @throws the last `CommitError` (MVCC/phantom) or `EndorsementMismatchError` when the attempts ran
 *   out; a `CommitError` for any other invalidation and any other error of `submitAsync` at once.
 */
export async function submitCommittedWithRetry(
    contract: LedgerContract,
    transactionName: string,
    options: TransactionOptions = {},
    retry: RetryOptions = {},
): Promise<CommittedResult> {
    return await retrying(async () => {
        const submitted = await contract.submitAsync(transactionName, options);
        const status = await submitted.getStatus(
            options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs },
        );
        assertCommitted(status);
        return { result: submitted.getResult(), status };
    }, retry);
}

async function retrying<T>(attempt: () => Promise<T>, retry: RetryOptions): Promise<T> {
    const attempts = retry.attempts ?? 5;
    if (!Number.isInteger(attempts) || attempts < 1) throw new RangeError(`attempts must be a positive integer`);
    let delay = retry.backoffMs ?? 10;
    for (let n = 1; ; n++) {
        try {
            return await attempt();
        } catch (err) {
            if (!isTransientSubmitError(err) || n >= attempts) throw err;
            retry.onRetry?.(err, n);
            await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random())));
            delay *= 2;
        }
    }
}
