/**
 * The asker's side of paper 000's record query (Fig. 8 steps 1 and 9): it signs a query packet
 * with its static M-EB key, sends it through its fog, and verifies the answer — the responder's
 * signature (the target's registered key, or Q_c when the CSP answered for an offline target), the
 * query it names, every record's receipt, and that no record it holds a receipt for is missing —
 * before it opens the records with its own key. Each failure follows the paper's retry.
 *
 * The receipt check is the records issue's Merkle receipt (receipt-check.ts: record, Merkle path,
 * batch root, anchoring transaction and block, verified offline against the channel's MSP roots
 * the device was provisioned with).
 */
import { randomBytes } from 'node:crypto';

import {
    ErrorCode,
    QueryError,
    QueryPacketType,
    QueryRetry,
    QUERY_NONCE_BYTES,
    ReceiptError,
    Responder,
    createQueryPacket,
    decodeFailurePacket,
    decodeInformationPacket,
    equalBytes,
    errorOfFailure,
    hpkeRecipientFromScalar,
    openInformationPacket,
    replyType,
    toHex,
    verifyInformationSignature,
    type AnsweredRecord,
    type HpkeRecipient,
    type Point,
    type QueryPacket,
    type Suite,
} from '@m2m-fabric/protocol';

/**
 * Step 9's receipt check for one answered record (MerkleReceiptCheck: the records issue's
 * receipts). False, or a ReceiptError naming the failed check, refuses the answer.
 */
export interface RecordReceiptCheck {
    verify(targetId: string, record: AnsweredRecord): boolean;
}

/** The record ids the asker holds receipts for: the answer must contain each of them. */
export interface ReceiptBook {
    heldFor(targetId: string, since: number, until: number, kinds: readonly string[]): readonly Uint8Array[];
}

export interface QueryAskerOptions {
    suite: Suite;
    equipmentId: string;
    /** The asker's static M-EB secret: it signs queries and opens answers. */
    secretKey: bigint;
    /** The target's registered public key (M-EB), and the CSP's Q_c. */
    keyOf: (equipmentId: string) => Promise<Point>;
    cspKey: Point;
    receipts: RecordReceiptCheck;
    book?: ReceiptBook;
    /** Sends a query packet through the fog and resolves with its reply's bytes. */
    send: (packet: Uint8Array) => Promise<Uint8Array>;
    lifetimeMs?: number;
    /** Attempts after a failure whose retry is resendQuery / resendAnswer / later. */
    attempts?: number;
    retryDelayMs?: number;
    now?: () => number;
}

export interface QueryResult {
    targetId: string;
    records: AnsweredRecord[];
    /** Who signed the answer. */
    responder: 'target' | 'csp';
    attempts: number;
}

export class QueryAsker {
    private recipient: Promise<HpkeRecipient> | undefined;
    private readonly now: () => number;
    /** Digests of queries in flight: an answer naming anything else is a replay or a late answer. */
    private readonly pending = new Map<string, number>();

    constructor(private readonly options: QueryAskerOptions) {
        this.now = options.now ?? Date.now;
    }

    /**
     * Steps 1 and 9, with the retries of Fig. 8.
     * @throws QueryError — unknownTarget / equipmentRetired (step 3), queryDenied (5), answerIncomplete
     *   (9), or the last failure once the attempts are used up.
     */
    async query(targetId: string, range: { since: Date; until: Date; kinds?: string[] }): Promise<QueryResult> {
        const attempts = this.options.attempts ?? 3;
        let last: QueryError | undefined;
        for (let attempt = 1; attempt <= attempts; attempt++) {
            const packet = this.createQuery(targetId, range);
            try {
                const reply = await this.options.send(packet.bytes);
                const { records, responder } = await this.accept(packet, reply);
                return { targetId, records, responder, attempts: attempt };
            } catch (error) {
                if (!(error instanceof QueryError)) throw error;
                last = error;
                if (error.retry === QueryRetry.None) throw error;
                if (error.retry === QueryRetry.Later) {
                    await new Promise((resolve) => setTimeout(resolve, this.options.retryDelayMs ?? 200));
                }
            } finally {
                this.pending.delete(toHex(packet.digest));
            }
        }
        throw last ?? new QueryError(ErrorCode.TargetUnreachable, 4, QueryRetry.Later, 'no attempt made');
    }

    /** Step 1. */
    createQuery(targetId: string, range: { since: Date; until: Date; kinds?: string[] }): QueryPacket {
        const issuedAt = this.now();
        const packet = createQueryPacket(
            this.options.suite,
            {
                receiverId: targetId,
                senderId: this.options.equipmentId,
                since: range.since.getTime(),
                until: range.until.getTime(),
                kinds: range.kinds ?? [],
                nonce: new Uint8Array(randomBytes(QUERY_NONCE_BYTES)),
                issuedAt,
                expiresAt: issuedAt + (this.options.lifetimeMs ?? 30_000),
            },
            this.options.secretKey,
        );
        this.pending.set(toHex(packet.digest), packet.expiresAt);
        return packet;
    }

