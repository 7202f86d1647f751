/**
 * The CSP backend: the CA signer of Algorithm 1 (answers SessionsRequested events: builds, stores
 * and submits the certificate objects), fog approval (FogRegistered events), Algorithm 3 on every
 * M4 a fog forwards, a durable session store (ID_i, i, symKey_i), the CSP end of each session
 * channel, and an API to read telemetry and send instructions.
 *
 * Crash safety: a session is written to the store as 'syncing' before the synchronisation is
 * submitted; a restarted CSP finds it, checks the ledger and finishes it. Channel sequence numbers
 * are persisted before a frame is sent, so a restart never reuses a nonce.
 */
import { FifoLimiter } from '../util/fifo-limiter.js';
import {
    computeSecondaryHash,
    computeSymKey,
    decodeCertificateRequest,
    decodeM4,
    decodePoint,
    encodeCertificateObject,
    encodePoint,
    encodeSynchronisation,
    equalBytes,
    fogAddress,
    fromHex,
    FrameType,
    issueCertificates,
    openM4,
    publicKeyCommitment,
    SessionChannel,
    symKeyCommitment,
    toHex,
    verifyCounterCommitment,
    type Point,
    type SessionChannelState,
    type Suite,
} from '@m2m-fabric/protocol';
import type { KeyObject } from 'node:crypto';
import type { ObjectStore } from '@m2m-fabric/sdk';
import { EndorseError, fileCheckpointer, type ChaincodeEventStream } from '@m2m-fabric/sdk';
import type { ChaincodeClient } from '@m2m-fabric/sdk';
import { ecdsaPublicKey, loginToken, verifyLoginToken, type ServiceKey } from '../keys.js';
import {
    decodeForward,
    decodeFrameUp,
    encodeDeviceBound,
    encodeLinkMessage,
    LinkKind,
    parseLinkMessage,
    verifyLinkMessage,
    type DeviceBoundBody,
} from '../link.js';
import { routeKey } from '@m2m-fabric/common';
import { EmbeddedBroker } from '../broker.js';
import { MqttConnection } from '@m2m-fabric/common';
import { errorCodeOf, newCorrelationId, ServiceError, ServiceErrorCode, type AnyErrorCode } from '@m2m-fabric/common';
import { TopicLayout, type Principal } from '@m2m-fabric/common';
import { MetricsRegistry, type Counter, type Histogram } from '../metrics/registry.js';
import { DurableMap } from '../util/durable-map.js';
import { silentLogger, type Logger } from '@m2m-fabric/common';
import { InstructionOutbox, targetKey, type InstructionTarget, type QueuedInstruction } from './instruction-outbox.js';

export interface CspBackendOptions {
    key: ServiceKey;
    ledger: ChaincodeClient;
    store: ObjectStore;
    dataDir: string;
    /** Unset: start an embedded broker for the fog links on `brokerPort`. */
    brokerUrl?: string;
    brokerPort?: number;
    brokerUsername?: string;
    brokerPassword?: string;
    topics?: TopicLayout;
    /** Approve every fog whose addr_f checks out (default true). */
    autoApproveFogs?: boolean;
    /**
     * An instruction sent but not acknowledged is sent again after this long, and the spool of
     * `m2m csp instruct` is read this often (default 2000 ms).
     */
    instructionRetryMs?: number;
    /** How many Alg. 3 runs go on at once until their synchronisation is ordered (default 8). */
    maxConcurrentSessions?: number;
    logger?: Logger;
    metrics?: MetricsRegistry;
}

/** A session in the store. symKey is secret: the store file is 0600 and never logged. */
export interface StoredSession {
    state: 'syncing' | 'established';
    routeId: string;
    primaryHash: string;
    idCert: string;
    fogId: string;
    counter: string;
    dynamicId: string;
    symKey: string;
    synchronisation: string;
    channel?: SessionChannelState;
    /** Revealed by the device inside the channel (never on the ledger). */
    equipmentId?: string;
    /** Where the device was last seen, for pushing instructions. */
    lastClientId?: string;
    establishedAt?: number;
}

export interface TelemetryRecord {
    routeId: string;
    equipmentId?: string;
    seq: string;
    receivedAt: number;
    payload: string;
}

/** Sequence numbers reserved per store write, so a frame never waits for the disk. */
const SEQ_RESERVATION = 16n;

