/**
 * Waiting until a transaction has committed on a given peer. A submit returns once the submitting
 * client's own peer has committed the block; Fabric guarantees nothing about the other peers, which
 * receive the block moments later (or, after a restart, much later). A party that acts on another
 * party's transaction through its own peer — the CSP-CA issuing for a purchase the manufacturer
 * just committed, a fog reading an approval — must first see that transaction on its own peer, or
 * its chaincode may not find what the other party wrote (`unknownRequest`).
 *
 * The wait reads the chaincode events of the peer behind `connection` from the transaction's block
 * on: the peer delivers a block's events only once it has committed that block. Every state-changing
 * transaction of the m2m chaincode emits an event; for one that emits none, the first event of a
 * later block proves the commit just as well, but may be long in coming.
 */
import { LedgerError } from './errors.js';
import { submitCommittedWithRetry, type CommittedResult, type RetryOptions } from './retry.js';
import type { ChaincodeEvent, LedgerConnection, LedgerContract, TransactionOptions } from './types.js';

/** A transaction as its submitter saw it commit (`SubmittedTransaction.getStatus()`). */
export interface CommittedTransaction {
    readonly transactionId: string;
    readonly blockNumber: bigint;
}

/** The transaction did not show on the peer within the time allowed. */
export class CommitWaitTimeoutError extends LedgerError {
    override readonly transactionId: string;
    readonly blockNumber: bigint;
    readonly timeoutMs: number;
    constructor(properties: { transactionId: string; blockNumber: bigint; timeoutMs: number }) {
        super(
            `transaction ${properties.transactionId} (block ${properties.blockNumber}) not committed on this peer within ${properties.timeoutMs} ms`,
            properties.transactionId,
        );
        this.name = 'CommitWaitTimeoutError';
        this.transactionId = properties.transactionId;
        this.blockNumber = properties.blockNumber;
        this.timeoutMs = properties.timeoutMs;
    }
}

/**
 * Resolves once the peer behind `connection` has committed `transaction`.
 *
 * @throws CommitWaitTimeoutError when it has not within `timeoutMs` (default 30 s).
 * @throws whatever opening the event stream throws (connection errors).
 */
export async function waitForCommit(
    connection: LedgerConnection,
    chaincodeName: string,
    transaction: CommittedTransaction,
    options: { timeoutMs?: number } = {},
): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const stream = await connection.getChaincodeEvents(chaincodeName, { startBlock: transaction.blockNumber });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
            stream.close();
            reject(new CommitWaitTimeoutError({ ...transaction, timeoutMs }));
        }, timeoutMs);
    });
    const seen = (async (): Promise<void> => {
        for await (const event of stream as AsyncIterable<ChaincodeEvent>) {
            if (event.transactionId === transaction.transactionId || event.blockNumber > transaction.blockNumber) {
                return;
            }
        }
    })();
    try {
        await Promise.race([seen, timeout]);
    } finally {
        clearTimeout(timer);
        stream.close();
    }
}

/** Which other organisations' peers a change must have reached before the call returns. */
export interface VisibilityOptions {
    /**
     * Connections to the peers of the parties that act on the change next. A submit returns once
     * the submitter's own peer has committed; Fabric promises nothing of the others.
     */
    visibleOn?: readonly LedgerConnection[];
    /** How long to wait for each of them; default 30 s. */
    timeoutMs?: number;
}

/**
 * Submits (retrying read conflicts and endorsement mismatches as {@link submitCommittedWithRetry}
 * does, `retry.attempts` in all), then waits until every `visibleOn` peer has committed the
 * transaction.
 *
 * @throws the errors of {@link submitCommittedWithRetry}.
 * @throws CommitWaitTimeoutError when a `visibleOn` peer has not committed within `timeoutMs`.
 */
export async function submitVisibleTo(
    contract: LedgerContract,
    transactionName: string,
    options: TransactionOptions,
    visibility: VisibilityOptions,
    retry: RetryOptions = {},
): Promise<CommittedResult> {
    const committed = await submitCommittedWithRetry(contract, transactionName, options, retry);
    for (const connection of visibility.visibleOn ?? []) {
        await waitForCommit(connection, contract.chaincodeName, committed.status, {
            ...(visibility.timeoutMs === undefined ? {} : { timeoutMs: visibility.timeoutMs }),
        });
    }
    return committed;
}
