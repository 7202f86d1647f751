/**
 * Paper 000's record query at the fog, the public network area (Fig. 8): a Query envelope from an
 * asker runs steps 2-4 and 7-8 (query-handler.ts) and is answered with a QueryInformation or
 * QueryFailure envelope; a QueryListen envelope makes its connection a machine's private area
 * (a listen notice signed by the machine's M-EB key); a QueryAnswer envelope, or the CSP's
 * QueryAnswer link message, is a private area's reply to a delivered packet (query-routes.ts).
 * The fog relays packets as bytes: it holds no key that opens an answer. With records on, each
 * packet it relays is recorded (and the record durable) before it goes on (../relay-records.ts).
 */
import {
    ErrorCode,
    MAX_LISTEN_SKEW_MS,
    QueryPacketType,
    decodeListenNotice,
    decodePoint,
    fromHex,
    replyType,
    verifyListenNotice,
} from '@m2m-fabric/protocol';
import { EnvelopeKind, ServiceError, type Envelope } from '@m2m-fabric/common';
import { decodeQueryLink } from '../../link.js';
import type { FogHandlerContext } from './handler.js';

const RETIRED = new Set(['decommissioned', 'replaced']);

/** Steps 2-4, 7, 8 for an asker's query packet; the reply never is an Error envelope. */
export async function handleQuery(h: FogHandlerContext, clientId: string, env: Envelope): Promise<void> {
    const reply = await h.queries.handler.handle(env.body);
    const kind =
        replyType(reply) === QueryPacketType.Failure ? EnvelopeKind.QueryFailure : EnvelopeKind.QueryInformation;
    await h.ctx.reply(clientId, kind, env.correlationId, reply);
}

/**
 * A listen notice: this connection answers for the machine from now on (or no longer).
 * @throws ServiceError malformedInput, replayDetected (stale, for another fog or connection, or not
 *   newer than the last), unknownEquipment, equipmentRetired, failedSignatureVerification.
 */
export async function handleQueryListen(h: FogHandlerContext, clientId: string, env: Envelope): Promise<void> {
    const { ctx } = h;
    const notice = decodeListenNotice(ctx.suite, env.body);
    if (notice.fogId !== ctx.fogId || notice.clientId !== clientId)
        throw new ServiceError(ErrorCode.ReplayDetected, 'the listen notice names another fog or connection');
    if (Math.abs(Date.now() - notice.issuedAt) > MAX_LISTEN_SKEW_MS)
        throw new ServiceError(ErrorCode.ReplayDetected, 'the listen notice is stale');
    const machine = await h.queries.directory.lookup(notice.equipmentId);
    if (machine === undefined)
        throw new ServiceError(ErrorCode.UnknownEquipment, `no machine ${notice.equipmentId} in the M-EB`);
    if (notice.listening && RETIRED.has(machine.status))
        throw new ServiceError(ErrorCode.EquipmentRetired, `machine ${notice.equipmentId} is ${machine.status}`);
    if (!verifyListenNotice(ctx.suite, notice, decodePoint(ctx.suite, fromHex(machine.publicKey))))
        throw new ServiceError(
            ErrorCode.FailedSignatureVerification,
            `the listen notice is not signed by ${notice.equipmentId}`,
        );
    h.queries.routes.listen(notice.equipmentId, clientId, notice.issuedAt, notice.listening);
    await ctx.reply(clientId, EnvelopeKind.QueryListening, env.correlationId, new Uint8Array());
}

/** A target's reply to a delivered query packet; one that matches no delivery is dropped. */
export function handleQueryAnswer(h: FogHandlerContext, clientId: string, env: Envelope): Promise<void> {
    if (!h.queries.routes.settle(env.correlationId, clientId, env.body)) h.ctx.m.dropped.inc({ reason: 'queryAnswer' });
    return Promise.resolve();
}

/** The CSP's reply for an offline machine (QueryAnswer link message, already verified). */
export function handleCspQueryAnswer(h: FogHandlerContext, body: Uint8Array): Promise<void> {
    const { correlationId, packet } = decodeQueryLink(body);
    if (!h.queries.routes.settle(correlationId, 'csp', packet)) h.ctx.m.dropped.inc({ reason: 'queryAnswer' });
    return Promise.resolve();
}
