/**
 * The device agent (runs on a Raspberry Pi: pure JavaScript, no native addon). It holds w, its
 * equipment id and the next counter in its state file; runs a session M1 -> M2 -> M3 -> the CSP's
 * Confirm under the new key; then uploads telemetry and receives instructions over the session
 * channel. It refuses a fog whose key is not the one it was provisioned with, reconnects on its
 * own (mqtt.js), and resumes a session whose confirmation it missed by polling the channel.
 */
import { randomBytes } from 'node:crypto';
import {
    createM1,
    decodeM2,
    decodePoint,
    decodeScalar,
    encodeM1,
    encodeM3,
    equalBytes,
    fromHex,
    FrameType,
    getSuite,
    processM2,
    PartyRole,
    RecordSigner,
    SessionChannel,
    encodeFrameRecord,
    encodeScalar,
    encodeRecordedFrame,
    partyKeyId,
    ByteReader,
    toHex,
    type Point,
    type Suite,
    ErrorCode,
    encodeListenNotice,
} from '@m2m-fabric/protocol';
import { MqttConnection } from '@m2m-fabric/common';
import { RequestClient } from '@m2m-fabric/common';
import {
    decodeTagged,
    encodeTagged,
    EnvelopeKind,
    errorCodeOf,
    ServiceError,
    ServiceErrorCode,
    type Envelope,
} from '@m2m-fabric/common';
import { TopicLayout } from '@m2m-fabric/common';
import { faultPoint, routeIdFor } from '@m2m-fabric/common';
import { readDeviceState, writeDeviceState, type DeviceStateFile } from './state.js';
import { DeviceStateLock } from './state-lock.js';
import { mergeInbox } from './inbox.js';
import { silentLogger, type Logger } from '@m2m-fabric/common';

export interface DeviceAgentOptions {
    statePath: string;
    /** Overrides the fog broker URL in the state file. */
    brokerUrl?: string;
    topics?: TopicLayout;
    /** Per-request timeout (M1 -> M2). */
    requestTimeoutMs?: number;
    /** M3 -> Established: two ledger commits plus the CSP. */
    sessionTimeoutMs?: number;
    /** How long open() waits for the state file's lock (a manufacturer provisioning it). */
    lockWaitMs?: number;
    /** Where a pushed frame that could not be handled (its state write failed) is reported. */
    logger?: Logger;
}

export interface EstablishedSession {
    counter: bigint;
    routeId: string;
    /** M1 sent to Confirm opened, milliseconds. */
    latencyMs: number;
    /** True when the Confirm came through polling after a lost reply. */
    resumed: boolean;
}

/**
 * The device's side of a session, step by step (for progress output): M1 sent to the fog; M2 (the
 * certificate object) received and verified, symKey_i derived; M3 sent, after which the fog
 * activates the session (first commit), forwards M4 and the CSP synchronises it (second commit).
 */
export type SessionStep = 'M1' | 'M2' | 'M3';

/** A machine's private area for paper 000's record query (query-responder.ts's QueryResponder). */
export interface QueryPrivateArea {
    respond(packet: Uint8Array): Promise<Uint8Array>;
}

/** Sequence numbers reserved per state write (never reused after a crash). */
const SEQ_RESERVATION = 16n;

export class DeviceAgent {
    readonly suite: Suite;
    private state: DeviceStateFile;
    private readonly topics: TopicLayout;
    private conn: MqttConnection | undefined;
    private rpc: RequestClient | undefined;
    private readonly clientId = `dev-${randomBytes(8).toString('hex')}`;
    private channel: SessionChannel | undefined;
    /** The session's d_i as a record signer (communication records of the frames sent). */
    private recordSigner: RecordSigner | undefined;
    private reservedSendSeq = 0n;
    private readonly instructionHandlers: ((payload: Uint8Array) => void)[] = [];
    private writes: Promise<void> = Promise.resolve();
    /** Instruction acknowledgements on their way; close() lets them finish (briefly). */
    private readonly acks = new Set<Promise<unknown>>();
    /** Set by serveQueries: who answers the queries the fog delivers, and the static key that says so. */
    private queryArea: { area: QueryPrivateArea; secretKey: bigint } | undefined;

