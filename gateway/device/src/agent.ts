/**
 * The device agent (runs on a Raspberry Pi: pure JavaScript, no native addon). It holds w, its
 * equipment id and the next counter in its state file; runs a session M1 -> M2 -> M3 -> the CSP's
 * Confirm under the new key; then uploads telemetry and receives instructions over the session
 * channel. It refuses a fog whose key is not the one it was provisioned with, reconnects on its
 * own (mqtt.js), and resumes a session whose confirmation it missed by asking for it again.
 *
 * Forward secrecy (chaincode/protocol/src/forward-secrecy.ts): the channel is keyed by K_i, which
 * needs the ephemeral x_D of M1 and the CSP's E_C from the Confirm. x_D is drawn once per pending
 * counter and written with its reservation, symKey_i with the pending session before M3 leaves, so
 * every attempt of one certificate carries the same E_D and a retried or restarted device can
 * still take the Confirm of an activation that committed (docs/reliability.md). At the Confirm,
 * K_i is derived and ONE atomic write stores the established session with K_i and removes x_D and
 * symKey_i; the in-memory copies are erased. Forward secrecy is about compromise after the
 * session: from then on the file holds nothing that gives K_i.
 */
import { randomBytes } from 'node:crypto';
import {
    acceptFsConfirm,
    createM1,
    EphemeralKey,
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
    ReceiptVerifier,
    decodeReceiptNotice,
    SessionChannel,
    encodeFrameRecord,
    encodeScalar,
    encodeRecordedFrame,
    partyKeyId,
    ByteReader,
    toHex,
    type ChannelTrust,
    type CommunicationRecord,
    type DeviceSession,
    type Point,
    type Suite,
    ErrorCode,
    encodeListenNotice,
    decodeCspKeyChain,
    decodeFogSuiteKeys,
    extendTrustedCspKeys,
    encodePoint,
    suiteOr,
    suiteSecrets,
    verifyFogSuiteKey,
    VerificationError,
    type Party,
    type TrustedCspKey,
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
import { readDeviceState, suiteOfCounter, writeDeviceState, type DeviceStateFile } from './state.js';
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

/**
 * The attempt between M2 and the Confirm in memory (x_D inside `session.ephemeral`, symKey_i);
 * the state file holds the same secrets for the pending counter until the Confirm.
 */
interface PendingHandshake {
    /** The session's suite (its certificate's). */
    suite: Suite;
    counter: bigint;
    routeId: Uint8Array;
    session: DeviceSession;
    symKey: Uint8Array;
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
    private recording: { signer: RecordSigner; csp: Party } | undefined;
    private pending: PendingHandshake | undefined;
    /** The Confirm acceptance in progress (acceptConfirm): a second copy waits for it. */
    private accepting: Promise<void> | undefined;
    private reservedSendSeq = 0n;
    private readonly instructionHandlers: ((payload: Uint8Array) => void)[] = [];
    private readonly receiptHandlers: ((receipt: Uint8Array, record: CommunicationRecord) => void)[] = [];
    private receiptVerifier: ReceiptVerifier | undefined;
    private writes: Promise<void> = Promise.resolve();
    /** Instruction acknowledgements on their way; close() lets them finish (briefly). */
    private readonly acks = new Set<Promise<unknown>>();
    /**
     * The fog's keys for suites other than the device's, by suite tag, each accepted from the fog's
     * info message only with its statement signed by the provisioned fog key and by itself.
     */
    private readonly fogSuiteKeys = new Map<number, Point>();
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
            const s = state.session;
            if (
                s !== undefined &&
                (s.established
                    ? s.trafficKey === undefined
                    : state.pendingCounter !== s.counter || s.symKey === undefined)
            ) {
                // An established session written before forward secrecy (symKey_i, no K_i) cannot be
                // resumed, nor can an unconfirmed one whose counter is no longer pending: its key is
                // erased from the file. A pending one stays: the next session retries its certificate.
                state.session = undefined;
                await agent.persist();
            }
            if (state.pendingCounter !== undefined && state.pendingEphemeral === undefined) {
                await agent.adoptPendingWithoutEphemeral(options.statePath);
            }
            if (state.session?.established === true) await agent.restoreChannel();
            return agent;
        } catch (err) {
            await lock.release();
            throw err;
        }
    }

    /** The channel's trust roots from provisioning (what step 9 verifies receipts against), if given. */
    get channelTrust(): ChannelTrust | undefined {
        return this.state.channelTrust;
    }

    get equipmentId(): string {
        return this.state.equipmentId;
    }

    /**
     * A state file written by a release before forward secrecy: a pending counter and no x_D. Its
     * certificate is retried like any pending one, so x_D is drawn now, once, and written before
     * anything leaves the device; counters do not move (nextCounter stays, the pending one stays
     * pending). In the same atomic write the old attempt's unconfirmed session (symKey_i, route) is
     * removed: that attempt's M3 may have left carrying no E_D, so an activation it made can never
     * be answered by a forward-secret Confirm the device could open. Then the next attempt's fresh
     * M1 tells which case holds: `unused` on the ledger → the session runs again under the new
     * E_D (symKey_i is written again before its M3); already `used` → that activation was the old
     * release's, and the counter is given up with `failedDoubleSpendingCheck-1` (the certificate is
     * spent on the ledger, not lost as `unused`) instead of waiting for a Confirm that cannot come.
     */
    private async adoptPendingWithoutEphemeral(path: string): Promise<void> {
        const s = this.state.session;
        const oldAttempt = s !== undefined && !s.established && s.counter === this.state.pendingCounter;
        this.state.pendingEphemeral = this.drawEphemeralSecret(
            suiteOfCounter(this.state, BigInt(this.state.pendingCounter!)),
        );
        if (oldAttempt) this.state.session = undefined;
        await this.persist();
        (this.options.logger ?? silentLogger).warn(
            'state file from before forward secrecy: the pending certificate is retried with a new x_D',
            { file: path, pendingCounter: this.state.pendingCounter, droppedUnconfirmedSession: oldAttempt },
        );
    }

    /** A fresh x_D for the pending certificate (of `suite`), as hex (the only copy is the one returned). */
    private drawEphemeralSecret(suite: Suite): string {
        const fresh = EphemeralKey.generate(suite);
        const secret = fresh.exportSecret();
        fresh.erase();
        const hex = toHex(secret);
        secret.fill(0);
        return hex;
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

    /** The CA keys this device trusts, by key epoch: the provisioned Q_c (0) and those it accepted. */
    private trustedCspKeys(): Map<number, TrustedCspKey> {
        const keys = new Map<number, TrustedCspKey>([[0, { suite: this.suite, key: this.cspPublicKey }]]);
        for (const k of this.state.cspKeys ?? []) {
            const suite = suiteOr(k.suite, this.suite);
            keys.set(k.keyId, { suite, key: decodePoint(suite, fromHex(k.caPublicKey)) });
        }
        return keys;
    }

    /**
     * The newest trusted CA key of `suite`: C2 is sealed to it (the CSP opens C2 under any key of
     * that suite it holds).
     */
    private newestCspKeyOf(suite: Suite): Point | undefined {
        const keys = [...this.trustedCspKeys().entries()]
            .filter(([, k]) => k.suite.tag === suite.tag)
            .sort(([a], [b]) => b - a);
        return keys[0]?.[1].key;
    }

    /** The CSP's key that stands for it in `suite` (its records' party): epoch 0, or the first epoch of that suite. */
    private suiteIdentityOf(suite: Suite): Point {
        if (suite.tag === this.suite.tag) return this.cspPublicKey;
        const first = [...this.trustedCspKeys().entries()]
            .filter(([, k]) => k.suite.tag === suite.tag)
            .sort(([a], [b]) => a - b)[0];
        if (first === undefined)
            throw new ServiceError(ErrorCode.NotConfigured, `no trusted CSP key of suite ${suite.id}`);
        return first[1].key;
    }

    /** The fog key a session of `suite` seals C1 to: the provisioned Q_f, or its accepted key of that suite. */
    private fogKeyOf(suite: Suite): Point | undefined {
        return suite.tag === this.suite.tag ? this.fogPublicKey : this.fogSuiteKeys.get(suite.tag);
    }

    /**
     * The fog's keys of other suites from its info message: each accepted only if its statement is
     * signed by the provisioned fog key (authority) and by the key itself (possession); anything
     * else is ignored, so a fog can withhold a key but not substitute one.
     */
    private learnFogSuiteKeys(info: ByteReader): void {
        if (info.remaining() === 0) return;
        let links;
        try {
            links = decodeFogSuiteKeys(this.suite, info.bytes16());
        } catch (err) {
            (this.options.logger ?? silentLogger).warn('the fog relays malformed suite keys', {
                code: errorCodeOf(err),
            });
            return;
        }
        for (const link of links) {
            try {
                verifyFogSuiteKey(
                    {
                        fogId: this.state.fog.id,
                        identitySuite: this.suite,
                        identityKey: this.fogPublicKey,
                        suite: link.suite,
                        key: link.key,
                    },
                    link.signatures,
                );
            } catch (err) {
                (this.options.logger ?? silentLogger).warn('the fog relays a suite key its key did not sign', {
                    suite: link.suite.id,
                    code: errorCodeOf(err),
                });
                continue;
            }
            this.fogSuiteKeys.set(link.suite.tag, link.key);
        }
    }

    /**
     * The key epochs a fog relays in its info message (Hello reply): accepted only along the chain
     * of rotations signed from the keys already trusted (extendTrustedCspKeys), then persisted
     * atomically with the state file. A fog that relays a forged, truncated or contradicting chain
     * adds nothing (a contradiction is logged).
     */
    private async learnCspKeys(info: ByteReader): Promise<void> {
        if (info.remaining() === 0) return;
        const chain = decodeCspKeyChain(info.bytes16());
        let extended: Map<number, TrustedCspKey>;
        try {
            extended = extendTrustedCspKeys(this.trustedCspKeys(), chain);
        } catch (err) {
            (this.options.logger ?? silentLogger).warn('the fog relays CSP keys that contradict the trusted ones', {
                code: errorCodeOf(err),
            });
            return;
        }
        const known = this.state.cspKeys?.length ?? 0;
        if (extended.size - 1 <= known) return;
        this.state.cspKeys = [...extended.entries()]
            .filter(([keyId]) => keyId > 0)
            .sort(([a], [b]) => a - b)
            .map(([keyId, { suite, key }]) => ({
                keyId,
                caPublicKey: toHex(encodePoint(suite, key)),
                ...(suite.tag === this.suite.tag ? {} : { suite: suite.id }),
            }));
        await this.persist();
    }

    /** Asks the fog for its info message again (Hello) and learns any new CSP key from it. */
    private async refreshCspKeys(rpc: RequestClient): Promise<void> {
        const hello = await rpc.request(EnvelopeKind.Hello, new Uint8Array(), this.options.requestTimeoutMs ?? 10_000);
        const r = new ByteReader(hello.body);
        r.string();
        r.u8();
        r.bytes16();
        await this.learnCspKeys(r);
        this.learnFogSuiteKeys(r);
    }

    /**
     * processM2 under the CA key the certificate was issued under: the trusted keys newest first
     * (the reconstruction d_i*G == e*Cert_i + Q_c holds for exactly one of them). When none fits,
     * the certificate may be under a key this device has not learnt yet: it asks the fog once more.
     * @throws {VerificationError} invalidIssuance when no trusted key reconstructs the certificate.
     */
    private async processM2UnderTrustedKey(
        rpc: RequestClient,
        session: DeviceSession,
        certificateObject: Uint8Array,
        fogId: string,
    ): Promise<ReturnType<typeof processM2>> {
        const attempt = (): ReturnType<typeof processM2> | undefined => {
            // Only the keys of the session's suite: a certificate is a point of one curve.
            const keys = [...this.trustedCspKeys().entries()]
                .filter(([, k]) => k.suite.tag === session.suite.tag)
                .sort(([a], [b]) => b - a);
            for (const [, { key }] of keys) {
                try {
                    return processM2(session, certificateObject, key, fogId);
                } catch (err) {
                    if (!(err instanceof VerificationError) || err.code !== ErrorCode.InvalidIssuance) throw err;
                }
            }
            return undefined;
        };
        const first = attempt();
        if (first !== undefined) return first;
        await this.refreshCspKeys(rpc);
        const second = attempt();
        if (second !== undefined) return second;
        throw new VerificationError(
            ErrorCode.InvalidIssuance,
            'the certificate object reconstructs under none of the trusted CSP keys',
        );
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
        if (announcedId !== fogId || !equalBytes(announcedKey, fromHex(this.state.fog.publicKey))) {
            await this.disconnect();
            throw new ServiceError(
                ServiceErrorCode.FogKeyMismatch,
                `fog ${announcedId} does not hold the registered key of ${fogId}`,
            );
        }
        await this.learnCspKeys(r);
        this.learnFogSuiteKeys(r);
        r.end();
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
     * ledger refuses its certificate for good (`unknownCertificate`, `certificateRevoked`,
     * `cspKeyExpired` — issued under a CSP key past its end date — or
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
        // The counter's certificate is of the suite it was bought in (counterSuites): after a rotation
        // to another suite, w, the fog key and Q_c of that suite.
        const suite = suiteOfCounter(this.state, counter);
        const secrets = suiteSecrets(
            this.suite,
            { w: decodeScalar(this.suite, fromHex(this.state.w)), equipmentId: this.state.equipmentId },
            suite,
        );
        if (this.fogKeyOf(suite) === undefined || this.newestCspKeyOf(suite) === undefined)
            await this.refreshCspKeys(rpc);
        const fogKey = this.fogKeyOf(suite);
        if (fogKey === undefined)
            throw new ServiceError(
                ErrorCode.FogSuiteKeyMissing,
                `fog ${this.state.fog.id} announces no key for suite ${suite.id} (its certificate ${counter}'s)`,
            );
        const cspKey = this.newestCspKeyOf(suite);
        if (cspKey === undefined)
            throw new ServiceError(ErrorCode.NotConfigured, `no trusted CSP key of suite ${suite.id} yet`);
        // Reserve before anything leaves the device; M1 is computed while the state file is written.
        // The certificate's x_D is drawn once and written with the reservation: every attempt of this
        // counter carries the same E_D in C2, so whichever attempt's activation commits, the CSP's
        // E_C and K_i answer the x_D on disk.
        let reserved = Promise.resolve();
        if (pending === undefined || this.state.pendingEphemeral === undefined) {
            this.state.pendingEphemeral = this.drawEphemeralSecret(suite);
            if (pending === undefined) {
                this.state.nextCounter = (counter + 1n).toString();
                this.state.pendingCounter = counter.toString();
            }
            reserved = this.persist();
        }
        const ephemeral = EphemeralKey.fromSecret(suite, fromHex(this.state.pendingEphemeral));
        const started = performance.now();
        const { m1, session } = await createM1(suite, secrets, counter, this.state.fog.id, fogKey, cspKey, ephemeral);
        await reserved;
        try {
            return await this.runSession(rpc, m1, session, started, onStep);
        } catch (err) {
            const code = errorCodeOf(err);
            const s = this.state.session;
            if (
                code === ErrorCode.FailedDoubleSpendingCheck1 &&
                s?.counter === counter.toString() &&
                !s.established &&
                s.symKey !== undefined
            ) {
                // An earlier attempt of this same session activated the certificate (its activation
                // committed after that attempt gave up). Attempts of one certificate are
                // interchangeable — same IDCert_i, primaryHash, symKey_i, E_D and route — and symKey_i
                // and x_D are on disk, so the CSP's E_C ‖ Confirm for that activation opens here.
                this.dropPending();
                this.pending = { suite, counter, routeId: fromHex(s.routeId), session, symKey: fromHex(s.symKey) };
                await this.resume();
                return { counter, routeId: s.routeId, latencyMs: performance.now() - started, resumed: true };
            }
            // This attempt is over: its copies of x_D and symKey_i leave memory (the file keeps them
            // while the counter is pending).
            this.dropPending();
            session.ephemeral.erase();
            if (
                code === ErrorCode.UnknownCertificate ||
                code === ErrorCode.CertificateRevoked ||
                code === ErrorCode.CspKeyExpired ||
                code === ErrorCode.FailedDoubleSpendingCheck1
            ) {
                // The certificate can never be activated by this device: give its counter (and x_D) up.
                this.state.pendingCounter = undefined;
                this.state.pendingEphemeral = undefined;
                this.dropPending();
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
        const { counter, suite } = session;
        const fogId = this.state.fog.id;
        faultPoint('M1');
        const m2Pending = rpc.request(EnvelopeKind.M1, encodeM1(m1), this.options.requestTimeoutMs ?? 10_000);
        onStep?.('M1', counter);
        const m2Reply = await m2Pending;
        const { tag: handle, payload } = decodeTagged(m2Reply.body);
        const m2 = decodeM2(suite, payload);
        let symKey: Uint8Array;
        let m3;
        let privateKey: bigint;
        try {
            ({ m3, symKey, privateKey } = await this.processM2UnderTrustedKey(
                rpc,
                session,
                m2.certificateObject,
                fogId,
            ));
        } catch (err) {
            session.ephemeral.erase();
            throw err;
        }
        onStep?.('M2', counter);
        const routeId = routeIdFor(suite, session.idCert);
        // The new session replaces the previous one (its K_i leaves the state file in this write).
        this.dropPending();
        this.pending = { suite, counter, routeId, session, symKey };
        this.channel = undefined;
        this.recordAs(suite, privateKey);
        this.state.session = {
            counter: counter.toString(),
            routeId: toHex(routeId),
            symKey: toHex(symKey),
            recordKey: toHex(encodeScalar(suite, privateKey)),
            established: false,
            ...this.suiteField(suite),
        };
        // symKey_i is on disk before M3 leaves (x_D went with the reservation): once M3 is out an
        // activation may commit, and with both a later attempt (or a restarted device) can still take
        // its Confirm.
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
            await this.acceptConfirm(confirm, routeId);
        } catch (err) {
            const code = errorCodeOf(err);
            // Refused (a downgrade, a replayed or forged Confirm, a CSP error): the counter, x_D and
            // symKey_i stay pending on disk for the next attempt; establishSession erases the copies
            // in memory.
            if (code !== ServiceErrorCode.Timeout && code !== ServiceErrorCode.Unavailable) throw err;
            await this.resume();
            resumed = true;
        }
        return { counter, routeId: toHex(routeId), latencyMs: performance.now() - started, resumed };
    }

    /** Erases the in-memory handshake (x_D and symKey_i), if any. */
    private dropPending(): void {
        const p = this.pending;
        if (p === undefined) return;
        this.pending = undefined;
        p.session.ephemeral.erase();
        p.symKey.fill(0);
    }

    /**
     * The Confirm of the handshake on `routeId`, however it came: the answer to M3, the answer to a
     * poll (resume), or a push. One handshake's Confirm can arrive twice — under load the fog
     * re-sends an unanswered M4 and pushes the CSP's second answer (fog csp-result.ts), possibly
     * before its answer to M3 — so acceptances run one at a time, and a copy that finds the session
     * already established by an earlier one is done: it is a message that did arrive, not a refusal
     * (before this, it failed the established session with `unknownSession`, and before forward
     * secrecy with `replayDetected`).
     *
     * @throws as {@link acceptPendingConfirm}.
     */
    private async acceptConfirm(confirm: Uint8Array, routeId: Uint8Array): Promise<void> {
        while (this.accepting !== undefined) await this.accepting.catch(() => undefined);
        const s = this.state.session;
        if (s?.established === true && s.routeId === toHex(routeId)) return;
        const run = this.acceptPendingConfirm(confirm);
        this.accepting = run;
        try {
            await run;
        } finally {
            if (this.accepting === run) this.accepting = undefined;
        }
    }

    /**
     * The forward-secret Confirm (E_C ‖ Confirm frame under K_i) of the pending handshake: K_i is
     * derived (x_D erased), the frame must open under it, and only then is the session written:
     * ONE atomic write stores K_i and the channel state and removes x_D, symKey_i and the pending
     * counter from the file.
     *
     * @throws VerificationError `forwardSecrecyRequired` for a Confirm without E_C (x_D is kept and
     *   the state file is not touched); ProtocolError `decryptionFailed` for a Confirm of another
     *   session or key; ServiceError `unknownSession` when no handshake is pending.
     */
    private async acceptPendingConfirm(confirm: Uint8Array): Promise<void> {
        const p = this.pending;
        if (p === undefined) throw new ServiceError(ServiceErrorCode.UnknownSession, 'no session handshake pending');
        const { channel, trafficKey } = await acceptFsConfirm(
            p.suite,
            p.session.ephemeral,
            p.symKey,
            p.session.idCert,
            p.routeId,
            confirm,
        );
        if (this.pending !== p) return; // a newer session took over while the frame was opened
        this.dropPending();
        this.channel = channel;
        this.reservedSendSeq = SEQ_RESERVATION;
        const recordKey =
            this.state.session?.counter === p.counter.toString() ? this.state.session.recordKey : undefined;
        this.state.session = {
            counter: p.counter.toString(),
            routeId: toHex(p.routeId),
            trafficKey: toHex(trafficKey),
            established: true,
            channel: { ...channel.exportState(), sendSeq: this.reservedSendSeq.toString() },
            ...(recordKey !== undefined ? { recordKey } : {}),
            ...this.suiteField(p.suite),
        };
        if (this.state.pendingCounter === p.counter.toString()) {
            this.state.pendingCounter = undefined;
            this.state.pendingEphemeral = undefined;
        }
        // After a restart the attempt that took this Confirm never reached M2: d_i comes from the file.
        this.recordAs(p.suite, recordKey === undefined ? undefined : BigInt(`0x${recordKey}`));
        trafficKey.fill(0);
        await this.persist();
    }

    /**
     * Asks the CSP, through the fog, for the pending handshake's Confirm until it arrives (after a
     * lost reply): an empty frame on the session's route, answered with E_C ‖ Confirm.
     * @throws {ServiceError} `unknownSession` when: no session handshake is pending
     * @throws {ServiceError} the last attempt's error when: no Confirm arrived before the deadline
     */
    async resume(deadlineMs = this.options.sessionTimeoutMs ?? 30_000): Promise<void> {
        const rpc = this.requireRpc();
        const pending = this.pending;
        if (pending === undefined) throw new ServiceError(ServiceErrorCode.UnknownSession, 'no session to resume');
        const routeId = pending.routeId;
        const deadline = Date.now() + deadlineMs;
        let lastErr: unknown;
        // The Confirm may also arrive pushed (onPushed) while a request is out: then it is done.
        const confirmedMeanwhile = (): boolean =>
            this.pending !== pending && this.state.session?.routeId === toHex(routeId);
        while (Date.now() < deadline) {
            try {
                await this.conn?.waitConnected(Math.max(1, deadline - Date.now()));
                // The empty frame carries no record, even with records on: it is no traffic (there is
                // no channel to seal under before K_i) and its answer is the Confirm the fog already
                // relayed once; the CSP answers it before its records check (csp/handlers/frame-up.ts).
                const reply = await rpc.request(EnvelopeKind.Frame, encodeTagged(routeId, new Uint8Array()), 5_000);
                if (confirmedMeanwhile()) return;
                const { payload } = decodeTagged(reply.body);
                await this.acceptConfirm(payload, routeId);
                return;
            } catch (err) {
                if (confirmedMeanwhile()) return;
                if (this.pending !== pending) throw err; // another session took over
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
        // The pending session, its counter and x_D stay on disk: the next session retries this
        // certificate. Only the copies in memory are erased.
        if (this.pending === pending) this.dropPending();
        throw lastErr instanceof Error ? lastErr : new ServiceError(ServiceErrorCode.Timeout, 'session not confirmed');
    }

    private async restoreChannel(): Promise<void> {
        const s = this.state.session!;
        const suite = suiteOr(s.suite, this.suite);
        this.channel = await SessionChannel.restore(
            suite,
            fromHex(s.trafficKey!),
            'device',
            fromHex(s.routeId),
            s.channel!,
        );
        this.recordAs(suite, s.recordKey === undefined ? undefined : BigInt(`0x${s.recordKey}`));
        this.reservedSendSeq = BigInt(s.channel!.sendSeq);
    }

    /**
     * The session's d_i as the signer of its communication records (none without one), and the
     * CSP's party in them, fixed for the session: a record is in the session's suite, and the CSP's
     * party is its key of that suite (its identity for the device's own suite, else the first
     * epoch of the suite).
     */
    private recordAs(suite: Suite, privateKey: bigint | undefined): void {
        this.recording =
            privateKey === undefined
                ? undefined
                : {
                      signer: new RecordSigner(suite, privateKey),
                      csp: { role: PartyRole.Csp, keyId: partyKeyId(suite, this.suiteIdentityOf(suite)) },
                  };
    }

    /** The `suite` field of a session state: only for a session of another suite than the device's. */
    private suiteField(suite: Suite): { suite?: string } {
        return suite.tag === this.suite.tag ? {} : { suite: suite.id };
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
        if (this.recording === undefined) return [EnvelopeKind.Frame, encodeTagged(routeId, frame)];
        const record = encodeFrameRecord(this.recording.signer, PartyRole.Device, this.recording.csp, frame);
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

    /**
     * Called with the Merkle receipt of each record this device uploaded, which the CSP sends over
     * the session channel once the record's batch is anchored. The agent has verified it against
     * the channel trust roots of its state file (a receipt that does not verify, or a device
     * provisioned without roots, gets no call). The receipt is what the machine answers record
     * queries with and hands on to the machine it passes a lot to (MemoryReceiptBook.holdReceipt).
     */
    onReceipt(handler: (receipt: Uint8Array, record: CommunicationRecord) => void): void {
        this.receiptHandlers.push(handler);
    }

    private onReceiptNotice(receipt: Uint8Array): void {
        const trust = this.state.channelTrust;
        if (trust === undefined) {
            (this.options.logger ?? silentLogger).warn(
                'a receipt arrived but the state file has no channel trust roots; dropped',
            );
            return;
        }
        this.receiptVerifier ??= new ReceiptVerifier(trust);
        let record: CommunicationRecord;
        try {
            record = this.receiptVerifier.verifyBytes(receipt);
        } catch (err) {
            (this.options.logger ?? silentLogger).warn('a receipt that does not verify was dropped', {
                error: (err as Error).message,
            });
            return;
        }
        for (const h of this.receiptHandlers) h(receipt, record);
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
        if (env.kind !== EnvelopeKind.Frame) return;
        const pending = this.pending;
        if (pending !== undefined) {
            // The Confirm pushed by a fog that restarted while the device waited for it.
            try {
                const { tag, payload } = decodeTagged(env.body);
                if (equalBytes(tag, pending.routeId)) {
                    await this.acceptConfirm(payload, pending.routeId);
                    return;
                }
            } catch {
                return; // not this session's Confirm: dropped, the handshake is unchanged
            }
        }
        if (channel === undefined || session === undefined) return;
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
        // A bare Confirm under K_i (an announce's answer) changes nothing: only the forward-secret
        // Confirm of a pending handshake establishes a session.
        if (opened.type === FrameType.Download) await this.onDownload(routeId, opened.seq, opened.payload);
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
            const receipt = decodeReceiptNotice(body);
            if (receipt !== undefined) this.onReceiptNotice(receipt);
            else for (const h of this.instructionHandlers) h(body);
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
