/**
 * A peer's chaincode in a thread of its own — the embedded form of Fabric's chaincode container
 * (or chaincode-as-a-service): the peer sends the proposal, the chaincode runs there, and every
 * shim call (GetState, PutState, range and history queries) comes back over a message channel to
 * the peer, which answers it from its {@link SimulationHandler} exactly as in process. The
 * read-write set is therefore recorded by the peer, as in Fabric, and nothing of the simulation
 * lives in the chaincode thread.
 *
 * Why: the peers of a real network run their chaincodes on their own machines at the same time.
 * In one process every endorsement of every peer would share one thread, so a transaction endorsed
 * by three organisations costs three chaincode runs back to back and blocks the ordering service
 * and the gateways meanwhile. One thread per peer lets the endorsements of a transaction run side
 * by side on the machine's cores, and the peer's own thread stays free for the gateway endpoints,
 * ordering and commits (docs/ledger.md, "Chaincode threads").
 */
import { Worker } from 'node:worker_threads';

import type { ChaincodeHost, ChaincodeResult, PeerShim } from './chaincode.js';
import {
    type CallMessage,
    type HostMessage,
    type InvokeMessage,
    type ReplyMessage,
    type ShimCall,
    type WorkerMessage,
    type WorkerOptions,
    ownBytes,
} from './chaincode-worker-protocol.js';
import { peer } from './protos.js';

interface PendingInvocation {
    readonly handler: PeerShim;
    readonly resolve: (result: ChaincodeResult) => void;
    /** The thread running it: if that thread dies, the invocation fails. */
    readonly worker: Worker;
}

/** Answers one shim call from the chaincode thread with the peer's simulation handler. */
async function answer(handler: PeerShim, call: ShimCall): Promise<Uint8Array> {
    switch (call.method) {
        case 'getState':
            return handler.getState(call.collection, call.key);
        case 'putState':
            await handler.putState(call.collection, call.key, call.value);
            return new Uint8Array();
        case 'deleteState':
            await handler.deleteState(call.collection, call.key);
            return new Uint8Array();
        case 'openRangeQuery':
            return (
                await handler.openRangeQuery(call.collection, call.startKey, call.endKey, call.metadata)
            ).serializeBinary();
        case 'openHistoryQuery':
            return (await handler.openHistoryQuery(call.key)).serializeBinary();
        case 'queryStateNext':
            return (await handler.queryStateNext(call.id)).serializeBinary();
        case 'queryStateClose':
            return (await handler.queryStateClose(call.id)).serializeBinary();
        default:
            return handler.unsupported(call.method);
    }
}

export class ChaincodeWorker implements ChaincodeHost {
    readonly name: string;
    readonly version: string;
    readonly #options: WorkerOptions;
    /** The running thread; replaced by a fresh one on the next invocation after it died. */
    #worker: Promise<Worker>;
    readonly #pending = new Map<number, PendingInvocation>();
    #nextInvocation = 0;
    #closed = false;

    private constructor(options: WorkerOptions, worker: Worker) {
        this.name = options.name;
        this.version = options.version;
        this.#options = options;
        this.#worker = Promise.resolve(this.#adopt(worker));
    }

    /** Starts the thread and waits until it has loaded the chaincode package. */
    static async start(options: WorkerOptions): Promise<ChaincodeWorker> {
        return new ChaincodeWorker(options, await spawn(options));
    }

