/**
 * The fog gateway (Algorithm 2), run by a fog-node operator next to its peer. Devices talk to it
 * over MQTT; it decrypts C1, looks the certificate up on the ledger, returns M2 after that
 * read-only pre-check, and on M3 submits ONE activation transaction (DESIGN.md §4.7). Then it
 * forwards M4 to the CSP over the signed link and relays session-channel frames it cannot read.
 *
 * Crash safety: before the activation is submitted its outcome is written to a durable outbox
 * (activation, M4, where to answer). A restarted fog re-checks each entry on the ledger and
 * finishes it, so an activation the ledger acknowledged always reaches the CSP.
 */
import { randomBytes } from 'node:crypto';
import {
    completeActivation,
    computePrimaryHash,
    createM4,
    decodeM1,
    decodeM3,
    decodePoint,
    encodeActivation,
    encodeM2,
    encodeM4,
    encodePoint,
    fogAddress,
    fromBase64Url,
    fromHex,
    openM1,
    prepareActivation,
    toBase64Url,
    toHex,
    type M1,
    type M3,
    type M4,
    type PreparedActivation,
    type Point,
    type Suite,
} from '@m2m-fabric/protocol';
import { ByteWriter } from '@m2m-fabric/protocol';
import type { ObjectStore } from '@m2m-fabric/sdk';
import { CommitError, DeadlineError, EndorseError } from '@m2m-fabric/sdk';
import type { ChaincodeClient } from '@m2m-fabric/sdk';
import { loginToken, ecdsaPublicKey, verifyLoginToken, type ServiceKey } from '../keys.js';
import {
    decodeDeviceBound,
    encodeForward,
    encodeFrameUp,
    encodeLinkMessage,
    LinkKind,
    parseLinkMessage,
    verifyLinkMessage,
} from '../link.js';
import { routeIdFor, routeKey } from '@m2m-fabric/common';
import { EmbeddedBroker } from '../broker.js';
import { MqttConnection } from '@m2m-fabric/common';
import {
    decodeEnvelope,
    decodeTagged,
    encodeEnvelope,
    encodeErrorBody,
    encodeTagged,
    EnvelopeKind,
    errorCodeOf,
    newCorrelationId,
    peekCorrelationId,
    ServiceError,
    ServiceErrorCode,
    type AnyErrorCode,
    type Envelope,
} from '@m2m-fabric/common';
import { TopicLayout, type Principal } from '@m2m-fabric/common';
import { MetricsRegistry, type Counter, type Histogram } from '../metrics/registry.js';
import { DurableMap } from '../util/durable-map.js';
import { RateLimiter, type RateLimit } from '../util/rate-limiter.js';
import { FifoLimiter } from '../util/fifo-limiter.js';
import { silentLogger, type Logger } from '@m2m-fabric/common';

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
    /** How long an M2 handle waits for its M3. */
    handleTtlMs?: number;
    /** How often the outbox is re-checked for activations to finish and M4s to re-send (default 2000 ms). */
    outboxRetryMs?: number;
    /** How long the fog waits for the CSP's Alg. 3 result before answering the device `timeout`. */
    cspTimeoutMs?: number;
    /**
     * How many M1s, and separately how many activations (until the orderer has the transaction), the
     * fog works on at once; the rest wait in arrival order (util/fifo-limiter.ts). Default 8.
     */
    maxConcurrentSteps?: number;
    /** Register Q_f on the ledger if not yet registered, then wait for the CSP's approval. */
    autoRegister?: boolean;
    logger?: Logger;
    metrics?: MetricsRegistry;
}

interface PendingHandle {
    m1: M1;
    idCert: Point;
    certificateObject: Uint8Array;
    expiresAt: number;
    /** P, its DLEQ proof and M4, computed once M2 is sent, while the device works on M3. */
    prepared?: Promise<Prepared>;
}

interface Prepared {
    activation: PreparedActivation;
    primaryHash: Uint8Array;
    m4: M4;
}

