/**
 * Hosts a chaincode package — the `contracts` array it exports for fabric-chaincode-node — and
 * invokes it exactly as the shim does on a peer: fabric-shim's `ChaincodeFromContract` routes the
 * call and marshals arguments and results, and a real `ChaincodeStub`, built from the signed
 * proposal, serves `ctx.stub` and `ctx.clientIdentity`. Only the transport differs: the stub's
 * handler is a {@link StubHandler} over a {@link PeerShim} — the peer's simulation handler in
 * process, a proxy to it in a chaincode thread — instead of a gRPC stream to the peer.
 */
import { createRequire } from 'node:module';

import { peer } from './protos.js';

const require = createRequire(import.meta.url);

interface ShimResponse {
    status: number;
    message?: string;
    payload?: Uint8Array;
}
interface ShimChaincode {
    Invoke(stub: unknown): Promise<ShimResponse>;
}
interface ShimStub {
    chaincodeEvent?: InstanceType<typeof peer.ChaincodeEvent>;
}
type ChaincodeFromContractClass = new (
    contracts: unknown[],
    serializers: unknown,
    metadata: Record<string, unknown>,
    title: string,
    version: string,
) => ShimChaincode;
type ChaincodeStubClass = new (
    handler: StubHandler,
    channelId: string,
    txId: string,
    input: InstanceType<typeof peer.ChaincodeInput>,
    signedProposal: InstanceType<typeof peer.SignedProposal>,
) => ShimStub;

const ChaincodeFromContract =
    require('fabric-shim/lib/contract-spi/chaincodefromcontract.js') as ChaincodeFromContractClass;
const ChaincodeStub = require('fabric-shim/lib/stub.js') as ChaincodeStubClass;
interface ShimIteratorClass {
    new (handler: StubHandler, channelId: string, txId: string, response: QueryResponse): unknown;
}
/** fabric-shim's iterators over a QueryResponse batch; they fetch further batches through the handler. */
const { StateQueryIterator, HistoryQueryIterator } = require('fabric-shim/lib/iterators.js') as {
    StateQueryIterator: ShimIteratorClass;
    HistoryQueryIterator: ShimIteratorClass;
};
const { JSONSerializer } = require('fabric-contract-api') as { JSONSerializer: unknown };
const ShimLogger = require('fabric-shim/lib/logger.js') as {
    setLevel(level: string): void;
    getLogger(name: string): WinstonLogger;
};

interface WinstonLogger {
    readonly levels: Record<string, number>;
    isLevelEnabled(level: string): boolean;
}

/**
 * The shim's module loggers that run on every transaction. winston builds and pipes a record
 * through its formatting stream before it looks at the level, which costs tens of microseconds per
 * transaction even when nothing is printed; disabled levels are therefore replaced by no-ops.
 */
const PER_TRANSACTION_LOGGERS = [
    'contracts-spi/chaincodefromcontract.js',
    'contracts-spi/datamarshall.js',
    'lib/chaincode.js',
    'lib/stub.js',
    'lib/iterators.js',
];

const noop = (): void => undefined;

// fabric-shim's ClientIdentity parses the creator's X.509 certificate with @fidm/x509 on every
// transaction (about a sixth of a trivial transaction's cost). A peer's chaincode sees the same few
// client certificates over and over, so the parse is memoised per PEM text, the way Fabric's MSP
// caches deserialised identities. The parsed certificate is only read, never handed out.
const fidm = createRequire(require.resolve('fabric-shim/lib/chaincode.js'))('@fidm/x509') as {
    Certificate: { fromPEM(pem: string | Buffer): unknown };
};
const CERTIFICATE_CACHE_SIZE = 1024;
const parsedCertificates = new Map<string, unknown>();
const parseCertificate = fidm.Certificate.fromPEM.bind(fidm.Certificate);
fidm.Certificate.fromPEM = (pem: string | Buffer): unknown => {
    if (typeof pem !== 'string') return parseCertificate(pem);
    let certificate = parsedCertificates.get(pem);
    if (certificate === undefined) {
        certificate = parseCertificate(pem);
        if (parsedCertificates.size >= CERTIFICATE_CACHE_SIZE) parsedCertificates.clear();
        parsedCertificates.set(pem, certificate);
    }
    return certificate;
};

