/**
 * Translation of fabric-gateway's errors into the ledger client's typed errors, so services catch
 * the same classes whichever ledger they run on.
 *
 * The Gateway reports a chaincode rejection as a gRPC error whose details carry, per endorsing
 * peer, `chaincode response <status>, <message>` (fabric internal/pkg/gateway, responseStatus);
 * the chaincode's message in turn starts with the protocol's `<code>: <detail>`, which
 * `EndorseError` parses with `parseErrorCode`.
 */
import { GatewayError } from '@hyperledger/fabric-gateway';

import {
    ConnectionError,
    DeadlineError,
    EndorseError,
    EndorsementMismatchError,
    EndorsementPolicyError,
    LedgerError,
    SubmitError,
} from '../errors.js';

/** gRPC status codes used below (https://grpc.io/docs/guides/status-codes/). */
export const GrpcStatus = {
    OK: 0,
    CANCELLED: 1,
    UNKNOWN: 2,
    INVALID_ARGUMENT: 3,
    DEADLINE_EXCEEDED: 4,
    NOT_FOUND: 5,
    ALREADY_EXISTS: 6,
    PERMISSION_DENIED: 7,
    RESOURCE_EXHAUSTED: 8,
    FAILED_PRECONDITION: 9,
    ABORTED: 10,
    OUT_OF_RANGE: 11,
    UNIMPLEMENTED: 12,
    INTERNAL: 13,
    UNAVAILABLE: 14,
    DATA_LOSS: 15,
    UNAUTHENTICATED: 16,
} as const;

const GRPC_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(GrpcStatus).map(([name, code]) => [code, name]));

/** Which Gateway call failed; chooses the `DeadlineError.stage`. */
export type GatewayStage = 'evaluate' | 'endorse' | 'submit' | 'commit';

export interface MappingContext {
    stage: GatewayStage;
    transactionId?: string;
    /** The deadline that applied to the call, in ms (reported by `DeadlineError`). */
    deadlineMs: number;
    /** The endorsement policy in force, for `EndorsementPolicyError.policy`. */
    endorsementPolicy: string;
}

const CHAINCODE_RESPONSE = /chaincode response (\d{3}), ([\s\S]*)$/;

// Messages with which the Gateway and discovery report that the policy cannot be met.
const POLICY_FAILURES = [
    /endorsement policy/i,
    /no combination of peers can be derived/i,
    /failed to collect enough transaction endorsements/i,
    /ProposalResponsePayloads do not match/i,
    /cannot satisfy the endorsement/i,
];

// The Gateway's report (in the per-peer details) that endorsers simulated at different heights.
const PAYLOAD_MISMATCH = /ProposalResponsePayloads do not match/i;

/** gRPC codes with which the Gateway relays a peer's refusal of a proposal. */
const PEER_REFUSALS: ReadonlySet<number> = new Set([
    GrpcStatus.UNKNOWN,
    GrpcStatus.ABORTED,
    GrpcStatus.FAILED_PRECONDITION,
    GrpcStatus.PERMISSION_DENIED,
    GrpcStatus.INVALID_ARGUMENT,
    GrpcStatus.NOT_FOUND,
]);

/** Status and message of the first chaincode response found in the error's details or message. */
export function findChaincodeResponse(error: GatewayError): { status: number; message: string } | undefined {
    const texts = [...error.details.map((detail) => detail.message), error.message];
    for (const text of texts) {
        const match = CHAINCODE_RESPONSE.exec(text);
        if (match !== null) return { status: Number(match[1]), message: match[2] ?? '' };
    }
    return undefined;
}

function describe(error: GatewayError): string {
    const name = GRPC_NAMES.get(error.code) ?? `code ${error.code}`;
    const details = error.details.map((detail) => `${detail.mspId}@${detail.address}: ${detail.message}`);
    return details.length === 0 ? `${name}: ${error.message}` : `${name}: ${error.message} [${details.join('; ')}]`;
}

function transactionIdOf(error: GatewayError, fallback: string | undefined): string | undefined {
    const value = (error as GatewayError & { transactionId?: unknown }).transactionId;
    return typeof value === 'string' && value !== '' ? value : fallback;
}

/**
 * Maps an error thrown by a fabric-gateway call to a `LedgerError`. Errors that are already
 * `LedgerError`s pass through; anything that is not a Gateway error (a bug, a signer failure)
 * is returned unchanged so it is not disguised as a ledger condition.
 */
export function mapGatewayError(error: unknown, context: MappingContext): unknown {
    if (error instanceof LedgerError) return error;
    if (!(error instanceof GatewayError)) return error;
    const transactionId = transactionIdOf(error, context.transactionId);

    const response = findChaincodeResponse(error);
    if (response !== undefined) {
        return new EndorseError(
            { transactionId: transactionId ?? '', status: response.status, chaincodeMessage: response.message },
            { cause: error },
        );
    }
    if (error.code === GrpcStatus.DEADLINE_EXCEEDED) {
        const stage = context.stage === 'evaluate' ? 'endorse' : context.stage;
        return new DeadlineError({ stage, deadlineMs: context.deadlineMs, transactionId }, { cause: error });
    }
    const texts = [error.message, ...error.details.map((detail) => detail.message)];
    const endorsing = context.stage === 'endorse' || context.stage === 'evaluate';
    if (endorsing && texts.some((text) => POLICY_FAILURES.some((pattern) => pattern.test(text)))) {
        const properties = {
            transactionId: transactionId ?? '',
            policy: context.endorsementPolicy,
            endorsers: [],
            reason: describe(error),
        };
        // Different results from different peers: transient, unlike a policy no peers can satisfy.
        return texts.some((text) => PAYLOAD_MISMATCH.test(text))
            ? new EndorsementMismatchError(properties, { cause: error })
            : new EndorsementPolicyError(properties, { cause: error });
    }
    if (endorsing && PEER_REFUSALS.has(error.code)) {
        // The peer refused the proposal itself (unknown chaincode, creator or signature not
        // accepted, access denied): an endorsement failure, as the embedded ledger reports it.
        const message = error.details[0]?.message ?? error.message;
        return new EndorseError(
            { transactionId: transactionId ?? '', status: 500, chaincodeMessage: message },
            { cause: error },
        );
    }
    if (context.stage === 'submit') {
        // The orderer (or the Gateway on its way to it) did not accept the transaction: not ordered.
        return new SubmitError(`submit failed: ${describe(error)}`, transactionId ?? '', { cause: error });
    }
    return new ConnectionError(`${context.stage} failed: ${describe(error)}`, { cause: error, transactionId });
}

/** Event-stream errors after which reconnecting cannot help: the request itself is refused. */
const FATAL_STREAM_CODES: ReadonlySet<number> = new Set([
    GrpcStatus.INVALID_ARGUMENT,
    GrpcStatus.NOT_FOUND,
    GrpcStatus.PERMISSION_DENIED,
    GrpcStatus.UNAUTHENTICATED,
    GrpcStatus.UNIMPLEMENTED,
]);

/** True if an event stream that failed with `error` should be reopened (peer restart, network loss). */
export function isTransientStreamError(error: unknown): boolean {
    if (error instanceof GatewayError) return !FATAL_STREAM_CODES.has(error.code);
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === 'number') return !FATAL_STREAM_CODES.has(code);
    return false;
}