    private constructor(
        private readonly options: DeviceAgentOptions,
        state: DeviceStateFile,
        private readonly lock: DeviceStateLock,
    ) {
        this.state = state;
        this.suite = getSuite(state.suite);
        this.topics = options.topics ?? new TopicLayout();
    }

    /**
     * Opens the state file and takes its lock for as long as the agent is open: the agent is then
     * the file's only writer (purchases arrive through the provisioning inbox, merged here and
     * before every session). A second agent on the same file gets `deviceBusy`.
     * @throws {ServiceError} `notConfigured` when: no device state at … (provision it first)
     */
    static async open(options: DeviceAgentOptions): Promise<DeviceAgent> {
        // Checked before the lock, so a mistyped path creates nothing.
        if ((await readDeviceState(options.statePath)) === undefined)
            throw new ServiceError(
                ErrorCode.NotConfigured,
                `no device state at ${options.statePath} (provision it first)`,
            );
        const lock = await DeviceStateLock.acquire(options.statePath, { waitMs: options.lockWaitMs ?? 5_000 });
        try {
            const state = await readDeviceState(options.statePath);
            if (state === undefined)
                throw new ServiceError(
                    ErrorCode.NotConfigured,
                    `no device state at ${options.statePath} (provision it first)`,
                );
            const agent = new DeviceAgent(options, state, lock);
            await agent.reloadEntitlement();
            if (state.session !== undefined) await agent.restoreChannel();
            return agent;
        } catch (err) {
            await lock.release();
            throw err;
        }
    }

    get equipmentId(): string {
        return this.state.equipmentId;
    }
    /** Sessions still to run: unreserved counters, plus the pending one. */
    get remainingSessions(): bigint {
        const left = BigInt(this.state.endCounter) - BigInt(this.state.nextCounter);
        return (left > 0n ? left : 0n) + (this.state.pendingCounter !== undefined ? 1n : 0n);
    }
    /** The counter of an unfinished session, retried by the next {@link establishSession}. */
    get pendingCounter(): bigint | undefined {
        return this.state.pendingCounter === undefined ? undefined : BigInt(this.state.pendingCounter);
    }
    get nextCounter(): bigint {
        return BigInt(this.state.nextCounter);
    }
    get session(): DeviceStateFile['session'] {
        return this.state.session;
    }

    private get fogPublicKey(): Point {
        return decodePoint(this.suite, fromHex(this.state.fog.publicKey));
    }
    private get cspPublicKey(): Point {
        return decodePoint(this.suite, fromHex(this.state.cspPublicKey));
    }

    /** Serialised atomic writes of the state file, each only while this agent still holds the lock. */
    private persist(): Promise<void> {
        const snapshot = structuredClone(this.state);
        const write = this.writes
            .catch(() => undefined)
            .then(async () => {
                await this.lock.assertHeld();
                await writeDeviceState(this.options.statePath, snapshot);
            });
        this.writes = write;
        return write;
    }

    /** Merges purchases waiting in the provisioning inbox (the manufacturer bought more sessions). */
    async reloadEntitlement(): Promise<void> {
        await mergeInbox(this.options.statePath, this.state, () => this.persist());
    }

