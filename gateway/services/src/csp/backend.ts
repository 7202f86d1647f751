/**
 * The CSP backend: the CA signer of Algorithm 1, fog approval, Algorithm 3 on every M4 a fog
 * forwards, a durable session store (ID_i, i, the forward-secret K_i), the CSP end of each session channel, and
 * an API to read telemetry and send instructions.
 *
 * This file starts and stops the backend and dispatches: each link message kind to its handler
 * (handlers/forward.ts for M4, handlers/frame-up.ts for session-channel frames), each chaincode
 * event to its handler (handlers/chaincode-events.ts). The steps themselves live in
 * issuance.ts (Algorithm 1), synchronisation.ts (Algorithm 3 around the protocol's pure
 * runAlgorithm3), channels.ts (session channel ends) and instruction-delivery.ts.
 *
 * Crash safety: a session is written to the store as 'syncing' before the synchronisation is
 * submitted; a restarted CSP finds it, checks the ledger and finishes it. Channel sequence numbers
 * are persisted before a frame is sent, so a restart never reuses a nonce.
 */
import { ErrorCode } from '@m2m-fabric/protocol';
import {
    errorCodeOf,
    MqttConnection,
    ServiceError,
    ServiceErrorCode,
    ThrottledWarning,
    TopicLayout,
    type AnyErrorCode,
    type Logger,
    type Principal,
} from '@m2m-fabric/common';
import {
    fetchBlockByTxId,
    fileCheckpointer,
    type ChaincodeClient,
    type CspKeyEpoch,
    type ChaincodeEventStream,
    type ObjectStore,
} from '@m2m-fabric/sdk';
import type { Suite } from '@m2m-fabric/protocol';
import { EmbeddedBroker } from '../broker.js';
import { loginToken, verifyLoginToken, type ServiceKey } from '../keys.js';
import { LinkKind, parseLinkMessage, verifyLinkMessage } from '../link.js';
import { MetricsRegistry } from '../metrics/registry.js';
import { DurableMap } from '../util/durable-map.js';
import { rotateCspCaKey } from './ca-keys.js';
import { CspChannels } from './channels.js';
import { CspContext } from './context.js';
import { chaincodeEventHandlers, type ChaincodeEventHandler } from './handlers/chaincode-events.js';
import { handleForward } from './handlers/forward.js';
import { handleFrameUp } from './handlers/frame-up.js';
import { handleQuery } from './handlers/query.js';
import type { QueryPrivateArea } from '@m2m-fabric/device';
import type { CspHandlerContext } from './handlers/handler.js';
import { InstructionDelivery } from './instruction-delivery.js';
import { InstructionOutbox, type InstructionTarget, type QueuedInstruction } from './instruction-outbox.js';
import { CspRecords, type RecordSink } from './records.js';
import type { RecordEnvelopes } from '../records/envelopes.js';
import { CspReceiptDelivery, type ReceiptSource } from './receipt-delivery.js';
import { approveFog, issueRequest } from './issuance.js';
import { cspMetrics } from './metrics.js';
import type { StoredSession, TelemetryRecord } from './session-store.js';
import { CspSynchroniser } from './synchronisation.js';

export type { StoredSession, TelemetryRecord } from './session-store.js';

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
    /**
     * Communication records (records.ts): when set, every session-channel frame the CSP receives
     * must come with the device's record and every frame it sends gets the CSP's, each journaled
     * here (the CSP's RecordBatcher) before the frame is answered or sent.
     */
    records?: RecordSink | (RecordSink & ReceiptSource);
    /**
     * With `records` a record batcher (it offers receipts: ReceiptSource): send each device the
     * Merkle receipt of every record it uploaded once its batch is anchored (receipt-delivery.ts),
     * as a session-channel instruction. Off by default: each receipt is one more Download frame
     * (and one more Ack record) per upload.
     */
    deliverReceipts?: boolean;
    /**
     * Envelope encryption of stored payloads (records/envelopes.ts; needs `records`): each
     * recorded frame's clear payload is also sealed for the CSP's storage key and the device, so
     * that one record can be shared with an auditor by re-wrapping its data key.
     */
    envelopes?: RecordEnvelopes;
    /** Where CA key epoch k > 0's key file lives (default `<dataDir>/keys/csp-ca-<k>.json`). */
    caKeyFile?: (keyId: number) => string;
}

