/**
 * The chaincode thread's entry point (see chaincode-worker.ts): loads the chaincode package, then
 * runs each proposal through the same {@link ChaincodeRuntime} (fabric-shim's ChaincodeFromContract
 * and ChaincodeStub) as in process, with a stub handler that forwards every shim call to the peer.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { ChaincodeRuntime, setShimLogLevel, type ShimHandler } from './chaincode.js';
import type {
    CallMessage,
    HostMessage,
    InvokeMessage,
    ResultMessage,
    ShimCall,
    UnsupportedShimCall,
    WorkerMessage,
    WorkerOptions,
} from './chaincode-worker-protocol.js';
import { ownBytes } from './chaincode-worker-protocol.js';
import { peer } from './protos.js';
import { HistoryQueryIterator, StateQueryIterator } from './simulator.js';

const port = parentPort;
if (port === null) throw new Error('chaincode-worker-main runs as a worker thread');
const options = workerData as WorkerOptions;

const calls = new Map<number, { resolve: (value: Uint8Array) => void; reject: (err: Error) => void }>();
let nextCall = 0;

function post(message: WorkerMessage): void {
    port!.postMessage(message);
}

/** The shim's handler for one invocation: each call is a round trip to the peer's simulation handler. */
class PeerProxy implements ShimHandler {
    constructor(readonly inv: number) {}

    #call(shim: ShimCall): Promise<Uint8Array> {
        const call = nextCall++;
        return new Promise<Uint8Array>((resolve, reject) => {
            calls.set(call, { resolve, reject });
            post({ t: 'call', inv: this.inv, call, shim } satisfies CallMessage);
        });
    }

    async #unsupported(method: UnsupportedShimCall): Promise<never> {
        await this.#call({ method });
        throw new Error(`${method} answered without an error`);
    }

    async handleGetState(collection: string, key: string): Promise<Buffer> {
        return Buffer.from(await this.#call({ method: 'getState', collection, key }));
    }
    async handlePutState(collection: string, key: string, value: Uint8Array): Promise<Buffer> {
        return Buffer.from(await this.#call({ method: 'putState', collection, key, value: new Uint8Array(value) }));
    }
    async handleDeleteState(collection: string, key: string): Promise<Buffer> {
        return Buffer.from(await this.#call({ method: 'deleteState', collection, key }));
    }
    async handleGetStateByRange(
        collection: string,
        startKey: string,
        endKey: string,
        channelId: string,
        txId: string,
        metadata?: Uint8Array,
    ): Promise<{ iterator: unknown }> {
        const bytes = await this.#call({
            method: 'openRangeQuery',
            collection,
            startKey,
            endKey,
            ...(metadata === undefined ? {} : { metadata: new Uint8Array(metadata) }),
        });
        return {
            iterator: new StateQueryIterator(this, channelId, txId, peer.QueryResponse.deserializeBinary(bytes)),
        };
    }
    async handleGetHistoryForKey(key: string, channelId: string, txId: string): Promise<unknown> {
        const bytes = await this.#call({ method: 'openHistoryQuery', key });
        return new HistoryQueryIterator(this, channelId, txId, peer.QueryResponse.deserializeBinary(bytes));
    }
    async handleQueryStateNext(id: string): Promise<InstanceType<typeof peer.QueryResponse>> {
        return peer.QueryResponse.deserializeBinary(await this.#call({ method: 'queryStateNext', id }));
    }
    async handleQueryStateClose(id: string): Promise<InstanceType<typeof peer.QueryResponse>> {
        return peer.QueryResponse.deserializeBinary(await this.#call({ method: 'queryStateClose', id }));
    }
    // The rest fail at the peer with the same messages as in process.
    handleGetQueryResult(): Promise<never> {
        return this.#unsupported('getQueryResult');
    }
    handlePutStateMetadata(): Promise<never> {
        return this.#unsupported('putStateMetadata');
    }
    handleGetStateMetadata(): Promise<never> {
        return this.#unsupported('getStateMetadata');
    }
    handleGetPrivateDataHash(): Promise<never> {
        return this.#unsupported('getPrivateDataHash');
    }
    handlePurgeState(): Promise<never> {
        return this.#unsupported('purgeState');
    }
    handleInvokeChaincode(): Promise<never> {
        return this.#unsupported('invokeChaincode');
    }
}

async function invoke(runtime: ChaincodeRuntime, message: InvokeMessage): Promise<void> {
    const result = await runtime.invoke(
        new PeerProxy(message.inv),
        message.channelId,
        message.txId,
        peer.ChaincodeInput.deserializeBinary(message.input),
        peer.SignedProposal.deserializeBinary(message.signedProposal),
    );
    const reply: ResultMessage = {
        t: 'result',
        inv: message.inv,
        status: result.status,
        message: result.message,
        payload: ownBytes(result.payload),
        ...(result.event === undefined ? {} : { event: result.event.serializeBinary() }),
    };
    post(reply);
}

async function main(): Promise<void> {
    let runtime: ChaincodeRuntime;
    try {
        // The package first: fabric-contract-api reads its log level from the environment when it
        // loads, and setShimLogLevel below changes that variable (as in the peer's own thread).
        const pkg = (await import(options.module)) as {
            contracts?: unknown[];
            serializers?: unknown;
            metadata?: Record<string, unknown>;
        };
        setShimLogLevel(options.shimLogLevel);
        if (!Array.isArray(pkg.contracts)) throw new Error(`module ${options.module} exports no contracts array`);
        runtime = new ChaincodeRuntime({
            name: options.name,
            version: options.version,
            contracts: pkg.contracts,
            ...(pkg.serializers === undefined ? {} : { serializers: pkg.serializers }),
            ...((options.metadata ?? pkg.metadata) === undefined ? {} : { metadata: options.metadata ?? pkg.metadata }),
        });
    } catch (err) {
        post({ t: 'failed', message: (err as Error).message });
        return;
    }
    port!.on('message', (message: HostMessage) => {
        if (message.t === 'invoke') {
            invoke(runtime, message).catch((err: unknown) =>
                post({ t: 'result', inv: message.inv, status: 500, message: String(err), payload: new Uint8Array() }),
            );
        } else {
            const pending = calls.get(message.call);
            calls.delete(message.call);
            if (pending === undefined) return;
            if (message.ok) pending.resolve(message.value);
            else pending.reject(new Error(message.message));
        }
    });
    post({ t: 'ready' });
}

void main();
