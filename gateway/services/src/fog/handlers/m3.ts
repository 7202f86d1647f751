/**
 * Device → fog M3 = ⟨Q_i, H(symKey_i), signature by d_i⟩ (Algorithm 2, second half). The fog
 * completes the ONE activation transaction (possession proof, DLEQ proof, M3), writes it to the
 * outbox, submits it, forwards M4 to the CSP, and answers the device Established with the CSP's
 * Confirm frame once Algorithm 3 is done.
 */
import {
    completeActivation,
    decodeM3,
    encodeActivation,
    encodeM4,
    encodePoint,
    toBase64Url,
    toHex,
    type M3,
    ErrorCode,
} from '@m2m-fabric/protocol';
import {
    decodeTagged,
    encodeTagged,
    EnvelopeKind,
    errorCodeOf,
    newCorrelationId,
    routeIdFor,
    routeKey,
    ServiceError,
    ServiceErrorCode,
    type Envelope,
} from '@m2m-fabric/common';
import type { OutboxEntry } from '../activation-outbox.js';
import type { PendingHandle } from '../context.js';
import type { FogHandlerContext } from './handler.js';
import { prepareForM3 } from './m1.js';

export async function handleM3(h: FogHandlerContext, clientId: string, env: Envelope): Promise<void> {
    const { ctx } = h;
    const { tag, payload } = decodeTagged(env.body);
    const key = toHex(tag);
    const pending = ctx.handles.get(key);
    if (pending === undefined || pending.expiresAt < Date.now()) {
        throw new ServiceError(ErrorCode.UnknownRequest, 'no M2 outstanding for this handle (expired or already used)');
    }
    const m3 = decodeM3(pending.suite, payload);
    // Single use from here on: a replayed M3 finds no handle.
    ctx.handles.delete(key);
    const started = performance.now();
    // Held until the orderer has the activation (or it failed), not while it waits for its block.
    const release = await h.activationSlots.acquire();
    try {
        await finishActivation(h, clientId, env, pending, m3, started, release);
    } finally {
        release();
    }
}

async function finishActivation(
    h: FogHandlerContext,
    clientId: string,
    env: Envelope,
    pending: PendingHandle,
    m3: M3,
    started: number,
    ordered: () => void,
): Promise<void> {
    const { ctx, outbox } = h;
    const prepared = await (pending.prepared ?? prepareForM3(ctx, pending));
    const activation = completeActivation(prepared.activation, pending.m1, m3);
    const { primaryHash, m4 } = prepared;
    const routeId = routeIdFor(pending.suite, pending.idCert);
    const entry: OutboxEntry = {
        state: 'activating',
        primaryHash: toHex(primaryHash),
        activation: toBase64Url(encodeActivation(activation)),
        m4: toBase64Url(encodeM4(m4)),
        devicePublicKey: toHex(encodePoint(pending.suite, m3.publicKey)),
        routeId: routeKey(routeId),
        clientId,
        correlationId: toHex(newCorrelationId()),
        createdAt: Date.now(),
    };
    await outbox.add(entry);
    const result = new Promise<Uint8Array>((resolve, reject) => {
        ctx.waiters.set(entry.correlationId, { resolve, reject });
    });
    result.catch(() => undefined); // observed below; this only keeps an early rejection handled
    const timeout = setTimeout(() => {
        const w = ctx.waiters.get(entry.correlationId);
        ctx.waiters.delete(entry.correlationId);
        w?.reject(
            new ServiceError(ServiceErrorCode.Timeout, 'the CSP did not answer in time; poll the session channel'),
        );
    }, ctx.cspTimeoutMs);
    try {
        await outbox.activate(entry, ordered);
        const confirm = await result;
        ctx.m.sessions.inc({ outcome: 'established', code: '' });
        ctx.m.latency.observe((performance.now() - started) / 1000);
        await ctx.reply(clientId, EnvelopeKind.Established, env.correlationId, encodeTagged(routeId, confirm));
    } catch (err) {
        ctx.waiters.delete(entry.correlationId);
        ctx.m.sessions.inc({ outcome: 'failed', code: errorCodeOf(err) });
        throw err;
    } finally {
        clearTimeout(timeout);
    }
}
