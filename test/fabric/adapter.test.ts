/**
 * Unit tests of the Fabric adapter's own logic: error mapping, the endorse → submit → commit
 * sequence with its deadlines, and event-stream resumption. fabric-gateway's objects are replaced
 * by scripted doubles here (its errors are the real classes); the code under test is the adapter.
 * Against a real network the same code runs in the `npm run test:fabric` suite.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Metadata, type ServiceError } from '@grpc/grpc-js';
import {
    CommitStatusError,
    EndorseError as FabricEndorseError,
    GatewayError,
    type ChaincodeEvent as FabricChaincodeEvent,
    type ChaincodeEventsOptions as FabricEventsOptions,
    type CloseableAsyncIterable,
    type Contract,
    type ErrorDetail,
    type Proposal,
    type ProposalOptions,
    type Status,
    type SubmittedTransaction,
    type Transaction,
} from '@hyperledger/fabric-gateway';
import { SubmitError } from '@hyperledger/fabric-gateway/dist/submiterror.js';

import {
    CommitError,
    ConnectionError,
    DeadlineError,
    EndorseError,
    EndorsementMismatchError,
    EndorsementPolicyError,
    isTransientSubmitError,
    SubmitError as LedgerSubmitError,
    type ChaincodeEvent,
} from '@m2m-fabric/sdk';
import {
    DEFAULT_TIMEOUTS,
    GrpcStatus,
    isTransientStreamError,
    mapGatewayError,
    openGrpcClientCount,
    ResumingEventStream,
} from '@m2m-fabric/sdk';
import { FabricLedgerContract } from '@m2m-fabric/sdk/internal';
import { acquireGrpcClient } from '@m2m-fabric/sdk/internal';

function serviceError(code: number, message: string): ServiceError {
    return Object.assign(new Error(message), { code, details: message, metadata: new Metadata() });
}

function detail(message: string, mspId = 'FogAMSP'): ErrorDetail {
    return { address: 'peer0.foga.m2m.example.com:8051', mspId, message };
}

const context = {
    stage: 'endorse' as const,
    transactionId: 'tx1',
    deadlineMs: 1500,
    endorsementPolicy: 'MAJORITY Endorsement',
};

void describe('Fabric error mapping', () => {
    void it('maps a chaincode rejection to EndorseError with the protocol error code', () => {
        const error = new FabricEndorseError({
            code: GrpcStatus.ABORTED,
            message: '10 ABORTED: failed to endorse transaction, see attached details for more info',
            details: [detail('chaincode response 500, failedDoubleSpendingCheck-1: primary hash already used')],
            cause: serviceError(GrpcStatus.ABORTED, 'failed to endorse'),
            transactionId: 'txA',
        });
        const mapped = mapGatewayError(error, context);
        assert.ok(mapped instanceof EndorseError);
        assert.equal(mapped.status, 500);
        assert.equal(mapped.errorCode, 'failedDoubleSpendingCheck-1');
        assert.equal(mapped.chaincodeMessage, 'failedDoubleSpendingCheck-1: primary hash already used');
        assert.equal(mapped.transactionId, 'txA');
        assert.equal(mapped.cause, error);
    });

    void it('finds the chaincode response in an evaluate error message too', () => {
        const error = new GatewayError({
            code: GrpcStatus.UNKNOWN,
            message:
                '2 UNKNOWN: evaluate call to endorser returned error: chaincode response 403, unauthorisedMsp: FogAMSP may not read',
            details: [],
            cause: serviceError(GrpcStatus.UNKNOWN, 'x'),
        });
        const mapped = mapGatewayError(error, { ...context, stage: 'evaluate' });
        assert.ok(mapped instanceof EndorseError);
        assert.equal(mapped.status, 403);
        assert.equal(mapped.errorCode, 'unauthorisedMsp');
        assert.equal(mapped.transactionId, 'tx1');
    });

    void it('maps DEADLINE_EXCEEDED to DeadlineError with the stage and budget', () => {
        const make = (): GatewayError =>
            new GatewayError({
                code: GrpcStatus.DEADLINE_EXCEEDED,
                message: '4 DEADLINE_EXCEEDED',
                details: [],
                cause: serviceError(4, 'd'),
            });
        for (const [stage, expected] of [
            ['evaluate', 'endorse'],
            ['endorse', 'endorse'],
            ['submit', 'submit'],
            ['commit', 'commit'],
        ] as const) {
            const mapped = mapGatewayError(make(), { ...context, stage });
            assert.ok(mapped instanceof DeadlineError);
            assert.equal(mapped.stage, expected);
            assert.equal(mapped.deadlineMs, 1500);
        }
    });

    void it('maps an unsatisfiable endorsement policy to EndorsementPolicyError', () => {
        const error = new FabricEndorseError({
            code: GrpcStatus.FAILED_PRECONDITION,
            message:
                '9 FAILED_PRECONDITION: no combination of peers can be derived which satisfy the endorsement policy',
            details: [],
            cause: serviceError(9, 'x'),
            transactionId: 'txP',
        });
        const mapped = mapGatewayError(error, context);
        assert.ok(mapped instanceof EndorsementPolicyError);
        assert.equal(mapped.policy, 'MAJORITY Endorsement');
        assert.equal(mapped.transactionId, 'txP');
    });

    void it('maps endorsers that disagree (ProposalResponsePayloads do not match) to the transient EndorsementMismatchError', () => {
        // As Fabric 2.5.12 reported it for concurrent purchases writing one credit key.
        const error = new FabricEndorseError({
            code: GrpcStatus.ABORTED,
            message:
                '10 ABORTED: failed to collect enough transaction endorsements, see attached details for more info',
            details: [
                { ...detail('ProposalResponsePayloads do not match'), mspId: 'FogAMSP', address: '127.0.0.1:8051' },
                { ...detail('ProposalResponsePayloads do not match'), mspId: 'FogBMSP', address: '127.0.0.1:9051' },
            ],
            cause: serviceError(GrpcStatus.ABORTED, 'x'),
            transactionId: 'txM',
        });
        const mapped = mapGatewayError(error, context);
        assert.ok(mapped instanceof EndorsementMismatchError);
        assert.ok(mapped instanceof EndorsementPolicyError, 'still an endorsement policy failure for old callers');
        assert.equal(mapped.transactionId, 'txM');
        assert.match(mapped.message, /FogBMSP@127\.0\.0\.1:9051: ProposalResponsePayloads do not match/);
        assert.ok(isTransientSubmitError(mapped));
        // A policy that no peers can meet is not transient.
        const unsatisfiable = mapGatewayError(
            new FabricEndorseError({
                code: GrpcStatus.FAILED_PRECONDITION,
                message:
                    '9 FAILED_PRECONDITION: no combination of peers can be derived which satisfy the endorsement policy',
                details: [],
                cause: serviceError(9, 'x'),
                transactionId: 'txP',
            }),
            context,
        );
        assert.ok(!(unsatisfiable instanceof EndorsementMismatchError));
        assert.ok(!isTransientSubmitError(unsatisfiable));
    });

    void it('maps a peer refusal without a chaincode response to EndorseError', () => {
        const error = new FabricEndorseError({
            code: GrpcStatus.ABORTED,
            message: '10 ABORTED: failed to endorse transaction, see attached details for more info',
            details: [detail('make sure the chaincode m2m has been successfully defined on channel m2m and try again')],
            cause: serviceError(10, 'x'),
            transactionId: 'txU',
        });
        const mapped = mapGatewayError(error, context);
        assert.ok(mapped instanceof EndorseError);
        assert.equal(mapped.status, 500);
        assert.equal(mapped.errorCode, undefined);
        assert.match(mapped.chaincodeMessage, /successfully defined/);
        const unavailable = new GatewayError({
            code: GrpcStatus.UNAVAILABLE,
            message: '14 UNAVAILABLE: connect ECONNREFUSED',
            details: [],
            cause: serviceError(14, 'x'),
        });
        assert.ok(mapGatewayError(unavailable, { ...context, stage: 'evaluate' }) instanceof ConnectionError);
    });

    void it('maps orderer failures to SubmitError, commit-status failures to ConnectionError, and leaves foreign errors alone', () => {
        const submit = new SubmitError({
            code: GrpcStatus.UNAVAILABLE,
            message: '14 UNAVAILABLE: no orderer reachable',
            details: [detail('connection refused', 'OrdererMSP')],
            cause: serviceError(14, 'x'),
            transactionId: 'txS',
        });
        const mapped = mapGatewayError(submit, { ...context, stage: 'submit' });
        assert.ok(mapped instanceof LedgerSubmitError);
        assert.equal(mapped.transactionId, 'txS');
        assert.match(mapped.message, /submit failed: UNAVAILABLE/);
        assert.match(mapped.message, /OrdererMSP@/);

        const status = new CommitStatusError({
            code: GrpcStatus.PERMISSION_DENIED,
            message: '7 PERMISSION_DENIED',
            details: [],
            cause: serviceError(7, 'x'),
            transactionId: 'txC',
        });
        assert.ok(mapGatewayError(status, { ...context, stage: 'commit' }) instanceof ConnectionError);

        const bug = new TypeError('not a ledger problem');
        assert.equal(mapGatewayError(bug, context), bug);
        const already = new CommitError({ transactionId: 't', code: 'MVCC_READ_CONFLICT', blockNumber: 3n });
        assert.equal(mapGatewayError(already, context), already);
    });

    void it('tells transient stream failures from refusals', () => {
        const gatewayError = (code: number): GatewayError =>
            new GatewayError({ code, message: String(code), details: [], cause: serviceError(code, 'x') });
        assert.equal(isTransientStreamError(gatewayError(GrpcStatus.UNAVAILABLE)), true);
        assert.equal(isTransientStreamError(gatewayError(GrpcStatus.CANCELLED)), true);
        assert.equal(isTransientStreamError(gatewayError(GrpcStatus.INTERNAL)), true);
        assert.equal(isTransientStreamError(gatewayError(GrpcStatus.PERMISSION_DENIED)), false);
        assert.equal(isTransientStreamError(gatewayError(GrpcStatus.NOT_FOUND)), false);
        assert.equal(isTransientStreamError(serviceError(GrpcStatus.UNAVAILABLE, 'x')), true);
        assert.equal(isTransientStreamError(new Error('plain')), false);
    });
});

/** A scripted fabric-gateway Contract: each step either returns or throws what the test says. */
class ScriptedContract {
    calls: { step: string; deadline: Date | undefined; options?: ProposalOptions }[] = [];
    endorse: () => Promise<void> = async () => {};
    submit: () => Promise<void> = async () => {};
    status: () => Promise<Status> = async () => ({ blockNumber: 7n, code: 0, successful: true, transactionId: 'tx-1' });
    evaluateResult = new Uint8Array([1, 2, 3]);

