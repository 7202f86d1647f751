/**
 * A thin layer over mqtt.js: MQTT 3.1.1, QoS 1, TCP no-delay on every (re)connect (mqtt.js never
 * sets it), handlers per topic filter, resubscription on reconnect, and credentials
 * recomputed on each reconnect (service accounts log in with a fresh signed token).
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Socket } from 'node:net';
import { ServiceError, ServiceErrorCode } from './errors.js';

export type MessageHandler = (topic: string, payload: Buffer) => void;

export interface ConnectionOptions {
    clientId: string;
    username?: string;
    /** A fixed password or a function called before every (re)connect. */
    password?: string | (() => string);
    /** Keep the broker-side session (queued QoS 1 messages) across reconnects. Services: true. */
    persistentSession?: boolean;
    reconnectPeriodMs?: number;
    connectTimeoutMs?: number;
    keepaliveSeconds?: number;
    /** 4 = MQTT 3.1.1 (default, works everywhere), 5 where the broker offers it. */
    protocolVersion?: 4 | 5;
    /**
     * Resolve at once instead of waiting for the first CONNACK: the client keeps retrying in the
     * background and subscribes on every connect. For links whose peer may be down at start-up.
     */
    lazy?: boolean;
}

/** Matches an MQTT topic against a filter with + and # wildcards. */
export function topicMatches(filter: string, topic: string): boolean {
    const f = filter.split('/');
    const t = topic.split('/');
    for (let i = 0; i < f.length; i++) {
        if (f[i] === '#') return true;
        if (i >= t.length) return false;
        if (f[i] !== '+' && f[i] !== t[i]) return false;
    }
    return f.length === t.length;
}

export class MqttConnection {
    private readonly handlers = new Map<string, MessageHandler>();
    private readonly connectListeners: (() => void)[] = [];
    private closed = false;
    private lazy = false;

    private constructor(
        private readonly client: MqttClient,
        readonly clientId: string,
    ) {
        client.on('connect', (connack) => {
            (client.stream as Socket | undefined)?.setNoDelay?.(true);
            // A broker that lost our session (restart without persistence) forgot the
            // subscriptions; mqtt.js only resubscribes clean sessions, so do it here for all.
            if (this.lazy || connack.sessionPresent !== true) {
                for (const filter of this.handlers.keys()) client.subscribe(filter, { qos: 1 }, () => undefined);
            }
            for (const fn of this.connectListeners) fn();
        });
        client.on('message', (topic, payload) => {
            for (const [filter, handler] of this.handlers) {
                if (topicMatches(filter, topic)) handler(topic, payload);
            }
        });
    }

    /** Connects; rejects with ServiceError(unavailable) if the first connection fails or is refused. */
    static async connect(url: string, options: ConnectionOptions): Promise<MqttConnection> {
        const password = options.password;
        const opts: IClientOptions = {
            clientId: options.clientId,
            protocolVersion: options.protocolVersion ?? 4,
            clean: options.persistentSession !== true,
            reconnectPeriod: options.reconnectPeriodMs ?? 500,
            connectTimeout: options.connectTimeoutMs ?? 5_000,
            keepalive: options.keepaliveSeconds ?? 30,
            resubscribe: true,
            queueQoSZero: false,
        };
        if (options.username !== undefined) opts.username = options.username;
        if (password !== undefined) opts.password = typeof password === 'function' ? password() : password;
        const client = mqtt.connect(url, opts);
        if (typeof password === 'function') {
            client.on('reconnect', () => {
                client.options.password = password();
            });
        }
        const conn = new MqttConnection(client, options.clientId);
        if (options.lazy === true) {
            conn.lazy = true;
            client.on('error', () => undefined);
            return conn;
        }
        await new Promise<void>((resolve, reject) => {
            const onConnect = (): void => {
                cleanup();
                resolve();
            };
            const onError = (err: Error): void => {
                cleanup();
                client.end(true);
                reject(new ServiceError(ServiceErrorCode.Unavailable, `MQTT connect to ${url}: ${err.message}`));
            };
            const timer = setTimeout(
                () => onError(new Error('connect timed out')),
                (options.connectTimeoutMs ?? 5_000) + 100,
            );
            const cleanup = (): void => {
                clearTimeout(timer);
                client.off('connect', onConnect);
                client.off('error', onError);
            };
            client.once('connect', onConnect);
            client.once('error', onError);
        });
        // Later errors (refused reconnects, socket errors) are retried by mqtt.js; keep them from
        // becoming unhandled 'error' events.
        client.on('error', () => undefined);
        return conn;
    }

    get connected(): boolean {
        return this.client.connected;
    }

    onConnect(fn: () => void): void {
        this.connectListeners.push(fn);
    }

    /** Subscribes (QoS 1) and routes matching messages to `handler`. Rejects if the broker refuses. */
    async subscribe(filter: string, handler: MessageHandler): Promise<void> {
        this.handlers.set(filter, handler);
        if (this.lazy && !this.client.connected) return; // subscribed on connect
        let granted: { qos: number }[];
        try {
            granted = await this.client.subscribeAsync(filter, { qos: 1 });
        } catch (err) {
            this.handlers.delete(filter);
            throw new ServiceError(
                ServiceErrorCode.Unavailable,
                `subscription to ${filter} refused: ${(err as Error).message}`,
            );
        }
        if (granted.some((g) => g.qos === 128)) {
            this.handlers.delete(filter);
            throw new ServiceError(ServiceErrorCode.Unavailable, `subscription to ${filter} refused by the broker`);
        }
    }

    /**
     * Publishes with QoS 1; resolves on PUBACK. Rejects with ServiceError(unavailable) when no PUBACK
     * arrives within `timeoutMs` (mqtt.js would otherwise wait forever for a broker that dropped
     * us); the message may still be delivered later, so receivers treat QoS 1 as at-least-once.
     */
    async publish(topic: string, payload: Uint8Array, retain = false, timeoutMs = 10_000): Promise<void> {
        if (this.closed) throw new ServiceError(ServiceErrorCode.Unavailable, 'connection closed');
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
            timer = setTimeout(
                () =>
                    reject(
                        new ServiceError(ServiceErrorCode.Unavailable, `no PUBACK for ${topic} within ${timeoutMs} ms`),
                    ),
                timeoutMs,
            );
        });
        try {
            await Promise.race([
                this.client.publishAsync(topic, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), {
                    qos: 1,
                    retain,
                }),
                timeout,
            ]);
        } finally {
            clearTimeout(timer);
        }
    }

    /** Waits until connected (after a broker restart), up to `timeoutMs`. */
    async waitConnected(timeoutMs: number): Promise<void> {
        if (this.client.connected) return;
        await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => {
                this.client.off('connect', onConnect);
                reject(new ServiceError(ServiceErrorCode.Unavailable, 'MQTT broker unreachable'));
            }, timeoutMs);
            const onConnect = (): void => {
                clearTimeout(timer);
                resolve();
            };
            this.client.once('connect', onConnect);
        });
    }

    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        await this.client.endAsync(true);
    }
}
