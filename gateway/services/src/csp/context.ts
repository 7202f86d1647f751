/**
 * The state and helpers the CSP's handlers share: configuration, the durable session and telemetry
 * stores, the link connection, approved fog keys, metrics and the ledger-call error mapping. The
 * backend (backend.ts) creates it; each handler (handlers/) and each part of the backend
 * (issuance.ts, synchronisation.ts, channels.ts, instruction-delivery.ts) receives it.
 */
import type { KeyObject } from 'node:crypto';
import { decodePoint, fromHex, getSuite, type Point, type Suite, ErrorCode } from '@m2m-fabric/protocol';
import {
    MqttConnection,
    ServiceError,
    errorCodeOf,
    silentLogger,
    type Logger,
    type TopicLayout,
} from '@m2m-fabric/common';
import { EndorseError, type ChaincodeClient, type ObjectStore } from '@m2m-fabric/sdk';
import { ecdsaPublicKey, type ServiceKey } from '../keys.js';
import { encodeDeviceBound, encodeLinkMessage, type DeviceBoundBody, type LinkKind } from '../link.js';
import type { DurableMap } from '../util/durable-map.js';
import { CspCaKeys, cspCaKeyPath } from './ca-keys.js';
import type { CspMetrics } from './metrics.js';
import type { StoredSession, TelemetryRecord } from './session-store.js';

/** An approved fog's keys as the CSP caches them: Q_f (and its verifier), and its keys of other suites by tag. */
export interface CachedFogKeys {
    point: Point;
    verify: KeyObject;
    suiteKeys: ReadonlyMap<number, Point>;
}

export interface CspContextOptions {
    key: ServiceKey;
    ledger: ChaincodeClient;
    store: ObjectStore;
    dataDir: string;
    topics: TopicLayout;
    logger?: Logger;
    /** Where CA key epoch k > 0's key file lives (default `<dataDir>/keys/csp-ca-<k>.json`). */
    caKeyFile?: (keyId: number) => string;
}

export class CspContext {
    readonly suite: Suite;
    readonly key: ServiceKey;
    readonly ledger: ChaincodeClient;
    readonly store: ObjectStore;
    readonly dataDir: string;
    readonly topics: TopicLayout;
    readonly log: Logger;
    readonly m: CspMetrics;
    /** Set by start(). */
    conn!: MqttConnection;
    sessions!: DurableMap<StoredSession>;
    telemetry!: DurableMap<TelemetryRecord>;
    closed = false;
    /** The CA key pairs of every key epoch this CSP holds (ca-keys.ts); loaded by start(). */
    readonly caKeys: CspCaKeys;
    readonly caKeyFile: (keyId: number) => string;
    private readonly fogKeys = new Map<string, CachedFogKeys>();

    constructor(options: CspContextOptions, metrics: CspMetrics) {
        this.suite = options.key.suite;
        this.key = options.key;
        this.ledger = options.ledger;
        this.store = options.store;
        this.dataDir = options.dataDir;
        this.topics = options.topics;
        this.log = options.logger ?? silentLogger;
        this.m = metrics;
        this.caKeyFile = options.caKeyFile ?? ((keyId: number): string => cspCaKeyPath(options.dataDir, keyId));
        this.caKeys = new CspCaKeys(options.key, this.caKeyFile);
    }

    /** Sends a signed link message to a fog. */
    async send(fogId: string, kind: LinkKind, body: DeviceBoundBody): Promise<void> {
        await this.conn.publish(
            this.topics.cspOutbound(fogId),
            encodeLinkMessage(this.key, kind, 'csp', encodeDeviceBound(body)),
        );
    }

    /**
     * An approved fog's registered key from the ledger (cached until the fog is revoked).
     *
     * @throws {ServiceError} fogNotApproved when the fog is pending or revoked; the ledger's error
     *   (unknownFog) when it is not registered.
     */
    async fogKey(fogId: string): Promise<CachedFogKeys> {
        const cached = this.fogKeys.get(fogId);
        if (cached !== undefined) return cached;
        const fog = await this.ledger.getFog(fogId);
        if (fog.status !== 'approved')
            throw new ServiceError(ErrorCode.FogNotApproved, `fog ${fogId} is ${fog.status}`);
        const point = decodePoint(this.suite, fromHex(fog.publicKey));
        const suiteKeys = new Map<number, Point>();
        for (const entry of fog.suiteKeys ?? []) {
            const suite = getSuite(entry.suite);
            suiteKeys.set(suite.tag, decodePoint(suite, fromHex(entry.publicKey)));
        }
        const entry = { point, verify: ecdsaPublicKey(this.suite, point), suiteKeys };
        this.fogKeys.set(fogId, entry);
        return entry;
    }

    /**
     * The fog key a session of `suite` was activated with (s_f over M4 verifies under it): Q_f for
     * the ledger's suite, else the fog's registered key of that suite, re-reading the ledger once
     * when the cached record has none (the fog registers it when it sees the rotation).
     * @throws {ServiceError} fogSuiteKeyMissing when the ledger lists no key of that suite for the fog;
     *   as {@link fogKey}.
     */
    async fogSessionKey(fogId: string, suite: Suite): Promise<Point> {
        if (suite.tag === this.suite.tag) return (await this.fogKey(fogId)).point;
        let found = (await this.fogKey(fogId)).suiteKeys.get(suite.tag);
        if (found === undefined) {
            this.forgetFog(fogId);
            found = (await this.fogKey(fogId)).suiteKeys.get(suite.tag);
        }
        if (found === undefined)
            throw new ServiceError(ErrorCode.FogSuiteKeyMissing, `fog ${fogId} has no key for suite ${suite.id}`);
        return found;
    }

    /** Forgets a fog's cached key: its next login or link message re-reads the ledger. */
    forgetFog(fogId: string): void {
        this.fogKeys.delete(fogId);
    }

    /** Runs a ledger call, counting failures and turning a chaincode rejection into its error code. */
    async ledgerCall<T>(fn: () => Promise<T>): Promise<T> {
        try {
            return await fn();
        } catch (err) {
            this.m.ledgerErrors.inc({ code: errorCodeOf(err) });
            if (err instanceof EndorseError && err.errorCode !== undefined)
                throw new ServiceError(err.errorCode, err.chaincodeMessage);
            throw err;
        }
    }
}
