/** The contracts of the chaincode, one per area; each file names the algorithm it implements. */
export { RegistryContract } from './registry.js';
export { EquipmentContract, EquipmentStatus, ServiceType } from './equipment.js';
export type { EquipmentRecord } from './equipment.js';
export { CertificateContract, CertificateTransientKey, MAX_SESSIONS_PER_REQUEST } from './certificates.js';
export { SessionContract, SessionTransientKey } from './sessions.js';
export { AnchorContract, MAX_ANCHOR_PAGE } from './anchors.js';
export { CheckpointContract } from './checkpoints.js';
export { RevocationContract, RevocationTransientKey } from './revocation.js';
export type { RevocationResult } from './revocation.js';
export { Role, ROLE_ATTRIBUTE, DEFAULT_ACCESS_POLICY, ACCESS_POLICY_SETTINGS, accessPolicyFromEnv } from './access.js';
export type { AccessPolicy } from './access.js';
export {
    MaterialsContract,
    MaterialsTransientKey,
    TransformationKind,
    MAX_CONSUMERS,
    MAX_TRACE_DEPTH,
    MAX_TRACE_PAGE,
    MAX_TRACE_TRANSFORMATIONS,
    MAX_TRANSFORMATION_INPUTS,
    MAX_TRANSFORMATION_OUTPUTS,
} from './materials.js';
export type {
    LotRecord,
    TransformationRecord,
    TransformationSpec,
    TransformationInput,
    TransformationOutput,
} from './materials.js';
export { QueryAccessContract } from './query-access.js';
export type { QueryGrantRecord } from './query-access.js';
export { EventName } from './events.js';
export { ContractError } from './errors.js';
export { CertificateStatus, SessionStatus } from './records.js';
export { FogStatus, RequestStatus } from './state.js';
