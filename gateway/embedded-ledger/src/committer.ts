/**
 * The committing peer: takes the orderer's batches in order, turns each into the next block
 * (number, previous header hash, data hash), validates it, and writes block, state, history and
 * transaction index in one atomic batch. Only after that write returns are commit statuses
 * reported and event streams woken — so nothing is announced that a crash could take back.
 */
import { buildBlock, decodeBlock, summariseBlock, type TransactionSummary } from './blocks.js';
import type { LedgerStore, TxLocation } from './store.js';
import type { BlockValidator } from './validator.js';

/** Recent blocks' summaries kept in memory for event streams. */
const RECENT_BLOCKS = 256;

type StatusWaiter = (location: TxLocation | Error) => void;

export class Committer {
    readonly #store: LedgerStore;
    readonly #validator: BlockValidator;
    #queue: Promise<void> = Promise.resolve();
    readonly #statusWaiters = new Map<string, Set<StatusWaiter>>();
    #commitWaiters: (() => void)[] = [];
    readonly #recent = new Map<number, TransactionSummary[]>();
    #failure: Error | undefined;

    constructor(store: LedgerStore, validator: BlockValidator) {
        this.#store = store;
        this.#validator = validator;
    }

    /** Set when a block could not be written; the ledger then refuses further work. */
    get failure(): Error | undefined {
        return this.#failure;
    }

    /** Queues a batch of envelopes from the orderer; blocks are committed strictly in order. */
    enqueue(envelopes: Uint8Array[]): void {
        this.#queue = this.#queue.then(async () => {
            if (this.#failure !== undefined) return;
            try {
                await this.#commit(envelopes);
            } catch (err) {
                this.#fail(err instanceof Error ? err : new Error(String(err)));
            }
        });
    }

    /** Writes a block that needs no validation (the genesis block). */
    async commitGenesis(envelope: Uint8Array, config: string): Promise<void> {
        const { bytes, headerHash } = buildBlock(0, new Uint8Array(), [envelope], [0]);
        await this.#store.commitBlock(
            { blockNum: 0, blockBytes: bytes, headerHash, updates: [], history: [], transactions: [] },
            config,
        );
    }

    /** Resolves once every queued batch is committed. */
    async drain(): Promise<void> {
        let queue: Promise<void>;
        do {
            queue = this.#queue;
            await queue;
        } while (queue !== this.#queue);
    }

    /**
     * Waits for a transaction to be committed (valid or not) and returns where. Resolves at once if
     * it already is; rejects with `signal`'s reason if aborted, or if the committer failed.
     */
    waitForStatus(txId: string, signal?: AbortSignal): Promise<TxLocation> {
        return new Promise<TxLocation>((resolve, reject) => {
            let settled = false;
            const waiter: StatusWaiter = (result) => {
                if (settled) return;
                settled = true;
                this.#removeWaiter(txId, waiter);
                signal?.removeEventListener('abort', onAbort);
                if (result instanceof Error) reject(result);
                else resolve(result);
            };
            const onAbort = (): void => waiter(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
            if (signal?.aborted === true) return onAbort();
            signal?.addEventListener('abort', onAbort, { once: true });
            if (this.#failure !== undefined) return waiter(this.#failure);
            let waiters = this.#statusWaiters.get(txId);
            if (waiters === undefined) this.#statusWaiters.set(txId, (waiters = new Set()));
            waiters.add(waiter);
            // Registered first, then looked up: a commit in between is caught by one or the other.
            this.#store.getTransaction(txId).then(
                (location) => location !== undefined && waiter(location),
                (err: unknown) => waiter(err instanceof Error ? err : new Error(String(err))),
            );
        });
    }

    /** Resolves at the next block commit (or failure/close). */
    nextCommit(): Promise<void> {
        return new Promise((resolve) => this.#commitWaiters.push(resolve));
    }

    /** Transaction summaries of a committed block. */
    async summaries(blockNum: number): Promise<TransactionSummary[]> {
        const recent = this.#recent.get(blockNum);
        if (recent !== undefined) return recent;
        const bytes = await this.#store.getBlock(blockNum);
        if (bytes === undefined) throw new Error(`block ${blockNum} not found`);
        return summariseBlock(decodeBlock(bytes));
    }

    /** Rejects all waiters (the ledger is closing). */
    close(reason: Error): void {
        for (const waiters of [...this.#statusWaiters.values()]) for (const waiter of [...waiters]) waiter(reason);
        this.#wakeCommitWaiters();
    }

    async #commit(envelopes: Uint8Array[]): Promise<void> {
        const blockNum = this.#store.height;
        const validated = await this.#validator.validate(blockNum, envelopes);
        const { bytes, headerHash } = buildBlock(blockNum, this.#store.tipHash, envelopes, validated.codes);
        await this.#store.commitBlock({
            blockNum,
            blockBytes: bytes,
            headerHash,
            updates: validated.updates,
            history: validated.history,
            transactions: validated.transactions,
        });
        this.#recent.set(blockNum, validated.summaries);
        this.#recent.delete(blockNum - RECENT_BLOCKS);
        for (const { txId, location } of validated.transactions) {
            const waiters = this.#statusWaiters.get(txId);
            if (waiters !== undefined) for (const waiter of [...waiters]) waiter(location);
        }
        this.#wakeCommitWaiters();
    }

    #fail(err: Error): void {
        this.#failure = err;
        this.close(err);
    }

    #wakeCommitWaiters(): void {
        const waiters = this.#commitWaiters;
        this.#commitWaiters = [];
        for (const wake of waiters) wake();
    }

    #removeWaiter(txId: string, waiter: StatusWaiter): void {
        const waiters = this.#statusWaiters.get(txId);
        if (waiters === undefined) return;
        waiters.delete(waiter);
        if (waiters.size === 0) this.#statusWaiters.delete(txId);
    }
}
