/**
 * The access rule of paper 000's record queries (Fig. 8 step 5): which equipment may query which.
 * It is data on the ledger, set by the target's owner organisation, so the target's private area
 * (its device agent, or the CSP acting for it while it is offline) decides from the same rule
 * every peer endorses, not from a local list.
 *
 *   query~grant [target, asker] -> { targetId, askerId, grantedBy, grantedAt }
 */
import fca from 'fabric-contract-api';
import { Context } from 'fabric-contract-api';

import { Role, requireRole } from './access.js';
import type { AccessPolicy } from './access.js';
import { M2MContract } from './base.js';
import { canonicalJson } from './canonical-json.js';
import type { JsonValue } from './canonical-json.js';
import { EquipmentStatus, readEquipment } from './equipment.js';
import { ErrorCode, reject } from './errors.js';
import { EventName, emitEvent } from './events.js';
import { KeyType, readJson, stateKey, txTime, writeJson } from './state.js';
import { requireIdentifier } from './validate.js';

const { Info, Returns, Transaction } = fca;

export interface QueryGrantRecord {
    [key: string]: JsonValue | undefined;
    targetId: string;
    askerId: string;
    grantedBy: string;
    grantedAt: string;
}

@Info({ title: 'QueryAccess', description: 'Which equipment may query which (paper 000 Fig. 8 step 5)' })
export class QueryAccessContract extends M2MContract {
    constructor(policy?: AccessPolicy) {
        super('queryAccess', policy);
    }

    /**
     * The target's owner lets `askerId` query `targetId`'s communication history.
     * @throws unknownEquipment, unauthorisedMsp (not the target's owner), equipmentRetired, alreadyExists.
     */
    @Transaction()
    @Returns('string')
    async grantQueryAccess(ctx: Context, targetId: string, askerId: string): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Manufacturer);
        const target = requireIdentifier('targetId', targetId);
        const asker = requireIdentifier('askerId', askerId);
        if (target === asker) {
            return reject(ErrorCode.MalformedInput, 'a machine needs no grant to read its own history');
        }
        const targetRecord = await readEquipment(ctx, target);
        if (targetRecord.owner !== caller.mspId) {
            return reject(ErrorCode.UnauthorisedMsp, `only ${targetRecord.owner} may grant access to ${target}`);
        }
        const askerRecord = await readEquipment(ctx, asker);
        for (const record of [targetRecord, askerRecord]) {
            if (record.status === EquipmentStatus.Decommissioned || record.status === EquipmentStatus.Replaced) {
                return reject(ErrorCode.EquipmentRetired, `equipment ${record.equipmentId} is ${record.status}`);
            }
        }
        const key = stateKey(ctx, KeyType.QueryGrant, target, asker);
        if ((await readJson(ctx, key)) !== undefined) {
            return reject(ErrorCode.AlreadyExists, `${asker} may already query ${target}`);
        }
        const record: QueryGrantRecord = {
            targetId: target,
            askerId: asker,
            grantedBy: caller.mspId,
            grantedAt: txTime(ctx),
        };
        await writeJson(ctx, key, record);
        emitEvent(ctx, EventName.QueryAccessGranted, { targetId: target, askerId: asker });
        return canonicalJson(record);
    }

    /** The target's owner withdraws a grant. @throws unknownEquipment, unauthorisedMsp, queryDenied (no grant). */
    @Transaction()
    @Returns('string')
    async revokeQueryAccess(ctx: Context, targetId: string, askerId: string): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Manufacturer);
        const target = requireIdentifier('targetId', targetId);
        const asker = requireIdentifier('askerId', askerId);
        const targetRecord = await readEquipment(ctx, target);
        if (targetRecord.owner !== caller.mspId) {
            return reject(ErrorCode.UnauthorisedMsp, `only ${targetRecord.owner} may revoke access to ${target}`);
        }
        const key = stateKey(ctx, KeyType.QueryGrant, target, asker);
        if ((await readJson(ctx, key)) === undefined) {
            return reject(ErrorCode.QueryDenied, `${asker} has no grant on ${target}`);
        }
        await ctx.stub.deleteState(key);
        emitEvent(ctx, EventName.QueryAccessRevoked, { targetId: target, askerId: asker });
        return canonicalJson({ targetId: target, askerId: asker, revokedAt: txTime(ctx) });
    }

    /**
     * Step 5's ledger check: may `askerId` query `targetId`? Both must be registered; a retired
     * asker or target is denied. Returns the target's and asker's public keys with the verdict, so
     * the target's private area needs one read.
     */
    @Transaction(false)
    @Returns('string')
    async checkQueryAccess(ctx: Context, targetId: string, askerId: string): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        const target = await readEquipment(ctx, requireIdentifier('targetId', targetId));
        const asker = await readEquipment(ctx, requireIdentifier('askerId', askerId));
        const grant = await readJson(ctx, stateKey(ctx, KeyType.QueryGrant, target.equipmentId, asker.equipmentId));
        const retired = (status: string): boolean =>
            status === EquipmentStatus.Decommissioned || status === EquipmentStatus.Replaced;
        const allowed = grant !== undefined && !retired(target.status) && !retired(asker.status);
        return canonicalJson({
            targetId: target.equipmentId,
            askerId: asker.equipmentId,
            allowed,
            targetStatus: target.status,
            askerStatus: asker.status,
            askerPublicKey: asker.publicKey,
            targetPublicKey: target.publicKey,
        });
    }
}
