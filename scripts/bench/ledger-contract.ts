/** The benchmark's trivial chaincode: one putState per transaction. */
import './quiet-shim.js';

import fca, { Context, Contract } from 'fabric-contract-api';

const { Info, Transaction } = fca;

@Info({ title: 'Bench', description: 'embedded ledger benchmark' })
export class BenchContract extends Contract {
    constructor() {
        super('Bench');
    }

    @Transaction()
    async Put(ctx: Context, key: string, value: string): Promise<void> {
        await ctx.stub.putState(key, Buffer.from(value));
    }
}
