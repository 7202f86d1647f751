/**
 * Link message Forward (fog → CSP): the M4 of an activated session with Q_i, where the device
 * waits. Runs Algorithm 3 (synchronisation.ts) and answers the fog with a Result: the Confirm
 * frame under the new session key, or the error code of the check that failed.
 */
import { errorCodeOf, faultPoint, routeKey } from '@m2m-fabric/common';
import { decodeForward, LinkKind, type DeviceBoundBody } from '../../link.js';
import type { CspHandlerContext } from './handler.js';

export async function handleForward(h: CspHandlerContext, fogId: string, bytes: Uint8Array): Promise<void> {
    const { ctx } = h;
    const fwd = decodeForward(bytes);
    const key = routeKey(fwd.routeId);
    const started = performance.now();
    let outcome: DeviceBoundBody['outcome'];
    try {
        const frame = await h.synchroniser.run(fogId, fwd.m4, fwd.devicePublicKey, key);
        const s = ctx.sessions.get(key);
        if (s !== undefined) {
            s.lastClientId = fwd.clientId;
            s.fogId = fogId;
        }
        outcome = { ok: true, frame };
        ctx.m.sessions.inc({ outcome: 'established', code: '' });
        ctx.m.latency.observe((performance.now() - started) / 1000);
    } catch (err) {
        const code = errorCodeOf(err);
        ctx.m.sessions.inc({ outcome: 'failed', code });
        outcome = { ok: false, code, detail: (err as Error).message };
    }
    if (outcome.ok) faultPoint('Confirm');
    await ctx.send(fogId, LinkKind.Result, {
        correlationId: fwd.correlationId,
        clientId: fwd.clientId,
        routeId: fwd.routeId,
        outcome,
    });
    if (outcome.ok) void h.delivery.kick(key);
}
