/**
 * `LedgerContract` over a fabric-gateway `Contract`. Transactions run through the Gateway's
 * explicit steps (proposal → endorse → submit → commit status) rather than the one-shot helpers, so
 * that each step gets its share of the caller's deadline and its errors the right `stage`.
 */
import type { CallOptions } from '@grpc/grpc-js';
import type {
    Contract,
    ProposalOptions,
    SubmittedTransaction as FabricSubmittedTransaction,
} from '@hyperledger/fabric-gateway';

import { assertCommitted } from '../errors.js';
import {
    validationCodeName,
    type CommitStatus,
    type LedgerContract,
    type SubmittedTransaction,
    type TransactionOptions,
} from '../types.js';
import type { FabricTimeouts } from './config.js';
import { mapGatewayError, type GatewayStage } from './errors.js';

/**
 * Deadlines of one call. With `deadlineMs` the whole call shares one absolute deadline (the
 * interface's contract); without it every step gets the connection's default for that step, as
 * fabric-gateway's per-call-type defaults do.
 */
class CallDeadline {
    readonly #end: number | undefined;
    readonly #budgetMs: number | undefined;
    readonly #timeouts: FabricTimeouts;

    constructor(deadlineMs: number | undefined, timeouts: FabricTimeouts) {
        if (deadlineMs !== undefined && (!Number.isFinite(deadlineMs) || deadlineMs <= 0)) {
            throw new RangeError(`deadlineMs must be a positive number, got ${deadlineMs}`);
        }
        this.#budgetMs = deadlineMs;
        this.#end = deadlineMs === undefined ? undefined : Date.now() + deadlineMs;
        this.#timeouts = timeouts;
    }

    /** Milliseconds reported by a DeadlineError for `stage`. */
    budgetFor(stage: GatewayStage): number {
        if (this.#budgetMs !== undefined) return this.#budgetMs;
        switch (stage) {
            case 'evaluate':
                return this.#timeouts.evaluateMs;
            case 'endorse':
                return this.#timeouts.endorseMs;
            case 'submit':
                return this.#timeouts.submitMs;
            case 'commit':
                return this.#timeouts.commitStatusMs;
        }
    }

    callOptions(stage: GatewayStage): CallOptions {
        const end = this.#end ?? Date.now() + this.budgetFor(stage);
        return { deadline: new Date(end) };
    }
}

export class FabricLedgerContract implements LedgerContract {
    readonly chaincodeName: string;
    readonly contractName?: string;
    readonly #contract: Contract;
    readonly #timeouts: FabricTimeouts;
    readonly #endorsementPolicy: string;

    constructor(contract: Contract, timeouts: FabricTimeouts, endorsementPolicy: string) {
        this.#contract = contract;
        this.chaincodeName = contract.getChaincodeName();
        const contractName = contract.getContractName();
        if (contractName !== undefined) this.contractName = contractName;
        this.#timeouts = timeouts;
        this.#endorsementPolicy = endorsementPolicy;
    }

    async evaluate(transactionName: string, options: TransactionOptions = {}): Promise<Uint8Array> {
        const deadline = new CallDeadline(options.deadlineMs, this.#timeouts);
        const proposal = this.#contract.newProposal(transactionName, proposalOptions(options));
        return await this.#step('evaluate', deadline, proposal.getTransactionId(), (call) => proposal.evaluate(call));
    }

    async submitAsync(transactionName: string, options: TransactionOptions = {}): Promise<SubmittedTransaction> {
        const deadline = new CallDeadline(options.deadlineMs, this.#timeouts);
        return await this.#submitAsync(transactionName, options, deadline);
    }

    async submit(transactionName: string, options: TransactionOptions = {}): Promise<Uint8Array> {
        const deadline = new CallDeadline(options.deadlineMs, this.#timeouts);
        const submitted = await this.#submitAsync(transactionName, options, deadline);
        const status = await submitted.waitForStatus(deadline);
        assertCommitted(status);
        return submitted.getResult();
    }

    async #submitAsync(
        transactionName: string,
        options: TransactionOptions,
        deadline: CallDeadline,
    ): Promise<FabricSubmitted> {
        const proposal = this.#contract.newProposal(transactionName, proposalOptions(options));
        const transactionId = proposal.getTransactionId();
        const transaction = await this.#step('endorse', deadline, transactionId, (call) => proposal.endorse(call));
        const submitted = await this.#step('submit', deadline, transactionId, (call) => transaction.submit(call));
        return new FabricSubmitted(submitted, this.#timeouts, (stage, budget, run) =>
            this.#step(stage, budget, transactionId, run),
        );
    }

    async #step<T>(
        stage: GatewayStage,
        deadline: CallDeadline,
        transactionId: string,
        run: (options: CallOptions) => Promise<T>,
    ): Promise<T> {
        try {
            return await run(deadline.callOptions(stage));
        } catch (err) {
            throw mapGatewayError(err, {
                stage,
                transactionId,
                deadlineMs: deadline.budgetFor(stage),
                endorsementPolicy: this.#endorsementPolicy,
            });
        }
    }
}

type StepRunner = <T>(
    stage: GatewayStage,
    deadline: CallDeadline,
    run: (options: CallOptions) => Promise<T>,
) => Promise<T>;

class FabricSubmitted implements SubmittedTransaction {
    readonly transactionId: string;
    readonly #submitted: FabricSubmittedTransaction;
    readonly #timeouts: FabricTimeouts;
    readonly #step: StepRunner;

    constructor(submitted: FabricSubmittedTransaction, timeouts: FabricTimeouts, step: StepRunner) {
        this.#submitted = submitted;
        this.transactionId = submitted.getTransactionId();
        this.#timeouts = timeouts;
        this.#step = step;
    }

    getResult(): Uint8Array {
        return this.#submitted.getResult();
    }

    async getStatus(options: { deadlineMs?: number } = {}): Promise<CommitStatus> {
        return await this.waitForStatus(new CallDeadline(options.deadlineMs, this.#timeouts));
    }

    async waitForStatus(deadline: CallDeadline): Promise<CommitStatus> {
        const status = await this.#step('commit', deadline, (call) => this.#submitted.getStatus(call));
        const code = validationCodeName(status.code);
        return {
            transactionId: status.transactionId,
            blockNumber: status.blockNumber,
            code,
            successful: code === 'VALID',
        };
    }
}

function proposalOptions(options: TransactionOptions): ProposalOptions {
    const result: ProposalOptions = {};
    if (options.arguments !== undefined) result.arguments = options.arguments;
    if (options.transientData !== undefined) result.transientData = options.transientData;
    if (options.endorsingOrganizations !== undefined) result.endorsingOrganizations = options.endorsingOrganizations;
    return result;
}
