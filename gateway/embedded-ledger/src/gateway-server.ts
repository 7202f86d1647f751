/**
 * A Fabric Gateway gRPC endpoint (`gateway.Gateway`: Evaluate, Endorse, Submit, CommitStatus,
 * ChaincodeEvents) in front of the embedded ledger, one per organisation, over TLS — what a Fabric
 * 2.4+ peer exposes. `@hyperledger/fabric-gateway` clients, and so the project's Fabric adapter
 * (`FabricLedgerConnector`) and every service configured with `FABRIC_*` settings, connect to it
 * exactly as to a real peer: same messages, same signatures, same gRPC status codes and error
 * details. That makes the real-Fabric code path runnable and testable on a machine without Fabric,
 * and lets services run as separate processes against one embedded ledger.
 *
 * Errors follow Fabric's gateway (internal/pkg/gateway): a chaincode or peer refusal is ABORTED
 * with `gateway.ErrorDetail`s (`chaincode response <status>, <message>`) in the status details; an
 * unsatisfiable policy is FAILED_PRECONDITION; a malformed request INVALID_ARGUMENT; a request
 * signed by an unknown or wrong identity PERMISSION_DENIED.
 */
import * as grpc from '@grpc/grpc-js';
import { gateway, google, orderer, peer, common } from '@hyperledger/fabric-protos';

import { EndorseError, EndorsementPolicyError, LedgerError, SubmitError } from '@m2m-fabric/sdk';
import { ValidationCodes, type ChaincodeEventStream, type Checkpoint } from '@m2m-fabric/sdk';
import type { EmbeddedLedger } from './ledger.js';
import type { TlsServerMaterial } from './tls.js';
import { prepareTransaction, receiveSignedProposal, type ReceivedProposal } from './transaction.js';

/** google.protobuf.Any (google-protobuf ships no typings for it). */
interface AnyMessage {
    setTypeUrl(value: string): void;
    setValue(value: Uint8Array): void;
}

export interface GatewayEndpointOptions {
    /** The organisation whose peer this endpoint is: its endorser is asked first. */
    readonly mspId: string;
    /** Address to listen on; default 127.0.0.1. */
    readonly host?: string;
    /** Port; default 0 (any free port). */
    readonly port?: number;
    /** Server certificate and key (see `loadOrCreateTlsServer`). */
    readonly tls: TlsServerMaterial;
}

type StatusError = Partial<grpc.StatusObject> & { code: grpc.status; details: string };

/** The address of a Gateway endpoint is taken by another process (EADDRINUSE). */
export class EndpointInUseError extends Error {
    /** `host:port` that could not be bound. */
    readonly address: string;
    /** The organisation whose peer the endpoint was for. */
    readonly mspId: string;
    constructor(address: string, mspId: string, cause: Error) {
        super(`${address} (the Gateway endpoint of ${mspId}'s peer) is already in use`, { cause });
        this.name = 'EndpointInUseError';
        this.address = address;
        this.mspId = mspId;
    }
}

/**
 * Replaces grpc-js's logger with its default (console.error with a severity letter) minus the line
 * it prints before rejecting a bind ("No address added out of total N resolved"): the rejection
 * carries the same text, and {@link EmbeddedGatewayServer.start} reports a taken port as
 * {@link EndpointInUseError}, so the line only repeats it. For processes that report that error
 * themselves (`m2m peer`); it changes grpc-js's logger for the whole process.
 */
export function quietBindFailureLog(): void {
    const write =
        (letter: string) =>
        (message?: unknown, ...rest: unknown[]): void => {
            if (letter === 'E' && String(message).startsWith('No address added out of total')) return;
            console.error(`${letter} ${String(message)}`, ...rest);
        };
    grpc.setLogger({ error: write('E'), info: write('I'), debug: write('D') });
}

/** A gRPC error carrying Fabric gateway error details, as the Gateway service builds them. */
function rpcError(code: grpc.status, message: string, details: gateway.ErrorDetail[] = []): StatusError {
    const metadata = new grpc.Metadata();
    if (details.length > 0) {
        const status = new google.rpc.Status();
        status.setCode(code);
        status.setMessage(message);
        for (const detail of details) {
            // addDetails() without an argument appends a new, empty Any and returns it.
            const any = status.addDetails() as unknown as AnyMessage;
            any.setTypeUrl('type.googleapis.com/gateway.ErrorDetail');
            any.setValue(detail.serializeBinary());
        }
        metadata.set('grpc-status-details-bin', Buffer.from(status.serializeBinary()));
    }
    return { code, details: message, metadata };
}

export class EmbeddedGatewayServer {
    readonly mspId: string;
    readonly #ledger: EmbeddedLedger;
    readonly #server: grpc.Server;
    readonly #streams = new Set<ChaincodeEventStream>();
    #endpoint = '';

