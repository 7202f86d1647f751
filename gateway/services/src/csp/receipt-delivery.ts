/**
 * Receipt delivery (docs/traceability.md, "Receipts"): once the batch holding a device's uploaded
 * record is anchored, the CSP builds the record's Merkle receipt — record, inclusion path, root,
 * the anchoring transaction's block (qscc) — and sends it to the device over the session channel
 * the record came on, as an instruction whose body is a receipt notice (encodeReceiptNotice). The
 * device verifies it against its channel trust roots and keeps it; it is what the device answers
 * record queries with, and what it hands on (with a lot) to the machine after it, whose step 9
 * then catches a target that hides the record.
 *
 * Only records of Upload frames are receipted to the device: a receipt travels in a Download
 * frame, whose Ack carries a record of its own, and receipting Acks would never end.
 *
 * What is waiting for an anchor is kept in memory (at most `maxPending` records): after a CSP
 * restart the records of the interrupted batch are still anchored (the journal guarantees that),
 * but their receipts are not pushed; `receiptOf` builds any receipt on demand.
 */
import { buildReceipt, encodeReceipt, encodeReceiptNotice, type MerkleTree } from '@m2m-fabric/protocol';
import type { AnchoredBatch } from '@m2m-fabric/sdk';

/** What a record batcher offers receipts (RecordBatcher). */
export interface ReceiptSource {
    readRecord(leafIndex: number): Promise<Uint8Array>;
    readonly tree: MerkleTree;
    readonly anchoredSize: number;
    onAnchoredBatch(listener: (batch: AnchoredBatch) => void): void;
}

export interface ReceiptDeliveryOptions {
    source: ReceiptSource;
    /** The `common.Block` bytes holding a transaction (qscc GetBlockByTxID). */
    blockOf: (transactionId: string) => Promise<Uint8Array>;
    /** Sends an instruction body to one session (CspBackend.sendInstruction by route id). */
    send: (routeId: string, body: Uint8Array) => Promise<unknown>;
    /** Called with every receipt built for a device's record (the CSP's own copy). */
    onReceipt?: (routeId: string, receipt: Uint8Array) => void;
    /** Reports a receipt that could not be built or sent (it stays buildable with receiptOf). */
    onError?: (error: unknown) => void;
    maxPending?: number;
}

/** Batches anchored this run, kept to find the batch of a leaf. */
const MAX_BATCHES = 1024;

export class CspReceiptDelivery {
    readonly #options: ReceiptDeliveryOptions;
    /** leaf index → route key of the session it came on, until its batch is anchored. */
    readonly #pending = new Map<number, string>();
    readonly #batches: AnchoredBatch[] = [];
    /** The last block read: every receipt of a batch is in the same block. */
    #block: { transactionId: string; bytes: Promise<Uint8Array> } | undefined;
    #delivered = 0;

    constructor(options: ReceiptDeliveryOptions) {
        this.#options = options;
        options.source.onAnchoredBatch((batch) => {
            this.#batches.push(batch);
            if (this.#batches.length > MAX_BATCHES) this.#batches.shift();
            void this.#deliverUpTo(batch);
        });
    }

    /** Receipts sent to devices. */
    get delivered(): number {
        return this.#delivered;
    }

    /** A device's Upload record at `leafIndex` came on route `routeId`: send its receipt once anchored. */
    expect(routeId: string, leafIndex: number): void {
        const batch = this.#batchOf(leafIndex);
        if (batch !== undefined) {
            void this.#deliver(routeId, leafIndex, batch);
            return;
        }
        if (this.#pending.size >= (this.#options.maxPending ?? 100_000)) return;
        this.#pending.set(leafIndex, routeId);
    }

    /**
     * The encoded receipt of the record at `leafIndex`; undefined while its batch is not anchored
     * (or was anchored before this CSP run).
     */
    async receiptOf(leafIndex: number): Promise<Uint8Array | undefined> {
        const batch = this.#batchOf(leafIndex);
        return batch === undefined ? undefined : this.#build(leafIndex, batch);
    }

    #batchOf(leafIndex: number): AnchoredBatch | undefined {
        return this.#batches.find((b) => b.treeSize > leafIndex);
    }

    async #build(leafIndex: number, batch: AnchoredBatch): Promise<Uint8Array> {
        const source = this.#options.source;
        return encodeReceipt(
            buildReceipt(
                {
                    record: await source.readRecord(leafIndex),
                    writer: batch.writer,
                    sequence: batch.sequence,
                    leafIndex,
                    treeSize: batch.treeSize,
                    inclusionProof: source.tree.inclusionProof(leafIndex, batch.treeSize),
                    root: batch.root,
                    transactionId: batch.transactionId,
                },
                await this.#blockOf(batch.transactionId),
            ),
        );
    }

    #blockOf(transactionId: string): Promise<Uint8Array> {
        if (this.#block?.transactionId !== transactionId) {
            const bytes = this.#options.blockOf(transactionId);
            bytes.catch(() => (this.#block = undefined));
            this.#block = { transactionId, bytes };
        }
        return this.#block.bytes;
    }

    async #deliverUpTo(batch: AnchoredBatch): Promise<void> {
        const due = [...this.#pending].filter(([leafIndex]) => leafIndex < batch.treeSize);
        for (const [leafIndex] of due) this.#pending.delete(leafIndex);
        for (const [leafIndex, routeId] of due) await this.#deliver(routeId, leafIndex, batch);
    }

    async #deliver(routeId: string, leafIndex: number, batch: AnchoredBatch): Promise<void> {
        try {
            const receipt = await this.#build(leafIndex, batch);
            this.#options.onReceipt?.(routeId, receipt);
            await this.#options.send(routeId, encodeReceiptNotice(receipt));
            this.#delivered++;
        } catch (error) {
            this.#options.onError?.(error);
        }
    }
}
