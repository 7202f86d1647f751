/**
 * Which credit lots a purchase consumes. A manufacturer account's credit is held in lots, each under
 * its own ledger key (chaincode state.ts), and `requestSessionsFromLots` consumes only the lots it
 * names. This allocator gives purchases running side by side in one client lots of their own, so
 * that they touch no common key and all commit in the same blocks instead of losing MVCC races.
 *
 * It works from the lots as last read from the client's own peer: a lot another client consumed
 * meanwhile makes the purchase fail (MVCC conflict, or failedPayment when the lot is gone), and
 * the caller then reloads the lots and tries again. Purchases that find no free lot wait for those
 * in flight; when nothing is in flight and the lots cannot pay, the reservation is short and the
 * chaincode's failedPayment is the answer.
 */

/** A lot as `getCredit` lists it. */
export interface CreditLotBalance {
    readonly lotId: string;
    readonly remaining: number;
}

/** Lots set aside for one purchase until `release`. */
export interface CreditReservation {
    /** The lot IDs to name, in order. */
    readonly lots: readonly string[];
    /** Whether the lots held enough credit for the purchase when they were last read. */
    readonly covered: boolean;
    /**
     * Hands the lots back: `committed` when the purchase committed (their credit is used as the
     * chaincode used it), otherwise the lots are read again before the next reservation.
     */
    release(committed: boolean): void;
}

export class CreditLotAllocator {
    readonly #load: () => Promise<readonly CreditLotBalance[]>;
    /** lotId → credits left, as last read plus this client's own committed purchases. */
    #lots = new Map<string, number>();
    #fresh = false;
    readonly #reserved = new Set<string>();
    #waiters: (() => void)[] = [];

    /** @param load reads the account's lots (its `getCredit`) from the client's own peer. */
    constructor(load: () => Promise<readonly CreditLotBalance[]>) {
        this.#load = load;
    }

    /** Forgets what it knows of the lots: the next reservation reads them again. */
    invalidate(): void {
        this.#fresh = false;
    }

    /**
     * Lots for a purchase of `n` credits, none of them reserved by another purchase in flight.
     *
     * @throws whatever `load` throws (the ledger cannot be read).
     */
    async reserve(n: number): Promise<CreditReservation> {
        for (;;) {
            const justRead = !this.#fresh;
            if (justRead) await this.#reload();
            const picked = this.#pick(n);
            if (picked !== undefined) return this.#reservation(picked, n, true);
            if (this.#reserved.size > 0) {
                // Every free lot together is too little: wait for a purchase in flight to finish.
                await new Promise<void>((resolve) => this.#waiters.push(resolve));
                continue;
            }
            // Nothing in flight: the lots cannot pay. Unless just read, read them and try once more.
            if (justRead || !(await this.#reloadChanged())) {
                const all = [...this.#lots.keys()].sort();
                return this.#reservation(all, n, false);
            }
        }
    }

    async #reload(): Promise<void> {
        const lots = await this.#load();
        this.#lots = new Map(lots.filter((lot) => lot.remaining > 0).map((lot) => [lot.lotId, lot.remaining]));
        this.#fresh = true;
    }

    /** Reloads; true if the ledger's lots differ from what was known. */
    async #reloadChanged(): Promise<boolean> {
        const before = JSON.stringify([...this.#lots.entries()].sort());
        await this.#reload();
        return JSON.stringify([...this.#lots.entries()].sort()) !== before;
    }

    /** Free lots worth n: one lot that covers n if there is one, else the fewest in key order. */
    #pick(n: number): string[] | undefined {
        const free = [...this.#lots.entries()]
            .filter(([lotId, remaining]) => remaining > 0 && !this.#reserved.has(lotId))
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        // The smallest single lot that covers n keeps the big ones for big purchases.
        const single = free.filter(([, remaining]) => remaining >= n).sort(([, a], [, b]) => a - b)[0];
        if (single !== undefined) return [single[0]];
        const lots: string[] = [];
        let sum = 0;
        for (const [lotId, remaining] of free) {
            lots.push(lotId);
            sum += remaining;
            if (sum >= n) return lots;
        }
        return undefined;
    }

    #reservation(lots: string[], n: number, covered: boolean): CreditReservation {
        for (const lotId of lots) this.#reserved.add(lotId);
        let released = false;
        return {
            lots,
            covered,
            release: (committed) => {
                if (released) return;
                released = true;
                let needed = n;
                for (const lotId of lots) {
                    this.#reserved.delete(lotId);
                    if (!committed) continue;
                    // As the chaincode consumed them: in order, as much of each as still needed.
                    const remaining = this.#lots.get(lotId) ?? 0;
                    const take = Math.min(remaining, needed);
                    needed -= take;
                    if (remaining - take > 0) this.#lots.set(lotId, remaining - take);
                    else this.#lots.delete(lotId);
                }
                if (!committed) this.#fresh = false;
                const waiters = this.#waiters;
                this.#waiters = [];
                for (const wake of waiters) wake();
            },
        };
    }
}
