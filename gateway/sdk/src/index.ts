/**
 * @m2m-fabric/sdk: the gateway SDK.
 *
 * - the ledger client interface ({@link LedgerConnection}, {@link LedgerContract}), its typed errors
 *   and the MVCC retry helper;
 * - its real-Fabric implementation through @hyperledger/fabric-gateway ({@link connectFabric} and
 *   the connection-file loader);
 * - {@link ChaincodeClient}: every m2m chaincode function as a typed call;
 * - off-chain object storage: the embedded blockstore, Kubo, CAR export/import.
 *
 * The embedded ledger that implements the same interface in process is its own package,
 * @m2m-fabric/embedded-ledger.
 */
export * from './ledger/index.js';
export * from './ledger/fabric/index.js';
export * from './chaincode-client.js';
export * from './credit-lots.js';
export * from './storage/index.js';
export * from './records/index.js';
export * from './materials-client.js';
export * from './settings.js';
