/**
 * Chaincode events the CSP acts on, one handler each: FogRegistered → approve the fog (addr_f
 * check), FogRevoked → forget its key, CspKeyRotated → load the new CA key epoch,
 * SessionsRequested → Algorithm 1 issuance.
 */
import { errorCodeOf } from '@m2m-fabric/common';
import { approveFog, issueRequest } from '../issuance.js';
import type { CspContext } from '../context.js';

export type ChaincodeEventHandler = (ctx: CspContext, body: Record<string, unknown>) => Promise<void>;

export interface ChaincodeEventOptions {
    /** Approve every fog whose addr_f checks out (default true). */
    autoApproveFogs: boolean;
}

export function chaincodeEventHandlers(options: ChaincodeEventOptions): Record<string, ChaincodeEventHandler> {
    return {
        FogRegistered: async (ctx, body) => {
            if (!options.autoApproveFogs) return;
            await approveFog(ctx, String(body.fogId)).catch((err: unknown) =>
                ctx.log.warn('fog approval failed', { fogId: body.fogId, code: errorCodeOf(err) }),
            );
        },
        FogRevoked: async (ctx, body) => ctx.forgetFog(String(body.fogId)),
        // A rotation (by this backend or `m2m csp rotate-key`): load the new epoch's key file.
        CspKeyRotated: async (ctx) => {
            await ctx.caKeys
                .refresh(ctx.ledger)
                .catch((err: unknown) => ctx.log.warn('CSP key epochs not reloaded', { code: errorCodeOf(err) }));
        },
        SessionsRequested: async (ctx, body) => {
            await issueRequest(ctx, String(body.requestId)).catch((err: unknown) => {
                ctx.m.ledgerErrors.inc({ code: errorCodeOf(err) });
                ctx.log.warn('issuance failed', { requestId: body.requestId, code: errorCodeOf(err) });
            });
        },
    };
}
