/**
 * The fog gateway (Algorithm 2), run by a fog-node operator next to its peer. Devices talk to it
 * over MQTT; it decrypts C1, looks the certificate up on the ledger, returns M2 after that
 * read-only pre-check, and on M3 submits ONE activation transaction (two ledger commits per
 * session in all: docs/design.md#two-commits-per-session). Then it forwards M4 to the CSP over the signed link and relays
 * session-channel frames it cannot read.
 *
 * This file starts and stops the gateway and dispatches each message to its handler:
 *   device → fog   Hello handlers/hello.ts · M1 handlers/m1.ts · M3 handlers/m3.ts · Frame handlers/frame.ts
 *                  Query, QueryListen, QueryAnswer handlers/query.ts (paper 000's record query)
 *   CSP → fog      Result handlers/csp-result.ts · FrameDown handlers/csp-frame-down.ts · QueryAnswer handlers/query.ts
 * Crash safety lives in activation-outbox.ts.
 */
import { fogAddress, fogWriter, toHex, type Suite, ErrorCode, MAX_ANSWER_BYTES } from '@m2m-fabric/protocol';
import {
    decodeEnvelope,
    EnvelopeKind,
    errorCodeOf,
    MqttConnection,
    peekCorrelationId,
    ServiceError,
    ServiceErrorCode,
    ThrottledWarning,
    TopicLayout,
    type Envelope,
    type Logger,
    type Principal,
} from '@m2m-fabric/common';
import type { ChaincodeClient, ObjectStore } from '@m2m-fabric/sdk';
import { availableParallelism } from 'node:os';
import { EmbeddedBroker } from '../broker.js';
import { ecdsaPublicKey, loginToken, verifyLoginToken, type ServiceKey } from '../keys.js';
import { decodeDeviceBound, LinkKind, parseLinkMessage, verifyLinkMessage, type DeviceBoundBody } from '../link.js';
import { MetricsRegistry } from '../metrics/registry.js';
import { FifoLimiter } from '../util/fifo-limiter.js';
import { RateLimiter, type RateLimit } from '../util/rate-limiter.js';
import { ActivationOutbox } from './activation-outbox.js';
import { FogContext } from './context.js';
import { handleCspFrameDown } from './handlers/csp-frame-down.js';
import { handleCspResult } from './handlers/csp-result.js';
import { handleFrame } from './handlers/frame.js';
import type { FogHandlerContext } from './handlers/handler.js';
import { handleHello } from './handlers/hello.js';
import { handleM1 } from './handlers/m1.js';
import { handleM3 } from './handlers/m3.js';
import { handleCspQueryAnswer, handleQuery, handleQueryAnswer, handleQueryListen } from './handlers/query.js';
import { FogQueryHandler } from './query-handler.js';
import { ledgerEquipmentDirectory } from './query-ledger.js';
import { FogQueryRoutes } from './query-routes.js';
import { FogRelayRecords } from './relay-records.js';
import { ensureFogSuiteKeys, fogSuiteKeyPath } from './suite-keys.js';
import type { RecordBatcher } from '../records/batcher.js';
import { fogMetrics } from './metrics.js';

