/**
 * CSP → fog Result: Algorithm 3's outcome for a forwarded M4 (the Confirm frame, or an error). The
 * outbox entry is done with a Confirm or a definite refusal; the waiting M3 request is answered, or —
 * when nobody waits (the fog restarted) — the outcome is pushed to the device's last known reply topic.
 */
import { toHex } from '@m2m-fabric/protocol';
import {
    encodeErrorBody,
    encodeTagged,
    EnvelopeKind,
    newCorrelationId,
    ServiceError,
    ServiceErrorCode,
    type AnyErrorCode,
} from '@m2m-fabric/common';
import type { DeviceBoundBody } from '../../link.js';
import type { FogHandlerContext } from './handler.js';

/**
 * CSP outcomes that say the synchronisation's fate is unknown (the CSP's ledger call failed; it keeps
 * the session `syncing`): the activation is on the ledger, so the outbox keeps the entry and re-sends
 * M4 until the CSP decides. Found by the fault matrix (peer killed at activation-submit): settled on
 * such an error, the entry was gone, the device's retries found the certificate `used` and polled a
 * CSP whose session stayed `syncing` until it restarted.
 */
const UNDECIDED: ReadonlySet<AnyErrorCode> = new Set([
    ServiceErrorCode.LedgerUnavailable,
    ServiceErrorCode.Internal,
    ServiceErrorCode.Unavailable,
    ServiceErrorCode.Timeout,
]);

export async function handleCspResult(h: FogHandlerContext, body: DeviceBoundBody): Promise<void> {
    const { ctx } = h;
    const corr = toHex(body.correlationId);
    // The device's answer does not wait for the deletion: if the fog restarts before it is durable,
    // the entry is re-forwarded and the CSP answers a duplicate M4 with the same outcome.
    const done = !body.outcome.ok && UNDECIDED.has(body.outcome.code) ? Promise.resolve() : h.outbox.settle(corr);
    const waiter = ctx.waiters.get(corr);
    ctx.waiters.delete(corr);
    if (waiter !== undefined) {
        if (body.outcome.ok) waiter.resolve(body.outcome.frame);
        else waiter.reject(new ServiceError(body.outcome.code, body.outcome.detail));
        await done;
        return;
    }
    await done;
    const env = body.outcome.ok
        ? { kind: EnvelopeKind.Frame, body: encodeTagged(body.routeId, body.outcome.frame) }
        : { kind: EnvelopeKind.Error, body: encodeErrorBody(body.outcome.code, body.outcome.detail) };
    await ctx.reply(body.clientId, env.kind, newCorrelationId(), env.body);
}
