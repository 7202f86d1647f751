/**
 * The console's live feed: reads the m2m chaincode event stream (committed, valid transactions, in
 * block order) from a checkpoint, keeps the activity tallies the sessions view charts, announces
 * each new block, and pushes both to subscribers (the server-sent event streams of open pages).
 *
 * The tallies and the stream position are saved together in one file, written atomically, so a
 * restarted console resumes after the last saved event without counting any event twice.
 */
import { readJsonFile, writeJsonAtomic } from '@m2m-fabric/common';
import { inMemoryCheckpointer, type ChaincodeEventStream, type LedgerConnection } from '@m2m-fabric/sdk';
import type { BlockSource } from './block-source.js';
import { decodeBlockView, type BlockView } from './blocks.js';

/** What the sessions view charts: counts by event, fog, owner and minute. Nothing names a device. */
export interface ActivityTally {
    events: Record<string, number>;
    /** fogId -> minute (ISO, UTC) -> activations. */
    activationsByFog: Record<string, Record<string, number>>;
    synchronisationsByFog: Record<string, number>;
    /** account -> certificates issued / requested. */
    issuedByOwner: Record<string, number>;
    requestedByOwner: Record<string, number>;
    /** account -> equipment registrations. */
    registeredByOwner: Record<string, number>;
}

/** One message of the live stream. */
export type FeedMessage =
    | { type: 'block'; block: BlockSummary }
    | {
          type: 'event';
          name: string;
          blockNumber: number;
          time: string;
          fogId?: string;
          owner?: string;
          n?: number;
      };

/** A block as the ledger view's table lists it. */
export interface BlockSummary {
    number: number;
    transactions: number;
    codes: BlockView['codes'];
    mvccConflicts: number;
    endorsers: string[];
    time: string;
}

export function summariseBlockView(view: BlockView): BlockSummary {
    const endorsers = new Set<string>();
    for (const tx of view.transactions) for (const e of tx.endorsers) endorsers.add(e);
    return {
        number: view.number,
        transactions: view.transactions.length,
        codes: view.codes,
        mvccConflicts: view.mvccConflicts,
        endorsers: [...endorsers].sort(),
        time: view.transactions[view.transactions.length - 1]?.timestamp ?? '',
    };
}

interface SavedFeed {
    version: 1;
    blockNumber: string;
    transactionId: string;
    /** Highest block announced. */
    lastBlock: number;
    tally: ActivityTally;
}

export interface ActivityFeedOptions {
    connection: LedgerConnection;
    chaincodeName: string;
    /** Blocks for timestamps and block announcements; without it the feed uses the arrival time. */
    blocks?: BlockSource;
    /** File holding the checkpoint and tallies; in memory only when absent. */
    statePath?: string;
    /** Delay before a changed state is saved (events in one block are saved once). */
    saveDelayMs?: number;
}

const emptyTally = (): ActivityTally => ({
    events: {},
    activationsByFog: {},
    synchronisationsByFog: {},
    issuedByOwner: {},
    requestedByOwner: {},
    registeredByOwner: {},
});

const bump = (m: Record<string, number>, k: string, by = 1): void => {
    m[k] = (m[k] ?? 0) + by;
};

export class ActivityFeed {
    readonly tally: ActivityTally;
    private readonly checkpointer = inMemoryCheckpointer();
    private lastBlock: number;
    private stream: ChaincodeEventStream | undefined;
    private readonly subscribers = new Set<(m: FeedMessage) => void>();
    private saveTimer: NodeJS.Timeout | undefined;
    private saving: Promise<void> = Promise.resolve();
    private reading: Promise<void> = Promise.resolve();
    private readonly recentBlocks: BlockSummary[] = [];
    private blockCache: { number: number; view: BlockView } | undefined;
    /** The last error reading a block, if blocks could not be read. */
    blockError: Error | undefined;
    /** Set when the stream ended with an error. */
    error: Error | undefined;

    private constructor(
        private readonly options: ActivityFeedOptions,
        saved: SavedFeed | undefined,
    ) {
        this.tally = saved?.tally ?? emptyTally();
        this.lastBlock = saved?.lastBlock ?? -1;
        if (saved !== undefined)
            void this.checkpointer.checkpointTransaction(BigInt(saved.blockNumber), saved.transactionId);
    }

    /** Loads the saved position and tallies (if any) and starts reading events. */
    static async start(options: ActivityFeedOptions): Promise<ActivityFeed> {
        const saved =
            options.statePath === undefined
                ? undefined
                : ((await readJsonFile(options.statePath)) as SavedFeed | undefined);
        const feed = new ActivityFeed(options, saved?.version === 1 ? saved : undefined);
        const stream = await options.connection.getChaincodeEvents(
            options.chaincodeName,
            feed.checkpointer.getBlockNumber() === undefined ? { startBlock: 0n } : { checkpoint: feed.checkpointer },
        );
        feed.stream = stream;
        feed.reading = feed.read(stream);
        return feed;
    }