    private constructor(ledger: EmbeddedLedger, mspId: string) {
        this.#ledger = ledger;
        this.mspId = mspId;
        this.#server = new grpc.Server();
        this.#server.addService(gateway.GatewayService, {
            evaluate: (call, callback) => void this.#evaluate(call, callback),
            endorse: (call, callback) => void this.#endorse(call, callback),
            submit: (call, callback) => void this.#submit(call, callback),
            commitStatus: (call, callback) => void this.#commitStatus(call, callback),
            chaincodeEvents: (call) => void this.#chaincodeEvents(call),
        } satisfies gateway.IGatewayServer);
    }

    /**
     * Starts an endpoint for `options.mspId`'s peer; resolves once it listens.
     * @throws {@link EndpointInUseError} when another process holds `host:port`.
     */
    static async start(ledger: EmbeddedLedger, options: GatewayEndpointOptions): Promise<EmbeddedGatewayServer> {
        if (!ledger.organisations.includes(options.mspId)) {
            throw new RangeError(`organisation ${options.mspId} is not on channel ${ledger.channelName}`);
        }
        const server = new EmbeddedGatewayServer(ledger, options.mspId);
        const host = options.host ?? '127.0.0.1';
        const credentials = grpc.ServerCredentials.createSsl(
            null,
            [
                {
                    private_key: Buffer.from(options.tls.privateKeyPem),
                    cert_chain: Buffer.from(options.tls.certificatePem),
                },
            ],
            false,
        );
        const address = `${host}:${options.port ?? 0}`;
        const port = await new Promise<number>((resolve, reject) =>
            server.#server.bindAsync(address, credentials, (err, bound) => {
                if (err === null) return resolve(bound);
                server.#server.forceShutdown();
                // grpc-js reports a taken port only inside its message ("... EADDRINUSE ...").
                reject(/EADDRINUSE/.test(err.message) ? new EndpointInUseError(address, options.mspId, err) : err);
            }),
        );
        server.#endpoint = `${host}:${port}`;
        return server;
    }

    /** `host:port` the endpoint listens on (`FABRIC_PEER_ENDPOINT`). */
    get endpoint(): string {
        return this.#endpoint;
    }

    /** Stops accepting calls, ends event streams and waits (briefly) for calls in progress. */
    async close(): Promise<void> {
        for (const stream of [...this.#streams]) stream.close();
        await new Promise<void>((resolve) => {
            const force = setTimeout(() => {
                this.#server.forceShutdown();
                resolve();
            }, 2000);
            this.#server.tryShutdown(() => {
                clearTimeout(force);
                resolve();
            });
        });
    }

    #detail(message: string, mspId = this.mspId): gateway.ErrorDetail {
        const detail = new gateway.ErrorDetail();
        detail.setAddress(this.#endpoint);
        detail.setMspId(mspId);
        detail.setMessage(message);
        return detail;
    }

    #receive(signed: peer.SignedProposal | undefined): ReceivedProposal | StatusError {
        if (signed === undefined) return rpcError(grpc.status.INVALID_ARGUMENT, 'a signed proposal is required');
        let received: ReceivedProposal;
        try {
            received = receiveSignedProposal(signed.serializeBinary());
        } catch (err) {
            return rpcError(
                grpc.status.INVALID_ARGUMENT,
                `failed to unpack transaction proposal: ${(err as Error).message}`,
            );
        }
        if (received.channelId !== this.#ledger.channelName) {
            return rpcError(grpc.status.NOT_FOUND, `channel '${received.channelId}' not found`);
        }
        return received;
    }

    /** Maps an endorsement failure to the status Fabric's gateway returns. */
    #endorsementError(err: unknown, verb: 'endorse' | 'evaluate'): StatusError {
        if (err instanceof EndorseError) {
            return rpcError(grpc.status.ABORTED, `failed to ${verb} transaction, see attached details for more info`, [
                this.#detail(`chaincode response ${err.status}, ${err.chaincodeMessage}`),
            ]);
        }
        if (err instanceof EndorsementPolicyError) {
            if (err.endorsers.length === 0) {
                return rpcError(
                    grpc.status.FAILED_PRECONDITION,
                    `no combination of peers can be derived which satisfy the endorsement policy: ${err.message}`,
                );
            }
            return rpcError(
                grpc.status.ABORTED,
                'failed to collect enough transaction endorsements, see attached details for more info',
                [this.#detail(`ProposalResponsePayloads do not match: ${err.message}`)],
            );
        }
        if (err instanceof LedgerError) return rpcError(grpc.status.UNAVAILABLE, err.message);
        return rpcError(grpc.status.INTERNAL, (err as Error).message);
    }

    async #evaluate(
        call: grpc.ServerUnaryCall<gateway.EvaluateRequest, gateway.EvaluateResponse>,
        callback: grpc.sendUnaryData<gateway.EvaluateResponse>,
    ): Promise<void> {
        const received = this.#receive(call.request.getProposedTransaction());
        if ('code' in received) return callback(received);
        let targets = call.request.getTargetOrganizationsList();
        // Transient data stays inside the gateway's own organisation unless targets are named.
        if (targets.length === 0 && received.hasTransientData) targets = [this.mspId];
        try {
            const [outcome] = await this.#ledger.endorseProposal(received, received.chaincodeName, {
                localMspId: this.mspId,
                endorsingOrganizations: targets,
                evaluateOnly: true,
            });
            const result = new peer.Response();
            result.setStatus(outcome?.status ?? 200);
            result.setMessage(outcome?.message ?? '');
            result.setPayload(outcome?.payload ?? new Uint8Array());
            const response = new gateway.EvaluateResponse();
            response.setResult(result);
            callback(null, response);
        } catch (err) {
            callback(this.#endorsementError(err, 'evaluate'));
        }
    }

    async #endorse(
        call: grpc.ServerUnaryCall<gateway.EndorseRequest, gateway.EndorseResponse>,
        callback: grpc.sendUnaryData<gateway.EndorseResponse>,
    ): Promise<void> {
        const received = this.#receive(call.request.getProposedTransaction());
        if ('code' in received) return callback(received);
        try {
            const outcomes = await this.#ledger.endorseProposal(received, received.chaincodeName, {
                localMspId: this.mspId,
                endorsingOrganizations: call.request.getEndorsingOrganizationsList(),
                evaluateOnly: false,
            });
            const endorsements = outcomes.flatMap((outcome) =>
                outcome.endorsed === undefined ? [] : [outcome.endorsed],
            );
            const envelope = new common.Envelope();
            envelope.setPayload(prepareTransaction(received, endorsements));
            const response = new gateway.EndorseResponse();
            response.setPreparedTransaction(envelope);
            callback(null, response);
        } catch (err) {
            callback(this.#endorsementError(err, 'endorse'));
        }
    }

    #submit(
        call: grpc.ServerUnaryCall<gateway.SubmitRequest, gateway.SubmitResponse>,
        callback: grpc.sendUnaryData<gateway.SubmitResponse>,
    ): void {
        const envelope = call.request.getPreparedTransaction();
        if (envelope === undefined || envelope.getPayload_asU8().length === 0) {
            return callback(rpcError(grpc.status.INVALID_ARGUMENT, 'a prepared transaction is required'));
        }
        if (call.request.getChannelId() !== this.#ledger.channelName) {
            return callback(rpcError(grpc.status.NOT_FOUND, `channel '${call.request.getChannelId()}' not found`));
        }
        // The ordering service admits only envelopes signed by a channel member (its Writers policy).
        const payloadBytes = envelope.getPayload_asU8();
        let creator: Uint8Array;
        try {
            const header = common.Payload.deserializeBinary(payloadBytes).getHeader();
            creator = common.SignatureHeader.deserializeBinary(
                header?.getSignatureHeader_asU8() ?? new Uint8Array(),
            ).getCreator_asU8();
        } catch (err) {
            return callback(rpcError(grpc.status.INVALID_ARGUMENT, `malformed transaction: ${(err as Error).message}`));
        }
        const signer = this.#ledger.authenticate(creator, payloadBytes, envelope.getSignature_asU8());
        if (typeof signer === 'string') {
            return callback(
                rpcError(
                    grpc.status.ABORTED,
                    `received unsuccessful response from orderer: status=FORBIDDEN, info=${signer}`,
                ),
            );
        }
        try {
            this.#ledger.orderEnvelope(
                { bytes: envelope.serializeBinary(), size: payloadBytes.length + envelope.getSignature_asU8().length },
                call.request.getTransactionId(),
            );
            callback(null, new gateway.SubmitResponse());
        } catch (err) {
            const info = err instanceof SubmitError ? err.message : (err as Error).message;
            callback(
                rpcError(
                    grpc.status.ABORTED,
                    `received unsuccessful response from orderer: status=BAD_REQUEST, info=${info}`,
                ),
            );
        }
    }

    async #commitStatus(
        call: grpc.ServerUnaryCall<gateway.SignedCommitStatusRequest, gateway.CommitStatusResponse>,
        callback: grpc.sendUnaryData<gateway.CommitStatusResponse>,
    ): Promise<void> {
        let request: gateway.CommitStatusRequest;
        try {
            request = gateway.CommitStatusRequest.deserializeBinary(call.request.getRequest_asU8());
        } catch (err) {
            return callback(rpcError(grpc.status.INVALID_ARGUMENT, `malformed request: ${(err as Error).message}`));
        }
        const refusal = this.#authorise(request.getIdentity_asU8(), call.request);
        if (refusal !== undefined) return callback(refusal);
        if (request.getChannelId() !== this.#ledger.channelName) {
            return callback(rpcError(grpc.status.NOT_FOUND, `channel '${request.getChannelId()}' not found`));
        }
        const controller = new AbortController();
        call.on('cancelled', () => controller.abort(new Error('cancelled by the client')));
        try {
            const status = await this.#ledger.waitForCommit(request.getTransactionId(), controller.signal);
            const response = new gateway.CommitStatusResponse();
            response.setResult(ValidationCodes[status.code]);
            response.setBlockNumber(Number(status.blockNumber));
            callback(null, response);
        } catch (err) {
            if (controller.signal.aborted) return callback(rpcError(grpc.status.CANCELLED, 'cancelled'));
            callback(rpcError(grpc.status.UNAVAILABLE, (err as Error).message));
        }
    }

    async #chaincodeEvents(
        call: grpc.ServerWritableStream<gateway.SignedChaincodeEventsRequest, gateway.ChaincodeEventsResponse>,
    ): Promise<void> {
        const fail = (error: StatusError): void => {
            call.emit('error', error);
        };
        let request: gateway.ChaincodeEventsRequest;
        try {
            request = gateway.ChaincodeEventsRequest.deserializeBinary(call.request.getRequest_asU8());
        } catch (err) {
            return fail(rpcError(grpc.status.INVALID_ARGUMENT, `malformed request: ${(err as Error).message}`));
        }
        const refusal = this.#authorise(request.getIdentity_asU8(), call.request);
        if (refusal !== undefined) return fail(refusal);
        if (request.getChannelId() !== this.#ledger.channelName) {
            return fail(rpcError(grpc.status.NOT_FOUND, `channel '${request.getChannelId()}' not found`));
        }
        const height = this.#ledger.height;
        const position = request.getStartPosition();
        let startBlock: bigint;
        switch (position?.getTypeCase()) {
            case orderer.SeekPosition.TypeCase.SPECIFIED:
                startBlock = BigInt(position?.getSpecified()?.getNumber() ?? 0);
                break;
            case orderer.SeekPosition.TypeCase.OLDEST:
                startBlock = 0n;
                break;
            case orderer.SeekPosition.TypeCase.NEWEST:
                startBlock = height > 0n ? height - 1n : 0n;
                break;
            default: // next commit, or none given
                startBlock = height;
        }
        const afterTransactionId = request.getAfterTransactionId();
        const checkpoint: Checkpoint | undefined =
            afterTransactionId === ''
                ? undefined
                : { getBlockNumber: () => startBlock, getTransactionId: () => afterTransactionId };
        let stream: ChaincodeEventStream;
        try {
            stream = this.#ledger.openEventStream(
                request.getChaincodeId(),
                checkpoint === undefined ? { startBlock } : { checkpoint },
                () => this.#streams.delete(stream),
            );
        } catch (err) {
            return fail(rpcError(grpc.status.UNAVAILABLE, (err as Error).message));
        }
        this.#streams.add(stream);
        call.on('cancelled', () => stream.close());
        try {
            for await (const event of stream) {
                const chaincodeEvent = new peer.ChaincodeEvent();
                chaincodeEvent.setChaincodeId(event.chaincodeName);
                chaincodeEvent.setTxId(event.transactionId);
                chaincodeEvent.setEventName(event.eventName);
                chaincodeEvent.setPayload(event.payload);
                const response = new gateway.ChaincodeEventsResponse();
                response.setEventsList([chaincodeEvent]);
                response.setBlockNumber(Number(event.blockNumber));
                if (!call.write(response)) await new Promise((resolve) => call.once('drain', resolve));
            }
            call.end();
        } catch (err) {
            fail(rpcError(grpc.status.UNAVAILABLE, (err as Error).message));
        } finally {
            stream.close();
        }
    }

    /** Refusal of a signed request whose identity or signature does not check out, else undefined. */
    #authorise(
        identity: Uint8Array,
        signed: { getRequest_asU8(): Uint8Array; getSignature_asU8(): Uint8Array },
    ): StatusError | undefined {
        const result = this.#ledger.authenticate(identity, signed.getRequest_asU8(), signed.getSignature_asU8());
        return typeof result === 'string'
            ? rpcError(grpc.status.PERMISSION_DENIED, `access denied: ${result}`)
            : undefined;
    }
}
