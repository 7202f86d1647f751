/**
 * Checkpoint export and import across channels (docs/records.md, "Checkpoints and paper 003's
 * cross-chain anchoring"). On the source channel `recordCheckpoint` commits every writer's head and
 * `exportCheckpoint` turns that transaction's block into a checkpoint proof; on the target channel
 * `registerCheckpointSource` (CSP, once) records the source's orderer roots and `importCheckpoint`
 * submits the proof, which the target's chaincode verifies before storing it.
 */
import { common } from '@hyperledger/fabric-protos';
import { decodeCheckpointProof, encodeCheckpointProof, toHex } from '@m2m-fabric/protocol';
import type { CheckpointProof } from '@m2m-fabric/protocol';

import { assertCommitted } from '../ledger/errors.js';
import type { LedgerConnection, LedgerContract } from '../ledger/types.js';
import { fetchBlockByTxId } from './anchoring.js';
import { transactionIdOf, type ChannelTrust } from './receipt.js';

/** The checkpoints contract's name inside the chaincode. */
export const CHECKPOINTS_CONTRACT = 'checkpoints';

const SIGNATURES_SLOT = 0;
const TRANSACTIONS_FILTER_SLOT = 2;

/** Commits a checkpoint of every writer's head on the source channel; resolves once VALID. */
export async function recordCheckpoint(
    contract: LedgerContract,
): Promise<{ transactionId: string; blockNumber: bigint; checkpoint: string }> {
    const submitted = await contract.submitAsync('recordCheckpoint');
    const status = await submitted.getStatus();
    assertCommitted(status);
    return {
        transactionId: submitted.transactionId,
        blockNumber: status.blockNumber,
        checkpoint: Buffer.from(submitted.getResult()).toString('utf8'),
    };
}

/** The checkpoint proof of a committed `recordCheckpoint` transaction, from its block (qscc). */
export async function exportCheckpoint(connection: LedgerConnection, transactionId: string): Promise<Uint8Array> {
    return encodeCheckpointProof(
        checkpointProofFromBlock(
            connection.channelName,
            transactionId,
            await fetchBlockByTxId(connection, transactionId),
        ),
    );
}

/** Builds the proof from a `common.Block`'s bytes. @throws RangeError when the transaction is not in it */
export function checkpointProofFromBlock(
    channel: string,
    transactionId: string,
    blockBytes: Uint8Array,
): CheckpointProof {
    const block = common.Block.deserializeBinary(blockBytes);
    const header = block.getHeader();
    if (header === undefined) throw new TypeError('the block has no header');
    const envelopes = block.getData()?.getDataList_asU8() ?? [];
    const metadata = block.getMetadata()?.getMetadataList_asU8() ?? [];
    const transactionIndex = envelopes.findIndex((envelope) => transactionIdOf(envelope) === transactionId);
    if (transactionIndex < 0) throw new RangeError(`transaction ${transactionId} is not in the block`);
    return {
        channel,
        transactionId,
        blockNumber: BigInt(header.getNumber()),
        previousHash: header.getPreviousHash_asU8(),
        dataHash: header.getDataHash_asU8(),
        signatures: metadata[SIGNATURES_SLOT] ?? new Uint8Array(),
        envelopes,
        transactionIndex,
        validationCode: metadata[TRANSACTIONS_FILTER_SLOT]?.[transactionIndex] ?? 255,
    };
}

/** Registers the source channel of `trust` (its orderer roots and chaincode) on the target. CSP only. */
export async function registerCheckpointSource(contract: LedgerContract, trust: ChannelTrust): Promise<void> {
    await contract.submit('registerCheckpointSource', {
        arguments: [trust.channel, trust.chaincode, JSON.stringify(trust.orderers)],
    });
}

/**
 * Imports a checkpoint proof from `sourceChannel`; returns what the target stored.
 * @throws EndorseError with the chaincode's code: checkpointInvalid, checkpointNotNewer,
 * unknownCheckpointSource (the target's state unchanged)
 */
export async function importCheckpoint(
    contract: LedgerContract,
    sourceChannel: string,
    proof: Uint8Array,
): Promise<string> {
    decodeCheckpointProof(proof); // a DecodeError here rather than a round trip
    const result = await contract.submit('importCheckpoint', { arguments: [sourceChannel, toHex(proof)] });
    return Buffer.from(result).toString('utf8');
}