    /**
     * Connects to the fog and checks it holds the registered key (else fogKeyMismatch).
     * @throws {ServiceError} `notConfigured` when: no fog broker URL
     * @throws {ServiceError} `fogKeyMismatch` when: fog … does not hold the registered key of …
     */
    async connect(): Promise<void> {
        const url = this.options.brokerUrl ?? this.state.fog.brokerUrl;
        if (url === undefined) throw new ServiceError(ErrorCode.NotConfigured, 'no fog broker URL');
        const fogId = this.state.fog.id;
        this.conn = await MqttConnection.connect(url, { clientId: this.clientId, reconnectPeriodMs: 300 });
        this.rpc = await RequestClient.create(
            this.conn,
            this.topics.fogRequest(fogId, this.clientId),
            this.topics.fogReply(fogId, this.clientId),
        );
        this.rpc.onUnsolicited((env) => {
            this.onPushed(env).catch((err: unknown) =>
                (this.options.logger ?? silentLogger).warn('pushed frame not handled', {
                    code: errorCodeOf(err),
                    error: err instanceof Error ? err.message : String(err),
                }),
            );
        });
        const hello = await this.rpc.request(
            EnvelopeKind.Hello,
            new Uint8Array(),
            this.options.requestTimeoutMs ?? 10_000,
        );
        const r = new ByteReader(hello.body);
        const announcedId = r.string();
        r.u8();
        const announcedKey = r.bytes16();
        r.end();
        if (announcedId !== fogId || !equalBytes(announcedKey, fromHex(this.state.fog.publicKey))) {
            await this.disconnect();
            throw new ServiceError(
                ServiceErrorCode.FogKeyMismatch,
                `fog ${announcedId} does not hold the registered key of ${fogId}`,
            );
        }
        if (this.state.session?.established === true) await this.announce();
        // A new connection is a new private area to the fog: say so again.
        if (this.queryArea !== undefined) await this.sendListenNotice(true);
    }

    /**
     * Paper 000 steps 1 and 8 over this agent's fog: sends a query packet (Fig. 6) as a Query
     * envelope and resolves with the fog's reply, an information packet (Fig. 7) or a failure packet
     * — the bytes a QueryAsker checks at step 9.
     * @throws ServiceError timeout / unavailable (transport), malformedInput for a reply of another kind.
     */
    async sendQuery(packet: Uint8Array, timeoutMs = 30_000): Promise<Uint8Array> {
        const reply = await this.requireRpc().request(EnvelopeKind.Query, packet, timeoutMs);
        if (reply.kind !== EnvelopeKind.QueryInformation && reply.kind !== EnvelopeKind.QueryFailure)
            throw new ServiceError(
                ErrorCode.MalformedInput,
                `the fog answered a query with envelope kind ${reply.kind}`,
            );
        return reply.body;
    }

    /**
     * Makes this connection the machine's private area (step 4): a listen notice signed with the
     * machine's static M-EB secret, after which the fog delivers queries for this machine here and
     * `area` answers them (steps 5-6). Connect first.
     * @throws ServiceError failedSignatureVerification when the key is not the machine's in the M-EB,
     *   equipmentRetired / unknownEquipment, timeout.
     */
    async serveQueries(area: QueryPrivateArea, staticSecret: bigint): Promise<void> {
        this.queryArea = { area, secretKey: staticSecret };
        try {
            await this.sendListenNotice(true);
        } catch (err) {
            this.queryArea = undefined;
            throw err;
        }
    }

    /** Stops answering: the fog then routes this machine's queries to the CSP. */
    async stopServingQueries(): Promise<void> {
        if (this.queryArea === undefined) return;
        try {
            await this.sendListenNotice(false);
        } finally {
            this.queryArea = undefined;
        }
    }

    private async sendListenNotice(listening: boolean): Promise<void> {
        const notice = encodeListenNotice(
            this.suite,
            {
                equipmentId: this.state.equipmentId,
                fogId: this.state.fog.id,
                clientId: this.clientId,
                issuedAt: Date.now(),
                listening,
            },
            this.queryArea!.secretKey,
        );
        await this.requireRpc().request(EnvelopeKind.QueryListen, notice, this.options.requestTimeoutMs ?? 10_000);
    }

    private async answerQuery(env: Envelope): Promise<void> {
        const serving = this.queryArea;
        if (serving === undefined) return; // the fog will fall back to the CSP on its timeout
        const reply = await serving.area.respond(env.body);
        await this.requireRpc().reply(EnvelopeKind.QueryAnswer, env.correlationId, reply);
    }

    /**
     * Tells the CSP where this established session is reachable now (a restarted device has a new
     * MQTT client id): one poll frame, answered with a Confirm; the CSP then delivers instructions
     * queued while the device was away. Best effort: a failure only delays that delivery until the
     * next upload.
     */
    async announce(): Promise<boolean> {
        const s = this.state.session;
        if (s?.established !== true || this.rpc === undefined) return false;
        try {
            const poll = await this.sealFrame(FrameType.Ack, new Uint8Array());
            const reply = await this.rpc.request(
                ...this.frameRequest(fromHex(s.routeId), poll),
                this.options.requestTimeoutMs ?? 10_000,
            );
            await this.channel?.open(decodeTagged(reply.body).payload);
            await this.saveChannel(true);
            return true;
        } catch {
            return false;
        }
    }