/** One activation on its way: persisted before the ledger sees it. */
interface OutboxEntry {
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

interface Waiter {
    resolve: (frame: Uint8Array) => void;
    reject: (err: Error) => void;
}

export class FogGateway {
    readonly suite: Suite;
    readonly fogId: string;
    readonly topics: TopicLayout;
    readonly metrics: MetricsRegistry;
    private broker: EmbeddedBroker | undefined;
    private deviceConn!: MqttConnection;
    private cspConn!: MqttConnection;
    private outbox!: DurableMap<OutboxEntry>;
    private cspPublicKey!: Point;
    private cspVerifyKey!: ReturnType<typeof ecdsaPublicKey>;
    private readonly handles = new Map<string, PendingHandle>();
    /** Forward correlation (hex) -> the M3 request waiting for the CSP. */
    private readonly waiters = new Map<string, Waiter>();
    /** Outbox entries whose activation is being submitted right now (the drain loop leaves them). */
    private readonly inFlight = new Set<string>();
    /** When each entry's M4 was last sent, to re-send only after a pause. */
    private readonly lastForward = new Map<string, number>();
    private readonly limiter: RateLimiter;
    private readonly m1Slots: FifoLimiter;
    private readonly activationSlots: FifoLimiter;
    private readonly log: Logger;
    private readonly maxRequestBytes: number;
    private retryTimer: NodeJS.Timeout | undefined;
    private closed = false;
    private readonly m: {
        requests: Counter;
        sessions: Counter;
        latency: Histogram;
        ledgerErrors: Counter;
        storeErrors: Counter;
        dropped: Counter;
        relayed: Counter;
    };
    deviceBrokerUrl = '';

    constructor(private readonly options: FogGatewayOptions) {
        this.suite = options.key.suite;
        this.fogId = options.fogId;
        this.topics = options.topics ?? new TopicLayout();
        this.log = options.logger ?? silentLogger;
        this.maxRequestBytes = options.maxRequestBytes ?? 16 * 1024;
        this.limiter = new RateLimiter(
            options.perClientLimit ?? { ratePerSecond: 5, burst: 10 },
            options.globalLimit ?? { ratePerSecond: 500, burst: 1000 },
        );
        this.m1Slots = new FifoLimiter(options.maxConcurrentSteps ?? 8);
        this.activationSlots = new FifoLimiter(options.maxConcurrentSteps ?? 8);
        this.metrics = options.metrics ?? new MetricsRegistry();
        const r = this.metrics;
        this.m = {
            requests: r.counter('m2m_fog_requests_total', 'Device requests by kind and outcome'),
            sessions: r.counter('m2m_fog_sessions_total', 'Activations by outcome and error code'),
            latency: r.histogram('m2m_fog_activation_seconds', 'M3 to CSP result, seconds'),
            ledgerErrors: r.counter('m2m_fog_ledger_errors_total', 'Ledger calls that failed, by code'),
            storeErrors: r.counter('m2m_fog_store_errors_total', 'Object store reads that failed'),
            dropped: r.counter('m2m_fog_dropped_total', 'Messages dropped without reply, by reason'),
            relayed: r.counter('m2m_fog_relayed_frames_total', 'Session-channel frames relayed, by direction'),
        };
        const depth = r.gauge('m2m_fog_outbox_depth', 'Activations not yet answered by the CSP');
        depth.onCollect(() => depth.set(this.outbox?.size ?? 0));
    }

    get outboxDepth(): number {
        return this.outbox.size;
    }

