/** @m2m-fabric/gateway: SDK and services. */
export * from './ledger/index.js';
