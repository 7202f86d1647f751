/** @m2m-fabric/embedded-ledger: Fabric's execute-order-validate pipeline in process, and its Gateway endpoint. */
// First: fabric-contract-api and fabric-shim read their log level when they load (quiet-fabric.ts).
import './quiet-fabric.js';

export {
    EmbeddedLedger,
    DEFAULT_CHANNEL,
    DEFAULT_ENDORSEMENT_POLICY,
    type ChaincodeExecution,
    type EmbeddedLedgerOptions,
} from './ledger.js';
export type { ChaincodeDefinition } from './chaincode.js';
export { Organisation, ATTRIBUTES_OID, type Enrolment, type EnrolOptions, type IdentityRole } from './msp.js';
export { DEFAULT_BATCH_CONFIG, type BatchConfig } from './orderer.js';
export { parsePolicy, evaluatePolicy, PolicySyntaxError, type Policy } from './policy.js';
export { verifyLedger, type VerifyResult } from './verify.js';
export {
    EmbeddedGatewayServer,
    EndpointInUseError,
    quietBindFailureLog,
    type GatewayEndpointOptions,
} from './gateway-server.js';
export { loadOrCreateTlsServer, type TlsServerMaterial } from './tls.js';
export { serveEmbeddedPeers, type PeerClient, type ServePeersOptions, type ServedPeers } from './peers.js';
export {
    decodeBlock,
    summariseBlock,
    blockHeaderHash,
    blockDataHash,
    type DecodedBlock,
    type TransactionSummary,
} from './blocks.js';
