/**
 * Runs at most `limit` tasks at a time, the others waiting in arrival order.
 *
 * Why: a service that starts every request it receives at once shares its CPU (and the ledger's)
 * among all of them, so under a burst the first request finishes about when the last does. For
 * the key exchange that is the worst order: a block's BatchTimeout starts with its first
 * transaction, and the other sessions of the burst join that block as long as they are endorsed
 * within it. Finishing requests in arrival order gets the first transaction to the orderer early
 * and costs the rest nothing they would not spend anyway (docs/services.md, "Tests and benchmark").
 */
export class FifoLimiter {
    readonly #limit: number;
    #running = 0;
    readonly #waiting: (() => void)[] = [];

    /**
     * @throws {RangeError} when: limit must be a positive integer, got …
     */
    constructor(limit: number) {
        if (!Number.isInteger(limit) || limit < 1)
            throw new RangeError(`limit must be a positive integer, got ${limit}`);
        this.#limit = limit;
    }

    /** Tasks started and not finished. */
    get running(): number {
        return this.#running;
    }

    /** Tasks waiting for a slot. */
    get waiting(): number {
        return this.#waiting.length;
    }

    /** Waits for a slot; the returned function gives it back (calling it again does nothing). */
    async acquire(): Promise<() => void> {
        if (this.#running >= this.#limit) await new Promise<void>((resolve) => this.#waiting.push(resolve));
        else this.#running++;
        let released = false;
        return () => {
            if (released) return;
            released = true;
            // Hand the slot straight to the next waiter (running stays the same), else free it.
            const next = this.#waiting.shift();
            if (next !== undefined) next();
            else this.#running--;
        };
    }

    async run<T>(task: () => Promise<T>): Promise<T> {
        const release = await this.acquire();
        try {
            return await task();
        } finally {
            release();
        }
    }
}
