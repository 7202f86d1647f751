/**
 * The state and helpers the fog's handlers share: configuration, both MQTT connections, the CSP's
 * keys from the ledger, outstanding M2 handles, M3 requests waiting for the CSP, metrics, replies
 * to devices and the ledger-call error mapping. The gateway (gateway.ts) creates it.
 */
import {
    ByteWriter,
    decodePoint,
    decodeSchnorrSignature,
    encodeCspKeyChain,
    encodeFogSuiteKeys,
    encodePoint,
    epochOfSuite,
    epochSuites,
    fromHex,
    suiteOr,
    type CspKeyLink,
    type FogSuiteKeyLink,
    type M1,
    type M4,
    type Point,
    type PreparedActivation,
    type Suite,
    ErrorCode,
} from '@m2m-fabric/protocol';
import {
    encodeEnvelope,
    encodeErrorBody,
    EnvelopeKind,
    errorCodeOf,
    isValidTopicLevel,
    ServiceError,
    ServiceErrorCode,
    silentLogger,
    type AnyErrorCode,
    type Envelope,
    type Logger,
    type MqttConnection,
    type TopicLayout,
} from '@m2m-fabric/common';
import {
    CommitError,
    ConnectionError,
    DeadlineError,
    EndorseError,
    type ChaincodeClient,
    type CspKeyEpoch,
    type ObjectStore,
} from '@m2m-fabric/sdk';
import type { ecdsaPublicKey, ServiceKey } from '../keys.js';
import type { FogMetrics } from './metrics.js';

/** The ledger's key epochs as the links a device verifies (encodeCspKeyChain). */
function cspKeyLinks(ledgerSuite: Suite, epochs: readonly CspKeyEpoch[]): CspKeyLink[] {
    return epochs.map((epoch, index) => {
        const suite = suiteOr(epoch.suite, ledgerSuite);
        const previousSuite = suiteOr(index > 0 ? epochs[index - 1]!.suite : undefined, ledgerSuite);
        return {
            keyId: epoch.keyId,
            suite,
            caPublicKey: fromHex(epoch.caPublicKey),
            ...(epoch.rotation === undefined
                ? {}
                : {
                      rotation: {
                          previousSuite,
                          overlapSeconds: epoch.rotation.overlapSeconds,
                          signatures: {
                              previousSignature: decodeSchnorrSignature(
                                  previousSuite,
                                  fromHex(epoch.rotation.previousSignature),
                              ),
                              newSignature: decodeSchnorrSignature(suite, fromHex(epoch.rotation.newSignature)),
                          },
                      },
                  }),
        };
    });
}

/** An M2 sent, waiting for its M3 (keyed by the handle the device echoes). */
export interface PendingHandle {
    /** The session's suite (its certificate's): the ledger's, or a CA key epoch's of another suite. */
    suite: Suite;
    /** The CA key epoch the certificate was issued under (its Table II record). */
    keyId: number;
    m1: M1;
    idCert: Point;
    certificateObject: Uint8Array;
    expiresAt: number;
    /** P, its DLEQ proof and M4, computed once M2 is sent, while the device works on M3. */
    prepared?: Promise<Prepared>;
}

/** Everything of Algorithm 2 that does not need M3. */
export interface Prepared {
    activation: PreparedActivation;
    primaryHash: Uint8Array;
    m4: M4;
}

/** An M3 request waiting for the CSP's Algorithm 3 result. */
export interface Waiter {
    resolve: (frame: Uint8Array) => void;
    reject: (err: Error) => void;
}

export interface FogContextOptions {
    fogId: string;
    key: ServiceKey;
    ledger: ChaincodeClient;
    store: ObjectStore;
    topics: TopicLayout;
    handleTtlMs: number;
    cspTimeoutMs: number;
    logger?: Logger;
}

export class FogContext {
    readonly suite: Suite;
    readonly fogId: string;
    readonly key: ServiceKey;
    readonly ledger: ChaincodeClient;
    readonly store: ObjectStore;
    readonly topics: TopicLayout;
    readonly log: Logger;
    readonly m: FogMetrics;
    readonly handleTtlMs: number;
    readonly cspTimeoutMs: number;
    /** M2 handle (hex) → the pending activation. */
    readonly handles = new Map<string, PendingHandle>();
    /** Forward correlation (hex) → the M3 request waiting for the CSP. */
    readonly waiters = new Map<string, Waiter>();
    /** Set by start(). */
    deviceConn!: MqttConnection;
    cspConn!: MqttConnection;
    /** Epoch 0's Q_c: the CSP's identity (fog address, link signatures). */
    cspPublicKey!: Point;
    cspVerifyKey!: ReturnType<typeof ecdsaPublicKey>;
    /** The CSP's CA key epochs as last read from the ledger (docs/protocol.md#csp-key-rotation). */
    cspKeys: readonly CspKeyEpoch[] = [];
    /**
     * The fog's keys for suites other than the ledger's (registry:addFogSuiteKey), by suite tag,
     * with the signed statements relayed to devices in the info message.
     */
    readonly suiteKeys = new Map<number, { key: ServiceKey; link: FogSuiteKeyLink }>();
    closed = false;

    constructor(options: FogContextOptions, metrics: FogMetrics) {
        this.suite = options.key.suite;
        this.fogId = options.fogId;
        this.key = options.key;
        this.ledger = options.ledger;
        this.store = options.store;
        this.topics = options.topics;
        this.handleTtlMs = options.handleTtlMs;
        this.cspTimeoutMs = options.cspTimeoutMs;
        this.log = options.logger ?? silentLogger;
        this.m = metrics;
    }

