/**
 * The chaincode thread's entry point (see chaincode-worker.ts): loads the chaincode package, then
 * runs each proposal through the same {@link ChaincodeRuntime} (fabric-shim's ChaincodeFromContract
 * and ChaincodeStub) as in process, with a {@link PeerShim} that forwards every shim call to the peer.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { ChaincodeRuntime, setShimLogLevel, type PeerShim, type UnsupportedShimCall } from './chaincode.js';
import type {
    CallMessage,
    HostMessage,
    InvokeMessage,
    ResultMessage,
    ShimCall,
    WorkerMessage,
    WorkerOptions,
} from './chaincode-worker-protocol.js';
import { ownBytes } from './chaincode-worker-protocol.js';
import { peer } from './protos.js';

const port = parentPort;
if (port === null) throw new Error('chaincode-worker-main runs as a worker thread');
const options = workerData as WorkerOptions;

const calls = new Map<number, { resolve: (value: Uint8Array) => void; reject: (err: Error) => void }>();
let nextCall = 0;

function post(message: WorkerMessage): void {
    port!.postMessage(message);
}

/** The peer, seen from one invocation: each shim call is a round trip to the peer's simulation handler. */
class PeerProxy implements PeerShim {
    constructor(readonly inv: number) {}

    #call(shim: ShimCall): Promise<Uint8Array> {
        const call = nextCall++;
        return new Promise<Uint8Array>((resolve, reject) => {
            calls.set(call, { resolve, reject });
            post({ t: 'call', inv: this.inv, call, shim } satisfies CallMessage);
        });
    }

    async #query(shim: ShimCall): Promise<InstanceType<typeof peer.QueryResponse>> {
        return peer.QueryResponse.deserializeBinary(await this.#call(shim));
    }

    getState(collection: string, key: string): Promise<Uint8Array> {
        return this.#call({ method: 'getState', collection, key });
    }
    async putState(collection: string, key: string, value: Uint8Array): Promise<void> {
        await this.#call({ method: 'putState', collection, key, value: new Uint8Array(value) });
    }
    async deleteState(collection: string, key: string): Promise<void> {
        await this.#call({ method: 'deleteState', collection, key });
    }
    openRangeQuery(
        collection: string,
        startKey: string,
        endKey: string,
        metadata?: Uint8Array,
    ): Promise<InstanceType<typeof peer.QueryResponse>> {
        return this.#query({
            method: 'openRangeQuery',
            collection,
            startKey,
            endKey,
            ...(metadata === undefined ? {} : { metadata: new Uint8Array(metadata) }),
        });
    }
    openHistoryQuery(key: string): Promise<InstanceType<typeof peer.QueryResponse>> {
        return this.#query({ method: 'openHistoryQuery', key });
    }
    queryStateNext(id: string): Promise<InstanceType<typeof peer.QueryResponse>> {
        return this.#query({ method: 'queryStateNext', id });
    }
    queryStateClose(id: string): Promise<InstanceType<typeof peer.QueryResponse>> {
        return this.#query({ method: 'queryStateClose', id });
    }
    // It fails at the peer with the same message as in process.
    async unsupported(method: UnsupportedShimCall): Promise<never> {
        await this.#call({ method });
        throw new Error(`${method} answered without an error`);
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