/** The serializer configuration fabric-chaincode-node uses when a package declares none. */
const DEFAULT_SERIALIZERS = { transaction: 'jsonSerializer', serializers: { jsonSerializer: JSONSerializer } };

/** Sets the shim's log level (it logs every failed transaction at error level). */
export function setShimLogLevel(level: string): void {
    // getLogger resets a logger's level from the environment (and misreads the value setLevel
    // leaves there), so take the loggers first and set the level after.
    const loggers = PER_TRANSACTION_LOGGERS.map(
        (name) => ShimLogger.getLogger(name) as WinstonLogger & Record<string, unknown>,
    );
    ShimLogger.setLevel(level);
    for (const logger of loggers) {
        for (const levelName of Object.keys(logger.levels)) {
            // An own property shadows winston's prototype method; deleting it restores the method.
            if (logger.isLevelEnabled(levelName)) delete logger[levelName];
            else logger[levelName] = noop;
        }
    }
}

/** A chaincode to host: a name on the channel and the package's contract classes. */
export interface ChaincodeDefinition {
    /** Chaincode name on the channel (the state namespace). */
    readonly name: string;
    /** The `contracts` array the chaincode package exports. */
    readonly contracts: readonly unknown[];
    readonly version?: string;
    /** Endorsement policy in Fabric syntax; default `MAJORITY Endorsement`. */
    readonly endorsementPolicy?: string;
    /** Contract metadata, as a package's META-INF/metadata.json; default: introspected. */
    readonly metadata?: Record<string, unknown>;
    /** Serializers, if the package exports its own (`serializers` export); default JSON. */
    readonly serializers?: unknown;
    /**
     * A module specifier (package name or file URL) that exports the same `contracts` (and, if any,
     * `serializers` and `metadata`): what a chaincode thread imports when the ledger runs each peer's
     * chaincode apart from the peer (`chaincodeExecution: 'worker-per-peer'`), as Fabric runs a
     * chaincode in its own process. Not needed in process.
     */
    readonly module?: string;
}

/**
 * Where a peer's chaincode runs: in the peer's own thread ({@link ChaincodeRuntime}) or in a
 * thread of its own (ChaincodeWorker), reached through the same shim calls.
 */
export interface ChaincodeHost {
    readonly name: string;
    readonly version: string;
    invoke(
        peerShim: PeerShim,
        channelId: string,
        txId: string,
        input: InstanceType<typeof peer.ChaincodeInput>,
        signedProposal: InstanceType<typeof peer.SignedProposal>,
    ): Promise<ChaincodeResult>;
    close(): Promise<void>;
}

/** The outcome of running a chaincode function once. */
export interface ChaincodeResult {
    readonly status: number;
    readonly message: string;
    readonly payload: Uint8Array;
    /** The `ChaincodeEvent` the chaincode set, with chaincode and transaction ids filled in as the peer does. */
    readonly event: InstanceType<typeof peer.ChaincodeEvent> | undefined;
}

type QueryResponse = InstanceType<typeof peer.QueryResponse>;

/** Shim calls the embedded peer refuses (the peer's error message says why). */
export type UnsupportedShimCall =
    | 'getQueryResult'
    | 'putStateMetadata'
    | 'getStateMetadata'
    | 'getPrivateDataHash'
    | 'purgeState'
    | 'invokeChaincode';

/**
 * The peer's side of the chaincode shim protocol — what Fabric's GET_STATE, PUT_STATE, DEL_STATE,
 * GET_STATE_BY_RANGE, GET_HISTORY_FOR_KEY, QUERY_STATE_NEXT and QUERY_STATE_CLOSE messages ask of
 * the peer. The peer's simulation handler answers it in process; in a chaincode thread a proxy
 * sends each call to that handler over the thread's message channel.
 */
export interface PeerShim {
    getState(collection: string, key: string): Promise<Uint8Array>;
    putState(collection: string, key: string, value: Uint8Array): Promise<void>;
    deleteState(collection: string, key: string): Promise<void>;
    /** Starts a range query; the first batch. */
    openRangeQuery(collection: string, startKey: string, endKey: string, metadata?: Uint8Array): Promise<QueryResponse>;
    /** Starts a history query; the first batch. */
    openHistoryQuery(key: string): Promise<QueryResponse>;
    queryStateNext(id: string): Promise<QueryResponse>;
    queryStateClose(id: string): Promise<QueryResponse>;
    /** Fails the way the peer fails a call it does not provide. */
    unsupported(call: UnsupportedShimCall): Promise<never>;
}

