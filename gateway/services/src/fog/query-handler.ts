/**
 * The public network area's part of paper 000's record query (Fig. 8 steps 2, 3, 4, 7, 8): the fog
 * checks a query packet's form and the asker's signature, checks the target in the M-EB, routes the
 * packet to the target's private area (its device agent, or the CSP acting for it when it is
 * offline), checks the completeness of the answer and delivers it. The fog handles bytes only: it
 * never holds a key that opens an answer.
 *
 * Transport-agnostic: `handle` takes the query packet's bytes and returns the reply's bytes (an
 * information packet or a failure packet); the endpoints deliver to the target's private area.
 * With a RelayRecorder (records on), every delivery of the query packet and the answer handed back
 * are recorded first; a record that is not durable stops the relay (recordNotJournaled).
 */
import {
    EncryptionType,
    ErrorCode,
    QueryError,
    QueryPacketType,
    QueryRetry,
    MAX_QUERY_LIFETIME_MS,
    decodeFailurePacket,
    decodeInformationPacket,
    decodePoint,
    decodeQueryPacket,
    encodeFailurePacket,
    equalBytes,
    failureOf,
    fromHex,
    replyType,
    toHex,
    verifyQuerySignature,
    type Suite,
} from '@m2m-fabric/protocol';

/** What the fog reads from the M-EB about a machine. */
export interface EquipmentEntry {
    equipmentId: string;
    status: string;
    publicKey: string;
}

export interface EquipmentDirectory {
    /** The M-EB record, or undefined when the machine is not registered. */
    lookup(equipmentId: string): Promise<EquipmentEntry | undefined>;
}

/** A way into a target's private area. */
export interface QueryEndpoint {
    /** 'target' (the device agent) or 'csp' (acting for an offline device). */
    readonly kind: 'target' | 'csp';
    /** Delivers the query packet and resolves with the reply's bytes; rejects when unreachable. */
    deliver(packet: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
}

export interface QueryRoutes {
    /** The endpoints to try for a target, in order (the agent while it is online, then the CSP). */
    endpointsFor(targetId: string): readonly QueryEndpoint[];
}

/** One end of a relayed packet: a machine (by its M-EB key, SEC1 hex) or the CSP. */
export type RelayEnd = { kind: 'machine'; publicKey: string } | { kind: 'csp' };

/** Where the fog records the packets it relays (relay-records.ts): before each is relayed on. */
export interface RelayRecorder {
    /**
     * Resolves once the fog's record of relaying `packet` is durable.
     * @throws QueryError recordNotJournaled when it cannot be: the packet is then not relayed.
     */
    record(
        what: 'query' | 'answer',
        packet: Uint8Array,
        from: RelayEnd,
        to: RelayEnd,
        encryption: EncryptionType,
    ): Promise<void>;
}

export interface FogQueryOptions {
    suite: Suite;
    directory: EquipmentDirectory;
    routes: QueryRoutes;
    /** Communication records of every packet relayed (records on); none when unset. */
    relays?: RelayRecorder;
    /** Per delivery attempt. */
    deliveryTimeoutMs?: number;
    /** Times the fog asks the target to resend an incomplete answer (step 7). */
    answerResends?: number;
    now?: () => number;
    /** Replay cache bound (entries live until their query expires). */
    maxTrackedQueries?: number;
}

export interface FogQueryStats {
    handled: number;
    delivered: number;
    failed: Record<string, number>;
}

const RETIRED = new Set(['decommissioned', 'replaced']);

export class FogQueryHandler {
    private readonly suite: Suite;
    private readonly now: () => number;
    /** sender:nonce -> expiresAt. */
    private readonly seen = new Map<string, number>();
    readonly stats: FogQueryStats = { handled: 0, delivered: 0, failed: {} };

    constructor(private readonly options: FogQueryOptions) {
        this.suite = options.suite;
        this.now = options.now ?? Date.now;
    }

    /**
     * Steps 2-4 and 7-8 for one query packet; never throws (a failure is a failure packet).
     * @throws {QueryError} `unknownTarget` when: no machine … in the M-EB
     * @throws {QueryError} `equipmentRetired` when: machine … is …
     */
    async handle(packetBytes: Uint8Array): Promise<Uint8Array> {
        this.stats.handled++;
        let digest: Uint8Array = new Uint8Array(this.suite.hashBytes);
        try {
            const query = decodeQueryPacket(this.suite, packetBytes, 2);
            digest = query.digest;
            // Step 3's M-EB read runs beside step 2's (the asker's key): one ledger round trip, not two.
            const targetLookup = this.options.directory.lookup(query.receiverId);
            targetLookup.catch(() => undefined);
            const asker = await this.checkQuery(query);
            const target = await targetLookup;
            // Step 3: the paper's null answer for a machine the M-EB does not know.
            if (target === undefined) {
                throw new QueryError(
                    ErrorCode.UnknownTarget,
                    3,
                    QueryRetry.None,
                    `no machine ${query.receiverId} in the M-EB`,
                );
            }
            if (RETIRED.has(target.status)) {
                throw new QueryError(
                    ErrorCode.EquipmentRetired,
                    3,
                    QueryRetry.None,
                    `machine ${query.receiverId} is ${target.status}`,
                );
            }
            const reply = await this.route(query.receiverId, query.senderId, packetBytes, digest, {
                asker: { kind: 'machine', publicKey: asker.publicKey },
                target: { kind: 'machine', publicKey: target.publicKey },
            });
            this.stats.delivered++;
            return reply;
        } catch (error) {
            const failure =
                error instanceof QueryError
                    ? error
                    : new QueryError(ErrorCode.TargetUnreachable, 4, QueryRetry.Later, String(error));
            this.stats.failed[failure.code] = (this.stats.failed[failure.code] ?? 0) + 1;
            return encodeFailurePacket(failureOf(failure, digest));
        }
    }

