/** What a fog handler works with: the shared context, the outbox and the step limiters. */
import type { ActivationOutbox } from '../activation-outbox.js';
import type { FogContext } from '../context.js';
import type { RateLimiter } from '../../util/rate-limiter.js';
import type { FifoLimiter } from '../../util/fifo-limiter.js';
import type { EquipmentDirectory, FogQueryHandler } from '../query-handler.js';
import type { FogQueryRoutes } from '../query-routes.js';

export interface FogHandlerContext {
    ctx: FogContext;
    outbox: ActivationOutbox;
    /** Anonymous M1s per MQTT client and overall. */
    limiter: RateLimiter;
    /** M1s per IDCert_i (after the proof of possession) and ledger reads overall. */
    certificateLimiter: RateLimiter;
    /** Session-channel frames per route ID and overall, before the link signature. */
    frameLimiter: RateLimiter;
    /** M1s worked on at once; the rest wait in arrival order. */
    m1Slots: FifoLimiter;
    /** Activations worked on at once until the orderer has them. */
    activationSlots: FifoLimiter;
    /** Paper 000's record query: steps 2-4 and 7-8, the M-EB reads, the private areas (handlers/query.ts). */
    queries: { handler: FogQueryHandler; directory: EquipmentDirectory; routes: FogQueryRoutes };
}
