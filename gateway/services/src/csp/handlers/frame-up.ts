/**
 * Link message FrameUp (fog → CSP): one session-channel frame from a device, relayed by its fog
 * unread. Upload → stored as telemetry and acknowledged; Ack of a Download → the instruction leaves
 * the outbox; Ack-type poll → Confirm again. Then whatever instructions wait for the device go out.
 * With records on (../records.ts) the device's record of the frame is journaled first.
 * An empty frame asks for the forward-secret Confirm (E_C ‖ Confirm under K_i) of a device that
 * missed it: it has no channel yet, since K_i needs E_C. The answer holds only what the fog already
 * relayed once, so the request needs no authentication and changes nothing but a sequence number;
 * it is answered before the records check, so it needs no record even with records on (a record
 * names a frame under the channel, and this one has none).
 */
import { FrameType, fromHex } from '@m2m-fabric/protocol';
import { errorCodeOf, routeKey } from '@m2m-fabric/common';
import { decodeFrameUp, LinkKind, type DeviceBoundBody } from '../../link.js';
import type { TelemetryRecord } from '../session-store.js';
import type { CspHandlerContext } from './handler.js';

export async function handleFrameUp(h: CspHandlerContext, fogId: string, bytes: Uint8Array): Promise<void> {
    const { ctx, channels } = h;
    const up = decodeFrameUp(bytes);
    const key = routeKey(up.routeId);
    const reply = (outcome: DeviceBoundBody['outcome']): Promise<void> =>
        ctx.send(fogId, LinkKind.FrameDown, {
            correlationId: up.correlationId,
            clientId: up.clientId,
            routeId: up.routeId,
            outcome,
        });
    if (up.frame.length === 0) {
        try {
            const confirm = await h.synchroniser.confirm(key);
            ctx.m.frames.inc({ type: 'confirm-request', outcome: 'ok' });
            await reply({ ok: true, frame: confirm });
        } catch (err) {
            const code = errorCodeOf(err);
            ctx.m.frames.inc({ type: 'confirm-request', outcome: code });
            await reply({ ok: false, code, detail: (err as Error).message });
        }
        return;
    }
    let opened;
    let entry;
    try {
        entry = await channels.get(key);
        opened = await entry.channel.open(up.frame);
    } catch (err) {
        const code = errorCodeOf(err);
        ctx.m.frames.inc({ type: 'unknown', outcome: code });
        await reply({ ok: false, code, detail: (err as Error).message });
        return;
    }
    const s = ctx.sessions.get(key)!;
    s.lastClientId = up.clientId;
    s.fogId = fogId;
    await channels.persist(key, entry, true);
    let leafIndex: number | undefined;
    if (h.records !== undefined) {
        // The device's record of this frame is durable before anything answers the frame.
        try {
            leafIndex = await h.records.receive(key, up.frame, up.record, opened.payload);
        } catch (err) {
            const code = errorCodeOf(err);
            ctx.m.frames.inc({ type: 'record', outcome: code });
            await reply({ ok: false, code, detail: (err as Error).message });
            return;
        }
    }
    if (opened.type === FrameType.Ack && opened.payload.length === 8) {
        // The device acknowledges a Download frame: its instruction leaves the outbox.
        const seq = new DataView(opened.payload.buffer, opened.payload.byteOffset, 8).getBigUint64(0);
        const done = await h.delivery.outbox.acknowledge(key, seq);
        ctx.m.frames.inc({ type: 'ack', outcome: done === undefined ? 'stale' : 'ok' });
        if (done !== undefined) ctx.m.instructions.inc({ outcome: 'acknowledged' });
        await reply({ ok: true, frame: await channels.seal(key, FrameType.Ack, opened.payload) });
    } else if (opened.type === FrameType.Upload) {
        ctx.m.frames.inc({ type: 'upload', outcome: 'ok' });
        const text = new TextDecoder().decode(opened.payload);
        let equipmentId: string | undefined;
        try {
            const parsed = JSON.parse(text) as { equipmentId?: unknown };
            if (typeof parsed.equipmentId === 'string') equipmentId = parsed.equipmentId;
        } catch {
            /* opaque telemetry */
        }
        if (equipmentId !== undefined && s.equipmentId !== equipmentId) {
            s.equipmentId = equipmentId;
            await ctx.sessions.set(key, s);
        }
        const record: TelemetryRecord = {
            routeId: key,
            seq: opened.seq.toString(),
            receivedAt: Date.now(),
            payload: text,
            ...(s.equipmentId !== undefined ? { equipmentId: s.equipmentId } : {}),
        };
        await ctx.telemetry.set(`${key}:${opened.seq}`, record);
        h.onTelemetry(record);
        // The upload's Merkle receipt goes back to the device once its batch is anchored.
        if (leafIndex !== undefined) h.receipts?.expect(key, leafIndex);
        const ack = new Uint8Array(8);
        new DataView(ack.buffer).setBigUint64(0, opened.seq);
        await reply({ ok: true, frame: await channels.seal(key, FrameType.Ack, ack) });
    } else {
        // An Ack-type frame from the device is a poll: answer Confirm (the device may have
        // missed it) and then any queued instructions.
        ctx.m.frames.inc({ type: 'poll', outcome: 'ok' });
        await reply({ ok: true, frame: await channels.seal(key, FrameType.Confirm, fromHex(key)) });
    }
    // The device is reachable on this route now: deliver what waits for it.
    await h.delivery.kick(key);
}
