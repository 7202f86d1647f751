/**
 * A thin layer over mqtt.js: MQTT 3.1.1, QoS 1, TCP no-delay on every (re)connect (mqtt.js never
 * sets it), handlers per topic filter, resubscription on reconnect, and credentials
 * recomputed on each reconnect (service accounts log in with a fresh signed token).
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Socket } from 'node:net';
import { ServiceError, ServiceErrorCode } from './errors.js';
import { silentLogger, type Logger } from './log.js';

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
    /** Where disconnects and reconnects are logged (default: the one set by setConnectionLogger). */
    logger?: Logger;
}

let defaultLogger: Logger = silentLogger;

/** Sets the logger of connections opened without one (a service sets its own at start-up). */
export function setConnectionLogger(logger: Logger): void {
    defaultLogger = logger;
}

/** What /healthz reports about one broker connection. */
export interface ConnectionStatus {
    clientId: string;
    url: string;
    connected: boolean;
    /** ISO time of the last connect or disconnect. */
    since: string;
    disconnects: number;
}

/** Every connection that is open (not closed) in this process, for health checks. */
const openConnections = new Set<MqttConnection>();

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
    /**
     * Retained messages this client published, by topic: republished on every reconnect, since a
     * broker restarted without persistence has forgotten them (the fog's info message).
     */
    private readonly retained = new Map<string, Uint8Array>();
    private closed = false;
    private lazy = false;
    private everConnected = false;
    private wasConnected = false;
    private changedAt = Date.now();
    private disconnects = 0;

    private constructor(
        private readonly client: MqttClient,
        readonly clientId: string,
        readonly url: string,
        private readonly log: Logger,
    ) {
        openConnections.add(this);
        client.on('close', () => {
            if (!this.wasConnected || this.closed) return;
            // Logged once per outage, not once per failed reconnect attempt.
            this.wasConnected = false;
            this.disconnects++;
            this.changedAt = Date.now();
            this.log.warn('broker connection lost; reconnecting', { clientId, url });
        });
        client.on('connect', (connack) => {
            (client.stream as Socket | undefined)?.setNoDelay?.(true);
            const reconnect = this.everConnected;
            if (reconnect)
                this.log.info('broker connection restored', {
                    clientId,
                    url,
                    downMs: Date.now() - this.changedAt,
                    sessionPresent: connack.sessionPresent === true,
                });
            this.everConnected = true;
            this.wasConnected = true;
            this.changedAt = Date.now();
            if (reconnect) for (const [topic, payload] of this.retained) this.republish(topic, payload);
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
        const conn = new MqttConnection(client, options.clientId, url, options.logger ?? defaultLogger);
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
                openConnections.delete(conn);
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

    /** Connected or not, since when, and how many outages so far. */
    get status(): ConnectionStatus {
        return {
            clientId: this.clientId,
            url: this.url,
            connected: this.client.connected,
            since: new Date(this.changedAt).toISOString(),
            disconnects: this.disconnects,
        };
    }

    /** The status of every open connection of this process (a service's /healthz reports them). */
    static statuses(): ConnectionStatus[] {
        return [...openConnections].map((c) => c.status);
    }

    private republish(topic: string, payload: Uint8Array): void {
        this.publish(topic, payload, true).then(
            () => this.log.info('retained message republished', { clientId: this.clientId, topic }),
            (err: unknown) =>
                this.log.warn('retained message not republished', {
                    clientId: this.clientId,
                    topic,
                    error: (err as Error).message,
                }),
        );
    }

    onConnect(fn: () => void): void {
        this.connectListeners.push(fn);
    }

    /**
     * Subscribes (QoS 1) and routes matching messages to `handler`. Rejects if the broker refuses.
     * @throws {ServiceError} `unavailable` when: subscription to … refused: …; subscription to … refused by the broker
     */
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
     * @throws {ServiceError} `unavailable` when: connection closed
     */
    async publish(topic: string, payload: Uint8Array, retain = false, timeoutMs = 10_000): Promise<void> {
        if (this.closed) throw new ServiceError(ServiceErrorCode.Unavailable, 'connection closed');
        if (retain) {
            if (payload.length === 0) this.retained.delete(topic);
            else this.retained.set(topic, payload.slice());
        }
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
        openConnections.delete(this);
        await this.client.endAsync(true);
    }
}