    asContract(): Contract {
        return {
            getChaincodeName: () => 'm2m',
            getContractName: () => undefined,
            newProposal: (name: string, options?: ProposalOptions): Proposal => this.#proposal(name, options),
        } as unknown as Contract;
    }

    #proposal(name: string, options?: ProposalOptions): Proposal {
        this.calls.push({
            step: `proposal:${name}`,
            deadline: undefined,
            ...(options === undefined ? {} : { options }),
        });
        const submitted = {
            getTransactionId: () => 'tx-1',
            getResult: () => new TextEncoder().encode('result'),
            getStatus: async (call?: { deadline?: Date }) => {
                this.calls.push({ step: 'status', deadline: call?.deadline });
                return await this.status();
            },
        } as unknown as SubmittedTransaction;
        const transaction = {
            getTransactionId: () => 'tx-1',
            submit: async (call?: { deadline?: Date }) => {
                this.calls.push({ step: 'submit', deadline: call?.deadline });
                await this.submit();
                return submitted;
            },
        } as unknown as Transaction;
        return {
            getTransactionId: () => 'tx-1',
            evaluate: async (call?: { deadline?: Date }) => {
                this.calls.push({ step: 'evaluate', deadline: call?.deadline });
                return this.evaluateResult;
            },
            endorse: async (call?: { deadline?: Date }) => {
                this.calls.push({ step: 'endorse', deadline: call?.deadline });
                await this.endorse();
                return transaction;
            },
        } as unknown as Proposal;
    }
}

