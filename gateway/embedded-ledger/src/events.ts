/**
 * Chaincode event streams (the gateway's ChaincodeEvents service): events of valid transactions of
 * one chaincode, read from committed blocks in order. A stream is a cursor over the block store —
 * it replays from its start block and then waits for new commits — so it neither misses nor
 * repeats events across the replay/live boundary, and an event is never seen before its block is
 * durably committed.
 */
import type { ChaincodeEvent, ChaincodeEventStream } from '@m2m-fabric/sdk';
import { ValidationCodes } from '@m2m-fabric/sdk';
import type { Committer } from './committer.js';
import type { LedgerStore } from './store.js';

export class BlockEventStream implements ChaincodeEventStream {
    readonly #store: LedgerStore;
    readonly #committer: Committer;
    readonly #chaincodeName: string;
    readonly #startBlock: number;
    readonly #afterTransactionId: string | undefined;
    readonly #onClose: () => void;
    #closed = false;
    #wakeOnClose: (() => void) | undefined;
    #iterating = false;

    constructor(
        store: LedgerStore,
        committer: Committer,
        chaincodeName: string,
        startBlock: number,
        afterTransactionId: string | undefined,
        onClose: () => void,
    ) {
        this.#store = store;
        this.#committer = committer;
        this.#chaincodeName = chaincodeName;
        this.#startBlock = startBlock;
        this.#afterTransactionId = afterTransactionId;
        this.#onClose = onClose;
    }

    [Symbol.asyncIterator](): AsyncIterator<ChaincodeEvent> {
        if (this.#iterating) throw new Error('a chaincode event stream can be iterated only once');
        this.#iterating = true;
        return this.#events();
    }

    close(): void {
        if (this.#closed) return;
        this.#closed = true;
        this.#wakeOnClose?.();
        this.#onClose();
    }

    async *#events(): AsyncGenerator<ChaincodeEvent> {
        const closed = new Promise<void>((resolve) => (this.#wakeOnClose = resolve));
        let blockNum = this.#startBlock;
        // In the start block, skip up to and including the checkpointed transaction.
        let skipping = this.#afterTransactionId !== undefined;
        try {
            while (!this.#closed) {
                if (blockNum >= this.#store.height) {
                    if (this.#committer.failure !== undefined) throw this.#committer.failure;
                    await Promise.race([this.#committer.nextCommit(), closed]);
                    continue;
                }
                const summaries = await this.#committer.summaries(blockNum);
                for (const summary of summaries) {
                    if (this.#closed) return;
                    if (skipping && blockNum === this.#startBlock) {
                        if (summary.txId === this.#afterTransactionId) skipping = false;
                        continue;
                    }
                    const event = summary.event;
                    if (
                        summary.code !== ValidationCodes.VALID ||
                        event === undefined ||
                        event.chaincodeName !== this.#chaincodeName
                    )
                        continue;
                    yield {
                        chaincodeName: event.chaincodeName,
                        eventName: event.eventName,
                        payload: event.payload,
                        transactionId: summary.txId,
                        blockNumber: BigInt(blockNum),
                    };
                }
                skipping = false;
                blockNum++;
            }
        } finally {
            this.close();
        }
    }
}