    private requireRpc(): RequestClient {
        if (this.rpc === undefined) throw new ServiceError(ServiceErrorCode.Unavailable, 'not connected');
        return this.rpc;
    }

    /**
     * Runs one session: with the pending counter if an earlier attempt did not finish (the same
     * certificate, a fresh M1), else with the next counter, reserved on disk before M1 leaves. A
     * counter stays pending — its paid certificate kept — until its session is established, or the
     * ledger refuses its certificate for good (`unknownCertificate`, `certificateRevoked`, or
     * `failedDoubleSpendingCheck-1` without this device holding the key of that activation).
     * `onStep` is told when M1 has gone, M2 has been verified and M3 has gone.
     * @throws {@link ServiceError} `noSessionsLeft`, a fog/CSP/ledger error code, or `timeout`.
     */
    async establishSession(onStep?: (step: SessionStep, counter: bigint) => void): Promise<EstablishedSession> {
        const rpc = this.requireRpc();
        await this.reloadEntitlement();
        const pending = this.state.pendingCounter;
        const counter = pending !== undefined ? BigInt(pending) : BigInt(this.state.nextCounter);
        if (pending === undefined && counter >= BigInt(this.state.endCounter)) {
            throw new ServiceError(ServiceErrorCode.NoSessionsLeft, 'every purchased session was used; buy more');
        }
        // Everything the session needs from the state is decoded first (and the file was validated at
        // load): a bad state is refused before a counter is spent on it.
        const secrets = { w: decodeScalar(this.suite, fromHex(this.state.w)), equipmentId: this.state.equipmentId };
        const fogKey = this.fogPublicKey;
        const cspKey = this.cspPublicKey;
        // Reserve before anything leaves the device; M1 is computed while the state file is written.
        let reserved = Promise.resolve();
        if (pending === undefined) {
            this.state.nextCounter = (counter + 1n).toString();
            this.state.pendingCounter = counter.toString();
            reserved = this.persist();
        }
        const started = performance.now();
        const { m1, session } = await createM1(this.suite, secrets, counter, this.state.fog.id, fogKey, cspKey);
        await reserved;
        try {
            return await this.runSession(rpc, m1, session, started, onStep);
        } catch (err) {
            const code = errorCodeOf(err);
            const s = this.state.session;
            if (code === ErrorCode.FailedDoubleSpendingCheck1 && s?.counter === counter.toString() && !s.established) {
                // An earlier attempt of this same session activated the certificate (its activation
                // committed after that attempt gave up). Attempts of one certificate are
                // interchangeable — same IDCert_i, primaryHash, symKey_i and route — and this key is on
                // disk, so the CSP's Confirm for that activation opens here.
                await this.resume();
                return { counter, routeId: s.routeId, latencyMs: performance.now() - started, resumed: true };
            }
            if (
                code === ErrorCode.UnknownCertificate ||
                code === ErrorCode.CertificateRevoked ||
                code === ErrorCode.FailedDoubleSpendingCheck1
            ) {
                // The certificate can never be activated by this device: give its counter up.
                this.state.pendingCounter = undefined;
                if (s?.counter === counter.toString() && !s.established) {
                    this.state.session = undefined;
                    this.channel = undefined;
                }
                await this.persist();
            }
            throw err;
        }
    }

