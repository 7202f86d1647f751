/**
 * Internals of the embedded ledger for this repository's tests and benchmarks
 * (`@m2m-fabric/embedded-ledger/internal`): the block cutter, the state store, the protobuf
 * bindings and endorser planning. Not a public API; no compatibility promise.
 */
export { BlockCutter, MessageTooLargeError } from './orderer.js';
export { LedgerStore } from './store.js';
export * from './protos.js';
export { planEndorsers } from './policy.js';
