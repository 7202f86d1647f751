/**
 * Where the ledger view reads blocks: the embedded ledger's block store in this process, or a
 * peer's query system chaincode (qscc `GetChainInfo` / `GetBlockByNumber`, evaluated through the
 * same Gateway connection the services use) on a real Fabric network.
 */
import { common } from '@hyperledger/fabric-protos';
import type { EmbeddedLedger } from '@m2m-fabric/embedded-ledger';
import type { LedgerConnection } from '@m2m-fabric/sdk';

export interface BlockSource {
    /** Number of blocks (the next block's number). */
    height(): Promise<number>;
    /** A committed block's `common.Block` bytes, or undefined beyond the height. */
    block(blockNumber: number): Promise<Uint8Array | undefined>;
}

/** Blocks of an embedded ledger open in this process. */
export function embeddedBlockSource(ledger: EmbeddedLedger): BlockSource {
    return {
        height: async () => Number(ledger.height),
        block: (n) => ledger.getBlock(BigInt(n)),
    };
}

/**
 * Blocks through qscc on the connection's channel. Fabric lets an org's members call qscc on their
 * own peers (channel Readers policy), the same access a Hyperledger Explorer instance uses.
 */
export function qsccBlockSource(connection: LedgerConnection): BlockSource {
    const qscc = connection.getContract('qscc');
    const channel = connection.channelName;
    return {
        height: async () => {
            const info = common.BlockchainInfo.deserializeBinary(
                await qscc.evaluate('GetChainInfo', { arguments: [channel] }),
            );
            return info.getHeight();
        },
        block: async (n) => qscc.evaluate('GetBlockByNumber', { arguments: [channel, String(n)] }),
    };
}