/** Link message kinds a fog sends the CSP, and their handlers. */
const LINK_HANDLERS: Partial<
    Record<LinkKind, (h: CspHandlerContext, fogId: string, body: Uint8Array) => Promise<void>>
> = {
    [LinkKind.Forward]: handleForward,
    [LinkKind.FrameUp]: handleFrameUp,
    [LinkKind.Query]: handleQuery,
};

export class CspBackend {
    readonly suite: Suite;
    readonly topics: TopicLayout;
    readonly metrics: MetricsRegistry;
    brokerUrl = '';
    private readonly ctx: CspContext;
    /** One line per fog and code per 10 s, however many refused link messages arrive. */
    private readonly refusedWarning: ThrottledWarning;
    private readonly channels: CspChannels;
    private readonly synchroniser: CspSynchroniser;
    private delivery!: InstructionDelivery;
    private handlers!: CspHandlerContext;
    private readonly eventHandlers: Record<string, ChaincodeEventHandler>;
    /** The CSP's communication records, when `records` is set (counts of what was journaled). */
    records: CspRecords | undefined;
    /** Receipts of devices' records sent to them, when `records` is a record batcher. */
    receipts: CspReceiptDelivery | undefined;
    private readonly receiptListeners: ((r: { routeId: string; equipmentId?: string; receipt: Uint8Array }) => void)[] =
        [];
    private broker: EmbeddedBroker | undefined;
    private instructionTimer: NodeJS.Timeout | undefined;
    private readonly telemetryListeners: ((r: TelemetryRecord) => void)[] = [];
    private queryAreas: ((equipmentId: string) => QueryPrivateArea | undefined) | undefined;
    private events: ChaincodeEventStream | undefined;
    private eventLoop: Promise<void> | undefined;

    constructor(private readonly options: CspBackendOptions) {
        this.suite = options.key.suite;
        this.topics = options.topics ?? new TopicLayout();
        this.metrics = options.metrics ?? new MetricsRegistry();
        this.ctx = new CspContext({ ...options, topics: this.topics }, cspMetrics(this.metrics));
        this.refusedWarning = new ThrottledWarning(this.ctx.log);
        this.channels = new CspChannels(this.ctx);
        this.synchroniser = new CspSynchroniser(this.ctx, this.channels, options.maxConcurrentSessions ?? 8);
        this.eventHandlers = chaincodeEventHandlers({ autoApproveFogs: options.autoApproveFogs !== false });
        const r = this.metrics;
        const pendingInstructions = r.gauge(
            'm2m_csp_instruction_outbox_depth',
            'Instructions queued for devices, not yet acknowledged',
        );
        pendingInstructions.onCollect(() => pendingInstructions.set(this.delivery?.outbox.size ?? 0));
        const depth = r.gauge('m2m_csp_pending_syncs', 'Sessions stored as syncing, not yet confirmed');
        depth.onCollect(() =>
            depth.set([...(this.ctx.sessions?.values() ?? [])].filter((s) => s.state === 'syncing').length),
        );
    }

    get publicKeyHex(): string {
        return this.options.key.publicKeyHex;
    }