export interface FogGatewayOptions {
    fogId: string;
    key: ServiceKey;
    ledger: ChaincodeClient;
    store: ObjectStore;
    /** Directory for the outbox. */
    dataDir: string;
    /** External device broker; unset = start an embedded one on `deviceBrokerPort`. */
    deviceBrokerUrl?: string;
    deviceBrokerPort?: number;
    /** Password for the fog's account on an external broker (embedded brokers use a signed token). */
    brokerPassword?: string;
    /** The CSP's broker (link). */
    cspBrokerUrl: string;
    cspBrokerPassword?: string;
    topics?: TopicLayout;
    /** Largest device request accepted (bytes); larger ones get `oversized`. */
    maxRequestBytes?: number;
    /** Anonymous M1 requests: per MQTT client and overall. */
    perClientLimit?: RateLimit;
    globalLimit?: RateLimit;
    /**
     * M1s per certificate (IDCert_i), checked after its proof of possession and before the ledger
     * read: rotating MQTT client ids does not get around it. Default 1/s, burst 3.
     */
    perCertificateLimit?: RateLimit;
    /**
     * Ledger reads for M1 overall: what the fog sheds before any ledger work. Default
     * {@link defaultLedgerReadLimit} (50/s, burst 100 on 2 cores).
     */
    ledgerReadLimit?: RateLimit;
    /** Session-channel frames per route ID, and overall (each costs a link signature). */
    perRouteFrameLimit?: RateLimit;
    globalFrameLimit?: RateLimit;
    /** How long an M2 handle waits for its M3. */
    handleTtlMs?: number;
    /** How often the outbox is re-checked for activations to finish and M4s to re-send (default 2000 ms). */
    outboxRetryMs?: number;
    /** How often the CSP's key epochs are re-read for a rotation (default 5000 ms). */
    cspKeyRefreshMs?: number;
    /**
     * Where the fog keeps its key for a suite other than the ledger's (a CSP key epoch of another
     * suite); default `<dataDir>/keys/<fogId>-<suite id>.json`.
     */
    suiteKeyFile?: (suite: Suite) => string;
    /** Suites to hold and register a key for at start, ahead of a CSP rotation to them. */
    suites?: readonly Suite[];
    /** How long the fog waits for the CSP's Alg. 3 result before answering the device `timeout`. */
    cspTimeoutMs?: number;
    /**
     * How many M1s, and separately how many activations (until the orderer has the transaction), the
     * fog works on at once; the rest wait in arrival order (util/fifo-limiter.ts). Default 8.
     */
    maxConcurrentSteps?: number;
    /** Register Q_f on the ledger if not yet registered, then wait for the CSP's approval. */
    autoRegister?: boolean;
    /** Record query (paper 000 step 4): how long one delivery to a private area may take (default 5000 ms). */
    queryDeliveryTimeoutMs?: number;
    /**
     * Communication records of the packets the fog relays between machines (relay-records.ts): a
     * RecordBatcher with writer `fog:<fogId>` and the fog's key, journal in the fog's data directory.
     * Each query packet and answer is relayed only once its record is durable. Off when unset.
     */
    records?: RecordBatcher;
    logger?: Logger;
    metrics?: MetricsRegistry;
}

type DeviceHandler = (h: FogHandlerContext, clientId: string, env: Envelope) => Promise<void>;
type CspHandler = (h: FogHandlerContext, body: DeviceBoundBody) => Promise<void>;

/** Envelope kinds a device sends, and their handlers. */
const DEVICE_HANDLERS: Partial<Record<number, DeviceHandler>> = {
    [EnvelopeKind.Hello]: handleHello,
    [EnvelopeKind.M1]: handleM1,
    [EnvelopeKind.M3]: handleM3,
    [EnvelopeKind.Frame]: handleFrame,
    [EnvelopeKind.Query]: handleQuery,
    [EnvelopeKind.QueryListen]: handleQueryListen,
    [EnvelopeKind.QueryAnswer]: handleQueryAnswer,
    [EnvelopeKind.RecordedFrame]: handleFrame,
};

/** Link message kinds the CSP sends a fog, and their handlers. */
const CSP_HANDLERS: Partial<Record<LinkKind, CspHandler>> = {
    [LinkKind.Result]: handleCspResult,
    [LinkKind.FrameDown]: handleCspFrameDown,
};

export class FogGateway {
    readonly suite: Suite;
    readonly fogId: string;
    readonly topics: TopicLayout;
    readonly metrics: MetricsRegistry;
    deviceBrokerUrl = '';
    private readonly ctx: FogContext;
    /** One line per code per 10 s, however many refused link messages arrive. */
    private refusedWarning!: ThrottledWarning;
    private handlers!: FogHandlerContext;
    private readonly limiter: RateLimiter;
    private readonly maxRequestBytes: number;
    private broker: EmbeddedBroker | undefined;
    private outbox!: ActivationOutbox;
    private retryTimer: NodeJS.Timeout | undefined;
    /** The fog's relay records (with `records`), set by start(). */
    relayRecords: FogRelayRecords | undefined;
    private keyTimer: NodeJS.Timeout | undefined;

    constructor(private readonly options: FogGatewayOptions) {
        this.suite = options.key.suite;
        this.fogId = options.fogId;
        this.topics = options.topics ?? new TopicLayout();
        this.metrics = options.metrics ?? new MetricsRegistry();
        this.maxRequestBytes = options.maxRequestBytes ?? 16 * 1024;
        this.limiter = new RateLimiter(
            options.perClientLimit ?? { ratePerSecond: 5, burst: 10 },
            options.globalLimit ?? { ratePerSecond: 500, burst: 1000 },
        );
        this.ctx = new FogContext(
            {
                ...options,
                topics: this.topics,
                handleTtlMs: options.handleTtlMs ?? 60_000,
                cspTimeoutMs: options.cspTimeoutMs ?? 30_000,
            },
            fogMetrics(this.metrics),
        );
        this.refusedWarning = new ThrottledWarning(this.ctx.log);
        const depth = this.metrics.gauge('m2m_fog_outbox_depth', 'Activations not yet answered by the CSP');
        depth.onCollect(() => depth.set(this.outbox?.size ?? 0));
        const relays = this.metrics.gauge(
            'm2m_fog_relay_records',
            'Relay records journaled (kind query/answer), and relays refused for want of one (kind failed)',
        );
        relays.onCollect(() => {
            const counts = this.relayRecords?.counts;
            if (counts === undefined) return;
            relays.set(counts.queries, { kind: 'query' });
            relays.set(counts.answers, { kind: 'answer' });
            relays.set(counts.failed, { kind: 'failed' });
        });
    }

