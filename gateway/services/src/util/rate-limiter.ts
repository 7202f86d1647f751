/**
 * Token buckets for anonymous requests. Devices carry no stable identifier before a session
 * exists (docs/design.md#transport), so the fog limits per MQTT connection (client id) and, because a
 * client can reconnect under a new id, also globally. The per-key map is bounded: the least
 * recently used buckets are evicted (an evicted key starts full again, which only ever errs on
 * the side of the global limit).
 */

export interface RateLimit {
    /** Sustained rate, tokens per second. */
    ratePerSecond: number;
    /** Bucket size: how many requests may arrive at once. */
    burst: number;
}

class Bucket {
    tokens: number;
    updated: number;
    constructor(
        private readonly limit: RateLimit,
        now: number,
    ) {
        this.tokens = limit.burst;
        this.updated = now;
    }
    take(now: number): boolean {
        const elapsed = Math.max(0, now - this.updated) / 1000;
        this.tokens = Math.min(this.limit.burst, this.tokens + elapsed * this.limit.ratePerSecond);
        this.updated = now;
        if (this.tokens < 1) return false;
        this.tokens -= 1;
        return true;
    }
}

export class RateLimiter {
    private readonly perKey = new Map<string, Bucket>();
    private readonly global: Bucket;
    /**
     * @throws {RangeError} when: rate limit burst must be >= 1
     */
    constructor(
        private readonly perKeyLimit: RateLimit,
        globalLimit: RateLimit,
        private readonly maxKeys = 10_000,
        private readonly clock: () => number = () => Date.now(),
    ) {
        if (perKeyLimit.burst < 1 || globalLimit.burst < 1) throw new RangeError('rate limit burst must be >= 1');
        this.global = new Bucket(globalLimit, clock());
    }

    /** True when a request from `key` may proceed (and consumes a token from both buckets). */
    allow(key: string): boolean {
        const now = this.clock();
        let bucket = this.perKey.get(key);
        if (bucket === undefined) {
            bucket = new Bucket(this.perKeyLimit, now);
            if (this.perKey.size >= this.maxKeys) {
                const oldest = this.perKey.keys().next();
                if (oldest.done !== true) this.perKey.delete(oldest.value);
            }
        } else {
            this.perKey.delete(key); // re-insert: Map order is the LRU order
        }
        this.perKey.set(key, bucket);
        if (!bucket.take(now)) return false;
        return this.global.take(now);
    }

    get trackedKeys(): number {
        return this.perKey.size;
    }
}
