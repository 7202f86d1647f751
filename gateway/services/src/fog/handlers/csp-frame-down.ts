/** CSP → fog FrameDown: a session-channel frame (or error) for a device, relayed to its reply topic. */
import { encodeErrorBody, encodeTagged, EnvelopeKind } from '@m2m-fabric/common';
import type { DeviceBoundBody } from '../../link.js';
import type { FogHandlerContext } from './handler.js';

export async function handleCspFrameDown(h: FogHandlerContext, body: DeviceBoundBody): Promise<void> {
    h.ctx.m.relayed.inc({ direction: 'down' });
    const env = body.outcome.ok
        ? { kind: EnvelopeKind.Frame, body: encodeTagged(body.routeId, body.outcome.frame) }
        : { kind: EnvelopeKind.Error, body: encodeErrorBody(body.outcome.code, body.outcome.detail) };
    await h.ctx.reply(body.clientId, env.kind, body.correlationId, env.body);
}
