/**
 * Hosts a chaincode package — the `contracts` array it exports for fabric-chaincode-node — and
 * invokes it exactly as the shim does on a peer: fabric-shim's `ChaincodeFromContract` routes the
 * call and marshals arguments and results, and a real `ChaincodeStub`, built from the signed
 * proposal, serves `ctx.stub` and `ctx.clientIdentity`. Only the transport differs: the stub's
 * handler is a {@link SimulationHandler} instead of a gRPC stream to the peer.
 */
import { createRequire } from 'node:module';

import { peer } from './protos.js';
import type { SimulationHandler } from './simulator.js';

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
    handler: ShimHandler,
    channelId: string,
    txId: string,
    input: InstanceType<typeof peer.ChaincodeInput>,
    signedProposal: InstanceType<typeof peer.SignedProposal>,
) => ShimStub;

const ChaincodeFromContract =
    require('fabric-shim/lib/contract-spi/chaincodefromcontract.js') as ChaincodeFromContractClass;
const ChaincodeStub = require('fabric-shim/lib/stub.js') as ChaincodeStubClass;
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
        handler: SimulationHandler,
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

/** The stub's view of the peer: a {@link SimulationHandler} in process, a proxy to one in a chaincode thread. */
export type ShimHandler = Pick<
    SimulationHandler,
    | 'handleGetState'
    | 'handlePutState'
    | 'handleDeleteState'
    | 'handleGetStateByRange'
    | 'handleGetHistoryForKey'
    | 'handleQueryStateNext'
    | 'handleQueryStateClose'
>;

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

    /** Invokes the function named in `input.args[0]` with a stub bound to `handler` and the proposal. */
    async invoke(
        handler: ShimHandler,
        channelId: string,
        txId: string,
        input: InstanceType<typeof peer.ChaincodeInput>,
        signedProposal: InstanceType<typeof peer.SignedProposal>,
    ): Promise<ChaincodeResult> {
        let stub: ShimStub;
        let response: ShimResponse;
        try {
            stub = new ChaincodeStub(handler, channelId, txId, input, signedProposal);
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
