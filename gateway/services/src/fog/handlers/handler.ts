/** What a fog handler works with: the shared context, the outbox and the step limiters. */
import type { ActivationOutbox } from '../activation-outbox.js';
import type { FogContext } from '../context.js';
import type { RateLimiter } from '../../util/rate-limiter.js';
import type { FifoLimiter } from '../../util/fifo-limiter.js';

export interface FogHandlerContext {
    ctx: FogContext;
    outbox: ActivationOutbox;
    /** Anonymous M1s per MQTT client and overall. */
    limiter: RateLimiter;
    /** M1s worked on at once; the rest wait in arrival order. */
    m1Slots: FifoLimiter;
    /** Activations worked on at once until the orderer has them. */
    activationSlots: FifoLimiter;
}
