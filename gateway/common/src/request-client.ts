/**
 * Request/response over MQTT 3.1.1 for the device side: publish an envelope to the own request
 * topic, match the reply on the own reply topic by correlation id, time out otherwise. Replies that
 * match no pending request (session-channel frames pushed by the fog) go to `onUnsolicited`.
 */
import { toHex } from '@m2m-fabric/protocol';
import type { MqttConnection } from './connection.js';
import {
    decodeEnvelope,
    decodeErrorBody,
    encodeEnvelope,
    EnvelopeKind,
    newCorrelationId,
    type Envelope,
} from './envelope.js';
import { ServiceError, ServiceErrorCode } from './errors.js';

interface Pending {
    resolve: (env: Envelope) => void;
    reject: (err: Error) => void;
    timer: NodeJS.Timeout;
}

export class RequestClient {
    private readonly pending = new Map<string, Pending>();
    private unsolicited: (env: Envelope) => void = () => undefined;
    /** Replies that did not decode: counted, never thrown (a broker may deliver garbage). */
    malformedReplies = 0;

    private constructor(
        private readonly conn: MqttConnection,
        private readonly requestTopic: string,
    ) {}

    static async create(conn: MqttConnection, requestTopic: string, replyTopic: string): Promise<RequestClient> {
        const rc = new RequestClient(conn, requestTopic);
        await conn.subscribe(replyTopic, (_topic, payload) => rc.onReply(payload));
        // After a reconnect (clean session) replies to earlier requests are lost: fail them now so
        // the caller retries or resumes at once instead of waiting for its timeout.
        conn.onConnect(() => rc.cancelAll('connection to the broker was lost; the request may not have been answered'));
        return rc;
    }

    onUnsolicited(handler: (env: Envelope) => void): void {
        this.unsolicited = handler;
    }

    private onReply(payload: Uint8Array): void {
        let env: Envelope;
        try {
            env = decodeEnvelope(payload);
        } catch {
            this.malformedReplies++;
            return;
        }
        const key = toHex(env.correlationId);
        const p = this.pending.get(key);
        if (p === undefined) {
            this.unsolicited(env);
            return;
        }
        this.pending.delete(key);
        clearTimeout(p.timer);
        if (env.kind === EnvelopeKind.Error) {
            try {
                p.reject(decodeErrorBody(env.body));
            } catch (err) {
                p.reject(err as Error);
            }
            return;
        }
        p.resolve(env);
    }

    /** Sends a request and resolves with the reply; a typed error reply rejects with ServiceError. */
    async request(kind: EnvelopeKind, body: Uint8Array, timeoutMs: number): Promise<Envelope> {
        const correlationId = newCorrelationId();
        return this.requestRaw(encodeEnvelope({ kind, correlationId, body }), correlationId, timeoutMs);
    }

    /**
     * Publishes raw bytes and waits for a reply carrying `correlationId` — {@link request} sends an
     * envelope through it; tests and diagnostics probe a fog with malformed payloads.
     */
    async requestRaw(payload: Uint8Array, correlationId: Uint8Array, timeoutMs: number): Promise<Envelope> {
        const key = toHex(correlationId);
        const reply = new Promise<Envelope>((resolve, reject) => {
            const timer = setTimeout(() => {
                this.pending.delete(key);
                reject(new ServiceError(ServiceErrorCode.Timeout, `no reply within ${timeoutMs} ms`));
            }, timeoutMs);
            this.pending.set(key, { resolve, reject, timer });
        });
        // The timeout (or cancelAll on a reconnect) can reject `reply` while publish is still waiting
        // for a broker that died: handle it now, and let whichever settles first decide. Awaiting
        // publish alone left that rejection unhandled, which ended the device process (fault
        // matrix, broker killed at M1).
        reply.catch(() => undefined);
        try {
            await Promise.race([this.conn.publish(this.requestTopic, payload), reply]);
        } catch (err) {
            const p = this.pending.get(key);
            if (p !== undefined) {
                clearTimeout(p.timer);
                this.pending.delete(key);
            }
            throw err;
        }
        return reply;
    }

    /** Sends a one-way message (session frames). */
    async send(kind: EnvelopeKind, body: Uint8Array): Promise<void> {
        await this.conn.publish(this.requestTopic, encodeEnvelope({ kind, correlationId: newCorrelationId(), body }));
    }

    /** Answers a message the fog pushed (a query delivered to this device) under its correlation id. */
    async reply(kind: EnvelopeKind, correlationId: Uint8Array, body: Uint8Array): Promise<void> {
        await this.conn.publish(this.requestTopic, encodeEnvelope({ kind, correlationId, body }));
    }

    /** Rejects every pending request (used on shutdown). */
    cancelAll(reason: string): void {
        for (const [key, p] of this.pending) {
            clearTimeout(p.timer);
            p.reject(new ServiceError(ServiceErrorCode.Unavailable, reason));
            this.pending.delete(key);
        }
    }
}
