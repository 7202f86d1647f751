/**
 * The ledger reads of the record query (paper 000 Fig. 8): the fog's M-EB lookup (step 3) and the
 * target's access rule (step 5), over the chaincode clients — embedded ledger or real Fabric.
 */
import { ErrorCode } from '@m2m-fabric/protocol';

import type { ChaincodeClient } from '@m2m-fabric/sdk';
import type { MaterialsClient } from '@m2m-fabric/sdk';
import { EndorseError } from '@m2m-fabric/sdk';
import type { EquipmentDirectory, EquipmentEntry } from './query-handler.js';

/** Step 5's rule as the target's private area reads it (structurally device/query-responder's QueryAccessRule). */
export interface LedgerQueryAccessRule {
    check(targetId: string, askerId: string): Promise<{ allowed: boolean; askerPublicKey: string }>;
}

/** Step 3 from the M-EB; an unregistered machine is `undefined` (the paper's null answer). */
export function ledgerEquipmentDirectory(client: ChaincodeClient): EquipmentDirectory {
    return {
        async lookup(equipmentId: string): Promise<EquipmentEntry | undefined> {
            try {
                const record = await client.getEquipment(equipmentId);
                return { equipmentId: record.equipmentId, status: record.status, publicKey: record.publicKey };
            } catch (error) {
                if (error instanceof EndorseError && error.errorCode === ErrorCode.UnknownEquipment) return undefined;
                throw error;
            }
        },
    };
}

/** Step 5 from the queryAccess contract. */
export function ledgerQueryAccess(client: MaterialsClient): LedgerQueryAccessRule {
    return {
        async check(targetId: string, askerId: string) {
            const verdict = await client.checkQueryAccess(targetId, askerId);
            return { allowed: verdict.allowed, askerPublicKey: verdict.askerPublicKey };
        },
    };
}