    /**
     * Registers the CSP key on the ledger if needed, opens the stores, finishes sessions a crash
     * left 'syncing', connects the link and starts following chaincode events.
     *
     * @throws {ServiceError} cspKeyMismatch when the ledger holds another CSP key or suite.
     */
    async start(): Promise<void> {
        const { options, ctx } = this;
        await this.ensureRegistered();
        ctx.sessions = await DurableMap.open<StoredSession>(`${options.dataDir}/csp-sessions.jsonl`);
        ctx.telemetry = await DurableMap.open<TelemetryRecord>(`${options.dataDir}/csp-telemetry.jsonl`);
        const outbox = await InstructionOutbox.open(options.dataDir);
        this.delivery = new InstructionDelivery(ctx, this.channels, outbox, options.instructionRetryMs ?? 2_000);
        this.handlers = {
            ctx,
            channels: this.channels,
            synchroniser: this.synchroniser,
            delivery: this.delivery,
            onTelemetry: (record) => {
                for (const l of this.telemetryListeners) l(record);
            },
            queryArea: (equipmentId) => this.queryAreas?.(equipmentId),
        };
        if (options.records !== undefined) {
            this.records = new CspRecords(ctx, options.records, options.envelopes);
            this.handlers.records = this.records;
            this.channels.records = this.records;
            const records = options.records;
            if (options.deliverReceipts === true && 'onAnchoredBatch' in records) {
                this.receipts = new CspReceiptDelivery({
                    source: records,
                    blockOf: (transactionId) => fetchBlockByTxId(options.ledger.connection, transactionId),
                    send: (routeId, body) => this.sendInstruction({ routeId }, body),
                    onReceipt: (routeId, receipt) => {
                        const equipmentId = ctx.sessions.get(routeId)?.equipmentId;
                        for (const l of this.receiptListeners)
                            l({ routeId, receipt, ...(equipmentId !== undefined ? { equipmentId } : {}) });
                    },
                    onError: (error) => ctx.log.warn('receipt not delivered', { error: (error as Error).message }),
                });
                this.handlers.receipts = this.receipts;
            }
        }
        for (const s of ctx.sessions.values()) if (s.state === 'syncing') void this.synchroniser.resume(s);

        if (options.brokerUrl === undefined) {
            this.broker = await EmbeddedBroker.start({
                layout: this.topics,
                port: options.brokerPort ?? 0,
                auth: { allowAnonymous: false, verifyService: (u, p, c) => this.verifyBrokerLogin(u, p, c) },
            });
            this.brokerUrl = this.broker.url;
        } else this.brokerUrl = options.brokerUrl;
        const username = options.brokerUsername ?? 'csp';
        ctx.conn = await MqttConnection.connect(this.brokerUrl, {
            clientId: 'csp-backend',
            username,
            password: options.brokerPassword ?? (() => loginToken(options.key, username, 'csp-backend')),
            persistentSession: true,
        });
        await ctx.conn.subscribe(
            this.topics.cspInboundFilter(),
            (topic, payload) => void this.onLinkMessage(topic, payload),
        );
        this.startEventLoop();
        this.instructionTimer = setInterval(() => void this.delivery.tick(), options.instructionRetryMs ?? 2_000);
        this.instructionTimer.unref();
        void this.delivery.tick();
        ctx.log.info('CSP backend started', { broker: this.brokerUrl, publicKey: this.publicKeyHex });
    }

    private async ensureRegistered(): Promise<void> {
        const ledger = this.options.ledger;
        const csp = await ledger.getCsp().catch((err: unknown) => {
            if (errorCodeOf(err) === ErrorCode.NotConfigured) return undefined;
            throw err;
        });
        if (csp === undefined) {
            await ledger.registerCsp(this.suite.id, this.publicKeyHex);
        } else if (csp.caPublicKey !== this.publicKeyHex || csp.suite !== this.suite.id) {
            throw new ServiceError(
                ServiceErrorCode.CspKeyMismatch,
                `the ledger holds another CSP key or suite (${csp.suite}) than this key file (${this.suite.id})`,
            );
        }
        await this.ctx.caKeys.refresh(ledger);
    }