    async start(): Promise<void> {
        const { options } = this;
        const csp = await options.ledger.getCsp();
        this.cspPublicKey = decodePoint(this.suite, fromHex(csp.caPublicKey));
        this.cspVerifyKey = ecdsaPublicKey(this.suite, this.cspPublicKey);
        await this.ensureRegistered(options.autoRegister ?? true);
        this.outbox = await DurableMap.open<OutboxEntry>(`${options.dataDir}/fog-${this.fogId}-outbox.jsonl`);

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
                            this.options.key.signingKey,
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
        this.deviceConn = await MqttConnection.connect(this.deviceBrokerUrl, {
            clientId,
            username: this.fogId,
            password: password('device', options.brokerPassword),
            persistentSession: true,
        });
        await this.deviceConn.subscribe(this.topics.fogRequestFilter(this.fogId), (topic, payload) => {
            void this.onDeviceMessage(topic, payload);
        });
        await this.deviceConn.publish(this.topics.fogInfo(this.fogId), this.infoPayload(), true);

        this.cspConn = await MqttConnection.connect(options.cspBrokerUrl, {
            clientId: `${this.fogId}-link`,
            username: this.fogId,
            password: password('csp', options.cspBrokerPassword),
            persistentSession: true,
            // The CSP may be down when the fog starts: the outbox holds M4s until the link is up.
            lazy: true,
        });
        await this.cspConn.subscribe(this.topics.cspOutbound(this.fogId), (_topic, payload) =>
            this.onCspMessage(payload),
        );
        this.cspConn.onConnect(() => void this.drainOutbox());
        void this.drainOutbox();
        this.retryTimer = setInterval(() => void this.drainOutbox(), options.outboxRetryMs ?? 2_000);
        this.retryTimer.unref();
        this.log.info('fog gateway started', { fogId: this.fogId, broker: this.deviceBrokerUrl });
    }

    /** registerFog when the ledger does not know this fog, then wait until the CSP approved it. */
    private async ensureRegistered(autoRegister: boolean): Promise<void> {
        const ledger = this.options.ledger;
        let fog = await ledger.getFog(this.fogId).catch((err: unknown) => {
            if (errorCodeOf(err) === 'unknownFog') return undefined;
            throw err;
        });
        if (fog === undefined) {
            if (!autoRegister) throw new ServiceError('unknownFog', `fog ${this.fogId} is not registered`);
            const address = fogAddress(this.suite, this.fogId, this.cspPublicKey.multiply(this.options.key.privateKey));
            await ledger.registerFog(this.fogId, this.options.key.publicKeyHex, toHex(address));
            fog = await ledger.getFog(this.fogId);
        }
        if (fog.publicKey !== this.options.key.publicKeyHex) {
            throw new ServiceError('fogKeyMismatch', `the ledger holds another key for fog ${this.fogId}`);
        }
        const deadline = Date.now() + 60_000;
        while (fog.status !== 'approved') {
            if (fog.status === 'revoked') throw new ServiceError('fogNotApproved', `fog ${this.fogId} was revoked`);
            if (Date.now() > deadline) throw new ServiceError('fogNotApproved', `fog ${this.fogId} not approved yet`);
            await new Promise((r) => setTimeout(r, 200));
            fog = await ledger.getFog(this.fogId);
        }
    }

    private infoPayload(): Uint8Array {
        return new ByteWriter()
            .string(this.fogId)
            .u8(this.suite.tag)
            .bytes16(encodePoint(this.suite, this.options.key.publicKey))
            .finish();
    }

    private async reply(
        clientId: string,
        kind: Envelope['kind'],
        correlationId: Uint8Array,
        body: Uint8Array,
    ): Promise<void> {
        try {
            await this.deviceConn.publish(
                this.topics.fogReply(this.fogId, clientId),
                encodeEnvelope({ kind, correlationId, body }),
            );
        } catch (err) {
            this.m.dropped.inc({ reason: 'replyFailed' });
            this.log.warn('reply failed', { clientId, error: (err as Error).message });
        }
    }

    private replyError(clientId: string, correlationId: Uint8Array, code: AnyErrorCode, detail: string): Promise<void> {
        return this.reply(clientId, EnvelopeKind.Error, correlationId, encodeErrorBody(code, detail));
    }

