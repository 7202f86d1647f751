/** @m2m-fabric/gateway: SDK and services. */
export * from './ledger/index.js';
export * as fabric from './ledger/fabric/index.js';
export * from './storage/index.js';
export * as records from './records/index.js';
