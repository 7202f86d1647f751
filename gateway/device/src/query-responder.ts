/**
 * The target's private area in paper 000's record query (Fig. 8 steps 5 and 6): it checks the
 * asker's signature and its right to ask — the access rule on the ledger, set by the target's
 * owner — searches its history and answers with an information packet sealed to the asker and
 * signed. The same class answers for an offline device at the CSP, then signing with the CSP's key
 * (responder = csp) over the records the CSP received from that device.
 *
 * `respond` takes the query packet's bytes and returns the reply's bytes; it never throws.
 */
import {
    ErrorCode,
    QueryError,
    QueryRetry,
    Responder,
    createInformationPacket,
    decodePoint,
    decodeQueryPacket,
    encodeFailurePacket,
    failureOf,
    fromHex,
    toHex,
    verifyQuerySignature,
    type AnsweredRecord,
    type QueryPacket,
    type Suite,
} from '@m2m-fabric/protocol';

/** Step 5's ledger rule (queryAccess.checkQueryAccess). */
export interface QueryAccessRule {
    check(targetId: string, askerId: string): Promise<{ allowed: boolean; askerPublicKey: string }>;
}

/** Step 6: the history searched. */
export interface RecordHistory {
    search(query: {
        targetId: string;
        askerId: string;
        since: number;
        until: number;
        kinds: readonly string[];
    }): Promise<AnsweredRecord[]>;
}

export interface QueryResponderOptions {
    suite: Suite;
    /** The machine answered for. */
    equipmentId: string;
    /** Who signs: the machine's static secret, or the CSP's d_c. */
    responder: Responder;
    signingSecret: bigint;
    access: QueryAccessRule;
    history: RecordHistory;
    now?: () => number;
}

export class QueryResponder {
    private readonly now: () => number;
    /** digest hex -> { answer, expiresAt }: a resend request (step 7) gets the same answer. */
    private readonly answered = new Map<string, { reply: Uint8Array; expiresAt: number }>();
    /** sender:nonce -> digest hex: a different packet under a used nonce is a replay. */
    private readonly nonces = new Map<string, { digest: string; expiresAt: number }>();
    answers = 0;
    denials = 0;

    constructor(private readonly options: QueryResponderOptions) {
        this.now = options.now ?? Date.now;
    }

    async respond(packetBytes: Uint8Array): Promise<Uint8Array> {
        const suite = this.options.suite;
        let digest: Uint8Array = new Uint8Array(suite.hashBytes);
        try {
            const query = decodeQueryPacket(suite, packetBytes, 5);
            digest = query.digest;
            const digestHex = toHex(digest);
            this.prune();
            const cached = this.answered.get(digestHex);
            if (cached !== undefined) return cached.reply;
            const reply = await this.answer(query, digestHex);
            this.answers++;
            return reply;
        } catch (error) {
            this.denials++;
            const failure =
                error instanceof QueryError
                    ? error
                    : new QueryError(
                          ErrorCode.QueryDenied,
                          5,
                          QueryRetry.Later,
                          `the target could not answer: ${String(error)}`,
                      );
            return encodeFailurePacket(failureOf(failure, digest));
        }
    }

    private async answer(query: QueryPacket, digestHex: string): Promise<Uint8Array> {
        const { suite, equipmentId } = this.options;
        if (query.receiverId !== equipmentId) {
            throw new QueryError(
                ErrorCode.IncompletePacket,
                5,
                QueryRetry.ResendQuery,
                `query is for ${query.receiverId}, not ${equipmentId}`,
            );
        }
        if (query.expiresAt <= this.now()) {
            throw new QueryError(
                ErrorCode.QueryExpired,
                5,
                QueryRetry.ResendQuery,
                'the query expired before it arrived',
            );
        }
        const nonceKey = `${query.senderId}:${toHex(query.nonce)}`;
        const earlier = this.nonces.get(nonceKey);
        if (earlier !== undefined && earlier.digest !== digestHex) {
            throw new QueryError(ErrorCode.ReplayDetected, 5, QueryRetry.None, 'this query nonce was already used');
        }
        const rule = await this.options.access.check(equipmentId, query.senderId);
        const askerKey = fromHex(rule.askerPublicKey);
        // Step 5: the signature first (the paper's "legal" packet), then the right to ask.
        if (!verifyQuerySignature(suite, query, decodePoint(suite, askerKey))) {
            throw new QueryError(
                ErrorCode.FailedSignatureVerification,
                5,
                QueryRetry.ResendQuery,
                `the query is not signed by ${query.senderId}`,
            );
        }
        if (!rule.allowed) {
            throw new QueryError(
                ErrorCode.QueryDenied,
                5,
                QueryRetry.None,
                `${query.senderId} may not query ${equipmentId}`,
            );
        }
        this.nonces.set(nonceKey, { digest: digestHex, expiresAt: query.expiresAt });
        // Step 6.
        const records = await this.options.history.search({
            targetId: equipmentId,
            askerId: query.senderId,
            since: query.since,
            until: query.until,
            kinds: query.kinds,
        });
        const info = await createInformationPacket(
            suite,
            query,
            records,
            askerKey,
            this.options.responder,
            this.options.signingSecret,
        );
        this.answered.set(digestHex, { reply: info.bytes, expiresAt: query.expiresAt });
        return info.bytes;
    }

    private prune(): void {
        const now = this.now();
        for (const [k, v] of this.answered) if (v.expiresAt <= now) this.answered.delete(k);
        for (const [k, v] of this.nonces) if (v.expiresAt <= now) this.nonces.delete(k);
    }
}