void describe('FabricLedgerContract', () => {
    const make = (script: ScriptedContract): FabricLedgerContract =>
        new FabricLedgerContract(script.asContract(), DEFAULT_TIMEOUTS, 'MAJORITY Endorsement');

    void it('submits through endorse, submit and commit status, passing arguments and transient data', async () => {
        const script = new ScriptedContract();
        const contract = make(script);
        const result = await contract.submit('ActivateSession', {
            arguments: ['a', new Uint8Array([9])],
            transientData: { certificate: new Uint8Array([1]) },
            endorsingOrganizations: ['FogAMSP', 'CSPMSP'],
        });
        assert.equal(new TextDecoder().decode(result), 'result');
        assert.deepEqual(
            script.calls.map((c) => c.step),
            ['proposal:ActivateSession', 'endorse', 'submit', 'status'],
        );
        assert.deepEqual(script.calls[0]?.options, {
            arguments: ['a', new Uint8Array([9])],
            transientData: { certificate: new Uint8Array([1]) },
            endorsingOrganizations: ['FogAMSP', 'CSPMSP'],
        });
    });

    void it('throws CommitError with the validation code and block when the transaction is invalidated', async () => {
        const script = new ScriptedContract();
        script.status = async () => ({ blockNumber: 12n, code: 11, successful: false, transactionId: 'tx-1' });
        await assert.rejects(make(script).submit('ActivateSession'), (err: unknown) => {
            assert.ok(err instanceof CommitError);
            assert.equal(err.code, 'MVCC_READ_CONFLICT');
            assert.equal(err.blockNumber, 12n);
            assert.equal(err.transactionId, 'tx-1');
            return true;
        });
    });

    void it('submitAsync returns before commit; getStatus reports an invalid transaction without throwing', async () => {
        const script = new ScriptedContract();
        script.status = async () => ({ blockNumber: 4n, code: 12, successful: false, transactionId: 'tx-1' });
        const submitted = await make(script).submitAsync('Buy');
        assert.deepEqual(
            script.calls.map((c) => c.step),
            ['proposal:Buy', 'endorse', 'submit'],
        );
        const status = await submitted.getStatus();
        assert.deepEqual(status, {
            transactionId: 'tx-1',
            blockNumber: 4n,
            code: 'PHANTOM_READ_CONFLICT',
            successful: false,
        });
    });

    void it('shares one absolute deadline across the steps when the call gives deadlineMs', async () => {
        const script = new ScriptedContract();
        const before = Date.now();
        await make(script).submit('Buy', { deadlineMs: 2000 });
        const deadlines = script.calls.filter((c) => c.deadline !== undefined).map((c) => c.deadline?.getTime() ?? 0);
        assert.equal(deadlines.length, 3);
        assert.equal(new Set(deadlines).size, 1);
        assert.ok((deadlines[0] ?? 0) >= before + 2000 && (deadlines[0] ?? 0) <= Date.now() + 2000);
        await assert.rejects(make(script).submit('Buy', { deadlineMs: 0 }), RangeError);
    });

    void it('uses the per-step defaults without deadlineMs and maps a timed-out step', async () => {
        const script = new ScriptedContract();
        script.submit = async () => {
            throw new SubmitError({
                code: GrpcStatus.DEADLINE_EXCEEDED,
                message: '4 DEADLINE_EXCEEDED',
                details: [],
                cause: serviceError(4, 'x'),
                transactionId: 'tx-1',
            });
        };
        const before = Date.now();
        await assert.rejects(make(script).submit('Buy'), (err: unknown) => {
            assert.ok(err instanceof DeadlineError);
            assert.equal(err.stage, 'submit');
            assert.equal(err.deadlineMs, DEFAULT_TIMEOUTS.submitMs);
            assert.equal(err.transactionId, 'tx-1');
            return true;
        });
        const endorse = script.calls.find((c) => c.step === 'endorse')?.deadline?.getTime() ?? 0;
        assert.ok(endorse >= before + DEFAULT_TIMEOUTS.endorseMs);
    });

    void it('maps a chaincode rejection during evaluate', async () => {
        const script = new ScriptedContract();
        const contract = make(script);
        assert.deepEqual(await contract.evaluate('Read', { arguments: ['k'] }), new Uint8Array([1, 2, 3]));
        script.endorse = async () => {
            throw new FabricEndorseError({
                code: GrpcStatus.ABORTED,
                message: 'failed to endorse',
                details: [detail('chaincode response 500, certificateAlreadyUsed: used')],
                cause: serviceError(10, 'x'),
                transactionId: 'tx-1',
            });
        };
        await assert.rejects(contract.submit('Activate'), (err: unknown) => {
            assert.ok(err instanceof EndorseError);
            assert.equal(err.errorCode, 'certificateAlreadyUsed');
            return true;
        });
        assert.equal(script.calls.filter((c) => c.step === 'submit').length, 0, 'nothing is ordered after a rejection');
    });
});

