/**
 * Checks an embedded ledger's whole hash chain: for every block, its number, its data hash
 * (recomputed from its envelopes), its previous-hash link to the header hash of the block before,
 * and finally that the stored chain tip matches the last block. Reports the first bad block.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { blockDataHash, blockHeaderHash, decodeBlock } from './blocks.js';
import { LedgerStore } from './store.js';

export type VerifyResult =
    | { readonly ok: true; readonly height: number }
    | { readonly ok: false; readonly height: number; readonly firstBadBlock: number; readonly reason: string };

function equal(a: Uint8Array, b: Uint8Array): boolean {
    return Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

/**
 * Where the ledger database is, given any of: its own directory, the directory given to
 * `EmbeddedLedger.open` (database in `ledger/`), or a data directory of `m2m demo` / `npm start` or
 * `m2m peer`, which open the ledger in `ledger/` (database in `ledger/ledger/`).
 * @throws Error naming every place looked at when none holds a ledger database.
 */
export function findLedgerDatabase(dataDir: string): string {
    const candidates = [dataDir, join(dataDir, 'ledger'), join(dataDir, 'ledger', 'ledger')];
    const found = candidates.find((dir) => existsSync(join(dir, 'CURRENT')));
    if (found === undefined) throw new Error(`no ledger database in ${candidates.join(', ')}`);
    return found;
}

/**
 * Verifies the ledger under `dataDir` (see {@link findLedgerDatabase} for the directories accepted).
 * @throws Error when there is no ledger database there, or it is open in another process.
 */
export async function verifyLedger(dataDir: string): Promise<VerifyResult> {
    const dir = findLedgerDatabase(dataDir);
    const store = await LedgerStore.open(dir, { sync: false });
    try {
        return await verifyStore(store);
    } finally {
        await store.close();
    }
}

export async function verifyStore(store: LedgerStore): Promise<VerifyResult> {
    const height = store.height;
    let previousHash: Uint8Array = new Uint8Array();
    for (let number = 0; number < height; number++) {
        const bad = (reason: string): VerifyResult => ({ ok: false, height, firstBadBlock: number, reason });
        const bytes = await store.getBlock(number);
        if (bytes === undefined) return bad('block missing');
        let block;
        try {
            block = decodeBlock(bytes);
        } catch (err) {
            return bad(`block does not decode: ${(err as Error).message}`);
        }
        if (block.number !== number) return bad(`header says block ${block.number}`);
        if (!equal(block.previousHash, previousHash))
            return bad('previous hash does not match the header hash of the previous block');
        if (!equal(block.dataHash, blockDataHash(block.envelopes)))
            return bad('data hash does not match the block data');
        if (block.validationCodes.length !== block.envelopes.length)
            return bad('transaction filter length differs from the number of transactions');
        previousHash = blockHeaderHash(number, block.previousHash, block.dataHash);
    }
    if (height > 0 && !equal(store.tipHash, previousHash)) {
        return {
            ok: false,
            height,
            firstBadBlock: height - 1,
            reason: 'stored chain tip does not match the last block',
        };
    }
    if ((await store.getBlock(height)) !== undefined) {
        return { ok: false, height, firstBadBlock: height, reason: 'a block exists beyond the recorded height' };
    }
    return { ok: true, height };
}
