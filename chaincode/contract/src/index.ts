/**
 * Chaincode entry point: fabric-chaincode-node (start | server | metadata generate) and the
 * embedded ledger load the `contracts` export. The first contract is the default one.
 */
import {
    CertificateContract,
    EquipmentContract,
    MaterialsContract,
    QueryAccessContract,
    RegistryContract,
    SessionContract,
} from './contracts.js';

export const contracts = [
    RegistryContract,
    EquipmentContract,
    CertificateContract,
    SessionContract,
    MaterialsContract,
    QueryAccessContract,
];

export * from './contracts.js';
