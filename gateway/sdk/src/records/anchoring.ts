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

/** One anchored batch as the anchors contract returns it. */
export interface AnchorEntry {
    readonly writer: string;
    readonly sequence: number;
    readonly treeSize: number;
    /** ISO time of the anchoring transaction. */
    readonly anchoredAt: string;
    /** Hex. */
    readonly root: string;
}

/** One page of {@link listAnchors}: `bookmark` is '' on the last page. */
export interface AnchorPage {
    readonly anchors: readonly AnchorEntry[];
    readonly bookmark: string;
}

/** Largest page the contract returns (MAX_ANCHOR_PAGE). */
export const MAX_ANCHOR_PAGE_SIZE = 100;

const decoder = new TextDecoder();

/**
 * One page of a writer's anchored batches whose anchoring time lies in [from, to], oldest first
 * (the contract finds the first by binary search, so a page costs O(log n + pageSize) reads).
 * Pass the returned bookmark for the next page.
 * @throws EndorseError malformedInput for a bad writer, range or page size (at most 100)
 */
export async function listAnchors(
    contract: LedgerContract,
    writer: string,
    options: { from?: Date; to?: Date; pageSize?: number; bookmark?: string } = {},
): Promise<AnchorPage> {
    const bytes = await contract.evaluate('listAnchors', {
        arguments: [
            writer,
            String(options.from?.getTime() ?? 0),
            String(options.to?.getTime() ?? 8_640_000_000_000_000),
            String(options.pageSize ?? MAX_ANCHOR_PAGE_SIZE),
            options.bookmark ?? '',
        ],
    });
    const page = JSON.parse(decoder.decode(bytes)) as { anchors: AnchorEntry[]; bookmark: string };
    return { anchors: page.anchors, bookmark: page.bookmark };
}

/**
 * Every anchored batch of a writer in [from, to], page by page (each page one evaluate call).
 * @throws EndorseError as {@link listAnchors}
 */
export async function* anchorsInRange(
    contract: LedgerContract,
    writer: string,
    options: { from?: Date; to?: Date; pageSize?: number } = {},
): AsyncGenerator<AnchorEntry> {
    let bookmark = '';
    do {
        const page = await listAnchors(contract, writer, { ...options, bookmark });
        yield* page.anchors;
        bookmark = page.bookmark;
    } while (bookmark !== '');
}

/**
 * Batch `sequence` of a writer (a records-by-batch query names one batch: nothing to page).
 * @throws EndorseError unknownBatch when the writer has no such batch
 */
export async function getAnchor(contract: LedgerContract, writer: string, sequence: number): Promise<AnchorEntry> {
    const bytes = await contract.evaluate('getAnchor', { arguments: [writer, String(sequence)] });
    return JSON.parse(decoder.decode(bytes)) as AnchorEntry;
}
