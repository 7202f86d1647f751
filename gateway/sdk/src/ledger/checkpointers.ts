/**
 * Event-stream checkpointers, as fabric-gateway's `checkpointers.file` / `checkpointers.inMemory`.
 * They satisfy fabric-gateway's `Checkpointer` structurally, so the Fabric adapter can pass them on.
 */
import { promises as fs } from 'node:fs';

import type { ChaincodeEvent, Checkpointer } from './types.js';

interface CheckpointState {
    blockNumber?: string;
    transactionId?: string;
}

/** Keeps the position in memory: survives reconnects, not restarts. */
export class InMemoryCheckpointer implements Checkpointer {
    protected blockNumber: bigint | undefined;
    protected transactionId: string | undefined;

    async checkpointBlock(blockNumber: bigint): Promise<void> {
        this.blockNumber = blockNumber + 1n;
        this.transactionId = undefined;
        await this.save();
    }

    async checkpointTransaction(blockNumber: bigint, transactionId: string): Promise<void> {
        this.blockNumber = blockNumber;
        this.transactionId = transactionId;
        await this.save();
    }

    async checkpointChaincodeEvent(event: ChaincodeEvent): Promise<void> {
        await this.checkpointTransaction(event.blockNumber, event.transactionId);
    }

    getBlockNumber(): bigint | undefined {
        return this.blockNumber;
    }

    getTransactionId(): string | undefined {
        return this.transactionId;
    }

    protected async save(): Promise<void> {
        // Nothing to persist.
    }
}

/**
 * Keeps the position in a JSON file (same format as fabric-gateway's file checkpointer). Each
 * update is written to a temporary file, synced and renamed over the old one, so a crash leaves
 * either the old or the new position, never a torn file.
 */
export class FileCheckpointer extends InMemoryCheckpointer {
    readonly #path: string;

    constructor(path: string) {
        super();
        this.#path = path;
    }

    /** Loads the saved position, if any. */
    async init(): Promise<void> {
        let text: string;
        try {
            text = await fs.readFile(this.#path, 'utf8');
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
            throw err;
        }
        if (text.length === 0) return;
        const state = JSON.parse(text) as CheckpointState;
        this.blockNumber = state.blockNumber === undefined ? undefined : BigInt(state.blockNumber);
        this.transactionId = state.transactionId;
    }

    protected override async save(): Promise<void> {
        const state: CheckpointState = {
            blockNumber: this.blockNumber?.toString(),
            transactionId: this.transactionId,
        };
        const temporary = `${this.#path}.tmp`;
        const handle = await fs.open(temporary, 'w');
        try {
            await handle.writeFile(JSON.stringify(state));
            await handle.sync();
        } finally {
            await handle.close();
        }
        await fs.rename(temporary, this.#path);
    }
}

/** A file checkpointer with its saved position loaded. */
export async function fileCheckpointer(path: string): Promise<FileCheckpointer> {
    const checkpointer = new FileCheckpointer(path);
    await checkpointer.init();
    return checkpointer;
}

/** An in-memory checkpointer. */
export function inMemoryCheckpointer(): InMemoryCheckpointer {
    return new InMemoryCheckpointer();
}