export class CspBackend {
    readonly suite: Suite;
    readonly topics: TopicLayout;
    readonly metrics: MetricsRegistry;
    brokerUrl = '';
    private broker: EmbeddedBroker | undefined;
    private conn!: MqttConnection;
    private sessions!: DurableMap<StoredSession>;
    private telemetry!: DurableMap<TelemetryRecord>;
    private readonly channels = new Map<string, { channel: SessionChannel; reservedSendSeq: bigint }>();
    private readonly inFlight = new Map<string, Promise<Uint8Array>>();
    private readonly syncSlots: FifoLimiter;
    private readonly fogKeys = new Map<string, { point: Point; verify: KeyObject }>();
    private outbox!: InstructionOutbox;
    /** Per route: the delivery running now, and whether another pass was asked for meanwhile. */
    private readonly deliveries = new Map<string, Promise<void>>();
    private readonly redeliver = new Set<string>();
    private instructionTimer: NodeJS.Timeout | undefined;
    private readonly telemetryListeners: ((r: TelemetryRecord) => void)[] = [];
    private events: ChaincodeEventStream | undefined;
    private eventLoop: Promise<void> | undefined;
    private readonly log: Logger;
    private closed = false;
    private readonly m: {
        sessions: Counter;
        latency: Histogram;
        ledgerErrors: Counter;
        storeErrors: Counter;
        issued: Counter;
        frames: Counter;
        instructions: Counter;
        linkRefused: Counter;
    };

    constructor(private readonly options: CspBackendOptions) {
        this.suite = options.key.suite;
        this.topics = options.topics ?? new TopicLayout();
        this.log = options.logger ?? silentLogger;
        this.syncSlots = new FifoLimiter(options.maxConcurrentSessions ?? 8);
        this.metrics = options.metrics ?? new MetricsRegistry();
        const r = this.metrics;
        this.m = {
            sessions: r.counter('m2m_csp_sessions_total', 'Algorithm 3 outcomes by error code'),
            latency: r.histogram('m2m_csp_sync_seconds', 'M4 received to session stored, seconds'),
            ledgerErrors: r.counter('m2m_csp_ledger_errors_total', 'Ledger calls that failed, by code'),
            storeErrors: r.counter('m2m_csp_store_errors_total', 'Object store operations that failed'),
            issued: r.counter('m2m_csp_certificates_issued_total', 'Certificate objects issued (Alg. 1)'),
            frames: r.counter('m2m_csp_frames_total', 'Session-channel frames by type and outcome'),
            linkRefused: r.counter(
                'm2m_csp_link_refused_total',
                'Link messages refused (malformed, not signed by the approved fog key, wrong sender), by code',
            ),
            instructions: r.counter(
                'm2m_csp_instructions_total',
                'Instructions queued, sent (each attempt) and acknowledged by the device',
            ),
        };
        const pendingInstructions = r.gauge(
            'm2m_csp_instruction_outbox_depth',
            'Instructions queued for devices, not yet acknowledged',
        );
        pendingInstructions.onCollect(() => pendingInstructions.set(this.outbox?.size ?? 0));
        const depth = r.gauge('m2m_csp_pending_syncs', 'Sessions stored as syncing, not yet confirmed');
        depth.onCollect(() =>
            depth.set([...(this.sessions?.values() ?? [])].filter((s) => s.state === 'syncing').length),
        );
    }

    get publicKeyHex(): string {
        return this.options.key.publicKeyHex;
    }

    async start(): Promise<void> {
        const { options } = this;
        await this.ensureRegistered();
        this.sessions = await DurableMap.open<StoredSession>(`${options.dataDir}/csp-sessions.jsonl`);
        this.telemetry = await DurableMap.open<TelemetryRecord>(`${options.dataDir}/csp-telemetry.jsonl`);
        this.outbox = await InstructionOutbox.open(options.dataDir);
        for (const s of this.sessions.values()) if (s.state === 'syncing') void this.resumeSync(s);

        if (options.brokerUrl === undefined) {
            this.broker = await EmbeddedBroker.start({
                layout: this.topics,
                port: options.brokerPort ?? 0,
                auth: { allowAnonymous: false, verifyService: (u, p, c) => this.verifyBrokerLogin(u, p, c) },
            });
            this.brokerUrl = this.broker.url;
        } else this.brokerUrl = options.brokerUrl;
        const username = options.brokerUsername ?? 'csp';
        this.conn = await MqttConnection.connect(this.brokerUrl, {
            clientId: 'csp-backend',
            username,
            password: options.brokerPassword ?? (() => loginToken(options.key, username, 'csp-backend')),
            persistentSession: true,
        });
        await this.conn.subscribe(
            this.topics.cspInboundFilter(),
            (topic, payload) => void this.onLinkMessage(topic, payload),
        );
        this.startEventLoop();
        this.instructionTimer = setInterval(() => void this.instructionTick(), options.instructionRetryMs ?? 2_000);
        this.instructionTimer.unref();
        void this.instructionTick();
        this.log.info('CSP backend started', { broker: this.brokerUrl, publicKey: this.publicKeyHex });
    }

