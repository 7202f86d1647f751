/**
 * The ordering service's block cutter (Fabric's orderer/common/blockcutter with the solo/Raft
 * batch timer), single channel, in process:
 *
 *  - an envelope larger than PreferredMaxBytes cuts the pending batch and goes alone in a block;
 *  - an envelope that would overflow PreferredMaxBytes cuts the pending batch first;
 *  - MaxMessageCount envelopes cut a batch;
 *  - BatchTimeout after the first envelope of a batch arrived, the batch is cut;
 *  - an envelope above AbsoluteMaxBytes is refused at broadcast.
 * Sizes are Fabric's: payload bytes + signature bytes of the envelope.
 */

export interface BatchConfig {
    /** Default 2000 ms. */
    readonly batchTimeoutMs: number;
    /** Default 500. */
    readonly maxMessageCount: number;
    /** Default 2 MiB. */
    readonly preferredMaxBytes: number;
    /** Default 10 MiB. */
    readonly absoluteMaxBytes: number;
}

export const DEFAULT_BATCH_CONFIG: BatchConfig = {
    batchTimeoutMs: 2000,
    maxMessageCount: 500,
    preferredMaxBytes: 2 * 1024 * 1024,
    absoluteMaxBytes: 10 * 1024 * 1024,
};

export function validateBatchConfig(config: BatchConfig): BatchConfig {
    const positive = (name: keyof BatchConfig, integer: boolean): void => {
        const value = config[name];
        if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
            throw new RangeError(`${name} must be a positive ${integer ? 'integer' : 'number'}, got ${value}`);
        }
    };
    positive('batchTimeoutMs', false);
    positive('maxMessageCount', true);
    positive('preferredMaxBytes', true);
    positive('absoluteMaxBytes', true);
    if (config.preferredMaxBytes > config.absoluteMaxBytes)
        throw new RangeError('preferredMaxBytes exceeds absoluteMaxBytes');
    return config;
}

export interface OrderedEnvelope {
    readonly bytes: Uint8Array;
    /** payload + signature length, what the cutter counts */
    readonly size: number;
}

export class MessageTooLargeError extends Error {
    constructor(size: number, limit: number) {
        super(`envelope of ${size} bytes exceeds AbsoluteMaxBytes ${limit}`);
        this.name = 'MessageTooLargeError';
    }
}

export class BlockCutter {
    readonly #config: BatchConfig;
    readonly #deliver: (batch: Uint8Array[]) => void;
    #pending: Uint8Array[] = [];
    #pendingBytes = 0;
    #timer: NodeJS.Timeout | undefined;
    #closed = false;

    /** `deliver` receives each cut batch in order; it must not throw. */
    constructor(config: BatchConfig, deliver: (batch: Uint8Array[]) => void) {
        this.#config = validateBatchConfig(config);
        this.#deliver = deliver;
    }

    /** Accepts an envelope for ordering (Broadcast). */
    order(envelope: OrderedEnvelope): void {
        if (this.#closed) throw new Error('ordering service is stopped');
        if (envelope.size > this.#config.absoluteMaxBytes)
            throw new MessageTooLargeError(envelope.size, this.#config.absoluteMaxBytes);
        if (envelope.size > this.#config.preferredMaxBytes) {
            this.#cut();
            this.#deliver([envelope.bytes]);
            return;
        }
        if (this.#pendingBytes + envelope.size > this.#config.preferredMaxBytes) this.#cut();
        this.#pending.push(envelope.bytes);
        this.#pendingBytes += envelope.size;
        if (this.#pending.length >= this.#config.maxMessageCount) {
            this.#cut();
        } else if (this.#timer === undefined) {
            this.#timer = setTimeout(() => {
                this.#timer = undefined;
                this.#cut();
            }, this.#config.batchTimeoutMs);
        }
    }

    /** Number of envelopes waiting for a cut. */
    get pending(): number {
        return this.#pending.length;
    }

    /** Stops accepting envelopes. Pending ones are cut first if `flush`, else dropped (as in a crash). */
    close(flush: boolean): void {
        if (flush) this.#cut();
        clearTimeout(this.#timer);
        this.#timer = undefined;
        this.#pending = [];
        this.#pendingBytes = 0;
        this.#closed = true;
    }

    #cut(): void {
        clearTimeout(this.#timer);
        this.#timer = undefined;
        if (this.#pending.length === 0) return;
        const batch = this.#pending;
        this.#pending = [];
        this.#pendingBytes = 0;
        this.#deliver(batch);
    }
}