    private async onDeviceMessage(topic: string, payload: Buffer): Promise<void> {
        const parsed = this.topics.parseFogRequest(topic);
        if (parsed === undefined || parsed.fogId !== this.fogId) {
            this.m.dropped.inc({ reason: 'topic' });
            return;
        }
        const clientId = parsed.clientId;
        if (payload.length > this.maxRequestBytes) {
            const corr = peekCorrelationId(payload);
            this.m.requests.inc({ kind: 'unknown', outcome: 'oversized' });
            if (corr !== undefined) {
                await this.replyError(
                    clientId,
                    corr,
                    ServiceErrorCode.Oversized,
                    `request over ${this.maxRequestBytes} bytes`,
                );
            } else this.m.dropped.inc({ reason: 'oversized' });
            return;
        }
        let env: Envelope;
        try {
            env = decodeEnvelope(payload);
        } catch (err) {
            const corr = peekCorrelationId(payload);
            this.m.requests.inc({ kind: 'unknown', outcome: 'malformedInput' });
            // Without a correlation id no reply can be matched: drop.
            if (corr !== undefined) await this.replyError(clientId, corr, 'malformedInput', (err as Error).message);
            else this.m.dropped.inc({ reason: 'malformed' });
            return;
        }
        const kindName = Object.entries(EnvelopeKind).find(([, v]) => v === env.kind)?.[0] ?? 'unknown';
        try {
            switch (env.kind) {
                case EnvelopeKind.Hello:
                    await this.reply(clientId, EnvelopeKind.HelloReply, env.correlationId, this.infoPayload());
                    break;
                case EnvelopeKind.M1:
                    await this.onM1(clientId, env);
                    break;
                case EnvelopeKind.M3:
                    await this.onM3(clientId, env);
                    break;
                case EnvelopeKind.Frame:
                    await this.onFrame(clientId, env);
                    break;
                default:
                    throw new ServiceError('malformedInput', `a device does not send envelope kind ${env.kind}`);
            }
            this.m.requests.inc({ kind: kindName, outcome: 'ok' });
        } catch (err) {
            const code = errorCodeOf(err);
            this.m.requests.inc({ kind: kindName, outcome: code });
            await this.replyError(clientId, env.correlationId, code, (err as Error).message);
        }
    }

    private async onM1(clientId: string, env: Envelope): Promise<void> {
        if (!this.limiter.allow(clientId))
            throw new ServiceError(ServiceErrorCode.RateLimited, 'too many session requests');
        await this.m1Slots.run(() => this.answerM1(clientId, env));
    }

    /** Opens M1, checks the certificate on the ledger, fetches its object and replies M2. */
    private async answerM1(clientId: string, env: Envelope): Promise<void> {
        const m1 = decodeM1(this.suite, env.body);
        const { idCert } = await openM1(this.suite, this.options.key.recipient, m1);
        const idCertHex = toHex(encodePoint(this.suite, idCert));
        const record = await this.ledgerCall(() => this.options.ledger.getCertificate(idCertHex));
        if (record.status === 'used') throw new ServiceError('failedDoubleSpendingCheck-1', 'certificate already used');
        if (record.contentAddress === undefined || record.status !== 'unused') {
            throw new ServiceError('unknownCertificate', `certificate is ${record.status}`);
        }
        let certificateObject: Uint8Array;
        try {
            certificateObject = await this.options.store.get(record.contentAddress);
        } catch (err) {
            this.m.storeErrors.inc();
            throw new ServiceError(
                ServiceErrorCode.StorageUnavailable,
                `certificate object: ${(err as Error).message}`,
            );
        }
        const handle = new Uint8Array(randomBytes(16));
        this.sweepHandles();
        const pending: PendingHandle = {
            m1,
            idCert,
            certificateObject,
            expiresAt: Date.now() + (this.options.handleTtlMs ?? 60_000),
        };
        this.handles.set(toHex(handle), pending);
        await this.reply(
            clientId,
            EnvelopeKind.M2,
            env.correlationId,
            encodeTagged(handle, encodeM2({ suite: this.suite, certificateObject })),
        );
        // Off the critical path: nothing here depends on M3 (onM3 awaits it, or computes it if missing).
        pending.prepared = this.prepare(pending);
        pending.prepared.catch(() => undefined);
    }