    private async ensureRegistered(): Promise<void> {
        const ledger = this.options.ledger;
        const csp = await ledger.getCsp().catch((err: unknown) => {
            if (errorCodeOf(err) === 'notConfigured') return undefined;
            throw err;
        });
        if (csp === undefined) {
            await ledger.registerCsp(this.suite.id, this.publicKeyHex);
            return;
        }
        if (csp.caPublicKey !== this.publicKeyHex || csp.suite !== this.suite.id) {
            throw new ServiceError('fogKeyMismatch', 'the ledger holds another CSP key or suite than this key file');
        }
    }

    private async verifyBrokerLogin(
        username: string,
        password: Buffer | undefined,
        clientId: string,
    ): Promise<Principal | undefined> {
        if (password === undefined) return undefined;
        const token = password.toString();
        if (username === 'csp') {
            return verifyLoginToken(this.suite, this.options.key.signingKey, username, clientId, token)
                ? { kind: 'csp', clientId }
                : undefined;
        }
        const fog = await this.fogKey(username).catch(() => undefined);
        if (fog === undefined) return undefined;
        return verifyLoginToken(this.suite, fog.verify, username, clientId, token)
            ? { kind: 'fog', fogId: username, clientId }
            : undefined;
    }

    /** An approved fog's key from the ledger (cached). */
    private async fogKey(fogId: string): Promise<{ point: Point; verify: KeyObject }> {
        const cached = this.fogKeys.get(fogId);
        if (cached !== undefined) return cached;
        const fog = await this.options.ledger.getFog(fogId);
        if (fog.status !== 'approved') throw new ServiceError('fogNotApproved', `fog ${fogId} is ${fog.status}`);
        const point = decodePoint(this.suite, fromHex(fog.publicKey));
        const entry = { point, verify: ecdsaPublicKey(this.suite, point) };
        this.fogKeys.set(fogId, entry);
        return entry;
    }

    // ---- ledger events: fog approval and Algorithm 1 ----

    private startEventLoop(): void {
        this.eventLoop = (async () => {
            const checkpointer = await fileCheckpointer(`${this.options.dataDir}/csp-events.checkpoint.json`);
            while (!this.closed) {
                try {
                    const hasCheckpoint = checkpointer.getBlockNumber() !== undefined;
                    this.events = await this.options.ledger.connection.getChaincodeEvents(
                        'm2m',
                        hasCheckpoint ? { checkpoint: checkpointer } : { startBlock: 0n },
                    );
                    for await (const event of this.events) {
                        await this.onChaincodeEvent(event.eventName, event.payload);
                        await checkpointer.checkpointChaincodeEvent(event);
                    }
                } catch (err) {
                    if (this.closed) return;
                    this.log.warn('event stream failed; reconnecting', { error: (err as Error).message });
                    await new Promise((r) => setTimeout(r, 500));
                }
                if (this.closed) return;
            }
        })();
    }

    private async onChaincodeEvent(name: string, payload: Uint8Array): Promise<void> {
        const body = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
        if (name === 'FogRegistered' && this.options.autoApproveFogs !== false) {
            await this.approveFog(String(body.fogId)).catch((err: unknown) =>
                this.log.warn('fog approval failed', { fogId: body.fogId, code: errorCodeOf(err) }),
            );
        } else if (name === 'FogRevoked') {
            this.fogKeys.delete(String(body.fogId)); // its next login or link message re-reads the ledger
        } else if (name === 'SessionsRequested') {
            await this.issue(String(body.requestId)).catch((err: unknown) => {
                this.m.ledgerErrors.inc({ code: errorCodeOf(err) });
                this.log.warn('issuance failed', { requestId: body.requestId, code: errorCodeOf(err) });
            });
        }
    }

