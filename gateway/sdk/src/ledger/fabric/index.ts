/** The ledger client interface over a real Fabric network (@hyperledger/fabric-gateway). */
export * from './config.js';
export * from './connection.js';
export { mapGatewayError, findChaincodeResponse, isTransientStreamError, GrpcStatus } from './errors.js';
export type { GatewayStage, MappingContext } from './errors.js';
export { ResumingEventStream, type ReconnectOptions } from './events.js';
export { openGrpcClientCount } from './grpc-pool.js';
