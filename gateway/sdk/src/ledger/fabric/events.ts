/**
 * A chaincode event stream that survives peer restarts. fabric-gateway's stream ends with an error
 * when the peer goes away; this wrapper reopens it with exponential backoff, resuming just after
 * the last event it delivered (block number + transaction ID, as a checkpoint does), so the
 * consumer sees every event once, in order, across the outage.
 */
import type {
    ChaincodeEvent as FabricChaincodeEvent,
    ChaincodeEventsOptions as FabricEventsOptions,
    CloseableAsyncIterable,
} from '@hyperledger/fabric-gateway';
import { GatewayError } from '@hyperledger/fabric-gateway';

import { ConnectionError } from '../errors.js';
import type { ChaincodeEvent, ChaincodeEventStream, ChaincodeEventsOptions, Checkpoint } from '../types.js';
import { isTransientStreamError } from './errors.js';

export interface ReconnectOptions {
    /** First delay before reopening, doubled after each failed attempt; default 250 ms. */
    initialDelayMs?: number;
    /** Upper bound of the delay; default 10 s. */
    maxDelayMs?: number;
    /** Called with the error that ended the stream, before each reopen attempt. */
    onReconnect?: (error: unknown, attempt: number) => void;
}

export type OpenEvents = (options: FabricEventsOptions) => Promise<CloseableAsyncIterable<FabricChaincodeEvent>>;

export class ResumingEventStream implements ChaincodeEventStream {
    readonly #open: OpenEvents;
    readonly #initial: ChaincodeEventsOptions;
    readonly #initialDelayMs: number;
    readonly #maxDelayMs: number;
    readonly #onReconnect: ((error: unknown, attempt: number) => void) | undefined;
    readonly #onClose: () => void;
    #closed = false;
    #current: CloseableAsyncIterable<FabricChaincodeEvent> | undefined;
    #last: { blockNumber: bigint; transactionId: string } | undefined;
    #wake: (() => void) | undefined;

    constructor(open: OpenEvents, initial: ChaincodeEventsOptions, reconnect: ReconnectOptions, onClose: () => void) {
        this.#open = open;
        this.#initial = initial;
        this.#initialDelayMs = reconnect.initialDelayMs ?? 250;
        this.#maxDelayMs = reconnect.maxDelayMs ?? 10_000;
        this.#onReconnect = reconnect.onReconnect;
        this.#onClose = onClose;
    }

    close(): void {
        if (this.#closed) return;
        this.#closed = true;
        this.#current?.close();
        this.#wake?.();
        this.#onClose();
    }

    /** Where the next (re)open starts: after the last delivered event, else where the caller asked. */
    #position(): FabricEventsOptions {
        const last = this.#last;
        if (last !== undefined) {
            const checkpoint: Checkpoint = {
                getBlockNumber: () => last.blockNumber,
                getTransactionId: () => last.transactionId,
            };
            return { checkpoint };
        }
        const options: FabricEventsOptions = {};
        if (this.#initial.startBlock !== undefined) options.startBlock = this.#initial.startBlock;
        if (this.#initial.checkpoint !== undefined) options.checkpoint = this.#initial.checkpoint;
        return options;
    }

    async #sleep(ms: number): Promise<void> {
        await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, ms);
            this.#wake = () => {
                clearTimeout(timer);
                resolve();
            };
        });
        this.#wake = undefined;
    }

    /**
     * @throws {Error}
     */
    async *[Symbol.asyncIterator](): AsyncIterator<ChaincodeEvent> {
        let delay = this.#initialDelayMs;
        let attempt = 0;
        while (!this.#closed) {
            let failure: unknown;
            try {
                const events = await this.#open(this.#position());
                this.#current = events;
                if (this.#closed) {
                    events.close();
                    return;
                }
                for await (const event of events) {
                    delay = this.#initialDelayMs;
                    attempt = 0;
                    this.#last = { blockNumber: event.blockNumber, transactionId: event.transactionId };
                    yield {
                        chaincodeName: event.chaincodeName,
                        eventName: event.eventName,
                        payload: event.payload,
                        transactionId: event.transactionId,
                        blockNumber: event.blockNumber,
                    };
                    if (this.#closed) return;
                }
                // The peer ended the stream without an error (e.g. it is shutting down): reopen.
                failure = new ConnectionError('chaincode event stream ended by the peer');
            } catch (err) {
                if (this.#closed) return;
                if (!isTransientStreamError(err)) {
                    throw err instanceof GatewayError
                        ? new ConnectionError(`chaincode event stream refused: ${err.message}`, { cause: err })
                        : err;
                }
                failure = err;
            } finally {
                this.#current?.close();
                this.#current = undefined;
            }
            if (this.#closed) return;
            attempt++;
            this.#onReconnect?.(failure, attempt);
            await this.#sleep(delay);
            delay = Math.min(delay * 2, this.#maxDelayMs);
        }
    }
}
