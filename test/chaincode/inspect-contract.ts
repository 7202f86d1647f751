/**
 * A test-only contract installed next to the chaincode's contracts on the test network (same
 * chaincode, so the same state namespace): it lists the whole world state, so tests can check a
 * rejection changed nothing and the storage benchmark can count bytes per record kind. It is not
 * part of the chaincode package.
 */
import fca from 'fabric-contract-api';
import { Context, Contract } from 'fabric-contract-api';

import { KeyType } from '@m2m-fabric/chaincode/internal';

const { Returns, Transaction } = fca;

export interface StateEntry {
    /** The composite key's object type, or '' for a simple key. */
    type: string;
    /** Key as a JSON string (composite keys contain U+0000). */
    key: string;
    /** Value, base64. */
    value: string;
}

export class InspectContract extends Contract {
    constructor() {
        super('inspect');
    }

    /** Every key and value of the namespace, in key order per kind. */
    @Transaction(false)
    @Returns('string')
    async dumpState(ctx: Context): Promise<string> {
        const entries: StateEntry[] = [];
        const collect = async (
            type: string,
            iterator: AsyncIterable<{ key: string; value: Uint8Array }>,
        ): Promise<void> => {
            for await (const { key, value } of iterator) {
                entries.push({ type, key, value: Buffer.from(value).toString('base64') });
            }
        };
        await collect('', ctx.stub.getStateByRange('', ''));
        for (const type of Object.values(KeyType)) {
            await collect(type, ctx.stub.getStateByPartialCompositeKey(type, []));
        }
        return JSON.stringify(entries);
    }
}