    /** M1 -> M2 -> M3 -> Confirm for one counter; the counter stays pending when this throws. */
    private async runSession(
        rpc: RequestClient,
        m1: Awaited<ReturnType<typeof createM1>>['m1'],
        session: Awaited<ReturnType<typeof createM1>>['session'],
        started: number,
        onStep?: (step: SessionStep, counter: bigint) => void,
    ): Promise<EstablishedSession> {
        const counter = session.counter;
        const fogId = this.state.fog.id;
        faultPoint('M1');
        const m2Pending = rpc.request(EnvelopeKind.M1, encodeM1(m1), this.options.requestTimeoutMs ?? 10_000);
        onStep?.('M1', counter);
        const m2Reply = await m2Pending;
        const { tag: handle, payload } = decodeTagged(m2Reply.body);
        const m2 = decodeM2(this.suite, payload);
        const { m3, symKey, privateKey } = processM2(session, m2.certificateObject, this.cspPublicKey, fogId);
        onStep?.('M2', counter);
        const routeId = routeIdFor(this.suite, session.idCert);
        const previous = this.state.session;
        if (previous?.counter === counter.toString() && previous.symKey === toHex(symKey) && !previous.established) {
            // A retry of this session: the same key and route, so the channel goes on from where the
            // last attempt left it (the CSP may have seen its frames; their sequence numbers stay used).
            this.channel = await SessionChannel.restore(this.suite, symKey, 'device', routeId, previous.channel);
            this.reservedSendSeq = BigInt(previous.channel.sendSeq);
        } else {
            this.channel = await SessionChannel.create(this.suite, symKey, 'device', routeId);
            this.reservedSendSeq = SEQ_RESERVATION;
        }
        this.recordSigner = new RecordSigner(this.suite, privateKey);
        this.state.session = {
            counter: counter.toString(),
            routeId: toHex(routeId),
            symKey: toHex(symKey),
            recordKey: toHex(encodeScalar(this.suite, privateKey)),
            established: false,
            channel: { ...this.channel.exportState(), sendSeq: this.reservedSendSeq.toString() },
        };
        // The session key is on disk before M3 leaves: once M3 is out an activation may commit, and
        // with the key a later attempt (or a restarted device) can still take its Confirm.
        await this.persist();
        let resumed = false;
        try {
            faultPoint('M3');
            const confirmPending = rpc.request(
                EnvelopeKind.M3,
                encodeTagged(handle, encodeM3(m3)),
                this.options.sessionTimeoutMs ?? 30_000,
            );
            onStep?.('M3', counter);
            const done = await confirmPending;
            const { tag, payload: confirm } = decodeTagged(done.body);
            if (!equalBytes(tag, routeId))
                throw new ServiceError(ErrorCode.MalformedInput, 'confirmation for another session');
            faultPoint('Confirm');
            await this.acceptConfirm(confirm);
        } catch (err) {
            const code = errorCodeOf(err);
            if (code !== ServiceErrorCode.Timeout && code !== ServiceErrorCode.Unavailable) throw err;
            await this.resume();
            resumed = true;
        }
        return { counter, routeId: toHex(routeId), latencyMs: performance.now() - started, resumed };
    }

    private async acceptConfirm(frame: Uint8Array): Promise<void> {
        const channel = this.channel;
        if (channel === undefined) throw new ServiceError(ServiceErrorCode.UnknownSession, 'no session');
        const opened = await channel.open(frame);
        if (opened.type !== FrameType.Confirm)
            throw new ServiceError(ErrorCode.MalformedInput, `expected Confirm, got frame type ${opened.type}`);
        this.markEstablished(this.state.session!);
        await this.saveChannel(true);
    }

    /** The session is established: its counter is no longer pending (one state write with the flag). */
    private markEstablished(session: NonNullable<DeviceStateFile['session']>): void {
        session.established = true;
        if (this.state.pendingCounter === session.counter) this.state.pendingCounter = undefined;
    }

