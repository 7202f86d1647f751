/**
 * The protocol/crypto module shared by the chaincode and the gateway SDK (one copy; the SDK
 * imports it as `@m2m-fabric/chaincode/protocol`).
 */
export * from './errors.js';
export * from './suite.js';
export * from './openssl-ec.js';
export * from './encoding.js';
export * from './hashing.js';
export * from './ecqv.js';
export * from './schnorr.js';
export * from './dleq.js';
export * from './counter-proof.js';
export * from './cid.js';
export * from './hpke.js';
export * from './session-channel.js';
export * from './messages.js';
export * from './session.js';
export * from './record-query.js';
