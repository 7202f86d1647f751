/**
 * Chaincode events. Fabric keeps one event per transaction, so every mutation emits exactly one,
 * named after what happened, with a canonical JSON payload. No payload names equipment, ID_i or a
 * counter: listeners learn that something happened and to which account, fog or request, never
 * which machine it concerns.
 */
import type { Context } from 'fabric-contract-api';

import { toJsonBytes } from './canonical-json.js';
import type { JsonValue } from './canonical-json.js';

export const EventName = {
    CspRegistered: 'CspRegistered',
    FogRegistered: 'FogRegistered',
    FogApproved: 'FogApproved',
    FogRevoked: 'FogRevoked',
    CreditGranted: 'CreditGranted',
    EquipmentRegistered: 'EquipmentRegistered',
    EquipmentStatusChanged: 'EquipmentStatusChanged',
    EquipmentReplaced: 'EquipmentReplaced',
    SessionsRequested: 'SessionsRequested',
    CertificatesIssued: 'CertificatesIssued',
    SessionActivated: 'SessionActivated',
    SessionSynchronised: 'SessionSynchronised',
    BatchAnchored: 'BatchAnchored',
    DeviceRevoked: 'DeviceRevoked',
    SessionEnded: 'SessionEnded',
    EquipmentDecommissioned: 'EquipmentDecommissioned',
    CspKeyRotated: 'CspKeyRotated',
    FogSuiteKeyAdded: 'FogSuiteKeyAdded',
    LotRegistered: 'LotRegistered',
    TransformationRecorded: 'TransformationRecorded',
    QueryAccessGranted: 'QueryAccessGranted',
    QueryAccessRevoked: 'QueryAccessRevoked',
    CheckpointRecorded: 'CheckpointRecorded',
    CheckpointSourceRegistered: 'CheckpointSourceRegistered',
    CheckpointImported: 'CheckpointImported',
} as const;
export type EventName = (typeof EventName)[keyof typeof EventName];

export function emitEvent(ctx: Context, name: EventName, payload: { [key: string]: JsonValue }): void {
    ctx.stub.setEvent(name, toJsonBytes(payload));
}