    /**
     * Step 9 for the reply to `query`.
     * @throws {QueryError} `replayDetected` when: a failure for another query; the answer names a query not in flight
     * @throws the error errorOfFailure builds
     * @throws {QueryError} `queryExpired` when: the answer arrived after the query expired
     * @throws {QueryError} `incompletePacket` when: the answer is addressed to someone else
     * @throws {QueryError} `failedSignatureVerification` when: the answer is not signed by …
     * @throws {QueryError} `answerIncomplete` when: a record outside the range asked for; record … carries no valid receipt; the answer omits record … the aske…
     */
    async accept(
        query: QueryPacket,
        reply: Uint8Array,
    ): Promise<{ records: AnsweredRecord[]; responder: 'target' | 'csp' }> {
        const suite = this.options.suite;
        if (replyType(reply) === QueryPacketType.Failure) {
            const failure = decodeFailurePacket(reply);
            if (!equalBytes(failure.queryDigest, query.digest) && failure.step > 2) {
                throw new QueryError(
                    ErrorCode.ReplayDetected,
                    9,
                    QueryRetry.ResendQuery,
                    'a failure for another query',
                );
            }
            throw errorOfFailure(failure);
        }
        const info = decodeInformationPacket(suite, reply, 9);
        const pendingUntil = this.pending.get(toHex(info.queryDigest));
        if (!equalBytes(info.queryDigest, query.digest) || pendingUntil === undefined) {
            throw new QueryError(
                ErrorCode.ReplayDetected,
                9,
                QueryRetry.ResendQuery,
                'the answer names a query not in flight',
            );
        }
        if (pendingUntil <= this.now()) {
            throw new QueryError(
                ErrorCode.QueryExpired,
                9,
                QueryRetry.ResendQuery,
                'the answer arrived after the query expired',
            );
        }
        if (info.receiverId !== this.options.equipmentId || info.senderId !== query.receiverId) {
            throw new QueryError(
                ErrorCode.IncompletePacket,
                9,
                QueryRetry.ResendAnswer,
                'the answer is addressed to someone else',
            );
        }
        const responderKey =
            info.responder === Responder.Csp ? this.options.cspKey : await this.options.keyOf(query.receiverId);
        if (!verifyInformationSignature(suite, info, responderKey)) {
            // Paper: M2 is required to resend; the system re-enters step 6.
            throw new QueryError(
                ErrorCode.FailedSignatureVerification,
                9,
                QueryRetry.ResendAnswer,
                `the answer is not signed by ${info.responder === Responder.Csp ? 'the CSP' : query.receiverId}`,
            );
        }
        this.recipient ??= hpkeRecipientFromScalar(suite, this.options.secretKey);
        const records = await openInformationPacket(await this.recipient, info);
        for (const record of records) {
            if (
                record.time < query.since ||
                record.time > query.until ||
                (query.kinds.length > 0 && !query.kinds.includes(record.kind))
            ) {
                throw new QueryError(
                    ErrorCode.AnswerIncomplete,
                    9,
                    QueryRetry.None,
                    'a record outside the range asked for',
                );
            }
            let valid: boolean;
            let cause: ReceiptError | undefined;
            try {
                valid = this.options.receipts.verify(query.receiverId, record);
            } catch (error) {
                if (!(error instanceof ReceiptError)) throw error;
                [valid, cause] = [false, error];
            }
            if (!valid) {
                throw new QueryError(
                    ErrorCode.AnswerIncomplete,
                    9,
                    QueryRetry.None,
                    `record ${toHex(record.recordId).slice(0, 16)} carries no valid receipt` +
                        (cause === undefined ? '' : ` (${cause.message})`),
                    cause === undefined ? undefined : { cause },
                );
            }
        }
        const held = this.options.book?.heldFor(query.receiverId, query.since, query.until, query.kinds) ?? [];
        for (const id of held) {
            if (!records.some((record) => equalBytes(record.recordId, id))) {
                throw new QueryError(
                    ErrorCode.AnswerIncomplete,
                    9,
                    QueryRetry.None,
                    `the answer omits record ${toHex(id).slice(0, 16)} the asker holds a receipt for`,
                );
            }
        }
        // Done: a second delivery of this answer is a replay.
        this.pending.delete(toHex(info.queryDigest));
        return { records, responder: info.responder === Responder.Csp ? 'csp' : 'target' };
    }
}