    /**
     * Polls the CSP through the fog until the session's Confirm arrives (after a lost reply or
     * restart). On failure the session and its pending counter are kept for the next attempt.
     * @throws {ServiceError} `unknownSession` when: no session to resume
     * @throws {Error}
     */
    async resume(deadlineMs = this.options.sessionTimeoutMs ?? 30_000): Promise<void> {
        const rpc = this.requireRpc();
        if (this.state.session === undefined || this.channel === undefined)
            throw new ServiceError(ServiceErrorCode.UnknownSession, 'no session to resume');
        const routeId = fromHex(this.state.session.routeId);
        const deadline = Date.now() + deadlineMs;
        let lastErr: unknown;
        while (Date.now() < deadline) {
            try {
                await this.conn?.waitConnected(Math.max(1, deadline - Date.now()));
                const poll = await this.sealFrame(FrameType.Ack, new Uint8Array());
                const reply = await rpc.request(...this.frameRequest(routeId, poll), 5_000);
                const { payload } = decodeTagged(reply.body);
                await this.acceptConfirm(payload);
                return;
            } catch (err) {
                lastErr = err;
                const code = errorCodeOf(err);
                // Only "not yet" answers are worth another poll.
                if (
                    ![ServiceErrorCode.Timeout, ServiceErrorCode.Unavailable, ServiceErrorCode.UnknownSession].includes(
                        code as never,
                    )
                )
                    break;
                await new Promise((r) => setTimeout(r, 300));
            }
        }
        // The session and its pending counter stay: the next session retries this certificate.
        throw lastErr instanceof Error ? lastErr : new ServiceError(ServiceErrorCode.Timeout, 'session not confirmed');
    }

    private async restoreChannel(): Promise<void> {
        const s = this.state.session!;
        this.channel = await SessionChannel.restore(
            this.suite,
            fromHex(s.symKey),
            'device',
            fromHex(s.routeId),
            s.channel,
        );
        this.recordSigner =
            s.recordKey === undefined ? undefined : new RecordSigner(this.suite, BigInt(`0x${s.recordKey}`));
        this.reservedSendSeq = BigInt(s.channel.sendSeq);
    }

    private async saveChannel(force = false): Promise<void> {
        const s = this.state.session;
        if (s === undefined || this.channel === undefined) return;
        const st = this.channel.exportState();
        if (BigInt(st.sendSeq) >= this.reservedSendSeq) this.reservedSendSeq = BigInt(st.sendSeq) + SEQ_RESERVATION;
        else if (!force) return;
        s.channel = { ...st, sendSeq: this.reservedSendSeq.toString() };
        await this.persist();
    }

    private async sealFrame(type: FrameType, payload: Uint8Array): Promise<Uint8Array> {
        if (this.channel === undefined) throw new ServiceError(ServiceErrorCode.UnknownSession, 'no session');
        if (BigInt(this.channel.exportState().sendSeq) >= this.reservedSendSeq) await this.saveChannel(true);
        return this.channel.seal(type, payload);
    }

    /**
     * The request carrying a frame: with the session's d_i, a RecordedFrame — the frame and the
     * device's signed communication record of it, which the CSP journals before it answers.
     */
    private frameRequest(routeId: Uint8Array, frame: Uint8Array): [EnvelopeKind, Uint8Array] {
        if (this.recordSigner === undefined) return [EnvelopeKind.Frame, encodeTagged(routeId, frame)];
        const csp = { role: PartyRole.Csp, keyId: partyKeyId(this.suite, this.cspPublicKey) };
        const record = encodeFrameRecord(this.recordSigner, PartyRole.Device, csp, frame);
        return [EnvelopeKind.RecordedFrame, encodeTagged(routeId, encodeRecordedFrame({ frame, record }))];
    }

    /**
     * Uploads telemetry (JSON, with the equipment id, readable only by the CSP); resolves on the CSP's Ack.
     * @throws {ServiceError} `unknownSession` when: no established session
     * @throws {ServiceError} `malformedInput` when: expected an Ack frame
     */
    async upload(telemetry: Record<string, unknown>): Promise<bigint> {
        const rpc = this.requireRpc();
        const s = this.state.session;
        if (s?.established !== true) throw new ServiceError(ServiceErrorCode.UnknownSession, 'no established session');
        const payload = new TextEncoder().encode(JSON.stringify({ equipmentId: this.state.equipmentId, ...telemetry }));
        const timeoutMs = this.options.requestTimeoutMs ?? 10_000;
        const deadline = Date.now() + timeoutMs;
        let reply: Envelope;
        for (;;) {
            // A fresh frame (new sequence number) per attempt: the fog refused the last one unread.
            const frame = await this.sealFrame(FrameType.Upload, payload);
            try {
                reply = await rpc.request(...this.frameRequest(fromHex(s.routeId), frame), timeoutMs);
                break;
            } catch (err) {
                // `unavailable`: the fog's link to the CSP is down (a restart); it comes back.
                if (errorCodeOf(err) !== ServiceErrorCode.Unavailable || Date.now() > deadline) throw err;
                await new Promise((r) => setTimeout(r, 200));
            }
        }
        const opened = await this.channel!.open(decodeTagged(reply.body).payload);
        await this.saveChannel(true);
        if (opened.type !== FrameType.Ack || opened.payload.length !== 8)
            throw new ServiceError(ErrorCode.MalformedInput, 'expected an Ack frame');
        return new DataView(opened.payload.buffer, opened.payload.byteOffset, 8).getBigUint64(0);
    }

