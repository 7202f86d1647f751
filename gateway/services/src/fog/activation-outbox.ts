/**
 * The fog's durable activation outbox. Before an activation is submitted its outcome is written
 * here (activation, M4, where to answer). A restarted fog re-checks each entry on the ledger and
 * finishes it, so an activation the ledger acknowledged always reaches the CSP (M4 forward).
 */
import { fromBase64Url, fromHex } from '@m2m-fabric/protocol';
import { errorCodeOf, faultPoint, ServiceErrorCode } from '@m2m-fabric/common';
import { encodeForward, encodeLinkMessage, LinkKind } from '../link.js';
import { DurableMap } from '../util/durable-map.js';
import type { FogContext } from './context.js';

/** One activation on its way: persisted before the ledger sees it. */
export interface OutboxEntry {
    state: 'activating' | 'forwarding';
    primaryHash: string;
    activation: string;
    m4: string;
    devicePublicKey: string;
    routeId: string;
    clientId: string;
    correlationId: string;
    createdAt: number;
}

export class ActivationOutbox {
    /** Entries whose activation is being submitted right now (the drain loop leaves them). */
    private readonly inFlight = new Set<string>();
    /** When each entry's M4 was last sent, to re-send only after a pause. */
    private readonly lastForward = new Map<string, number>();
    private draining = false;

    private constructor(
        private readonly ctx: FogContext,
        private readonly entries: DurableMap<OutboxEntry>,
    ) {}

    static async open(ctx: FogContext, dataDir: string): Promise<ActivationOutbox> {
        return new ActivationOutbox(
            ctx,
            await DurableMap.open<OutboxEntry>(`${dataDir}/fog-${ctx.fogId}-outbox.jsonl`),
        );
    }

    get size(): number {
        return this.entries.size;
    }

    /** Records a new activation durably, marked in flight so the drain loop leaves it to its caller. */
    async add(entry: OutboxEntry): Promise<void> {
        // In flight from before it is in the outbox: the drain loop (which may run while the outbox
        // write is on its way to disk) must not submit this activation a second time.
        this.inFlight.add(entry.primaryHash);
        try {
            await this.entries.set(entry.primaryHash, entry);
        } catch (err) {
            this.inFlight.delete(entry.primaryHash);
            throw err;
        }
    }

    /** Submits the activation (state 'activating'), then forwards M4 (state 'forwarding'). */
    async activate(entry: OutboxEntry, ordered?: () => void): Promise<void> {
        const { ctx } = this;
        this.inFlight.add(entry.primaryHash);
        try {
            faultPoint('activation-submit');
            await ctx.ledgerCall(() => ctx.ledger.activateSession(ctx.fogId, fromBase64Url(entry.activation), ordered));
            faultPoint('activation-commit');
        } catch (err) {
            this.inFlight.delete(entry.primaryHash);
            const code = errorCodeOf(err);
            if (code === ServiceErrorCode.LedgerUnavailable || code === ServiceErrorCode.Internal) throw err; // outbox keeps it
            // A double-use refusal, or an MVCC conflict with a concurrent activation, may be our own.
            if (!(await this.activatedByUs(entry.primaryHash))) {
                // A definite refusal: nothing was recorded, forget the entry.
                await this.entries.delete(entry.primaryHash);
                throw err;
            }
            // An earlier activation of this same certificate through this fog committed (submitted before
            // a restart, or by an earlier attempt of the device's session): the same primaryHash, IDCert_i
            // and key commitments, so it stands for this one and M4 goes on to the CSP.
        }
        this.inFlight.delete(entry.primaryHash);
        entry.state = 'forwarding';
        // The state change and the forward overlap: a restart that still finds 'activating' checks the
        // ledger (drain) and forwards anyway, so the write need not precede the M4.
        await Promise.all([this.entries.set(entry.primaryHash, entry), this.forward(entry)]);
    }

    /** True when the ledger holds a session for `primaryHash` activated by this fog. */
    private async activatedByUs(primaryHash: string): Promise<boolean> {
        const session = await this.ctx.ledger.getSession(primaryHash).catch(() => undefined);
        return session !== undefined && session.fogId === this.ctx.fogId;
    }

    /** Sends M4 to the CSP over the signed link (Forward). */
    private async forward(entry: OutboxEntry): Promise<void> {
        const { ctx } = this;
        this.lastForward.set(entry.primaryHash, Date.now());
        faultPoint('M4-forward');
        const body = encodeForward({
            correlationId: fromHex(entry.correlationId),
            clientId: entry.clientId,
            routeId: fromHex(entry.routeId),
            m4: fromBase64Url(entry.m4),
            devicePublicKey: fromHex(entry.devicePublicKey),
        });
        await ctx.cspConn.publish(
            ctx.topics.cspInbound(ctx.fogId),
            encodeLinkMessage(ctx.key, LinkKind.Forward, ctx.fogId, body),
        );
    }

    /** The CSP decided on the entry forwarded under this correlation: it leaves the outbox. */
    settle(correlationId: string): Promise<void> {
        for (const [k, e] of this.entries.entries()) {
            if (e.correlationId === correlationId) {
                this.lastForward.delete(k);
                return this.entries.delete(k);
            }
        }
        return Promise.resolve();
    }

    /** Finishes every outbox entry: re-checks activations on the ledger, re-sends M4s. */
    async drain(): Promise<void> {
        const { ctx } = this;
        if (this.draining || ctx.closed || !ctx.cspConn.connected) return;
        this.draining = true;
        try {
            const now = Date.now();
            for (const entry of [...this.entries.values()]) {
                // Skip what is being submitted now, and what was finished since the snapshot.
                if (this.inFlight.has(entry.primaryHash) || this.entries.get(entry.primaryHash) !== entry) continue;
                if (now - (this.lastForward.get(entry.primaryHash) ?? 0) < 5_000) continue;
                try {
                    if (entry.state === 'activating') {
                        const session = await ctx.ledger.getSession(entry.primaryHash).catch(() => undefined);
                        if (session !== undefined && session.fogId === ctx.fogId) {
                            entry.state = 'forwarding';
                            await this.entries.set(entry.primaryHash, entry);
                        } else {
                            await this.activate(entry).catch(() => undefined);
                            continue;
                        }
                    }
                    await this.forward(entry);
                } catch (err) {
                    ctx.log.debug('outbox retry failed', { error: (err as Error).message });
                }
            }
        } finally {
            this.draining = false;
        }
    }

    close(): Promise<void> {
        return this.entries.close();
    }
}
