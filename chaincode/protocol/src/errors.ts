/**
 * Error codes shared by the chaincode and the SDK. A client switches on `code`, never on the message.
 * The first seven are the names paper 004 gives its rejections; the rest are this project's.
 */
export const ErrorCode = {
    // Paper 004, Algorithms 1-3.
    FailedPayment: 'failedPayment',
    FailedChallenge: 'failedChallenge',
    FailedDoubleSpendingCheck1: 'failedDoubleSpendingCheck-1',
    FailedDoubleSpendingCheck2: 'failedDoubleSpendingCheck-2',
    InvalidPrimaryHash: 'invalidPrimaryHash',
    SymmetricKeyInvalid: 'symmetricKeyInvalid',
    FailedSignatureVerification: 'failedSignatureVerification',
    // This project.
    MalformedInput: 'malformedInput',
    UnknownCertificate: 'unknownCertificate',
    CertificateAlreadyUsed: 'certificateAlreadyUsed',
    ContentAddressMismatch: 'contentAddressMismatch',
    UnauthorisedMsp: 'unauthorisedMsp',
    InvalidIssuance: 'invalidIssuance',
    InvalidProofOfPossession: 'invalidProofOfPossession',
    InvalidDleqProof: 'invalidDleqProof',
    FogNotApproved: 'fogNotApproved',
    UnknownFog: 'unknownFog',
    UnknownEquipment: 'unknownEquipment',
    UnknownRequest: 'unknownRequest',
    AlreadyExists: 'alreadyExists',
    InvalidStateTransition: 'invalidStateTransition',
    NotConfigured: 'notConfigured',
    DecryptionFailed: 'decryptionFailed',
    ReplayDetected: 'replayDetected',
    // Communication records (issue 18).
    RecordSignatureInvalid: 'recordSignatureInvalid',
    RecordSenderMismatch: 'recordSenderMismatch',
    MerkleProofInvalid: 'merkleProofInvalid',
    BatchOutOfOrder: 'batchOutOfOrder',
    DuplicateBatch: 'duplicateBatch',
    ReceiptInvalid: 'receiptInvalid',
    UnknownBatch: 'unknownBatch',
    /** A checkpoint proof that does not verify against the source channel's registered trust roots. */
    CheckpointInvalid: 'checkpointInvalid',
    /** A checkpoint from a block not after the last one imported from that source (replay, older). */
    CheckpointNotNewer: 'checkpointNotNewer',
    UnknownCheckpointSource: 'unknownCheckpointSource',
    DuplicateCheckpointSource: 'duplicateCheckpointSource',
    JournalCorrupt: 'journalCorrupt',
    /** A record that does not describe the frame it came with, or a frame that came without its record. */
    RecordMismatch: 'recordMismatch',
    /** A fog could not journal its record of a packet it was to relay: the packet is not relayed (retry later). */
    RecordNotJournaled: 'recordNotJournaled',
    /** A record (by digest or CID) that the writer never journaled, e.g. asked to share it. */
    UnknownRecord: 'unknownRecord',
    /** A session without the ephemeral shares (a downgrade to the paper's non-forward-secret key). */
    ForwardSecrecyRequired: 'forwardSecrecyRequired',
    /** The certificate (or every unused certificate of its device) was revoked. */
    CertificateRevoked: 'certificateRevoked',
    /** This device (revocation seed) was already revoked: the earlier revocation stands, nothing changed. */
    AlreadyRevoked: 'alreadyRevoked',
    /** Q_i sent with M4 does not hash to the H(Q_i) the activation recorded. */
    PublicKeyMismatch: 'publicKeyMismatch',
    // Material traceability (paper 000 §5).
    UnknownLot: 'unknownLot',
    UnknownTransformation: 'unknownTransformation',
    LotOverConsumed: 'lotOverConsumed',
    LotCycle: 'lotCycle',
    EquipmentRetired: 'equipmentRetired',
    TraceDepthExceeded: 'traceDepthExceeded',
    TraceTooLarge: 'traceTooLarge',
    // Record queries (paper 000 Fig. 8); raised off-chain by the fog, the target and the asker.
    /** Step 2 / step 7: the packet does not parse or its inspection information does not match. */
    IncompletePacket: 'incompletePacket',
    /** Step 3: the target is not in the M-EB (the paper's null answer). */
    UnknownTarget: 'unknownTarget',
    /** Step 4: neither the target nor anyone acting for it can be reached. */
    TargetUnreachable: 'targetUnreachable',
    /** Step 5: the asker has no right (ledger access rule) to query the target. */
    QueryDenied: 'queryDenied',
    /** Step 9: the answer omits a record the asker holds a receipt for, or a record's receipt is invalid. */
    AnswerIncomplete: 'answerIncomplete',
    /** A query or answer arrived after its deadline. */
    QueryExpired: 'queryExpired',
    /** A certificate issued under a CSP key whose end date (validUntil) has passed. */
    CspKeyExpired: 'cspKeyExpired',
    /** A CA key no CA should use (the identity, or a tiny multiple of G). */
    WeakKey: 'weakKey',
    /** A session of a suite the fog has registered no key for (registry:addFogSuiteKey). */
    FogSuiteKeyMissing: 'fogSuiteKeyMissing',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Why a byte string was refused by a decoder; carried by {@link DecodeError}. */
export type DecodeReason =
    | 'wrongLength'
    | 'trailingBytes'
    | 'truncated'
    | 'nonCanonical'
    | 'offCurve'
    | 'identityPoint'
    | 'scalarOutOfRange'
    | 'unknownVersion'
    | 'unknownSuite'
    | 'unknownType'
    | 'invalidValue';

/** Base class of every error the protocol module throws. */
export class ProtocolError extends Error {
    readonly code: ErrorCode;
    constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
        super(message, options);
        this.name = 'ProtocolError';
        this.code = code;
    }
}

/** A byte string that is not the canonical encoding of the expected object. */
export class DecodeError extends ProtocolError {
    readonly reason: DecodeReason;
    constructor(reason: DecodeReason, message: string, options?: ErrorOptions) {
        super(ErrorCode.MalformedInput, `${reason}: ${message}`, options);
        this.name = 'DecodeError';
        this.reason = reason;
    }
}

/** A proof or signature that does not verify. `code` names which check failed. */
export class VerificationError extends ProtocolError {
    constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
        super(code, message, options);
        this.name = 'VerificationError';
    }
}

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/**
 * The wire form of a rejection, used by chaincode error messages and service error replies:
 * `<code>: <detail>`. Fabric carries only a message string from chaincode to the client, so the
 * code leads it and {@link parseErrorCode} recovers it from wherever the SDK finds it embedded.
 */
export function formatErrorMessage(code: ErrorCode, detail: string): string {
    return `${code}: ${detail}`;
}

/** Finds the first known error code followed by ':' in a message; undefined when there is none. */
export function parseErrorCode(message: string): ErrorCode | undefined {
    for (const match of message.matchAll(/([A-Za-z][A-Za-z0-9-]*):/g)) {
        const candidate = match[1];
        if (candidate !== undefined && KNOWN_CODES.has(candidate)) {
            return candidate as ErrorCode;
        }
    }
    return undefined;
}