    get outboxDepth(): number {
        return this.outbox.size;
    }

    /** Whether the link to the CSP's broker is connected now (false before `start`). */
    get cspLinkConnected(): boolean {
        return (this.ctx.cspConn as MqttConnection | undefined)?.connected ?? false;
    }

    /**
     * Reads the CSP key from the ledger, registers (or checks) this fog, opens the outbox, connects
     * the device broker and the CSP link, and starts finishing outbox entries.
     *
     * @throws {ServiceError} fogKeyMismatch when the ledger holds another key for this fog;
     *   unknownFog when it is not registered and autoRegister is off; fogNotApproved when the CSP
     *   has not approved it within 60 s or revoked it.
     */
    async start(): Promise<void> {
        const { options, ctx } = this;
        await ctx.refreshCspKeys();
        ctx.cspVerifyKey = ecdsaPublicKey(this.suite, ctx.cspPublicKey);
        await this.ensureRegistered(options.autoRegister ?? true);
        await ensureFogSuiteKeys(ctx, this.suiteKeyFile, options.suites ?? []);
        this.outbox = await ActivationOutbox.open(ctx, options.dataDir);
        const steps = options.maxConcurrentSteps ?? 8;
        if (options.records !== undefined) {
            if (options.records.writer !== fogWriter(this.fogId))
                throw new ServiceError(
                    ErrorCode.UnauthorisedMsp,
                    `fog ${this.fogId} journals its records as ${fogWriter(this.fogId)}, not ${options.records.writer}`,
                );
            this.relayRecords = new FogRelayRecords({
                suite: this.suite,
                secretKey: options.key.privateKey,
                cspPublicKey: ctx.cspPublicKey,
                sink: options.records,
                firstSequence: options.records.tree.size,
            });
        }
        const relays = this.relayRecords;
        this.handlers = {
            ctx,
            outbox: this.outbox,
            limiter: this.limiter,
            certificateLimiter: new RateLimiter(
                options.perCertificateLimit ?? { ratePerSecond: 1, burst: 3 },
                options.ledgerReadLimit ?? defaultLedgerReadLimit(),
            ),
            frameLimiter: new RateLimiter(
                options.perRouteFrameLimit ?? { ratePerSecond: 20, burst: 40 },
                options.globalFrameLimit ?? { ratePerSecond: 500, burst: 1000 },
            ),
            m1Slots: new FifoLimiter(steps),
            activationSlots: new FifoLimiter(steps),
            queries: ((directory, routes) => ({
                directory,
                routes,
                handler: new FogQueryHandler({
                    suite: this.suite,
                    directory,
                    routes,
                    deliveryTimeoutMs: options.queryDeliveryTimeoutMs ?? 5_000,
                    ...(relays !== undefined ? { relays } : {}),
                }),
            }))(ledgerEquipmentDirectory(options.ledger), new FogQueryRoutes(ctx)),
        };

        if (options.deviceBrokerUrl === undefined) {
            this.broker = await EmbeddedBroker.start({
                layout: this.topics,
                port: options.deviceBrokerPort ?? 0,
                auth: {
                    allowAnonymous: true,
                    verifyService: async (username, password, clientId): Promise<Principal | undefined> => {
                        if (username !== this.fogId || password === undefined) return undefined;
                        const ok = verifyLoginToken(
                            this.suite,
                            options.key.signingKey,
                            username,
                            clientId,
                            password.toString(),
                        );
                        return ok ? { kind: 'fog', fogId: this.fogId, clientId } : undefined;
                    },
                },
            });
            this.deviceBrokerUrl = this.broker.url;
        } else {
            this.deviceBrokerUrl = options.deviceBrokerUrl;
        }
        const clientId = `${this.fogId}-svc`;
        const password = (url: string, fixed?: string): string | (() => string) =>
            fixed ?? (() => loginToken(options.key, this.fogId, url === 'csp' ? `${this.fogId}-link` : clientId));
        ctx.deviceConn = await MqttConnection.connect(this.deviceBrokerUrl, {
            clientId,
            username: this.fogId,
            password: password('device', options.brokerPassword),
            persistentSession: true,
        });
        await ctx.deviceConn.subscribe(this.topics.fogRequestFilter(this.fogId), (topic, payload) => {
            void this.onDeviceMessage(topic, payload);
        });
        await ctx.deviceConn.publish(this.topics.fogInfo(this.fogId), ctx.infoPayload(), true);

        ctx.cspConn = await MqttConnection.connect(options.cspBrokerUrl, {
            clientId: `${this.fogId}-link`,
            username: this.fogId,
            password: password('csp', options.cspBrokerPassword),
            persistentSession: true,
            // The CSP may be down when the fog starts: the outbox holds M4s until the link is up.
            lazy: true,
        });
        await ctx.cspConn.subscribe(this.topics.cspOutbound(this.fogId), (_topic, payload) =>
            this.onCspMessage(payload),
        );
        ctx.cspConn.onConnect(() => void this.drainOutbox());
        void this.drainOutbox();
        this.retryTimer = setInterval(() => void this.drainOutbox(), options.outboxRetryMs ?? 2_000);
        this.retryTimer.unref();
        // A CSP key rotation: re-read the epochs and republish the retained info message, so
        // devices see the new key (and its signed rotation) on their next Hello or subscription.
        this.keyTimer = setInterval(() => void this.followCspKeys(), options.cspKeyRefreshMs ?? 5_000);
        this.keyTimer.unref();
        ctx.log.info('fog gateway started', { fogId: this.fogId, broker: this.deviceBrokerUrl });
    }