    /** Step 2: fresh, not replayed, signed by the registered asker. */
    private async checkQuery(query: ReturnType<typeof decodeQueryPacket>): Promise<EquipmentEntry> {
        const now = this.now();
        if (query.expiresAt <= now) {
            throw new QueryError(ErrorCode.QueryExpired, 2, QueryRetry.ResendQuery, 'the query packet has expired');
        }
        if (query.expiresAt - query.issuedAt > MAX_QUERY_LIFETIME_MS || query.issuedAt > now + MAX_QUERY_LIFETIME_MS) {
            throw new QueryError(
                ErrorCode.IncompletePacket,
                2,
                QueryRetry.ResendQuery,
                'the query lifetime is out of bounds',
            );
        }
        const asker = await this.options.directory.lookup(query.senderId);
        if (asker === undefined || RETIRED.has(asker.status)) {
            throw new QueryError(
                ErrorCode.FailedSignatureVerification,
                2,
                QueryRetry.None,
                `asker ${query.senderId} is not a registered machine`,
            );
        }
        if (!verifyQuerySignature(this.suite, query, decodePoint(this.suite, fromHex(asker.publicKey)))) {
            throw new QueryError(
                ErrorCode.FailedSignatureVerification,
                2,
                QueryRetry.ResendQuery,
                `the query is not signed by ${query.senderId}`,
            );
        }
        const key = `${query.senderId}:${toHex(query.nonce)}`;
        const known = this.seen.get(key);
        if (known !== undefined && known > now) {
            throw new QueryError(ErrorCode.ReplayDetected, 2, QueryRetry.None, 'this query nonce was already used');
        }
        this.remember(key, query.expiresAt, now);
        return asker;
    }

    private remember(key: string, expiresAt: number, now: number): void {
        const limit = this.options.maxTrackedQueries ?? 100_000;
        if (this.seen.size >= limit) {
            for (const [k, until] of this.seen) if (until <= now) this.seen.delete(k);
            if (this.seen.size >= limit) {
                throw new QueryError(
                    ErrorCode.TargetUnreachable,
                    2,
                    QueryRetry.Later,
                    'the fog is tracking too many open queries',
                );
            }
        }
        this.seen.set(key, expiresAt);
    }

    /**
     * Steps 4, 7, 8: deliver, check completeness (asking for a resend), hand back. With records on,
     * each delivery of the query packet and the answer handed back are recorded first.
     */
    private async route(
        targetId: string,
        askerId: string,
        packet: Uint8Array,
        digest: Uint8Array,
        ends: { asker: RelayEnd; target: RelayEnd },
    ): Promise<Uint8Array> {
        const endpoints = this.options.routes.endpointsFor(targetId);
        const timeout = this.options.deliveryTimeoutMs ?? 5_000;
        const resends = this.options.answerResends ?? 2;
        const relays = this.options.relays;
        let lastIncomplete: QueryError | undefined;
        for (const endpoint of endpoints) {
            const area: RelayEnd = endpoint.kind === 'csp' ? { kind: 'csp' } : ends.target;
            for (let attempt = 0; attempt <= resends; attempt++) {
                // Step 4 relays the packet: its record is durable before it leaves (QueryError otherwise).
                await relays?.record('query', packet, ends.asker, area, EncryptionType.Cleartext);
                let reply: Uint8Array;
                try {
                    reply = await endpoint.deliver(packet, timeout);
                } catch {
                    break; // unreachable: the next endpoint (the CSP for an offline device)
                }
                const accepted = this.complete(reply, endpoint.kind, targetId, askerId, digest);
                if (accepted instanceof QueryError) {
                    lastIncomplete = accepted;
                    continue;
                }
                // Step 8 relays the answer (sealed to the asker, or the target's denial) after its record.
                await relays?.record('answer', reply, area, ends.asker, accepted);
                return reply;
            }
            if (lastIncomplete !== undefined) throw lastIncomplete;
        }
        throw new QueryError(
            ErrorCode.TargetUnreachable,
            4,
            QueryRetry.Later,
            `no private area of ${targetId} answered`,
        );
    }

    /**
     * Step 7 for one reply: the encryption type of a complete one (a denial by the target, step 5,
     * goes back to the asker as it is), or the QueryError that has the target resend it.
     */
    private complete(
        reply: Uint8Array,
        kind: QueryEndpoint['kind'],
        targetId: string,
        askerId: string,
        digest: Uint8Array,
    ): EncryptionType | QueryError {
        if (replyType(reply) === QueryPacketType.Failure) {
            try {
                const failure = decodeFailurePacket(reply);
                if (equalBytes(failure.queryDigest, digest)) return EncryptionType.Cleartext;
            } catch {
                /* incomplete: resend */
            }
            return new QueryError(
                ErrorCode.IncompletePacket,
                7,
                QueryRetry.ResendAnswer,
                'the failure reply is incomplete',
            );
        }
        try {
            const info = decodeInformationPacket(this.suite, reply, 7);
            if (!equalBytes(info.queryDigest, digest) || info.receiverId !== askerId || info.senderId !== targetId) {
                return new QueryError(
                    ErrorCode.IncompletePacket,
                    7,
                    QueryRetry.ResendAnswer,
                    'the answer is not for this query',
                );
            }
            if (kind === 'target' && info.responder !== 0) {
                return new QueryError(
                    ErrorCode.IncompletePacket,
                    7,
                    QueryRetry.ResendAnswer,
                    'the agent answered as the CSP',
                );
            }
            return EncryptionType.Hpke;
        } catch (error) {
            if (error instanceof QueryError) return error;
            throw error;
        }
    }
}
