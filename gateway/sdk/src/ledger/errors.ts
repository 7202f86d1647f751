/**
 * Typed errors of the ledger client interface. Both implementations throw exactly these, so a
 * caller switches on the class and its fields (`code`, `errorCode`), never on message text.
 */
import { parseErrorCode, type ErrorCode } from '@m2m-fabric/protocol';

import type { CommitStatus, ValidationCode } from './types.js';

/** Base class of every ledger client error. */
export class LedgerError extends Error {
    /** The transaction this error concerns, when one was created. */
    readonly transactionId: string | undefined;
    constructor(message: string, transactionId?: string, options?: ErrorOptions) {
        super(message, options);
        this.name = 'LedgerError';
        this.transactionId = transactionId;
    }
}

/**
 * The chaincode refused the proposal (a response with status ≥ 400, or it threw). Nothing was
 * ordered. `errorCode` is the protocol code the chaincode put in its message (see
 * `formatErrorMessage`), undefined when the message carries none.
 */
export class EndorseError extends LedgerError {
    /** Chaincode response status (500 for a thrown error, as the shim reports it). */
    readonly status: number;
    /** The chaincode's response message, verbatim. */
    readonly chaincodeMessage: string;
    readonly errorCode: ErrorCode | undefined;
    constructor(
        properties: { transactionId: string; status: number; chaincodeMessage: string },
        options?: ErrorOptions,
    ) {
        super(
            `endorsement of ${properties.transactionId} failed (status ${properties.status}): ${properties.chaincodeMessage}`,
            properties.transactionId,
            options,
        );
        this.name = 'EndorseError';
        this.status = properties.status;
        this.chaincodeMessage = properties.chaincodeMessage;
        this.errorCode = parseErrorCode(properties.chaincodeMessage);
    }
}

/**
 * The endorsements gathered cannot satisfy the chaincode's endorsement policy (too few
 * organisations, or endorsing peers returned different results). Nothing was ordered.
 */
export class EndorsementPolicyError extends LedgerError {
    /** The policy, in Fabric's syntax, e.g. `MAJORITY Endorsement` or `OR('Org1MSP.peer','Org2MSP.peer')`. */
    readonly policy: string;
    /** MSP IDs of the organisations whose endorsements were obtained. */
    readonly endorsers: readonly string[];
    constructor(
        properties: { transactionId: string; policy: string; endorsers: readonly string[]; reason: string },
        options?: ErrorOptions,
    ) {
        super(
            `endorsement policy ${properties.policy} not satisfied for ${properties.transactionId}: ${properties.reason}`,
            properties.transactionId,
            options,
        );
        this.name = 'EndorsementPolicyError';
        this.policy = properties.policy;
        this.endorsers = properties.endorsers;
    }
}

/**
 * The endorsing peers returned different results for the same proposal (Fabric's Gateway:
 * "ProposalResponsePayloads do not match"). Peers at different ledger heights simulated it against
 * different versions of a key it reads, typically one another transaction had just changed.
 * Transient: the same call endorsed again (a new proposal) normally succeeds once the peers have
 * caught up, and `submitWithRetry` does that; thrown to the caller only when its attempts ran out.
 */
export class EndorsementMismatchError extends EndorsementPolicyError {
    override readonly transactionId: string;
    constructor(
        properties: { transactionId: string; policy: string; endorsers: readonly string[]; reason: string },
        options?: ErrorOptions,
    ) {
        super(properties, options);
        this.name = 'EndorsementMismatchError';
        this.transactionId = properties.transactionId;
    }
}

/** The transaction reached a block but was invalidated there; it changed no state. */
export class CommitError extends LedgerError {
    override readonly transactionId: string;
    /** Why it was invalidated, e.g. `'MVCC_READ_CONFLICT'`, `'PHANTOM_READ_CONFLICT'`, `'ENDORSEMENT_POLICY_FAILURE'`. */
    readonly code: ValidationCode;
    readonly blockNumber: bigint;
    constructor(
        properties: { transactionId: string; code: ValidationCode; blockNumber: bigint },
        options?: ErrorOptions,
    ) {
        super(
            `transaction ${properties.transactionId} invalidated in block ${properties.blockNumber} with code ${properties.code}`,
            properties.transactionId,
            options,
        );
        this.name = 'CommitError';
        this.transactionId = properties.transactionId;
        this.code = properties.code;
        this.blockNumber = properties.blockNumber;
    }
}

/**
 * What `submit` does with a commit status: nothing if VALID, else throws its {@link CommitError}.
 * @throws {CommitError}
 */
export function assertCommitted(status: CommitStatus): void {
    if (status.successful) return;
    throw new CommitError({
        transactionId: status.transactionId,
        code: status.code,
        blockNumber: status.blockNumber,
    });
}

/** The call's deadline passed. A transaction already sent for ordering may still commit. */
export class DeadlineError extends LedgerError {
    /** Which step was running: endorsing/evaluating, handing to the orderer, or waiting for commit. */
    readonly stage: 'endorse' | 'submit' | 'commit';
    readonly deadlineMs: number;
    constructor(
        properties: { stage: 'endorse' | 'submit' | 'commit'; deadlineMs: number; transactionId?: string },
        options?: ErrorOptions,
    ) {
        super(
            `deadline of ${properties.deadlineMs} ms exceeded during ${properties.stage}` +
                (properties.transactionId === undefined ? '' : ` of ${properties.transactionId}`),
            properties.transactionId,
            options,
        );
        this.name = 'DeadlineError';
        this.stage = properties.stage;
        this.deadlineMs = properties.deadlineMs;
    }
}

/**
 * The orderer refused the endorsed transaction (e.g. larger than AbsoluteMaxBytes, ordering
 * service unavailable); it was not ordered and will not commit.
 */
export class SubmitError extends LedgerError {
    constructor(message: string, transactionId: string, options?: ErrorOptions) {
        super(message, transactionId, options);
        this.name = 'SubmitError';
    }
}

/**
 * The ledger cannot be reached or the request names something that is not there: closed
 * connection or ledger, unknown channel or organisation. (A peer's refusal of a proposal —
 * unknown chaincode, invalid creator or signature — is an {@link EndorseError}, as on Fabric.)
 */
export class ConnectionError extends LedgerError {
    constructor(message: string, options?: ErrorOptions & { transactionId?: string }) {
        super(message, options?.transactionId, options);
        this.name = 'ConnectionError';
    }
}