    /** P = d_f*IDCert_i with its DLEQ proof, primaryHash and M4: everything of Alg. 2 but M3's part. */
    private async prepare(pending: PendingHandle): Promise<Prepared> {
        const activation = prepareActivation(this.suite, this.options.key.privateKey, pending.certificateObject);
        const primaryHash = computePrimaryHash(this.suite, activation.P);
        const m4 = await createM4(
            this.suite,
            this.fogId,
            this.options.key.privateKey,
            pending.m1,
            primaryHash,
            this.cspPublicKey,
            pending.idCert,
        );
        return { activation, primaryHash, m4 };
    }

    private sweepHandles(): void {
        const now = Date.now();
        for (const [k, h] of this.handles) if (h.expiresAt < now) this.handles.delete(k);
    }

    private async onM3(clientId: string, env: Envelope): Promise<void> {
        const { tag, payload } = decodeTagged(env.body);
        const key = toHex(tag);
        const pending = this.handles.get(key);
        if (pending === undefined || pending.expiresAt < Date.now()) {
            throw new ServiceError('unknownRequest', 'no M2 outstanding for this handle (expired or already used)');
        }
        const m3 = decodeM3(this.suite, payload);
        // Single use from here on: a replayed M3 finds no handle.
        this.handles.delete(key);
        const started = performance.now();
        // Held until the orderer has the activation (or it failed), not while it waits for its block.
        const release = await this.activationSlots.acquire();
        try {
            await this.finishActivation(clientId, env, pending, m3, started, release);
        } finally {
            release();
        }
    }

    private async finishActivation(
        clientId: string,
        env: Envelope,
        pending: PendingHandle,
        m3: M3,
        started: number,
        ordered: () => void,
    ): Promise<void> {
        const prepared = await (pending.prepared ?? this.prepare(pending));
        const activation = completeActivation(prepared.activation, pending.m1, m3);
        const { primaryHash, m4 } = prepared;
        const routeId = routeIdFor(this.suite, pending.idCert);
        const entry: OutboxEntry = {
            state: 'activating',
            primaryHash: toHex(primaryHash),
            activation: toBase64Url(encodeActivation(activation)),
            m4: toBase64Url(encodeM4(m4)),
            devicePublicKey: toHex(encodePoint(this.suite, m3.publicKey)),
            routeId: routeKey(routeId),
            clientId,
            correlationId: toHex(newCorrelationId()),
            createdAt: Date.now(),
        };
        // In flight from before it is in the outbox: the drain loop (which may run while the outbox
        // write is on its way to disk) must not submit this activation a second time.
        this.inFlight.add(entry.primaryHash);
        try {
            await this.outbox.set(entry.primaryHash, entry);
        } catch (err) {
            this.inFlight.delete(entry.primaryHash);
            throw err;
        }
        const result = new Promise<Uint8Array>((resolve, reject) => {
            this.waiters.set(entry.correlationId, { resolve, reject });
        });
        result.catch(() => undefined); // observed below; this only keeps an early rejection handled
        const timeout = setTimeout(() => {
            const w = this.waiters.get(entry.correlationId);
            this.waiters.delete(entry.correlationId);
            w?.reject(
                new ServiceError(ServiceErrorCode.Timeout, 'the CSP did not answer in time; poll the session channel'),
            );
        }, this.options.cspTimeoutMs ?? 30_000);
        try {
            await this.activate(entry, ordered);
            const confirm = await result;
            this.m.sessions.inc({ outcome: 'established', code: '' });
            this.m.latency.observe((performance.now() - started) / 1000);
            await this.reply(clientId, EnvelopeKind.Established, env.correlationId, encodeTagged(routeId, confirm));
        } catch (err) {
            this.waiters.delete(entry.correlationId);
            this.m.sessions.inc({ outcome: 'failed', code: errorCodeOf(err) });
            throw err;
        } finally {
            clearTimeout(timeout);
        }
    }

