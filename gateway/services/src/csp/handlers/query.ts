/**
 * Link message Query (fog → CSP): paper 000 step 4 for a machine that is offline — the CSP's
 * private area for it answers (steps 5-6, signed with the CSP's key, responder = csp) from the
 * records the CSP received from that machine. The reply goes back as a QueryAnswer link message
 * under the fog's correlation id; a machine the CSP does not answer for gets step 4's failure
 * (targetUnreachable, try later).
 */
import {
    ErrorCode,
    QueryError,
    QueryRetry,
    decodeQueryPacket,
    encodeFailurePacket,
    failureOf,
} from '@m2m-fabric/protocol';
import { decodeQueryLink, encodeLinkMessage, encodeQueryLink, LinkKind } from '../../link.js';
import type { CspHandlerContext } from './handler.js';

export async function handleQuery(h: CspHandlerContext, fogId: string, bytes: Uint8Array): Promise<void> {
    const { ctx } = h;
    const { correlationId, packet } = decodeQueryLink(bytes);
    let reply: Uint8Array;
    try {
        const query = decodeQueryPacket(ctx.suite, packet, 4);
        const area = h.queryArea(query.receiverId);
        reply =
            area === undefined
                ? encodeFailurePacket(
                      failureOf(
                          new QueryError(
                              ErrorCode.TargetUnreachable,
                              4,
                              QueryRetry.Later,
                              `the CSP does not answer for ${query.receiverId}`,
                          ),
                          query.digest,
                      ),
                  )
                : await area.respond(packet);
    } catch (err) {
        if (!(err instanceof QueryError)) throw err;
        reply = encodeFailurePacket(failureOf(err, new Uint8Array(ctx.suite.hashBytes)));
    }
    await ctx.conn.publish(
        ctx.topics.cspOutbound(fogId),
        encodeLinkMessage(ctx.key, LinkKind.QueryAnswer, 'csp', encodeQueryLink({ correlationId, packet: reply })),
    );
}
