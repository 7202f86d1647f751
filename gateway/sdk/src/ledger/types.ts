/**
 * The ledger client interface shared by the two ledger implementations:
 *
 *  - `fabric/`   — a real Fabric network through @hyperledger/fabric-gateway;
 *  - `embedded/` — an in-process execute-order-validate ledger that runs the same chaincode.
 *
 * It is modelled on fabric-gateway's Node API (Gateway → Network → Contract) so the Fabric
 * implementation is a thin adapter, and services written against it run unchanged on either.
 * Names and semantics follow fabric-gateway unless a comment says otherwise.
 */

/**
 * Fabric's transaction validation codes (`peer.TxValidationCode` in fabric-protos), by name. The
 * numbers are Fabric's, so a status read from a real peer maps one to one.
 */
export const ValidationCodes = {
    VALID: 0,
    NIL_ENVELOPE: 1,
    BAD_PAYLOAD: 2,
    BAD_COMMON_HEADER: 3,
    BAD_CREATOR_SIGNATURE: 4,
    INVALID_ENDORSER_TRANSACTION: 5,
    INVALID_CONFIG_TRANSACTION: 6,
    UNSUPPORTED_TX_PAYLOAD: 7,
    BAD_PROPOSAL_TXID: 8,
    DUPLICATE_TXID: 9,
    ENDORSEMENT_POLICY_FAILURE: 10,
    MVCC_READ_CONFLICT: 11,
    PHANTOM_READ_CONFLICT: 12,
    UNKNOWN_TX_TYPE: 13,
    TARGET_CHAIN_NOT_FOUND: 14,
    MARSHAL_TX_ERROR: 15,
    NIL_TXACTION: 16,
    EXPIRED_CHAINCODE: 17,
    CHAINCODE_VERSION_CONFLICT: 18,
    BAD_HEADER_EXTENSION: 19,
    BAD_CHANNEL_HEADER: 20,
    BAD_RESPONSE_PAYLOAD: 21,
    BAD_RWSET: 22,
    ILLEGAL_WRITESET: 23,
    INVALID_WRITESET: 24,
    INVALID_CHAINCODE: 25,
    NOT_VALIDATED: 254,
    INVALID_OTHER_REASON: 255,
} as const;

/** A validation code by name, e.g. `'VALID'` or `'MVCC_READ_CONFLICT'`. */
export type ValidationCode = keyof typeof ValidationCodes;

const VALIDATION_CODE_NAMES: ReadonlyMap<number, ValidationCode> = new Map(
    Object.entries(ValidationCodes).map(([name, value]) => [value, name as ValidationCode]),
);

/** Name of a numeric Fabric validation code; unknown numbers map to `INVALID_OTHER_REASON`. */
export function validationCodeName(code: number): ValidationCode {
    return VALIDATION_CODE_NAMES.get(code) ?? 'INVALID_OTHER_REASON';
}

/** The client's X.509 identity, as fabric-gateway's `Identity`: MSP ID and PEM certificate bytes. */
export interface LedgerIdentity {
    readonly mspId: string;
    /** PEM-encoded X.509 certificate (UTF-8 bytes), exactly what a Fabric client sends as creator. */
    readonly credentials: Uint8Array;
}

/**
 * Signs a message — the serialized proposal or transaction, *not* a digest — with the identity's
 * private key: ECDSA over SHA-256(message), DER-encoded, low-S (Fabric's MSP rejects high-S
 * signatures). Taking the whole message lets an implementation hash and sign in one OpenSSL call;
 * the Fabric adapter hands it to fabric-gateway with `hash: hash.none`, which passes the message
 * through unhashed. The key stays with the caller; neither ledger implementation sees it.
 * `newPrivateKeySigner` in `signers.ts` makes one from a PEM key.
 */
export type LedgerSigner = (digest: Uint8Array) => Promise<Uint8Array>;

/** What a connection is bound to: one identity and its signer on one channel. */
export interface LedgerConnectOptions {
    identity: LedgerIdentity;
    signer: LedgerSigner;
    /** Channel name; each implementation documents its default. */
    channelName?: string;
}

/** Creates connections. Implemented by `EmbeddedLedger` and by the Fabric gateway adapter. */
export interface LedgerConnector {
    connect(options: LedgerConnectOptions): Promise<LedgerConnection>;
}

/**
 * A client's view of one channel, bound to one identity — fabric-gateway's `Gateway` and `Network`
 * folded into one object because every service here uses a single channel.
 */