/** A scripted event source: each open returns the next batch and then fails (or ends). */
function scriptedEvents(batches: { events: FabricChaincodeEvent[]; end: 'error' | 'end' | 'fatal' }[]): {
    open: (options: FabricEventsOptions) => Promise<CloseableAsyncIterable<FabricChaincodeEvent>>;
    positions: FabricEventsOptions[];
} {
    const positions: FabricEventsOptions[] = [];
    let index = 0;
    return {
        positions,
        open: async (options) => {
            positions.push(options);
            const batch = batches[index++];
            let closed = false;
            async function* iterate(): AsyncGenerator<FabricChaincodeEvent> {
                if (batch === undefined) {
                    // No more scripted batches: wait until closed, like an idle live stream.
                    while (!closed) await new Promise((resolve) => setTimeout(resolve, 5));
                    throw new GatewayError({
                        code: GrpcStatus.CANCELLED,
                        message: 'cancelled',
                        details: [],
                        cause: serviceError(1, 'c'),
                    });
                }
                for (const event of batch.events) yield event;
                if (batch.end === 'error') {
                    throw new GatewayError({
                        code: GrpcStatus.UNAVAILABLE,
                        message: '14 UNAVAILABLE',
                        details: [],
                        cause: serviceError(14, 'u'),
                    });
                }
                if (batch.end === 'fatal') {
                    throw new GatewayError({
                        code: GrpcStatus.PERMISSION_DENIED,
                        message: '7 PERMISSION_DENIED',
                        details: [],
                        cause: serviceError(7, 'p'),
                    });
                }
            }
            const iterator = iterate();
            return {
                [Symbol.asyncIterator]: () => iterator,
                close: () => {
                    closed = true;
                },
                [Symbol.dispose]: () => {
                    closed = true;
                },
            };
        },
    };
}

