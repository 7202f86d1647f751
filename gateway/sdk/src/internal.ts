/**
 * Internals of the SDK for this repository's tests (`@m2m-fabric/sdk/internal`): the Fabric
 * contract adapter and the shared gRPC client pool. Not a public API; no compatibility promise.
 */
export { FabricLedgerContract } from './ledger/fabric/contract.js';
export { acquireGrpcClient } from './ledger/fabric/grpc-pool.js';
export { encodeEntry, EntryType, scanSegment } from './storage/segment.js';
export { DigestIndex } from './storage/digest-index.js';