    /**
     * The fog's retained info message and Hello reply: fog ID, suite, Q_f, then the CSP's key
     * rotations from the ledger (encodeCspKeyChain), which a device verifies from its provisioned
     * Q_c before it trusts any of them.
     */
    infoPayload(): Uint8Array {
        return new ByteWriter()
            .string(this.fogId)
            .u8(this.suite.tag)
            .bytes16(encodePoint(this.suite, this.key.publicKey))
            .bytes16(encodeCspKeyChain(cspKeyLinks(this.suite, this.cspKeys)))
            .bytes16(
                encodeFogSuiteKeys(
                    this.suite,
                    [...this.suiteKeys.values()].map((k) => k.link),
                ),
            )
            .finish();
    }

    /**
     * The fog key a session of `suite` uses (M1's C1, P = d_f*IDCert_i, s_f over M4): the identity
     * key for the ledger's suite, else this fog's registered key of that suite.
     * @throws {ServiceError} fogSuiteKeyMissing when this fog holds no key of that suite
     */
    keyFor(suite: Suite): ServiceKey {
        if (suite.tag === this.suite.tag) return this.key;
        const entry = this.suiteKeys.get(suite.tag);
        if (entry === undefined)
            throw new ServiceError(ErrorCode.FogSuiteKeyMissing, `fog ${this.fogId} has no key for suite ${suite.id}`);
        return entry.key;
    }

    /** The suites of the CSP's key epochs other than the ledger's, each once, oldest first. */
    otherEpochSuites(): Suite[] {
        return epochSuites(this.cspKeys, this.suite).filter((s) => s.tag !== this.suite.tag);
    }

    /**
     * The CA key C3 of a session of `suite` is sealed to: the newest epoch of that suite (the
     * current key, unless the CA moved to another suite since the certificate was issued).
     * @throws {ServiceError} notConfigured when no epoch is of that suite
     */
    cspKeyOf(suite: Suite): Point {
        const epoch = epochOfSuite(this.cspKeys, this.suite, suite);
        if (epoch === undefined)
            throw new ServiceError(ErrorCode.NotConfigured, `no CSP key epoch of suite ${suite.id}`);
        return decodePoint(suite, fromHex(epoch.caPublicKey));
    }

    /**
     * Reads the CSP's key epochs from the ledger.
     * @returns whether they changed (a rotation since the last read).
     */
    async refreshCspKeys(): Promise<boolean> {
        const csp = await this.ledgerCall(() => this.ledger.getCsp());
        const keys = csp.keys ?? [{ keyId: 0, caPublicKey: csp.caPublicKey, activeFrom: '' }];
        const changed = JSON.stringify(keys) !== JSON.stringify(this.cspKeys);
        this.cspPublicKey = decodePoint(this.suite, fromHex(csp.caPublicKey));
        this.cspKeys = keys;
        return changed;
    }

    /**
     * The epoch a certificate was issued under, re-reading the ledger once if it is newer than the
     * epochs known here; refused before any ledger write once the epoch has ended.
     * @throws {ServiceError} cspKeyExpired when the epoch's end date has passed; notConfigured when
     *   the ledger lists no such epoch.
     */
    async requireLiveCspKey(keyId: number): Promise<void> {
        let epoch = this.cspKeys.find((e) => e.keyId === keyId);
        if (epoch === undefined) {
            await this.refreshCspKeys();
            epoch = this.cspKeys.find((e) => e.keyId === keyId);
        }
        if (epoch === undefined) throw new ServiceError(ErrorCode.NotConfigured, `no CSP key epoch ${keyId}`);
        if (epoch.validUntil !== undefined && Date.parse(epoch.validUntil) <= Date.now()) {
            throw new ServiceError(
                ErrorCode.CspKeyExpired,
                `the certificate's CSP key (epoch ${keyId}) ended at ${epoch.validUntil}`,
            );
        }
    }

    /** Publishes a reply to one device's reply topic (a failed publish is counted, not thrown). */
    async reply(clientId: string, kind: Envelope['kind'], correlationId: Uint8Array, body: Uint8Array): Promise<void> {
        // A client id from a link message (the CSP's answer) becomes a topic level: one the topic
        // layout does not accept is dropped here. Publishing it would be refused by the broker's ACL,
        // which closes this fog's device connection — and the persistent session re-sends the refused
        // message on every reconnect, so the fog would stop serving every device.
        if (!isValidTopicLevel(clientId)) {
            this.m.dropped.inc({ reason: 'clientId' });
            return;
        }
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

    replyError(clientId: string, correlationId: Uint8Array, code: AnyErrorCode, detail: string): Promise<void> {
        return this.reply(clientId, EnvelopeKind.Error, correlationId, encodeErrorBody(code, detail));
    }

    /**
     * Runs a ledger call, counting failures and mapping them to service error codes: a chaincode
     * rejection keeps its code; an MVCC conflict on commit is the lost double-use race
     * (failedDoubleSpendingCheck-1); other commit failures, deadlines and an unreachable peer are
     * ledgerUnavailable.
     */
    async ledgerCall<T>(fn: () => Promise<T>): Promise<T> {
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
                    throw new ServiceError(
                        ErrorCode.FailedDoubleSpendingCheck1,
                        `activation lost a race (${err.code})`,
                    );
                }
                throw new ServiceError(ServiceErrorCode.LedgerUnavailable, err.message);
            }
            // A deadline, or the peer unreachable (down or restarting: gRPC UNAVAILABLE), is retryable.
            if (err instanceof DeadlineError || err instanceof ConnectionError)
                throw new ServiceError(ServiceErrorCode.LedgerUnavailable, err.message);
            throw err;
        }
    }
}