    /** Approves a pending fog when H(ID_f, d_c*Q_f) equals the registered addr_f. */
    async approveFog(fogId: string): Promise<void> {
        const fog = await this.options.ledger.getFog(fogId);
        if (fog.status !== 'pending') return;
        const Qf = decodePoint(this.suite, fromHex(fog.publicKey));
        const address = toHex(fogAddress(this.suite, fogId, Qf.multiply(this.options.key.privateKey)));
        await this.options.ledger.approveFog(fogId, address);
        this.log.info('fog approved', { fogId });
    }

    /** Algorithm 1 for one purchase: fetch the request, issue, store the objects, submit. */
    async issue(requestId: string): Promise<void> {
        const req = await this.options.ledger.getRequest(requestId);
        if (req.status !== 'pending') return;
        let requestBytes: Uint8Array;
        try {
            requestBytes = await this.options.store.get(requestId);
        } catch (err) {
            this.m.storeErrors.inc();
            throw err;
        }
        const request = decodeCertificateRequest(requestBytes);
        const objects = issueCertificates(this.suite, this.options.key.privateKey, request).map(
            encodeCertificateObject,
        );
        try {
            await this.options.store.putMany(objects);
        } catch (err) {
            this.m.storeErrors.inc();
            throw err;
        }
        await this.options.ledger.issueCertificates(requestId, requestBytes, objects);
        this.m.issued.inc({}, objects.length);
    }

    /** Revokes a fog: the ledger refuses its activations, and its link login and messages are refused. */
    async revokeFog(fogId: string): Promise<void> {
        await this.ledgerCall(() => this.options.ledger.revokeFog(fogId));
        this.fogKeys.delete(fogId);
        this.log.info('fog revoked', { fogId });
    }

    /** Grants prepaid credit to a manufacturer account (paper: payment service). */
    async grantCredit(account: string, amount: number): Promise<number> {
        return (await this.options.ledger.grantCredit(account, amount)).balance;
    }

    // ---- link ----

    private async send(fogId: string, kind: LinkKind, body: DeviceBoundBody): Promise<void> {
        await this.conn.publish(
            this.topics.cspOutbound(fogId),
            encodeLinkMessage(this.options.key, kind, 'csp', encodeDeviceBound(body)),
        );
    }

    private async onLinkMessage(topic: string, payload: Buffer): Promise<void> {
        const t = this.topics.parseCspInbound(topic);
        if (t === undefined) return;
        let msg;
        try {
            const parsed = parseLinkMessage(payload);
            if (parsed.message.sender !== t.fogId)
                throw new ServiceError('unauthorisedMsp', 'sender is not the topic owner');
            const fog = await this.fogKey(t.fogId);
            msg = verifyLinkMessage(this.suite, fog.verify, parsed);
        } catch (err) {
            this.m.linkRefused.inc({ code: errorCodeOf(err) });
            this.log.warn('refused link message', { fogId: t.fogId, code: errorCodeOf(err) });
            return;
        }
        try {
            if (msg.kind === LinkKind.Forward) await this.onForward(t.fogId, msg.body);
            else if (msg.kind === LinkKind.FrameUp) await this.onFrameUp(t.fogId, msg.body);
        } catch (err) {
            this.log.warn('link message failed', { fogId: t.fogId, code: errorCodeOf(err) });
        }
    }

    private async onForward(fogId: string, bytes: Uint8Array): Promise<void> {
        const fwd = decodeForward(bytes);
        const key = routeKey(fwd.routeId);
        const started = performance.now();
        let outcome: DeviceBoundBody['outcome'];
        try {
            let p = this.inFlight.get(key);
            if (p === undefined) {
                p = this.algorithm3(fogId, fwd.m4, fwd.devicePublicKey, key);
                this.inFlight.set(key, p);
                p.finally(() => this.inFlight.delete(key)).catch(() => undefined);
            }
            const frame = await p;
            const s = this.sessions.get(key);
            if (s !== undefined) {
                s.lastClientId = fwd.clientId;
                s.fogId = fogId;
            }
            outcome = { ok: true, frame };
            this.m.sessions.inc({ outcome: 'established', code: '' });
            this.m.latency.observe((performance.now() - started) / 1000);
        } catch (err) {
            const code = errorCodeOf(err);
            this.m.sessions.inc({ outcome: 'failed', code });
            outcome = { ok: false, code, detail: (err as Error).message };
        }
        await this.send(fogId, LinkKind.Result, {
            correlationId: fwd.correlationId,
            clientId: fwd.clientId,
            routeId: fwd.routeId,
            outcome,
        });
        if (outcome.ok) void this.kickDelivery(key);
    }

