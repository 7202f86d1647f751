/**
 * Chaincode entry point: fabric-chaincode-node loads the `contracts` export.
 */
export const contracts: unknown[] = [];
