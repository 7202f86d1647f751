/**
 * What every contract of the suite shares: the access policy and the rule that every rejection
 * leaves the contract as a coded error (see errors.ts).
 */
import { Context, Contract } from 'fabric-contract-api';

import { accessPolicyFromEnv } from './access.js';
import type { AccessPolicy } from './access.js';
import { ErrorCode, reject, toContractError } from './errors.js';

/** fabric-contract-api types it as a Function; at run time it is the transaction's name. */
type TransactionFunction = Parameters<Contract['aroundTransaction']>[1];

export abstract class M2MContract extends Contract {
    protected readonly policy: AccessPolicy;

    constructor(name: string, policy: AccessPolicy = accessPolicyFromEnv()) {
        super(name);
        this.policy = policy;
    }

    /** Runs the transaction and converts any failure into a coded rejection. */
    override async aroundTransaction(ctx: Context, fn: TransactionFunction, parameters: unknown): Promise<void> {
        try {
            // The base class calls this[fn](ctx, ...parameters) and returns its result.
            return await super.aroundTransaction(ctx, fn, parameters);
        } catch (error) {
            throw toContractError(error);
        }
    }

    override unknownTransaction(ctx: Context): Promise<void> {
        const { fcn } = ctx.stub.getFunctionAndParameters();
        return Promise.resolve(reject(ErrorCode.MalformedInput, `no transaction ${fcn} in contract ${this.getName()}`));
    }
}