    /** Blocks announced since start, newest last (at most 200). */
    get recent(): readonly BlockSummary[] {
        return this.recentBlocks;
    }

    /** Receives every block and event from now on; returns the unsubscribe function. */
    subscribe(fn: (m: FeedMessage) => void): () => void {
        this.subscribers.add(fn);
        return () => this.subscribers.delete(fn);
    }

    private publish(message: FeedMessage): void {
        for (const fn of this.subscribers) {
            try {
                fn(message);
            } catch {
                // A closed page's stream; it unsubscribes itself.
            }
        }
    }

    private async blockView(n: number): Promise<BlockView | undefined> {
        if (this.blockCache?.number === n) return this.blockCache.view;
        const bytes = await this.options.blocks?.block(n);
        if (bytes === undefined) return undefined;
        const view = decodeBlockView(bytes);
        this.blockCache = { number: n, view };
        return view;
    }

    private async announceBlocksUpTo(n: number): Promise<void> {
        if (this.options.blocks === undefined) {
            this.lastBlock = Math.max(this.lastBlock, n);
            return;
        }
        for (let b = this.lastBlock + 1; b <= n; b++) {
            let view: BlockView | undefined;
            try {
                view = await this.blockView(b);
            } catch (err) {
                // Blocks unreadable (e.g. a gateway without qscc): events still flow, blocks are not announced.
                this.blockError = err as Error;
                this.lastBlock = n;
                return;
            }
            if (view === undefined) break;
            const summary = summariseBlockView(view);
            this.recentBlocks.push(summary);
            if (this.recentBlocks.length > 200) this.recentBlocks.shift();
            this.lastBlock = b;
            this.publish({ type: 'block', block: summary });
        }
    }

    private async read(stream: ChaincodeEventStream): Promise<void> {
        try {
            for await (const event of stream) {
                const blockNumber = Number(event.blockNumber);
                await this.announceBlocksUpTo(blockNumber);
                const view = await this.blockView(blockNumber).catch(() => undefined);
                const time = view?.transactions.find((t) => t.txId === event.transactionId)?.timestamp;
                const minute = (time ?? new Date().toISOString()).slice(0, 16);
                let payload: Record<string, unknown> = {};
                try {
                    payload = JSON.parse(Buffer.from(event.payload).toString('utf8')) as Record<string, unknown>;
                } catch {
                    // Not JSON: counted by name only.
                }
                const str = (k: string): string | undefined => {
                    const v = payload[k];
                    return typeof v === 'string' ? v : undefined;
                };
                const fogId = str('fogId');
                const owner = str('owner');
                const n = typeof payload.n === 'number' ? payload.n : undefined;
                const t = this.tally;
                bump(t.events, event.eventName);
                if (event.eventName === 'SessionActivated' && fogId !== undefined)
                    bump((t.activationsByFog[fogId] ??= {}), minute);
                if (event.eventName === 'SessionSynchronised' && fogId !== undefined)
                    bump(t.synchronisationsByFog, fogId);
                if (event.eventName === 'CertificatesIssued' && owner !== undefined) bump(t.issuedByOwner, owner, n);
                if (event.eventName === 'SessionsRequested' && owner !== undefined) bump(t.requestedByOwner, owner, n);
                if (event.eventName === 'EquipmentRegistered' && owner !== undefined) bump(t.registeredByOwner, owner);
                await this.checkpointer.checkpointChaincodeEvent(event);
                this.scheduleSave();
                this.publish({
                    type: 'event',
                    name: event.eventName,
                    blockNumber,
                    time: time ?? new Date().toISOString(),
                    ...(fogId !== undefined ? { fogId } : {}),
                    ...(owner !== undefined ? { owner } : {}),
                    ...(n !== undefined ? { n } : {}),
                });
            }
        } catch (err) {
            this.error = err as Error;
        }
    }

    private scheduleSave(): void {
        if (this.options.statePath === undefined || this.saveTimer !== undefined) return;
        this.saveTimer = setTimeout(() => {
            this.saveTimer = undefined;
            this.saving = this.saving.then(() => this.save()).catch(() => undefined);
        }, this.options.saveDelayMs ?? 200);
    }

    private async save(): Promise<void> {
        const path = this.options.statePath;
        const blockNumber = this.checkpointer.getBlockNumber();
        if (path === undefined || blockNumber === undefined) return;
        const state: SavedFeed = {
            version: 1,
            blockNumber: blockNumber.toString(),
            transactionId: this.checkpointer.getTransactionId() ?? '',
            lastBlock: this.lastBlock,
            tally: this.tally,
        };
        await writeJsonAtomic(path, state);
    }

    /** Stops reading and saves the position and tallies. */
    async close(): Promise<void> {
        this.stream?.close();
        await this.reading;
        if (this.saveTimer !== undefined) {
            clearTimeout(this.saveTimer);
            this.saveTimer = undefined;
        }
        await this.saving;
        await this.save();
        this.subscribers.clear();
    }
}