    private async ledgerCall<T>(fn: () => Promise<T>): Promise<T> {
        try {
            return await fn();
        } catch (err) {
            const code = errorCodeOf(err);
            this.m.ledgerErrors.inc({ code });
            if (err instanceof EndorseError && err.errorCode !== undefined)
                throw new ServiceError(err.errorCode, err.chaincodeMessage);
            if (err instanceof CommitError) {
                // Two activations of one certificate raced; Fabric's MVCC check invalidated this one.
                if (err.code === 'MVCC_READ_CONFLICT' || err.code === 'PHANTOM_READ_CONFLICT') {
                    throw new ServiceError('failedDoubleSpendingCheck-1', `activation lost a race (${err.code})`);
                }
                throw new ServiceError(ServiceErrorCode.LedgerUnavailable, err.message);
            }
            if (err instanceof DeadlineError) throw new ServiceError(ServiceErrorCode.LedgerUnavailable, err.message);
            throw err;
        }
    }

    /** Submits the activation (state 'activating'), then forwards M4 (state 'forwarding'). */
    private async activate(entry: OutboxEntry, ordered?: () => void): Promise<void> {
        this.inFlight.add(entry.primaryHash);
        try {
            await this.ledgerCall(() =>
                this.options.ledger.activateSession(this.fogId, fromBase64Url(entry.activation), ordered),
            );
        } catch (err) {
            this.inFlight.delete(entry.primaryHash);
            const code = errorCodeOf(err);
            if (code === ServiceErrorCode.LedgerUnavailable || code === ServiceErrorCode.Internal) throw err; // outbox keeps it
            // A definite refusal: nothing was recorded, forget the entry.
            await this.outbox.delete(entry.primaryHash);
            throw err;
        }
        this.inFlight.delete(entry.primaryHash);
        entry.state = 'forwarding';
        // The state change and the forward overlap: a restart that still finds 'activating' checks the
        // ledger (drainOutbox) and forwards anyway, so the write need not precede the M4.
        await Promise.all([this.outbox.set(entry.primaryHash, entry), this.forward(entry)]);
    }

    private async forward(entry: OutboxEntry): Promise<void> {
        this.lastForward.set(entry.primaryHash, Date.now());
        const body = encodeForward({
            correlationId: fromHex(entry.correlationId),
            clientId: entry.clientId,
            routeId: fromHex(entry.routeId),
            m4: fromBase64Url(entry.m4),
            devicePublicKey: fromHex(entry.devicePublicKey),
        });
        await this.cspConn.publish(
            this.topics.cspInbound(this.fogId),
            encodeLinkMessage(this.options.key, LinkKind.Forward, this.fogId, body),
        );
    }

    /** Finishes every outbox entry: re-checks activations on the ledger, re-sends M4s. */
    private draining = false;
    async drainOutbox(): Promise<void> {
        if (this.draining || this.closed || !this.cspConn.connected) return;
        this.draining = true;
        try {
            const now = Date.now();
            for (const entry of [...this.outbox.values()]) {
                // Skip what is being submitted now, and what was finished since the snapshot.
                if (this.inFlight.has(entry.primaryHash) || this.outbox.get(entry.primaryHash) !== entry) continue;
                if (now - (this.lastForward.get(entry.primaryHash) ?? 0) < 5_000) continue;
                try {
                    if (entry.state === 'activating') {
                        const session = await this.options.ledger.getSession(entry.primaryHash).catch(() => undefined);
                        if (session !== undefined && session.fogId === this.fogId) {
                            entry.state = 'forwarding';
                            await this.outbox.set(entry.primaryHash, entry);
                        } else {
                            await this.activate(entry).catch(() => undefined);
                            continue;
                        }
                    }
                    await this.forward(entry);
                } catch (err) {
                    this.log.debug('outbox retry failed', { error: (err as Error).message });
                }
            }
        } finally {
            this.draining = false;
        }
    }