export interface LedgerConnection {
    readonly channelName: string;
    readonly identity: LedgerIdentity;
    /** A contract of a chaincode on the channel; `contractName` selects a contract in a multi-contract chaincode. */
    getContract(chaincodeName: string, contractName?: string): LedgerContract;
    /**
     * Chaincode events emitted by *committed, valid* transactions, in block order. Without
     * `startBlock` or `checkpoint`, only events committed after the call are delivered.
     */
    getChaincodeEvents(chaincodeName: string, options?: ChaincodeEventsOptions): Promise<ChaincodeEventStream>;
    /** Releases the connection; open event streams end. Idempotent. */
    close(): void;
}

/** Per-call options, as fabric-gateway's `ProposalOptions` plus a deadline. */
export interface TransactionOptions {
    arguments?: (string | Uint8Array)[];
    /**
     * Private inputs: passed to the chaincode (`ctx.stub.getTransient()`), never recorded in the
     * transaction, the block or the state.
     */
    transientData?: Record<string, string | Uint8Array>;
    /** MSP IDs of the organisations whose peers must endorse; default: as the endorsement policy needs. */
    endorsingOrganizations?: string[];
    /**
     * Time budget in milliseconds for the whole call (endorse, and for `submit` also order and
     * commit). When it runs out the call rejects with `DeadlineError`; a transaction already sent
     * for ordering may still commit, as on Fabric.
     */
    deadlineMs?: number;
}

/** A chaincode (or one named contract in it) on the connection's channel. */
export interface LedgerContract {
    readonly chaincodeName: string;
    readonly contractName?: string;
    /**
     * Endorses, orders and waits for commit; resolves with the chaincode's response payload only
     * when the transaction committed VALID. Rejects with `EndorseError` (chaincode refused),
     * `EndorsementPolicyError`, `CommitError` (invalidated, e.g. MVCC_READ_CONFLICT) or `DeadlineError`.
     */
    submit(transactionName: string, options?: TransactionOptions): Promise<Uint8Array>;
    /** Runs the transaction on one peer against committed state and returns the result; nothing is ordered. */
    evaluate(transactionName: string, options?: TransactionOptions): Promise<Uint8Array>;
    /** Endorses and sends for ordering; resolves once ordering accepted it, without waiting for commit. */
    submitAsync(transactionName: string, options?: TransactionOptions): Promise<SubmittedTransaction>;
}

/** Outcome of a transaction that reached a block. */
export interface CommitStatus {
    readonly transactionId: string;
    readonly blockNumber: bigint;
    readonly code: ValidationCode;
    /** `code === 'VALID'`. */
    readonly successful: boolean;
}

/** A transaction sent for ordering (fabric-gateway's `SubmittedTransaction`). */
export interface SubmittedTransaction {
    readonly transactionId: string;
    /** The endorsed response payload; meaningful only if the transaction commits VALID. */
    getResult(): Uint8Array;
    /**
     * Waits until the transaction is in a committed block and returns its status. Does not throw
     * for an invalidated transaction (check `successful`); rejects with `DeadlineError` if given one.
     */
    getStatus(options?: { deadlineMs?: number }): Promise<CommitStatus>;
}

/** A chaincode event of a committed, valid transaction (fabric-gateway's `ChaincodeEvent`). */
export interface ChaincodeEvent {
    readonly chaincodeName: string;
    readonly eventName: string;
    readonly payload: Uint8Array;
    readonly transactionId: string;
    readonly blockNumber: bigint;
}

/** An event stream; iterate with `for await`, end it with `close()`. */
export interface ChaincodeEventStream extends AsyncIterable<ChaincodeEvent> {
    close(): void;
}

/** Where to start reading events (fabric-gateway's `ChaincodeEventsOptions`). */
export interface ChaincodeEventsOptions {
    /** First block to read. Ignored when `checkpoint` holds a position. */
    startBlock?: bigint;
    /** Resume after the last checkpointed event: at its block, skipping events up to and including its transaction. */
    checkpoint?: Checkpoint;
}

/** A saved stream position (fabric-gateway's `Checkpoint`; structurally compatible). */
export interface Checkpoint {
    /** Block to resume from, or undefined if nothing was checkpointed. */
    getBlockNumber(): bigint | undefined;
    /** Last processed transaction in that block, or undefined to start at the block's first event. */
    getTransactionId(): string | undefined;
}

/** Records stream progress (fabric-gateway's `Checkpointer`; structurally compatible). */
export interface Checkpointer extends Checkpoint {
    /** Block fully processed: resume at `blockNumber + 1`. */
    checkpointBlock(blockNumber: bigint): Promise<void>;
    /** Transaction processed: resume in `blockNumber` after `transactionId`. */
    checkpointTransaction(blockNumber: bigint, transactionId: string): Promise<void>;
    /** Same as `checkpointTransaction(event.blockNumber, event.transactionId)`. */
    checkpointChaincodeEvent(event: ChaincodeEvent): Promise<void>;
}
