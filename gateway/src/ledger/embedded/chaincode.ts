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
    handler: SimulationHandler,
    channelId: string,
    txId: string,
    input: InstanceType<typeof peer.ChaincodeInput>,
    signedProposal: InstanceType<typeof peer.SignedProposal>,
) => ShimStub;

const ChaincodeFromContract =
    require('fabric-shim/lib/contract-spi/chaincodefromcontract.js') as ChaincodeFromContractClass;
const ChaincodeStub = require('fabric-shim/lib/stub.js') as ChaincodeStubClass;
const { JSONSerializer } = require('fabric-contract-api') as { JSONSerializer: unknown };
const ShimLogger = require('fabric-shim/lib/logger.js') as { setLevel(level: string): void };

/** The serializer configuration fabric-chaincode-node uses when a package declares none. */
const DEFAULT_SERIALIZERS = { transaction: 'jsonSerializer', serializers: { jsonSerializer: JSONSerializer } };

/** Sets the shim's log level (it logs every failed transaction at error level). */
export function setShimLogLevel(level: string): void {
    ShimLogger.setLevel(level);
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
}

/** The outcome of running a chaincode function once. */
export interface ChaincodeResult {
    readonly status: number;
    readonly message: string;
    readonly payload: Uint8Array;
    /** The `ChaincodeEvent` the chaincode set, with chaincode and transaction ids filled in as the peer does. */
    readonly event: InstanceType<typeof peer.ChaincodeEvent> | undefined;
}

export class ChaincodeRuntime {
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
        handler: SimulationHandler,
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
}
