/**
 * Checkpoint export and import across channels (docs/records.md, "Checkpoints and paper 003's
 * cross-chain anchoring"). On the source channel `recordCheckpoint` commits every writer's head and
 * `exportCheckpoint` turns that transaction's block into a checkpoint proof; on the target channel
 * `registerCheckpointSource` (CSP, once) records the source's orderer roots and `importCheckpoint`
 * submits the proof, which the target's chaincode verifies before storing it.
 */
import { decodeCheckpointProof, encodeCheckpointProof, toHex, transactionInBlock } from '@m2m-fabric/protocol';
import type { ChannelTrust, CheckpointProof } from '@m2m-fabric/protocol';

import { submitVisibleTo, type VisibilityOptions } from '../ledger/commit-wait.js';
import { assertCommitted } from '../ledger/errors.js';
import type { LedgerConnection, LedgerContract } from '../ledger/types.js';
import { fetchBlockByTxId } from './anchoring.js';

/** The checkpoints contract's name inside the chaincode. */
export const CHECKPOINTS_CONTRACT = 'checkpoints';

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
    const { number, ...placed } = transactionInBlock(blockBytes, transactionId);
    return { channel, transactionId, blockNumber: BigInt(number), ...placed };
}

/**
 * Registers the source channel of `trust` (its orderer roots and chaincode) on the target. CSP only.
 * `visibility.visibleOn`: the peers of the organisations that import next.
 * @throws EndorseError with the chaincode's code: duplicateCheckpointSource, unauthorisedMsp
 * @throws CommitWaitTimeoutError when a `visibleOn` peer has not committed in time
 */
export async function registerCheckpointSource(
    contract: LedgerContract,
    trust: ChannelTrust,
    visibility: VisibilityOptions = {},
): Promise<void> {
    await submitVisibleTo(
        contract,
        'registerCheckpointSource',
        { arguments: [trust.channel, trust.chaincode, JSON.stringify(trust.orderers)] },
        visibility,
        { attempts: 1 },
    );
}

/**
 * Imports a checkpoint proof from `sourceChannel`; returns what the target stored.
 * @throws EndorseError with the chaincode's code: checkpointInvalid, checkpointNotNewer,
 * unknownCheckpointSource (the target's state unchanged)
 * @throws CommitWaitTimeoutError when a `visibility.visibleOn` peer has not committed in time
 */
export async function importCheckpoint(
    contract: LedgerContract,
    sourceChannel: string,
    proof: Uint8Array,
    visibility: VisibilityOptions = {},
): Promise<string> {
    decodeCheckpointProof(proof); // a DecodeError here rather than a round trip
    const { result } = await submitVisibleTo(
        contract,
        'importCheckpoint',
        { arguments: [sourceChannel, toHex(proof)] },
        visibility,
        { attempts: 1 },
    );
    return Buffer.from(result).toString('utf8');
}
