/**
 * Internals of the chaincode package for this repository's tests, benchmarks and tools
 * (`@m2m-fabric/chaincode/internal`): the binary world-state records, state keys, argument
 * validation and access checks. Not a public API; no compatibility promise.
 */
export * from './records.js';
export * from './state.js';
export * from './canonical-json.js';
export * from './validate.js';
export * from './access.js';
export * from './errors.js';
export { writeTransformation } from './materials.js';
export type { LotRecord, TransformationRecord } from './materials.js';
export { verifyCheckpointProof, CheckpointProofError, blockHash, type CheckpointSource } from './checkpoint-proof.js';