    private async ledgerCall<T>(fn: () => Promise<T>): Promise<T> {
        try {
            return await fn();
        } catch (err) {
            this.m.ledgerErrors.inc({ code: errorCodeOf(err) });
            if (err instanceof EndorseError && err.errorCode !== undefined)
                throw new ServiceError(err.errorCode, err.chaincodeMessage);
            throw err;
        }
    }

    /**
     * Algorithm 3. Returns the Confirm frame under the new key. Idempotent per route. At most
     * `maxConcurrentSessions` run until their synchronisation is with the orderer; the rest wait in
     * arrival order (util/fifo-limiter.ts), so a burst's first transaction starts its block early.
     */
    private async algorithm3(
        fogId: string,
        m4Bytes: Uint8Array,
        devicePublicKey: Uint8Array,
        key: string,
    ): Promise<Uint8Array> {
        const release = await this.syncSlots.acquire();
        try {
            return await this.synchronise(fogId, m4Bytes, devicePublicKey, key, release);
        } finally {
            release();
        }
    }

    private async synchronise(
        fogId: string,
        m4Bytes: Uint8Array,
        devicePublicKey: Uint8Array,
        key: string,
        ordered: () => void,
    ): Promise<Uint8Array> {
        const existing = this.sessions.get(key);
        if (existing?.state === 'established') return this.seal(key, FrameType.Confirm, fromHex(key));
        const fog = await this.fogKey(fogId);
        const m4 = decodeM4(this.suite, m4Bytes);
        if (m4.fogId !== fogId) throw new ServiceError('failedSignatureVerification', 'M4 names another fog');
        const opened = await openM4(this.suite, this.options.key.recipient, fog.point, m4);
        const primaryHash = toHex(opened.primaryHash);
        const idCertHex = toHex(encodePoint(this.suite, opened.idCert));
        // One read: the session record comes with its certificate's B_i.
        const session = await this.ledgerCall(() => this.options.ledger.getSession(primaryHash));
        if (session.idCert !== idCertHex || session.fogId !== fogId) {
            throw new ServiceError('invalidPrimaryHash', 'the session record names another certificate or fog');
        }
        const Qi = decodePoint(this.suite, devicePublicKey);
        if (!equalBytes(publicKeyCommitment(this.suite, Qi), fromHex(session.publicKeyCommitment))) {
            throw new ServiceError('symmetricKeyInvalid', "Q_i does not match the ledger's H(Q_i)");
        }
        verifyCounterCommitment(
            this.suite,
            opened.counter,
            decodePoint(this.suite, fromHex(session.counterCommitment)),
        );
        const secondaryHash = computeSecondaryHash(
            this.suite,
            this.options.key.privateKey,
            opened.dynamicId,
            opened.counter,
        );
        const symKey = computeSymKey(this.suite, this.options.key.privateKey, Qi);
        const synchronisation = encodeSynchronisation({
            suite: this.suite,
            primaryHash: opened.primaryHash,
            secondaryHash,
            symKeyCommitment: symKeyCommitment(this.suite, symKey),
        });
        const stored: StoredSession = {
            state: 'syncing',
            routeId: key,
            primaryHash,
            idCert: idCertHex,
            fogId,
            counter: opened.counter.toString(),
            dynamicId: toHex(opened.dynamicId),
            symKey: toHex(symKey),
            synchronisation: toHex(synchronisation),
        };
        // The 'syncing' record and the submission overlap (the record is durable long before the commit,
        // which waits for a BatchTimeout). Should the CSP stop before the record is on disk, the fog
        // re-sends M4 and this function finds the ledger already synchronised (below).
        const syncing = this.sessions.set(key, stored);
        try {
            await Promise.all([
                syncing,
                this.ledgerCall(() => this.options.ledger.synchroniseSession(synchronisation, ordered)),
            ]);
        } catch (err) {
            await syncing.catch(() => undefined);
            const code = errorCodeOf(err);
            if (code === 'failedDoubleSpendingCheck-2' || code === 'invalidPrimaryHash') {
                // Perhaps our own earlier submission (before a crash) committed: the ledger decides.
                const now = await this.options.ledger.getSession(primaryHash).catch(() => undefined);
                if (
                    now?.status !== 'synchronised' ||
                    now.symKeyCommitment !== toHex(symKeyCommitment(this.suite, symKey))
                ) {
                    await this.sessions.delete(key);
                    throw err;
                }
            } else if (code !== ServiceErrorCode.Internal && code !== ServiceErrorCode.LedgerUnavailable) {
                await this.sessions.delete(key);
                throw err;
            } else throw err; // outcome unknown: keep 'syncing' for resumeSync
        }
        stored.state = 'established';
        stored.establishedAt = Date.now();
        // Open the channel and reserve its first send sequence numbers in the same durable write.
        const channel = await SessionChannel.create(this.suite, symKey, 'csp', fromHex(key));
        const entry = { channel, reservedSendSeq: SEQ_RESERVATION };
        stored.channel = { ...channel.exportState(), sendSeq: entry.reservedSendSeq.toString() };
        this.channels.set(key, entry);
        await this.sessions.set(key, stored);
        return this.seal(key, FrameType.Confirm, fromHex(key));
    }