/**
 * The handler fabric-shim's `ChaincodeStub` and query iterators call (the shim's ChaincodeSupport
 * client), over a {@link PeerShim}: one adapter for both the in-process and the threaded chaincode.
 */
export class StubHandler {
    constructor(readonly peer: PeerShim) {}

    async handleGetState(collection: string, key: string): Promise<Buffer> {
        return Buffer.from(await this.peer.getState(collection, key));
    }
    async handlePutState(collection: string, key: string, value: Uint8Array): Promise<Buffer> {
        await this.peer.putState(collection, key, value);
        return Buffer.alloc(0);
    }
    async handleDeleteState(collection: string, key: string): Promise<Buffer> {
        await this.peer.deleteState(collection, key);
        return Buffer.alloc(0);
    }
    async handleGetStateByRange(
        collection: string,
        startKey: string,
        endKey: string,
        channelId: string,
        txId: string,
        metadata?: Uint8Array,
    ): Promise<{ iterator: unknown }> {
        const response = await this.peer.openRangeQuery(collection, startKey, endKey, metadata);
        return { iterator: new StateQueryIterator(this, channelId, txId, response) };
    }
    async handleGetHistoryForKey(key: string, channelId: string, txId: string): Promise<unknown> {
        return new HistoryQueryIterator(this, channelId, txId, await this.peer.openHistoryQuery(key));
    }
    handleQueryStateNext(id: string): Promise<QueryResponse> {
        return this.peer.queryStateNext(id);
    }
    handleQueryStateClose(id: string): Promise<QueryResponse> {
        return this.peer.queryStateClose(id);
    }
    handleGetQueryResult(): Promise<never> {
        return this.peer.unsupported('getQueryResult');
    }
    handlePutStateMetadata(): Promise<never> {
        return this.peer.unsupported('putStateMetadata');
    }
    handleGetStateMetadata(): Promise<never> {
        return this.peer.unsupported('getStateMetadata');
    }
    handleGetPrivateDataHash(): Promise<never> {
        return this.peer.unsupported('getPrivateDataHash');
    }
    handlePurgeState(): Promise<never> {
        return this.peer.unsupported('purgeState');
    }
    handleInvokeChaincode(): Promise<never> {
        return this.peer.unsupported('invokeChaincode');
    }
}

export class ChaincodeRuntime implements ChaincodeHost {
    readonly name: string;
    readonly version: string;
    readonly #chaincode: ShimChaincode;

    constructor(definition: ChaincodeDefinition) {
        this.name = definition.name;
        this.version = definition.version ?? '1.0';
        // ChaincodeFromContract appends its system contract to the array it is given: pass a copy.
        this.#chaincode = new ChaincodeFromContract(
            [...definition.contracts],
            definition.serializers ?? DEFAULT_SERIALIZERS,
            structuredClone(definition.metadata ?? {}),
            definition.name,
            this.version,
        );
    }

    /** Invokes the function named in `input.args[0]` with a stub bound to `peerShim` and the proposal. */
    async invoke(
        peerShim: PeerShim,
        channelId: string,
        txId: string,
        input: InstanceType<typeof peer.ChaincodeInput>,
        signedProposal: InstanceType<typeof peer.SignedProposal>,
    ): Promise<ChaincodeResult> {
        let stub: ShimStub;
        let response: ShimResponse;
        try {
            stub = new ChaincodeStub(new StubHandler(peerShim), channelId, txId, input, signedProposal);
            response = await this.#chaincode.Invoke(stub);
        } catch (err) {
            // The shim reports a crash as an error response (status 500).
            return { status: 500, message: (err as Error).message, payload: new Uint8Array(), event: undefined };
        }
        const event = stub.chaincodeEvent;
        if (event !== undefined) {
            event.setChaincodeId(this.name);
            event.setTxId(txId);
        }
        return {
            status: response.status,
            message: response.message ?? '',
            payload: response.payload === undefined ? new Uint8Array() : new Uint8Array(response.payload),
            event,
        };
    }

    async close(): Promise<void> {
        // Nothing to release in process.
    }
}
