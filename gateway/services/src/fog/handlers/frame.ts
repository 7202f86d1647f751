/**
 * Device → fog session-channel frame: relayed unread to the CSP over the signed link (FrameUp).
 * The fog cannot open it (it has no symKey_i).
 */
import { decodeTagged, ServiceError, ServiceErrorCode, type Envelope } from '@m2m-fabric/common';
import { encodeFrameUp, encodeLinkMessage, LinkKind } from '../../link.js';
import type { FogHandlerContext } from './handler.js';

export async function handleFrame(h: FogHandlerContext, clientId: string, env: Envelope): Promise<void> {
    const { ctx } = h;
    const { tag, payload } = decodeTagged(env.body);
    if (!ctx.cspConn.connected) throw new ServiceError(ServiceErrorCode.Unavailable, 'the CSP link is down; retry');
    ctx.m.relayed.inc({ direction: 'up' });
    const body = encodeFrameUp({ correlationId: env.correlationId, clientId, routeId: tag, frame: payload });
    await ctx.cspConn.publish(
        ctx.topics.cspInbound(ctx.fogId),
        encodeLinkMessage(ctx.key, LinkKind.FrameUp, ctx.fogId, body),
    );
}