    async invoke(
        handler: PeerShim,
        channelId: string,
        txId: string,
        input: InstanceType<typeof peer.ChaincodeInput>,
        signedProposal: InstanceType<typeof peer.SignedProposal>,
    ): Promise<ChaincodeResult> {
        if (this.#closed) return crashed(new Error(`chaincode ${this.name} stopped`));
        let worker: Worker;
        try {
            worker = await this.#worker;
        } catch (err) {
            // It could not be (re)started; try again for the next invocation.
            this.#respawn();
            return crashed(err as Error);
        }
        const inv = this.#nextInvocation++;
        return new Promise<ChaincodeResult>((resolve) => {
            this.#pending.set(inv, { handler, resolve, worker });
            if (this.#pending.size === 1) worker.ref();
            const message: InvokeMessage = {
                t: 'invoke',
                inv,
                channelId,
                txId,
                input: input.serializeBinary(),
                signedProposal: signedProposal.serializeBinary(),
            };
            worker.postMessage(message satisfies HostMessage);
        });
    }

    async close(): Promise<void> {
        this.#closed = true;
        const worker = await this.#worker.catch(() => undefined);
        this.#failAll(worker, new Error(`chaincode ${this.name} stopped`));
        await worker?.terminate();
    }

    #adopt(worker: Worker): Worker {
        worker.on('message', (message: WorkerMessage) => this.#onMessage(worker, message));
        const died = (err: Error): void => {
            this.#failAll(worker, err);
            // A peer relaunches a chaincode that died; so is this one, for the next invocation.
            if (!this.#closed) this.#respawn();
        };
        worker.on('error', (err) => died(new Error(`chaincode ${this.name} failed: ${err.message}`)));
        worker.on('exit', (code) => {
            if (!this.#closed) died(new Error(`chaincode ${this.name} thread exited with code ${code}`));
        });
        // Only in-flight invocations keep the process alive, as a chaincode container would not.
        worker.unref();
        return worker;
    }

    #respawn(): void {
        this.#worker = spawn(this.#options).then((w) => this.#adopt(w));
        this.#worker.catch(() => undefined); // seen by the next invocation
    }

    #settle(inv: number): PendingInvocation | undefined {
        const pending = this.#pending.get(inv);
        if (pending === undefined) return undefined;
        this.#pending.delete(inv);
        // Mirrors invoke's ref(): invocations of a dead thread are all settled before new ones start.
        if (this.#pending.size === 0) pending.worker.unref();
        return pending;
    }

    #onMessage(worker: Worker, message: WorkerMessage): void {
        if (message.t === 'call') {
            void this.#onCall(worker, message);
        } else if (message.t === 'result') {
            const pending = this.#settle(message.inv);
            if (pending === undefined) return;
            const event =
                message.event === undefined ? undefined : peer.ChaincodeEvent.deserializeBinary(message.event);
            pending.resolve({ status: message.status, message: message.message, payload: message.payload, event });
        }
    }

    async #onCall(worker: Worker, message: CallMessage): Promise<void> {
        const pending = this.#pending.get(message.inv);
        let reply: ReplyMessage;
        if (pending === undefined) {
            reply = { t: 'reply', call: message.call, ok: false, message: 'transaction is no longer simulated' };
        } else {
            try {
                reply = {
                    t: 'reply',
                    call: message.call,
                    ok: true,
                    value: ownBytes(await answer(pending.handler, message.shim)),
                };
            } catch (err) {
                reply = { t: 'reply', call: message.call, ok: false, message: (err as Error).message };
            }
        }
        worker.postMessage(reply satisfies HostMessage);
    }

    /** Ends every invocation running in `worker` as a failed simulation (status 500, nothing endorsed). */
    #failAll(worker: Worker | undefined, err: Error): void {
        for (const [inv, pending] of [...this.#pending]) {
            if (worker === undefined || pending.worker === worker) this.#settle(inv)?.resolve(crashed(err));
        }
    }
}

/** A chaincode thread that has loaded its package. */
async function spawn(options: WorkerOptions): Promise<Worker> {
    const worker = new Worker(new URL('./chaincode-worker-main.js', import.meta.url), {
        workerData: options,
        // fabric-contract-api and fabric-shim take their level from here when they load; this
        // thread's copy may hold the value fabric-shim's setLevel rewrote, which they misread.
        env: { ...process.env, CORE_CHAINCODE_LOGGING_LEVEL: options.shimLogLevel },
    });
    await new Promise<void>((resolve, reject) => {
        const onMessage = (message: WorkerMessage): void => {
            if (message.t === 'ready') {
                cleanup();
                resolve();
            } else if (message.t === 'failed') {
                cleanup();
                void worker.terminate();
                reject(new Error(`chaincode ${options.name}: ${message.message}`));
            }
        };
        const onError = (err: Error): void => {
            cleanup();
            reject(err);
        };
        const onExit = (code: number): void => {
            cleanup();
            reject(new Error(`chaincode ${options.name} thread exited with code ${code} while starting`));
        };
        const cleanup = (): void => {
            worker.off('message', onMessage);
            worker.off('error', onError);
            worker.off('exit', onExit);
        };
        worker.on('message', onMessage);
        worker.on('error', onError);
        worker.on('exit', onExit);
    });
    return worker;
}

function crashed(err: Error): ChaincodeResult {
    return { status: 500, message: err.message, payload: new Uint8Array(), event: undefined };
}