    private get suiteKeyFile(): (suite: Suite) => string {
        return this.options.suiteKeyFile ?? ((suite) => fogSuiteKeyPath(this.options.dataDir, this.fogId, suite));
    }

    /**
     * Re-reads the CSP's key epochs; on a change (a rotation), first holds and registers a key for
     * any new suite, then republishes the retained info message.
     */
    async followCspKeys(): Promise<void> {
        const { ctx } = this;
        try {
            const changed = await ctx.refreshCspKeys();
            // Every tick, not only on a change: a registration that failed last time is retried.
            const added = await ensureFogSuiteKeys(ctx, this.suiteKeyFile, this.options.suites ?? []);
            if (changed || added.length > 0)
                await ctx.deviceConn.publish(this.topics.fogInfo(this.fogId), ctx.infoPayload(), true);
        } catch (err) {
            if (!ctx.closed) ctx.log.warn('CSP key epochs not re-read', { code: errorCodeOf(err) });
        }
    }

    /** registerFog when the ledger does not know this fog, then wait until the CSP approved it. */
    private async ensureRegistered(autoRegister: boolean): Promise<void> {
        const { ledger, key } = this.options;
        let fog = await ledger.getFog(this.fogId).catch((err: unknown) => {
            if (errorCodeOf(err) === ErrorCode.UnknownFog) return undefined;
            throw err;
        });
        if (fog === undefined) {
            if (!autoRegister) throw new ServiceError(ErrorCode.UnknownFog, `fog ${this.fogId} is not registered`);
            const address = fogAddress(this.suite, this.fogId, this.ctx.cspPublicKey.multiply(key.privateKey));
            await ledger.registerFog(this.fogId, key.publicKeyHex, toHex(address));
            fog = await ledger.getFog(this.fogId);
        }
        if (fog.publicKey !== key.publicKeyHex) {
            throw new ServiceError(
                ServiceErrorCode.FogKeyMismatch,
                `the ledger holds another key for fog ${this.fogId}`,
            );
        }
        const deadline = Date.now() + 60_000;
        while (fog.status !== 'approved') {
            if (fog.status === 'revoked')
                throw new ServiceError(ErrorCode.FogNotApproved, `fog ${this.fogId} was revoked`);
            if (Date.now() > deadline)
                throw new ServiceError(ErrorCode.FogNotApproved, `fog ${this.fogId} not approved yet`);
            await new Promise((r) => setTimeout(r, 200));
            fog = await ledger.getFog(this.fogId);
        }
    }

    /** Finishes every outbox entry: re-checks activations on the ledger, re-sends M4s. */
    drainOutbox(): Promise<void> {
        return this.outbox.drain();
    }

    // ---- dispatch: device → fog ----

