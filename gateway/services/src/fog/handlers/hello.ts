/** Device → fog Hello: answered with the fog's info (fog ID, suite, Q_f) for M1's C1. */
import { EnvelopeKind, type Envelope } from '@m2m-fabric/common';
import type { FogHandlerContext } from './handler.js';

export async function handleHello(h: FogHandlerContext, clientId: string, env: Envelope): Promise<void> {
    await h.ctx.reply(clientId, EnvelopeKind.HelloReply, env.correlationId, h.ctx.infoPayload());
}
