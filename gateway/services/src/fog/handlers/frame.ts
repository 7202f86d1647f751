/**
 * Device → fog session-channel frame: relayed unread to the CSP over the signed link (FrameUp).
 * The fog cannot open it (it has no symKey_i). A RecordedFrame carries the device's signed
 * communication record of the frame beside it; the fog passes it on to the CSP, whose batcher
 * journals and anchors it.
 */
import { decodeRecordedFrame, toHex } from '@m2m-fabric/protocol';
import { decodeTagged, EnvelopeKind, ServiceError, ServiceErrorCode, type Envelope } from '@m2m-fabric/common';
import { encodeFrameUp, encodeLinkMessage, LinkKind } from '../../link.js';
import type { FogHandlerContext } from './handler.js';

export async function handleFrame(h: FogHandlerContext, clientId: string, env: Envelope): Promise<void> {
    const { ctx } = h;
    const { tag, payload: carried } = decodeTagged(env.body);
    // A recorded frame carries the device's communication record beside the frame; both go on unread.
    const { frame: payload, record } =
        env.kind === EnvelopeKind.RecordedFrame
            ? decodeRecordedFrame(carried)
            : { frame: carried, record: undefined as Uint8Array | undefined };
    // Shed before the link signature (and the CSP's check): per route, whatever the client id, and overall.
    if (!h.frameLimiter.allow(toHex(tag)))
        throw new ServiceError(ServiceErrorCode.RateLimited, 'too many frames for this session');
    if (!ctx.cspConn.connected) throw new ServiceError(ServiceErrorCode.Unavailable, 'the CSP link is down; retry');
    ctx.m.relayed.inc({ direction: 'up' });
    const body = encodeFrameUp({
        correlationId: env.correlationId,
        clientId,
        routeId: tag,
        frame: payload,
        ...(record !== undefined ? { record } : {}),
    });
    await ctx.cspConn.publish(
        ctx.topics.cspInbound(ctx.fogId),
        encodeLinkMessage(ctx.key, LinkKind.FrameUp, ctx.fogId, body),
    );
}