    onInstruction(handler: (payload: Uint8Array) => void): void {
        this.instructionHandlers.push(handler);
    }

    private async onPushed(env: Envelope): Promise<void> {
        if (env.kind === EnvelopeKind.QueryDeliver) return this.answerQuery(env);
        // The session this frame is for, fixed before the first await: a session that fails, or a
        // new one that starts, while the frame is being opened must not receive it.
        const session = this.state.session;
        const channel = this.channel;
        if (env.kind !== EnvelopeKind.Frame || channel === undefined || session === undefined) return;
        const stillCurrent = (): boolean => this.state.session === session && this.channel === channel;
        let opened;
        let routeId: Uint8Array;
        try {
            const { tag, payload } = decodeTagged(env.body);
            if (toHex(tag) !== session.routeId) return;
            routeId = tag;
            opened = await channel.open(payload);
            if (!stillCurrent()) return;
            await this.saveChannel(true);
        } catch {
            return; // a frame that does not open is dropped: the channel state is unchanged
        }
        if (!stillCurrent()) return;
        if (opened.type === FrameType.Download) await this.onDownload(routeId, opened.seq, opened.payload);
        else if (opened.type === FrameType.Confirm && !session.established) {
            this.markEstablished(session);
            await this.persist();
        }
    }

    /**
     * An instruction: u64 instruction id || body. New ids go to the handlers; the id is recorded
     * and the frame acknowledged (Ack frame carrying the Download's sequence number), after which
     * the CSP removes it from its outbox. A re-delivered id is acknowledged again, not handled.
     */
    private async onDownload(routeId: Uint8Array, seq: bigint, payload: Uint8Array): Promise<void> {
        if (payload.length < 8) return;
        const id = new DataView(payload.buffer, payload.byteOffset, 8).getBigUint64(0);
        if (id > BigInt(this.state.lastInstructionId ?? '0')) {
            const body = payload.slice(8);
            for (const h of this.instructionHandlers) h(body);
            this.state.lastInstructionId = id.toString();
            await this.persist().catch(() => undefined);
        }
        const ackPayload = new Uint8Array(8);
        new DataView(ackPayload.buffer).setBigUint64(0, seq);
        const sending = (async () => {
            const ack = await this.sealFrame(FrameType.Ack, ackPayload);
            await this.requireRpc().request(
                ...this.frameRequest(routeId, ack),
                this.options.requestTimeoutMs ?? 10_000,
            );
        })().catch(() => {
            /* the CSP re-sends an unacknowledged instruction; it is acknowledged then */
        });
        this.acks.add(sending);
        await sending;
        this.acks.delete(sending);
    }

    /** Drops the broker connection; the agent keeps its state file (connect() again to resume). */
    async disconnect(): Promise<void> {
        this.rpc?.cancelAll('device agent disconnecting');
        await this.conn?.close();
        this.conn = undefined;
        this.rpc = undefined;
    }

    /** Disconnects, finishes pending state writes and releases the state file's lock. */
    async close(): Promise<void> {
        // Best effort: a device that goes away without saying so is found out by the fog's timeout.
        if (this.rpc !== undefined) await this.stopServingQueries().catch(() => undefined);
        if (this.acks.size > 0)
            await Promise.race([Promise.all(this.acks), new Promise((r) => setTimeout(r, 2_000).unref())]);
        await this.disconnect();
        await this.writes.catch(() => undefined);
        await this.lock.release();
    }
}
