/**
 * Step 4 of paper 000's record query over MQTT: where the fog delivers a query packet. A machine's
 * private area is the device-agent connection that sent a valid listen notice for it (a QueryDeliver
 * envelope to that connection's reply topic, answered by a QueryAnswer); when there is none, or it
 * does not answer in time, the CSP acting for the offline machine (a Query link message, answered
 * by a QueryAnswer link message). Replies are matched by the fog's own correlation id and, for a
 * device, by the connection it was sent to: no other connection can answer for the machine.
 */
import { ErrorCode, toHex } from '@m2m-fabric/protocol';
import { EnvelopeKind, newCorrelationId, ServiceError, ServiceErrorCode } from '@m2m-fabric/common';
import { encodeLinkMessage, encodeQueryLink, LinkKind } from '../link.js';
import type { FogContext } from './context.js';
import type { QueryEndpoint, QueryRoutes } from './query-handler.js';

interface PendingDelivery {
    /** The MQTT client id the packet went to, or 'csp'. */
    from: string;
    resolve: (reply: Uint8Array) => void;
    reject: (err: Error) => void;
}

const CSP = 'csp';

export class FogQueryRoutes implements QueryRoutes {
    /** equipment id -> the client id of its private area, and the notice time that set it. */
    private readonly listeners = new Map<string, { clientId: string; issuedAt: number }>();
    /** Last notice time per machine, listening or not: an older notice is a replay. */
    private readonly lastNotice = new Map<string, number>();
    private readonly pending = new Map<string, PendingDelivery>();
    /** Answers that matched no delivery (late, duplicated or from the wrong connection). */
    unmatchedAnswers = 0;

    constructor(private readonly ctx: FogContext) {}

    /**
     * Applies a verified listen notice.
     * @throws ServiceError replayDetected for a notice not newer than the last one of the machine.
     */
    listen(equipmentId: string, clientId: string, issuedAt: number, listening: boolean): void {
        const last = this.lastNotice.get(equipmentId);
        if (last !== undefined && issuedAt <= last)
            throw new ServiceError(
                ErrorCode.ReplayDetected,
                `a listen notice for ${equipmentId} not newer than the last`,
            );
        this.lastNotice.set(equipmentId, issuedAt);
        if (listening) this.listeners.set(equipmentId, { clientId, issuedAt });
        else if (this.listeners.get(equipmentId)?.clientId === clientId) this.listeners.delete(equipmentId);
    }

    /** The client id answering for a machine now, if any. */
    listenerOf(equipmentId: string): string | undefined {
        return this.listeners.get(equipmentId)?.clientId;
    }

    endpointsFor(targetId: string): readonly QueryEndpoint[] {
        const endpoints: QueryEndpoint[] = [];
        const listener = this.listeners.get(targetId);
        if (listener !== undefined) {
            endpoints.push({
                kind: 'target',
                deliver: (packet, timeoutMs) =>
                    this.await(listener.clientId, timeoutMs, (correlationId) =>
                        this.ctx.reply(listener.clientId, EnvelopeKind.QueryDeliver, correlationId, packet),
                    ),
            });
        }
        endpoints.push({
            kind: 'csp',
            deliver: (packet, timeoutMs) => {
                if (!this.ctx.cspConn.connected)
                    return Promise.reject(new ServiceError(ServiceErrorCode.Unavailable, 'the CSP link is down'));
                return this.await(CSP, timeoutMs, (correlationId) =>
                    this.ctx.cspConn.publish(
                        this.ctx.topics.cspInbound(this.ctx.fogId),
                        encodeLinkMessage(
                            this.ctx.key,
                            LinkKind.Query,
                            this.ctx.fogId,
                            encodeQueryLink({ correlationId, packet }),
                        ),
                    ),
                );
            },
        });
        return endpoints;
    }

    /** A QueryAnswer from `from` (a client id, or 'csp' for the link); false when it matches nothing. */
    settle(correlationId: Uint8Array, from: string, reply: Uint8Array): boolean {
        const key = toHex(correlationId);
        const p = this.pending.get(key);
        if (p === undefined || p.from !== from) {
            this.unmatchedAnswers++;
            return false;
        }
        this.pending.delete(key);
        p.resolve(reply);
        return true;
    }

    /** Rejects every delivery in progress (the fog is closing). */
    cancelAll(): void {
        for (const p of this.pending.values())
            p.reject(new ServiceError(ServiceErrorCode.Unavailable, 'fog shutting down'));
        this.pending.clear();
    }

    private await(
        from: string,
        timeoutMs: number,
        send: (correlationId: Uint8Array) => Promise<void>,
    ): Promise<Uint8Array> {
        const correlationId = newCorrelationId();
        const key = toHex(correlationId);
        return new Promise<Uint8Array>((resolve, reject) => {
            const timer = setTimeout(() => {
                this.pending.delete(key);
                reject(new ServiceError(ServiceErrorCode.Timeout, `no answer from ${from} within ${timeoutMs} ms`));
            }, timeoutMs);
            this.pending.set(key, {
                from,
                resolve: (reply) => {
                    clearTimeout(timer);
                    resolve(reply);
                },
                reject: (err) => {
                    clearTimeout(timer);
                    reject(err);
                },
            });
            send(correlationId).catch((err: unknown) => {
                clearTimeout(timer);
                this.pending.delete(key);
                reject(err instanceof Error ? err : new Error(String(err)));
            });
        });
    }
}