    /**
     * Rotates the CA key (docs/protocol.md#csp-key-rotation): a new key file for the next epoch,
     * the rotation signed by the current key and the new one, registry:rotateCspKey. Certificates
     * bought from now on are issued under the new key; those under the current one keep working for
     * `overlapSeconds`. `newSuite` moves the CA to another suite
     * (docs/protocol.md#rotation-to-another-suite): purchases from now on are in it.
     *
     * @returns the new epoch as the ledger recorded it.
     * @throws as {@link rotateCspCaKey}.
     */
    rotateKey(overlapSeconds: number, newSuite?: Suite): Promise<CspKeyEpoch> {
        return rotateCspCaKey(this.options.ledger, this.ctx.caKeys, this.ctx.caKeyFile, overlapSeconds, newSuite);
    }

    /** The CA key epochs as this CSP last read them from the ledger. */
    get keyEpochs(): readonly CspKeyEpoch[] {
        return this.ctx.caKeys.epochs;
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
        const fog = await this.ctx.fogKey(username).catch(() => undefined);
        if (fog === undefined) return undefined;
        return verifyLoginToken(this.suite, fog.verify, username, clientId, token)
            ? { kind: 'fog', fogId: username, clientId }
            : undefined;
    }

    // ---- dispatch: chaincode events ----

    private startEventLoop(): void {
        const { ctx } = this;
        this.eventLoop = (async () => {
            const checkpointer = await fileCheckpointer(`${this.options.dataDir}/csp-events.checkpoint.json`);
            while (!ctx.closed) {
                try {
                    const hasCheckpoint = checkpointer.getBlockNumber() !== undefined;
                    this.events = await ctx.ledger.connection.getChaincodeEvents(
                        'm2m',
                        hasCheckpoint ? { checkpoint: checkpointer } : { startBlock: 0n },
                    );
                    for await (const event of this.events) {
                        const handler = this.eventHandlers[event.eventName];
                        if (handler !== undefined) {
                            const body = JSON.parse(new TextDecoder().decode(event.payload)) as Record<string, unknown>;
                            await handler(ctx, body);
                        }
                        await checkpointer.checkpointChaincodeEvent(event);
                    }
                } catch (err) {
                    if (ctx.closed) return;
                    ctx.log.warn('event stream failed; reconnecting', { error: (err as Error).message });
                    await new Promise((r) => setTimeout(r, 500));
                }
                if (ctx.closed) return;
            }
        })();
    }

    // ---- dispatch: link messages from fogs ----

    private async onLinkMessage(topic: string, payload: Buffer): Promise<void> {
        const { ctx } = this;
        const t = this.topics.parseCspInbound(topic);
        if (t === undefined) return;
        let msg;
        try {
            const parsed = parseLinkMessage(payload);
            if (parsed.message.sender !== t.fogId)
                throw new ServiceError(ErrorCode.UnauthorisedMsp, 'sender is not the topic owner');
            const fog = await ctx.fogKey(t.fogId);
            msg = verifyLinkMessage(this.suite, fog.verify, parsed);
        } catch (err) {
            ctx.m.linkRefused.inc({ code: errorCodeOf(err) });
            this.refusedWarning.warn(`${t.fogId}:${errorCodeOf(err)}`, 'refused link message', {
                fogId: t.fogId,
                code: errorCodeOf(err),
            });
            return;
        }
        const handler = LINK_HANDLERS[msg.kind];
        if (handler === undefined) return;
        try {
            await handler(this.handlers, t.fogId, msg.body);
        } catch (err) {
            this.refusedWarning.warn(`${t.fogId}:failed:${errorCodeOf(err)}`, 'link message failed', {
                fogId: t.fogId,
                code: errorCodeOf(err),
            });
        }
    }

    // ---- API ----

    /** Approves a pending fog when H(ID_f, d_c*Q_f) equals the registered addr_f. */
    approveFog(fogId: string): Promise<void> {
        return approveFog(this.ctx, fogId);
    }

