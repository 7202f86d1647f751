/**
 * Delivery of the CSP's queued instructions (instruction-outbox.ts) over the session channel: in
 * order, one at a time per device, on the device's newest reachable session, re-sent until the
 * device acknowledges the Download frame that carried it.
 */
import { FrameType, fromHex } from '@m2m-fabric/protocol';
import { errorCodeOf, newCorrelationId, ServiceError, ServiceErrorCode } from '@m2m-fabric/common';
import { LinkKind } from '../link.js';
import type { CspChannels } from './channels.js';
import type { CspContext } from './context.js';
import { InstructionOutbox, targetKey, type InstructionTarget, type QueuedInstruction } from './instruction-outbox.js';
import type { StoredSession } from './session-store.js';

export class InstructionDelivery {
    /** Per route: the delivery running now, and whether another pass was asked for meanwhile. */
    private readonly deliveries = new Map<string, Promise<void>>();
    private readonly redeliver = new Set<string>();

    constructor(
        private readonly ctx: CspContext,
        private readonly channels: CspChannels,
        readonly outbox: InstructionOutbox,
        private readonly retryMs: number,
    ) {}

    /** Outbox targets a session's frames deliver: its device (once known) and the session itself. */
    private targetsOf(s: StoredSession): string[] {
        const t = [targetKey({ routeId: s.routeId })];
        if (s.equipmentId !== undefined) t.push(targetKey({ equipmentId: s.equipmentId }));
        return t;
    }

    /** The route an outbox target is delivered on: its device's newest reachable session. */
    private routeFor(target: string): StoredSession | undefined {
        let best: StoredSession | undefined;
        for (const s of this.ctx.sessions.values()) {
            if (s.state !== 'established' || s.lastClientId === undefined) continue;
            if (!this.targetsOf(s).includes(target)) continue;
            if (best === undefined || (s.establishedAt ?? 0) > (best.establishedAt ?? 0)) best = s;
        }
        return best;
    }

    /** Runs (or re-runs after the current pass) the in-order delivery on one route. */
    kick(key: string): Promise<void> {
        const running = this.deliveries.get(key);
        if (running !== undefined) {
            this.redeliver.add(key);
            return running;
        }
        const run = (async () => {
            do {
                this.redeliver.delete(key);
                await this.deliverHead(key).catch((err: unknown) =>
                    this.ctx.log.warn('instruction delivery failed', { code: errorCodeOf(err) }),
                );
            } while (this.redeliver.has(key) && !this.ctx.closed);
        })().finally(() => this.deliveries.delete(key));
        this.deliveries.set(key, run);
        return run;
    }

    /**
     * Sends the oldest pending instruction for this route's device, unless it is already in flight
     * to the same client and not yet due for a retry. One at a time: the next goes when the device
     * acknowledged this one, so instructions arrive in order.
     */
    private async deliverHead(key: string): Promise<void> {
        const { ctx } = this;
        const s = ctx.sessions.get(key);
        if (ctx.closed || s?.state !== 'established' || s.lastClientId === undefined) return;
        const head = this.outbox.pending(this.targetsOf(s))[0];
        if (head === undefined) return;
        // Only the device's newest reachable session carries its instructions.
        if (this.routeFor(head.target)?.routeId !== key) return;
        const sent = head.sent;
        if (
            sent !== undefined &&
            sent.routeId === key &&
            sent.clientId === s.lastClientId &&
            Date.now() - sent.at < this.retryMs
        )
            return;
        const body = InstructionOutbox.payloadOf(head);
        const payload = new Uint8Array(8 + body.length);
        new DataView(payload.buffer).setBigUint64(0, BigInt(head.id));
        payload.set(body, 8);
        const frame = await this.channels.seal(key, FrameType.Download, payload);
        const seq = new DataView(frame.buffer, frame.byteOffset + 2, 8).getBigUint64(0);
        await this.outbox.markSent(head, {
            routeId: key,
            seq: seq.toString(),
            clientId: s.lastClientId,
            at: Date.now(),
        });
        await ctx.send(s.fogId, LinkKind.FrameDown, {
            correlationId: newCorrelationId(),
            clientId: s.lastClientId,
            routeId: fromHex(key),
            outcome: { ok: true, frame },
        });
        ctx.m.instructions.inc({ outcome: 'sent' });
    }

    /** Periodically: take in the CLI's spool, and re-send what is due on each device's route. */
    async tick(): Promise<void> {
        if (this.ctx.closed) return;
        try {
            const added = await this.outbox.takeSpool();
            if (added.length > 0) this.ctx.m.instructions.inc({ outcome: 'queued' }, added.length);
            const routes = new Set<string>();
            for (const item of this.outbox.pending()) {
                const s = this.routeFor(item.target);
                if (s !== undefined) routes.add(s.routeId);
            }
            await Promise.all([...routes].map((r) => this.kick(r)));
        } catch (err) {
            this.ctx.log.warn('instruction outbox pass failed', { error: (err as Error).message });
        }
    }

    /**
     * Queues an instruction for a device (by equipment id) or one session (route id) and delivers
     * it now if the device is reachable.
     *
     * @throws {ServiceError} unknownSession when no established session matches the target.
     */
    async send(target: InstructionTarget, payload: Uint8Array): Promise<'sent' | 'queued'> {
        const candidates = [...this.ctx.sessions.values()].filter(
            (s) =>
                s.state === 'established' &&
                (('routeId' in target && s.routeId === target.routeId) ||
                    ('equipmentId' in target && s.equipmentId === target.equipmentId)),
        );
        candidates.sort((a, b) => (b.establishedAt ?? 0) - (a.establishedAt ?? 0));
        const s = candidates[0];
        if (s === undefined)
            throw new ServiceError(ServiceErrorCode.UnknownSession, 'no established session for that device');
        // A session whose device is known queues for the device, so a later session delivers it.
        const key = targetKey(s.equipmentId !== undefined ? { equipmentId: s.equipmentId } : { routeId: s.routeId });
        const item = await this.outbox.add(key, payload);
        this.ctx.m.instructions.inc({ outcome: 'queued' });
        const route = this.routeFor(key);
        if (route === undefined) return 'queued';
        await this.kick(route.routeId);
        const now = this.outbox.pending([key]).find((i) => i.id === item.id);
        return now === undefined || now.sent !== undefined ? 'sent' : 'queued';
    }

    /** Instructions not yet acknowledged, oldest first (payloads left out). */
    pending(target?: InstructionTarget): Omit<QueuedInstruction, 'payload'>[] {
        return this.outbox
            .pending(target === undefined ? undefined : [targetKey(target)])
            .map(({ payload: _p, ...rest }) => rest);
    }

    /** Waits for the deliveries running now. */
    async settle(): Promise<void> {
        await Promise.allSettled([...this.deliveries.values()]);
    }
}