    /** After a restart: a 'syncing' session is finished if the ledger shows it synchronised, else retried. */
    private async resumeSync(s: StoredSession): Promise<void> {
        try {
            await this.ledgerCall(() => this.options.ledger.synchroniseSession(fromHex(s.synchronisation)));
        } catch {
            const now = await this.options.ledger.getSession(s.primaryHash).catch(() => undefined);
            if (now?.status !== 'synchronised') {
                await this.sessions.delete(s.routeId);
                return;
            }
        }
        s.state = 'established';
        s.establishedAt = Date.now();
        await this.sessions.set(s.routeId, s);
    }

    // ---- session channel ----

    private async channelFor(key: string): Promise<{ channel: SessionChannel; reservedSendSeq: bigint }> {
        const cached = this.channels.get(key);
        if (cached !== undefined) return cached;
        const s = this.sessions.get(key);
        if (s === undefined || s.state !== 'established')
            throw new ServiceError(ServiceErrorCode.UnknownSession, 'no established session on this route');
        const symKey = fromHex(s.symKey);
        const channel =
            s.channel === undefined
                ? await SessionChannel.create(this.suite, symKey, 'csp', fromHex(key))
                : await SessionChannel.restore(this.suite, symKey, 'csp', fromHex(key), s.channel);
        const entry = { channel, reservedSendSeq: BigInt(s.channel?.sendSeq ?? '0') };
        this.channels.set(key, entry);
        return entry;
    }

    /** Persists the channel state, reserving send sequence numbers ahead (never reused after a crash). */
    private async persistChannel(
        key: string,
        entry: { channel: SessionChannel; reservedSendSeq: bigint },
        force = false,
    ): Promise<void> {
        const s = this.sessions.get(key);
        if (s === undefined) return;
        const st = entry.channel.exportState();
        const next = BigInt(st.sendSeq);
        if (!force && next < entry.reservedSendSeq && s.channel?.recvHighest === st.recvHighest) return;
        if (next >= entry.reservedSendSeq) entry.reservedSendSeq = next + SEQ_RESERVATION;
        s.channel = { ...st, sendSeq: entry.reservedSendSeq.toString() };
        await this.sessions.set(key, s);
    }

    private async seal(key: string, type: FrameType, payload: Uint8Array): Promise<Uint8Array> {
        const entry = await this.channelFor(key);
        const st = entry.channel.exportState();
        if (BigInt(st.sendSeq) >= entry.reservedSendSeq) await this.persistChannel(key, entry, true);
        return entry.channel.seal(type, payload);
    }