    private async onDeviceMessage(topic: string, payload: Buffer): Promise<void> {
        const { ctx } = this;
        const parsed = this.topics.parseFogRequest(topic);
        if (parsed === undefined || parsed.fogId !== this.fogId) {
            ctx.m.dropped.inc({ reason: 'topic' });
            return;
        }
        const clientId = parsed.clientId;
        // A target's answer (an information packet) may carry up to MAX_ANSWER_BYTES of sealed records.
        const limit = payload[1] === EnvelopeKind.QueryAnswer ? MAX_ANSWER_BYTES + 4096 : this.maxRequestBytes;
        if (payload.length > limit) {
            const corr = peekCorrelationId(payload);
            ctx.m.requests.inc({ kind: 'unknown', outcome: 'oversized' });
            if (corr !== undefined) {
                await ctx.replyError(
                    clientId,
                    corr,
                    ServiceErrorCode.Oversized,
                    `request over ${this.maxRequestBytes} bytes`,
                );
            } else ctx.m.dropped.inc({ reason: 'oversized' });
            return;
        }
        let env: Envelope;
        try {
            env = decodeEnvelope(payload);
        } catch (err) {
            const corr = peekCorrelationId(payload);
            ctx.m.requests.inc({ kind: 'unknown', outcome: ErrorCode.MalformedInput });
            // Without a correlation id no reply can be matched: drop.
            if (corr !== undefined)
                await ctx.replyError(clientId, corr, ErrorCode.MalformedInput, (err as Error).message);
            else ctx.m.dropped.inc({ reason: 'malformed' });
            return;
        }
        const kindName = Object.entries(EnvelopeKind).find(([, v]) => v === env.kind)?.[0] ?? 'unknown';
        try {
            const handler = DEVICE_HANDLERS[env.kind];
            if (handler === undefined)
                throw new ServiceError(ErrorCode.MalformedInput, `a device does not send envelope kind ${env.kind}`);
            await handler(this.handlers, clientId, env);
            ctx.m.requests.inc({ kind: kindName, outcome: 'ok' });
        } catch (err) {
            const code = errorCodeOf(err);
            ctx.m.requests.inc({ kind: kindName, outcome: code });
            await ctx.replyError(clientId, env.correlationId, code, (err as Error).message);
        }
    }

    // ---- dispatch: CSP → fog ----

    private onCspMessage(payload: Buffer): void {
        const { ctx } = this;
        let msg;
        let body;
        try {
            msg = verifyLinkMessage(this.suite, ctx.cspVerifyKey, parseLinkMessage(payload));
            // A query answer's body is the CSP's packet under the fog's correlation id (link.ts).
            body = msg.kind === LinkKind.QueryAnswer ? undefined : decodeDeviceBound(msg.body);
        } catch (err) {
            ctx.m.dropped.inc({ reason: 'link' });
            this.refusedWarning.warn(errorCodeOf(err), 'refused link message', {
                code: errorCodeOf(err),
                error: (err as Error).message,
            });
            return;
        }
        if (msg.kind === LinkKind.QueryAnswer) {
            void handleCspQueryAnswer(this.handlers, msg.body).catch(() => ctx.m.dropped.inc({ reason: 'link' }));
            return;
        }
        const handler = CSP_HANDLERS[msg.kind];
        if (handler !== undefined && body !== undefined) void handler(this.handlers, body);
    }

    async close(): Promise<void> {
        const { ctx } = this;
        ctx.closed = true;
        if (this.retryTimer !== undefined) clearInterval(this.retryTimer);
        if (this.keyTimer !== undefined) clearInterval(this.keyTimer);
        for (const w of ctx.waiters.values())
            w.reject(new ServiceError(ServiceErrorCode.Unavailable, 'fog shutting down'));
        ctx.waiters.clear();
        this.handlers?.queries.routes.cancelAll();
        await Promise.allSettled([ctx.deviceConn?.close(), ctx.cspConn?.close()]);
        await this.broker?.close();
        await this.outbox?.close();
    }
}

/**
 * The fog's default overall limit on M1 ledger reads: 25/s per core of this machine, burst twice
 * that. Each session costs one such read at one fog; on 2 cores a whole session (Fabric, services,
 * devices) costs ~80 CPU ms, so the machine runs out of CPU at ~25 sessions/s for all fogs
 * together, well below the 50/s this allows one fog (bench/results/kx-fabric.md).
 */
export function defaultLedgerReadLimit(): RateLimit {
    const ratePerSecond = 25 * availableParallelism();
    return { ratePerSecond, burst: 2 * ratePerSecond };
}
