/**
 * Every transaction of the chaincode, its parameters and the roles that may call it: the access
 * matrix of docs/chaincode.md, as the tests check it.
 */
export type RoleName = 'csp' | 'fog' | 'manufacturer';

export interface TransactionSpec {
    parameters: string[];
    roles: RoleName[];
    /** Read-only (Fabric EVALUATE). */
    evaluate?: true;
}

const EQUIPMENT_FIELDS = [
    'equipmentId',
    'kind',
    'model',
    'fogGroup',
    'publicKey',
    'privilegeLevel',
    'serviceType',
    'accessTime',
];

export const TRANSACTIONS: Record<string, Record<string, TransactionSpec>> = {
    registry: {
        registerCsp: { parameters: ['suiteId', 'caPublicKey'], roles: ['csp'] },
        rotateCspKey: {
            parameters: ['suiteId', 'newCaPublicKey', 'overlapSeconds', 'previousSignature', 'newSignature'],
            roles: ['csp'],
        },
        getCsp: { parameters: [], roles: ['csp', 'fog', 'manufacturer'], evaluate: true },
        registerFog: { parameters: ['fogId', 'publicKey', 'address'], roles: ['fog'] },
        approveFog: { parameters: ['fogId', 'address'], roles: ['csp'] },
        revokeFog: { parameters: ['fogId'], roles: ['csp'] },
        addFogSuiteKey: {
            parameters: ['fogId', 'suiteId', 'publicKey', 'identitySignature', 'newSignature'],
            roles: ['fog'],
        },
        getFog: { parameters: ['fogId'], roles: ['csp', 'fog', 'manufacturer'], evaluate: true },
        grantCredit: { parameters: ['account', 'amount'], roles: ['csp'] },
        getCredit: { parameters: ['account'], roles: ['csp', 'manufacturer'], evaluate: true },
    },
    equipment: {
        registerEquipment: { parameters: EQUIPMENT_FIELDS, roles: ['manufacturer'] },
        updateEquipmentStatus: { parameters: ['equipmentId', 'status'], roles: ['manufacturer'] },
        decommissionEquipment: { parameters: ['equipmentId', 'fromCounter', 'toCounter'], roles: ['manufacturer'] },
        replaceEquipment: { parameters: ['oldEquipmentId', ...EQUIPMENT_FIELDS], roles: ['manufacturer'] },
        getEquipment: { parameters: ['equipmentId'], roles: ['csp', 'fog', 'manufacturer'], evaluate: true },
        getEquipmentHistory: { parameters: ['equipmentId'], roles: ['csp', 'fog', 'manufacturer'], evaluate: true },
        queryEquipmentByOwner: {
            parameters: ['owner', 'pageSize', 'bookmark'],
            roles: ['csp', 'fog', 'manufacturer'],
            evaluate: true,
        },
        queryEquipmentByFogGroup: {
            parameters: ['fogGroup', 'pageSize', 'bookmark'],
            roles: ['csp', 'fog'],
            evaluate: true,
        },
        queryEquipmentByStatus: {
            parameters: ['status', 'pageSize', 'bookmark'],
            roles: ['csp', 'fog'],
            evaluate: true,
        },
    },
    certificates: {
        requestSessions: { parameters: ['n', 'requestCid'], roles: ['manufacturer'] },
        requestSessionsFromLots: { parameters: ['n', 'requestCid', 'lots'], roles: ['manufacturer'] },
        issueCertificates: { parameters: ['requestId'], roles: ['csp'] },
        getCertificate: { parameters: ['idCert'], roles: ['csp', 'fog', 'manufacturer'], evaluate: true },
        getRequest: { parameters: ['requestId'], roles: ['csp', 'manufacturer'], evaluate: true },
    },
    sessions: {
        activateSession: { parameters: ['fogId'], roles: ['fog'] },
        synchroniseSession: { parameters: [], roles: ['csp'] },
        getSession: { parameters: ['primaryHash'], roles: ['csp', 'fog'], evaluate: true },
    },
    anchors: {
        anchorBatch: {
            parameters: ['writer', 'sequence', 'treeSize', 'root', 'consistencyProof', 'signature'],
            roles: ['csp', 'fog'],
        },
        getAnchor: { parameters: ['writer', 'sequence'], roles: ['csp', 'fog', 'manufacturer'], evaluate: true },
        getWriterHead: { parameters: ['writer'], roles: ['csp', 'fog', 'manufacturer'], evaluate: true },
        listAnchors: {
            parameters: ['writer', 'from', 'to', 'pageSize', 'bookmark'],
            roles: ['csp', 'fog', 'manufacturer'],
            evaluate: true,
        },
        getCheckpoint: { parameters: [], roles: ['csp', 'fog', 'manufacturer'], evaluate: true },
    },
    checkpoints: {
        recordCheckpoint: { parameters: [], roles: ['csp', 'fog'] },
        registerCheckpointSource: { parameters: ['channel', 'chaincode', 'orderers'], roles: ['csp'] },
        importCheckpoint: { parameters: ['channel', 'proofHex'], roles: ['csp', 'fog'] },
        getImportedCheckpoint: { parameters: ['channel'], roles: ['csp', 'fog', 'manufacturer'], evaluate: true },
    },
    revocation: {
        revokeDevice: { parameters: ['fromCounter', 'toCounter'], roles: ['csp', 'manufacturer'] },
        getRevocation: { parameters: ['revocationIdHex'], roles: ['csp', 'fog', 'manufacturer'], evaluate: true },
        endSession: { parameters: ['primaryHash'], roles: ['csp'] },
    },
    materials: {
        registerLot: { parameters: ['lotId', 'kind', 'quantity', 'unit', 'origin'], roles: ['manufacturer'] },
        recordTransformation: { parameters: ['transformation'], roles: ['csp', 'fog', 'manufacturer'] },
        getLot: { parameters: ['lotId'], roles: ['csp', 'fog', 'manufacturer'], evaluate: true },
        getTransformation: { parameters: ['transformationId'], roles: ['csp', 'fog', 'manufacturer'], evaluate: true },
        traceBackward: {
            parameters: ['lotId', 'maxDepth', 'pageSize', 'bookmark'],
            roles: ['csp', 'fog', 'manufacturer'],
            evaluate: true,
        },
        traceForward: {
            parameters: ['lotId', 'maxDepth', 'pageSize', 'bookmark'],
            roles: ['csp', 'fog', 'manufacturer'],
            evaluate: true,
        },
        queryMachineSteps: {
            parameters: ['equipmentId', 'from', 'until', 'pageSize', 'bookmark'],
            roles: ['csp', 'fog', 'manufacturer'],
            evaluate: true,
        },
    },
    queryAccess: {
        grantQueryAccess: { parameters: ['targetId', 'askerId'], roles: ['manufacturer'] },
        revokeQueryAccess: { parameters: ['targetId', 'askerId'], roles: ['manufacturer'] },
        checkQueryAccess: {
            parameters: ['targetId', 'askerId'],
            roles: ['csp', 'fog', 'manufacturer'],
            evaluate: true,
        },
    },
};