    private async onFrameUp(fogId: string, bytes: Uint8Array): Promise<void> {
        const up = decodeFrameUp(bytes);
        const key = routeKey(up.routeId);
        const reply = (outcome: DeviceBoundBody['outcome']): Promise<void> =>
            this.send(fogId, LinkKind.FrameDown, {
                correlationId: up.correlationId,
                clientId: up.clientId,
                routeId: up.routeId,
                outcome,
            });
        let opened;
        let entry;
        try {
            entry = await this.channelFor(key);
            opened = await entry.channel.open(up.frame);
        } catch (err) {
            const code = errorCodeOf(err);
            this.m.frames.inc({ type: 'unknown', outcome: code });
            await reply({ ok: false, code, detail: (err as Error).message });
            return;
        }
        const s = this.sessions.get(key)!;
        s.lastClientId = up.clientId;
        s.fogId = fogId;
        await this.persistChannel(key, entry, true);
        if (opened.type === FrameType.Ack && opened.payload.length === 8) {
            // The device acknowledges a Download frame: its instruction leaves the outbox.
            const seq = new DataView(opened.payload.buffer, opened.payload.byteOffset, 8).getBigUint64(0);
            const done = await this.outbox.acknowledge(key, seq);
            this.m.frames.inc({ type: 'ack', outcome: done === undefined ? 'stale' : 'ok' });
            if (done !== undefined) this.m.instructions.inc({ outcome: 'acknowledged' });
            await reply({ ok: true, frame: await this.seal(key, FrameType.Ack, opened.payload) });
        } else if (opened.type === FrameType.Upload) {
            this.m.frames.inc({ type: 'upload', outcome: 'ok' });
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
                await this.sessions.set(key, s);
            }
            const record: TelemetryRecord = {
                routeId: key,
                seq: opened.seq.toString(),
                receivedAt: Date.now(),
                payload: text,
                ...(s.equipmentId !== undefined ? { equipmentId: s.equipmentId } : {}),
            };
            await this.telemetry.set(`${key}:${opened.seq}`, record);
            for (const l of this.telemetryListeners) l(record);
            const ack = new Uint8Array(8);
            new DataView(ack.buffer).setBigUint64(0, opened.seq);
            await reply({ ok: true, frame: await this.seal(key, FrameType.Ack, ack) });
        } else {
            // An Ack-type frame from the device is a poll: answer Confirm (the device may have
            // missed it) and then any queued instructions.
            this.m.frames.inc({ type: 'poll', outcome: 'ok' });
            await reply({ ok: true, frame: await this.seal(key, FrameType.Confirm, fromHex(key)) });
        }
        // The device is reachable on this route now: deliver what waits for it.
        await this.kickDelivery(key);
    }

    // ---- instruction outbox ----

    /** Outbox targets a session's frames deliver: its device (once known) and the session itself. */
    private targetsOf(s: StoredSession): string[] {
        const t = [targetKey({ routeId: s.routeId })];
        if (s.equipmentId !== undefined) t.push(targetKey({ equipmentId: s.equipmentId }));
        return t;
    }

    /** The route an outbox target is delivered on: its device's newest reachable session. */
    private routeFor(target: string): StoredSession | undefined {
        let best: StoredSession | undefined;
        for (const s of this.sessions.values()) {
            if (s.state !== 'established' || s.lastClientId === undefined) continue;
            if (!this.targetsOf(s).includes(target)) continue;
            if (best === undefined || (s.establishedAt ?? 0) > (best.establishedAt ?? 0)) best = s;
        }
        return best;
    }

    /** Runs (or re-runs after the current pass) the in-order delivery on one route. */
    private kickDelivery(key: string): Promise<void> {
        const running = this.deliveries.get(key);
        if (running !== undefined) {
            this.redeliver.add(key);
            return running;
        }
        const run = (async () => {
            do {
                this.redeliver.delete(key);
                await this.deliverHead(key).catch((err: unknown) =>
                    this.log.warn('instruction delivery failed', { code: errorCodeOf(err) }),
                );
            } while (this.redeliver.has(key) && !this.closed);
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
        const s = this.sessions.get(key);
        if (this.closed || s?.state !== 'established' || s.lastClientId === undefined) return;
        const head = this.outbox.pending(this.targetsOf(s))[0];
        if (head === undefined) return;
        // Only the device's newest reachable session carries its instructions.
        if (this.routeFor(head.target)?.routeId !== key) return;
        const retryMs = this.options.instructionRetryMs ?? 2_000;
        const sent = head.sent;
        if (
            sent !== undefined &&
            sent.routeId === key &&
            sent.clientId === s.lastClientId &&
            Date.now() - sent.at < retryMs
        )
            return;
        const body = InstructionOutbox.payloadOf(head);
        const payload = new Uint8Array(8 + body.length);
        new DataView(payload.buffer).setBigUint64(0, BigInt(head.id));
        payload.set(body, 8);
        const frame = await this.seal(key, FrameType.Download, payload);
        const seq = new DataView(frame.buffer, frame.byteOffset + 2, 8).getBigUint64(0);
        await this.outbox.markSent(head, {
            routeId: key,
            seq: seq.toString(),
            clientId: s.lastClientId,
            at: Date.now(),
        });
        await this.send(s.fogId, LinkKind.FrameDown, {
            correlationId: newCorrelationId(),
            clientId: s.lastClientId,
            routeId: fromHex(key),
            outcome: { ok: true, frame },
        });
        this.m.instructions.inc({ outcome: 'sent' });
    }

    /** Periodically: take in the CLI's spool, and re-send what is due on each device's route. */
    private async instructionTick(): Promise<void> {
        if (this.closed) return;
        try {
            const added = await this.outbox.takeSpool();
            if (added.length > 0) this.m.instructions.inc({ outcome: 'queued' }, added.length);
            const routes = new Set<string>();
            for (const item of this.outbox.pending()) {
                const s = this.routeFor(item.target);
                if (s !== undefined) routes.add(s.routeId);
            }
            await Promise.all([...routes].map((r) => this.kickDelivery(r)));
        } catch (err) {
            this.log.warn('instruction outbox pass failed', { error: (err as Error).message });
        }
    }

    // ---- API ----

    /** Sessions in the store, newest first; secrets left out. */
    listSessions(): Omit<StoredSession, 'symKey' | 'dynamicId' | 'synchronisation' | 'channel'>[] {
        return [...this.sessions.values()]
            .map(({ symKey: _k, dynamicId: _d, synchronisation: _s, channel: _c, ...rest }) => rest)
            .sort((a, b) => (b.establishedAt ?? 0) - (a.establishedAt ?? 0));
    }

    /** Telemetry received, optionally for one equipment id. */
    readTelemetry(filter: { equipmentId?: string; routeId?: string; limit?: number } = {}): TelemetryRecord[] {
        const all = [...this.telemetry.values()].filter(
            (r) =>
                (filter.equipmentId === undefined || r.equipmentId === filter.equipmentId) &&
                (filter.routeId === undefined || r.routeId === filter.routeId),
        );
        return filter.limit === undefined ? all : all.slice(-filter.limit);
    }

    onTelemetry(listener: (r: TelemetryRecord) => void): void {
        this.telemetryListeners.push(listener);
    }

    /**
     * Sends an instruction to a device (by equipment id, known from its telemetry) or to one
     * session (route id). It is durable in the CSP's outbox when this resolves, and is delivered in
     * order over the device's newest reachable session — now when the device was seen (`sent`),
     * else when it next is (`queued`) — and removed only once the device acknowledged it.
     */
    async sendInstruction(target: InstructionTarget, payload: Uint8Array): Promise<'sent' | 'queued'> {
        const candidates = [...this.sessions.values()].filter(
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
        this.m.instructions.inc({ outcome: 'queued' });
        const route = this.routeFor(key);
        if (route === undefined) return 'queued';
        await this.kickDelivery(route.routeId);
        const now = this.outbox.pending([key]).find((i) => i.id === item.id);
        return now === undefined || now.sent !== undefined ? 'sent' : 'queued';
    }

    /** Instructions not yet acknowledged, oldest first (payloads left out). */
    pendingInstructions(target?: InstructionTarget): Omit<QueuedInstruction, 'payload'>[] {
        return this.outbox
            .pending(target === undefined ? undefined : [targetKey(target)])
            .map(({ payload: _p, ...rest }) => rest);
    }

    async close(): Promise<void> {
        this.closed = true;
        if (this.instructionTimer !== undefined) clearInterval(this.instructionTimer);
        await Promise.allSettled([...this.deliveries.values()]);
        this.events?.close();
        await this.eventLoop?.catch(() => undefined);
        await this.conn?.close();
        await this.broker?.close();
        await this.sessions?.close();
        await this.telemetry?.close();
        await this.outbox?.close();
    }
}

export type { AnyErrorCode };
