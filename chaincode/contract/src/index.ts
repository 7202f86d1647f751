/**
 * Chaincode entry point: fabric-chaincode-node (start | server | metadata generate) and the
 * embedded ledger load the `contracts` export. The first contract is the default one.
 */
import {
    AnchorContract,
    CheckpointContract,
    CertificateContract,
    EquipmentContract,
    MaterialsContract,
    QueryAccessContract,
    RegistryContract,
    RevocationContract,
    SessionContract,
} from './contracts.js';

export const contracts = [
    RegistryContract,
    EquipmentContract,
    CertificateContract,
    SessionContract,
    AnchorContract,
    RevocationContract,
    MaterialsContract,
    QueryAccessContract,
    CheckpointContract,
];

export * from './contracts.js';
