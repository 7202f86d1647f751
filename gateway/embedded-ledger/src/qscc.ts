/**
 * The query system chaincode (Fabric's core/scc/qscc) over the embedded ledger's block store, so
 * a client fetches blocks with the same evaluate call on both ledgers —
 * `getContract('qscc').evaluate('GetBlockByTxID', { arguments: [channel, txId] })` — and gets the
 * `common.Block` bytes a Fabric peer would return. Functions and their errors follow Fabric's:
 * GetChainInfo, GetBlockByNumber, GetBlockByHash, GetBlockByTxID, GetTransactionByID. Any channel
 * member may call it (Fabric's default ACL `/Channel/Application/Readers`); the endorser has
 * already checked the creator.
 */
import { blockHeaderHash, decodeBlock } from './blocks.js';
import type { ChaincodeHost, ChaincodeResult } from './chaincode.js';
import { common, peer } from './protos.js';
import type { LedgerStore } from './store.js';

export const QSCC = 'qscc';

const decoder = new TextDecoder();

function ok(payload: Uint8Array): ChaincodeResult {
    return { status: 200, message: '', payload, event: undefined };
}

function error(message: string): ChaincodeResult {
    return { status: 500, message, payload: new Uint8Array(), event: undefined };
}

export class QueryChaincode implements ChaincodeHost {
    readonly name = QSCC;
    readonly version = 'syscc';
    readonly #store: LedgerStore;

    constructor(store: LedgerStore) {
        this.#store = store;
    }

    async invoke(
        _handler: unknown,
        channelId: string,
        _txId: string,
        input: InstanceType<typeof peer.ChaincodeInput>,
    ): Promise<ChaincodeResult> {
        const args = input.getArgsList_asU8().map((a) => decoder.decode(a));
        const [fn, channel, argument] = args;
        if (fn === undefined || args.length < 2) return error(`Incorrect number of arguments, ${args.length}`);
        if (channel !== channelId) return error(`Invalid chain ID, ${channel}`);
        switch (fn) {
            case 'GetChainInfo': {
                const height = this.#store.height;
                const info = new common.BlockchainInfo();
                info.setHeight(height);
                info.setCurrentblockhash(this.#store.tipHash);
                if (height > 1) {
                    const previous = await this.#store.getBlock(height - 1);
                    if (previous !== undefined) info.setPreviousblockhash(decodeBlock(previous).previousHash);
                }
                return ok(info.serializeBinary());
            }
            case 'GetBlockByNumber': {
                if (argument === undefined || !/^(0|[1-9][0-9]*)$/.test(argument)) {
                    return error(
                        `Failed to parse block number with error strconv.ParseUint: parsing "${argument ?? ''}": invalid syntax`,
                    );
                }
                const block = await this.#store.getBlock(Number(argument));
                return block === undefined
                    ? error(`Failed to get block number ${argument}, error entry not found in index`)
                    : ok(block);
            }
            case 'GetBlockByTxID':
            case 'GetTransactionByID': {
                if (argument === undefined || argument === '') return error('Transaction ID must not be nil.');
                const location = await this.#store.getTransaction(argument);
                const block = location === undefined ? undefined : await this.#store.getBlock(location.blockNum);
                if (location === undefined || block === undefined) {
                    return error(
                        `Failed to get ${fn === 'GetBlockByTxID' ? 'block' : 'transaction'} for txID ${argument}, error entry not found in index`,
                    );
                }
                if (fn === 'GetBlockByTxID') return ok(block);
                const processed = new peer.ProcessedTransaction();
                processed.setTransactionenvelope(
                    common.Envelope.deserializeBinary(decodeBlock(block).envelopes[location.txNum]!),
                );
                processed.setValidationcode(location.code);
                return ok(processed.serializeBinary());
            }
            case 'GetBlockByHash': {
                const wanted = Buffer.from(input.getArgsList_asU8()[2] ?? new Uint8Array());
                // The embedded store indexes blocks by number only; a hash lookup walks back from the tip.
                for (let n = this.#store.height - 1; n >= 0; n--) {
                    const bytes = await this.#store.getBlock(n);
                    if (bytes === undefined) break;
                    const block = decodeBlock(bytes);
                    if (Buffer.from(blockHeaderHash(block.number, block.previousHash, block.dataHash)).equals(wanted))
                        return ok(bytes);
                }
                return error('Failed to get block hash, error entry not found in index');
            }
            default:
                return error(`Requested function ${fn} not found.`);
        }
    }

    async close(): Promise<void> {
        // Nothing to release.
    }
}