    private async onFrame(clientId: string, env: Envelope): Promise<void> {
        const { tag, payload } = decodeTagged(env.body);
        if (!this.cspConn.connected)
            throw new ServiceError(ServiceErrorCode.Unavailable, 'the CSP link is down; retry');
        this.m.relayed.inc({ direction: 'up' });
        const body = encodeFrameUp({ correlationId: env.correlationId, clientId, routeId: tag, frame: payload });
        await this.cspConn.publish(
            this.topics.cspInbound(this.fogId),
            encodeLinkMessage(this.options.key, LinkKind.FrameUp, this.fogId, body),
        );
    }

    private onCspMessage(payload: Buffer): void {
        let msg;
        try {
            msg = verifyLinkMessage(this.suite, this.cspVerifyKey, parseLinkMessage(payload));
        } catch (err) {
            this.m.dropped.inc({ reason: 'link' });
            this.log.warn('refused link message', { error: (err as Error).message });
            return;
        }
        let body;
        try {
            body = decodeDeviceBound(msg.body);
        } catch {
            this.m.dropped.inc({ reason: 'link' });
            return;
        }
        const corr = toHex(body.correlationId);
        if (msg.kind === LinkKind.Result) {
            void this.onResult(corr, body);
            return;
        }
        if (msg.kind === LinkKind.FrameDown) {
            this.m.relayed.inc({ direction: 'down' });
            const env = body.outcome.ok
                ? { kind: EnvelopeKind.Frame, body: encodeTagged(body.routeId, body.outcome.frame) }
                : { kind: EnvelopeKind.Error, body: encodeErrorBody(body.outcome.code, body.outcome.detail) };
            void this.reply(body.clientId, env.kind, body.correlationId, env.body);
        }
    }

    private async onResult(corr: string, body: ReturnType<typeof decodeDeviceBound>): Promise<void> {
        // The entry is done whatever the outcome: the CSP has decided. The device's answer does not wait
        // for the deletion: if the fog restarts before it is durable, the entry is re-forwarded and the
        // CSP answers a duplicate M4 with the same outcome.
        let done: Promise<void> = Promise.resolve();
        for (const [k, e] of this.outbox.entries()) {
            if (e.correlationId === corr) {
                this.lastForward.delete(k);
                done = this.outbox.delete(k);
                break;
            }
        }
        const waiter = this.waiters.get(corr);
        this.waiters.delete(corr);
        if (waiter !== undefined) {
            if (body.outcome.ok) waiter.resolve(body.outcome.frame);
            else waiter.reject(new ServiceError(body.outcome.code, body.outcome.detail));
            await done;
            return;
        }
        await done;
        // Nobody waits (fog restarted): push the outcome to the device's last known reply topic.
        const env = body.outcome.ok
            ? { kind: EnvelopeKind.Frame, body: encodeTagged(body.routeId, body.outcome.frame) }
            : { kind: EnvelopeKind.Error, body: encodeErrorBody(body.outcome.code, body.outcome.detail) };
        await this.reply(body.clientId, env.kind, newCorrelationId(), env.body);
    }

    async close(): Promise<void> {
        this.closed = true;
        if (this.retryTimer !== undefined) clearInterval(this.retryTimer);
        for (const w of this.waiters.values())
            w.reject(new ServiceError(ServiceErrorCode.Unavailable, 'fog shutting down'));
        this.waiters.clear();
        await Promise.allSettled([this.deviceConn?.close(), this.cspConn?.close()]);
        await this.broker?.close();
        await this.outbox?.close();
    }
}