    /** Algorithm 1 for one purchase: fetch the request, issue, store the objects, submit. */
    issue(requestId: string): Promise<void> {
        return issueRequest(this.ctx, requestId);
    }

    /** Revokes a fog: the ledger refuses its activations, and its link login and messages are refused. */
    async revokeFog(fogId: string): Promise<void> {
        await this.ctx.ledgerCall(() => this.options.ledger.revokeFog(fogId));
        this.ctx.forgetFog(fogId);
        this.ctx.log.info('fog revoked', { fogId });
    }

    /** Grants prepaid credit to a manufacturer account (paper: payment service). */
    async grantCredit(account: string, amount: number): Promise<number> {
        return (await this.options.ledger.grantCredit(account, amount)).balance;
    }

    /** Sessions in the store, newest first; secrets left out. */
    listSessions(): Omit<StoredSession, 'trafficKey' | 'dynamicId' | 'synchronisation' | 'channel'>[] {
        return [...this.ctx.sessions.values()]
            .map(({ trafficKey: _k, dynamicId: _d, synchronisation: _s, channel: _c, ...rest }) => rest)
            .sort((a, b) => (b.establishedAt ?? 0) - (a.establishedAt ?? 0));
    }

    /** Telemetry received, optionally for one equipment id. */
    readTelemetry(filter: { equipmentId?: string; routeId?: string; limit?: number } = {}): TelemetryRecord[] {
        const all = [...this.ctx.telemetry.values()].filter(
            (r) =>
                (filter.equipmentId === undefined || r.equipmentId === filter.equipmentId) &&
                (filter.routeId === undefined || r.routeId === filter.routeId),
        );
        return filter.limit === undefined ? all : all.slice(-filter.limit);
    }

    /**
     * Paper 000 step 4: the CSP answers record queries for machines that are offline, with the
     * private area `areaFor` gives (a QueryResponder signing with the CSP's key over the records
     * the CSP received from the machine); undefined = the CSP does not answer for that machine.
     */
    serveQueries(areaFor: (equipmentId: string) => QueryPrivateArea | undefined): void {
        this.queryAreas = areaFor;
    }

    /**
     * Called with each receipt the CSP builds for a device's uploaded record (and sends it), with
     * the session's route and the equipment id its telemetry named: the CSP's own copy, from which
     * it answers record queries for the machine while it is offline.
     */
    onReceipt(listener: (r: { routeId: string; equipmentId?: string; receipt: Uint8Array }) => void): void {
        this.receiptListeners.push(listener);
    }

    onTelemetry(listener: (r: TelemetryRecord) => void): void {
        this.telemetryListeners.push(listener);
    }

    /**
     * Sends an instruction to a device (by equipment id, known from its telemetry) or to one
     * session (route id). It is durable in the CSP's outbox when this resolves, and is delivered in
     * order over the device's newest reachable session — now when the device was seen (`sent`),
     * else when it next is (`queued`) — and removed only once the device acknowledged it.
     *
     * @throws {ServiceError} unknownSession when no established session matches the target.
     */
    sendInstruction(target: InstructionTarget, payload: Uint8Array): Promise<'sent' | 'queued'> {
        return this.delivery.send(target, payload);
    }

    /** Instructions not yet acknowledged, oldest first (payloads left out). */
    pendingInstructions(target?: InstructionTarget): Omit<QueuedInstruction, 'payload'>[] {
        return this.delivery.pending(target);
    }

    async close(): Promise<void> {
        const { ctx } = this;
        ctx.closed = true;
        if (this.instructionTimer !== undefined) clearInterval(this.instructionTimer);
        await this.delivery?.settle();
        this.events?.close();
        await this.eventLoop?.catch(() => undefined);
        await ctx.conn?.close();
        await this.broker?.close();
        await ctx.sessions?.close();
        await ctx.telemetry?.close();
        await this.delivery?.outbox.close();
    }
}

export type { AnyErrorCode };
