/**
 * @m2m-fabric/protocol: the protocol and its cryptography, one copy shared by the chaincode, the
 * services and the device agent. No Fabric dependency.
 */
export * from './errors.js';
export * from './suite.js';
export * from './multiply.js';
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
export * from './merkle.js';
export * from './record.js';
export * from './frame-record.js';
export * from './relay-record.js';
export * from './envelope.js';
export * from './record-envelope.js';
export * from './anchor.js';
export * from './checkpoint.js';
export * from './forward-secrecy.js';
export * from './revocation.js';
export * from './csp-key-rotation.js';
export * from './fog-suite-key.js';
export * from './suite-secrets.js';
export * from './algorithm3.js';
export * from './record-query.js';
export * from './query-listen.js';
export * from './materials.js';
export * from './settings.js';
export * from './block-header.js';
export * from './protobuf-wire.js';
export * from './fabric-messages.js';
export * from './fabric-ecdsa.js';
export * from './receipt.js';