function event(block: bigint, tx: string): FabricChaincodeEvent {
    return {
        blockNumber: block,
        transactionId: tx,
        chaincodeName: 'm2m',
        eventName: 'SessionActivated',
        payload: new Uint8Array([1]),
    };
}

void describe('ResumingEventStream', () => {
    void it('reopens after a transient failure just after the last delivered event', async () => {
        const source = scriptedEvents([
            { events: [event(5n, 'a'), event(6n, 'b')], end: 'error' },
            { events: [], end: 'error' },
            { events: [event(6n, 'c'), event(8n, 'd')], end: 'end' },
        ]);
        const reconnects: number[] = [];
        let closed = false;
        const stream = new ResumingEventStream(
            source.open,
            { startBlock: 5n },
            { initialDelayMs: 1, maxDelayMs: 4, onReconnect: (_e, attempt) => reconnects.push(attempt) },
            () => {
                closed = true;
            },
        );
        const seen: ChaincodeEvent[] = [];
        for await (const e of stream) {
            seen.push(e);
            if (seen.length === 4) break;
        }
        assert.deepEqual(
            seen.map((e) => `${e.blockNumber}:${e.transactionId}`),
            ['5:a', '6:b', '6:c', '8:d'],
        );
        assert.deepEqual(source.positions[0], { startBlock: 5n });
        for (const position of source.positions.slice(1, 3)) {
            assert.equal(position.checkpoint?.getBlockNumber(), 6n);
            assert.equal(position.checkpoint?.getTransactionId(), 'b');
        }
        assert.deepEqual(reconnects, [1, 2]);
        stream.close();
        assert.equal(closed, true);
    });

    void it('starts from the caller checkpoint and ends with ConnectionError on a refusal', async () => {
        const source = scriptedEvents([{ events: [event(3n, 'x')], end: 'fatal' }]);
        const checkpoint = { getBlockNumber: () => 3n, getTransactionId: () => 'w' };
        const stream = new ResumingEventStream(source.open, { checkpoint }, { initialDelayMs: 1 }, () => {});
        const seen: string[] = [];
        await assert.rejects(
            (async () => {
                for await (const e of stream) seen.push(e.transactionId);
            })(),
            ConnectionError,
        );
        assert.deepEqual(seen, ['x']);
        assert.equal(source.positions[0]?.checkpoint, checkpoint);
    });

    void it('close() ends an idle iteration', async () => {
        const source = scriptedEvents([]);
        const stream = new ResumingEventStream(source.open, {}, { initialDelayMs: 1 }, () => {});
        const done = (async () => {
            const seen: ChaincodeEvent[] = [];
            for await (const e of stream) seen.push(e);
            return seen;
        })();
        await new Promise((resolve) => setTimeout(resolve, 20));
        stream.close();
        assert.deepEqual(await done, []);
    });
});

void describe('gRPC client pool', () => {
    void it('shares one client per endpoint and closes it with the last release', () => {
        const before = openGrpcClientCount();
        const ca = new TextEncoder().encode('-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n');
        const endpoint = { peerEndpoint: '127.0.0.1:1', hostAlias: 'peer0.csp.m2m.example.com', tlsCaCert: ca };
        const a = acquireGrpcClient(endpoint);
        const b = acquireGrpcClient({ ...endpoint });
        const c = acquireGrpcClient({ ...endpoint, hostAlias: undefined });
        assert.equal(a.client, b.client);
        assert.notEqual(a.client, c.client);
        assert.equal(openGrpcClientCount(), before + 2);
        a.release();
        a.release(); // idempotent
        assert.equal(openGrpcClientCount(), before + 2);
        b.release();
        c.release();
        assert.equal(openGrpcClientCount(), before);
    });
});
