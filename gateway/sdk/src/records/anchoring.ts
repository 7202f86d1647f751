/**
 * Client side of the anchors contract: submit a writer's signed batch head with its consistency
 * proof, and fetch the block of an anchoring transaction through qscc — the same evaluate call on
 * a Fabric peer and on the embedded ledger.
 */
import {
    MerkleTree,
    SchnorrContext,
    batchHeadMessage,
    encodeSchnorrSignature,
    schnorrSign,
    toHex,
} from '@m2m-fabric/protocol';
import type { Suite } from '@m2m-fabric/protocol';

import { assertCommitted } from '../ledger/errors.js';
import type { LedgerConnection, LedgerContract } from '../ledger/types.js';

/** The anchors contract's name inside the chaincode. */
export const ANCHORS_CONTRACT = 'anchors';

/** A writer's identity for anchoring: its name (`csp` / `fog:<id>`) and its registered key's scalar. */
export interface AnchorWriter {
    readonly suite: Suite;
    readonly writer: string;
    /** d_c or d_f; signs the batch head (the chaincode checks it against Q_c / Q_f). */
    readonly secretKey: bigint;
}

export interface AnchoredBatch {
    readonly writer: string;
    readonly sequence: number;
    readonly treeSize: number;
    readonly root: Uint8Array;
    readonly transactionId: string;
    readonly blockNumber: bigint;
}

/**
 * Anchors the tree's first `treeSize` leaves as batch `sequence`, linking it to the previously
 * anchored size (0 for the first batch). Resolves once the transaction committed VALID.
 * @throws EndorseError (the chaincode's code: duplicateBatch, batchOutOfOrder, ...), CommitError
 */
export async function anchorBatch(
    contract: LedgerContract,
    writer: AnchorWriter,
    tree: MerkleTree,
    sequence: number,
    previousSize: number,
    treeSize: number = tree.size,
): Promise<AnchoredBatch> {
    const root = tree.root(treeSize);
    const proof = previousSize === 0 ? [] : tree.consistencyProof(previousSize, treeSize);
    const signature = schnorrSign(
        writer.suite,
        SchnorrContext.BatchHead,
        writer.secretKey,
        batchHeadMessage(writer.writer, sequence, treeSize, root),
    );
    const submitted = await contract.submitAsync('anchorBatch', {
        arguments: [
            writer.writer,
            String(sequence),
            String(treeSize),
            toHex(root),
            proof.map(toHex).join(''),
            toHex(encodeSchnorrSignature(writer.suite, signature)),
        ],
    });
    const status = await submitted.getStatus();
    assertCommitted(status);
    return {
        writer: writer.writer,
        sequence,
        treeSize,
        root,
        transactionId: submitted.transactionId,
        blockNumber: status.blockNumber,
    };
}

/** The `common.Block` bytes holding a transaction (qscc GetBlockByTxID). */
export async function fetchBlockByTxId(connection: LedgerConnection, transactionId: string): Promise<Uint8Array> {
    return connection.getContract('qscc').evaluate('GetBlockByTxID', {
        arguments: [connection.channelName, transactionId],
    });
}
