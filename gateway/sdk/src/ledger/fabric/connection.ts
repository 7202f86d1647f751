/**
 * The ledger client interface over a real Fabric network, through @hyperledger/fabric-gateway.
 *
 *   const config = loadFabricConfig();                 // FABRIC_CONNECTION file and/or FABRIC_* env
 *   const connection = await connectFabric(config);    // identity and signer from the config
 *   const contract = connection.getContract(config.chaincodeName);
 *
 * or, with an identity held elsewhere (e.g. one per manufacturer account):
 *
 *   const connector = FabricLedgerConnector.fromConfig(config);
 *   const connection = await connector.connect({ identity, signer });
 */
import { connect, hash, type Gateway, type Network } from '@hyperledger/fabric-gateway';

import { ConnectionError } from '../errors.js';
import { newPrivateKeySigner } from '../signers.js';
import type {
    ChaincodeEventStream,
    ChaincodeEventsOptions,
    LedgerConnection,
    LedgerConnectOptions,
    LedgerConnector,
    LedgerContract,
    LedgerIdentity,
    LedgerSigner,
} from '../types.js';
import { DEFAULT_TIMEOUTS, type FabricConnectionConfig, type FabricTimeouts } from './config.js';
import { FabricLedgerContract } from './contract.js';
import { ResumingEventStream, type ReconnectOptions } from './events.js';
import { acquireGrpcClient, type GrpcEndpoint } from './grpc-pool.js';

export interface FabricConnectorOptions extends GrpcEndpoint {
    /** Channel used when `connect` is given none. */
    channelName: string;
    timeouts?: Partial<FabricTimeouts>;
    endorsementPolicy?: string;
    /** How long `connect` waits for the peer to accept a TLS connection; default 10 s. */
    connectTimeoutMs?: number;
    /** Backoff of chaincode event streams when the peer goes away. */
    eventReconnect?: ReconnectOptions;
}

export class FabricLedgerConnector implements LedgerConnector {
    readonly #options: FabricConnectorOptions;
    readonly #timeouts: FabricTimeouts;

    constructor(options: FabricConnectorOptions) {
        this.#options = options;
        this.#timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    }

    static fromConfig(
        config: FabricConnectionConfig,
        extra: Partial<FabricConnectorOptions> = {},
    ): FabricLedgerConnector {
        return new FabricLedgerConnector({
            peerEndpoint: config.peerEndpoint,
            hostAlias: config.hostAlias,
            tlsCaCert: config.tlsCaCert,
            channelName: config.channelName,
            timeouts: config.timeouts,
            endorsementPolicy: config.endorsementPolicy,
            ...extra,
        });
    }

    async connect(options: LedgerConnectOptions): Promise<LedgerConnection> {
        const { client, release } = acquireGrpcClient(this.#options);
        try {
            await waitForReady(client, this.#options.connectTimeoutMs ?? 10_000, this.#options);
            const gateway = connect({
                client,
                identity: { mspId: options.identity.mspId, credentials: options.identity.credentials },
                // A LedgerSigner hashes and signs the whole message itself, so fabric-gateway must pass
                // the message through unhashed.
                signer: options.signer,
                hash: hash.none,
            });
            const channelName = options.channelName ?? this.#options.channelName;
            return new FabricLedgerConnection(gateway, gateway.getNetwork(channelName), options.identity, release, {
                timeouts: this.#timeouts,
                endorsementPolicy: this.#options.endorsementPolicy ?? 'MAJORITY Endorsement',
                eventReconnect: this.#options.eventReconnect ?? {},
            });
        } catch (err) {
            release();
            throw err;
        }
    }
}

async function waitForReady(
    client: { waitForReady(deadline: Date, callback: (error?: Error) => void): void },
    timeoutMs: number,
    endpoint: GrpcEndpoint,
): Promise<void> {
    await new Promise<void>((resolve, reject) => {
        client.waitForReady(new Date(Date.now() + timeoutMs), (error) => {
            if (error === undefined || error === null) {
                resolve();
                return;
            }
            const name = endpoint.hostAlias === undefined ? '' : ` (TLS name ${endpoint.hostAlias})`;
            reject(
                new ConnectionError(
                    `cannot reach the Fabric Gateway at ${endpoint.peerEndpoint}${name} within ${timeoutMs} ms: ${error.message}`,
                    { cause: error },
                ),
            );
        });
    });
}

interface ConnectionSettings {
    timeouts: FabricTimeouts;
    endorsementPolicy: string;
    eventReconnect: ReconnectOptions;
}

class FabricLedgerConnection implements LedgerConnection {
    readonly channelName: string;
    readonly identity: LedgerIdentity;
    readonly #gateway: Gateway;
    readonly #network: Network;
    readonly #release: () => void;
    readonly #settings: ConnectionSettings;
    readonly #streams = new Set<ResumingEventStream>();
    #closed = false;

    constructor(
        gateway: Gateway,
        network: Network,
        identity: LedgerIdentity,
        release: () => void,
        settings: ConnectionSettings,
    ) {
        this.#gateway = gateway;
        this.#network = network;
        this.channelName = network.getName();
        this.identity = identity;
        this.#release = release;
        this.#settings = settings;
    }

    getContract(chaincodeName: string, contractName?: string): LedgerContract {
        this.#assertOpen();
        const contract = new FabricLedgerContract(
            this.#network.getContract(chaincodeName, contractName),
            this.#settings.timeouts,
            this.#settings.endorsementPolicy,
        );
        return guardContract(contract, () => this.#assertOpen());
    }

    async getChaincodeEvents(
        chaincodeName: string,
        options: ChaincodeEventsOptions = {},
    ): Promise<ChaincodeEventStream> {
        this.#assertOpen();
        const stream: ResumingEventStream = new ResumingEventStream(
            (position) => this.#network.getChaincodeEvents(chaincodeName, position),
            options,
            this.#settings.eventReconnect,
            () => this.#streams.delete(stream),
        );
        this.#streams.add(stream);
        return stream;
    }

    close(): void {
        if (this.#closed) return;
        this.#closed = true;
        for (const stream of [...this.#streams]) stream.close();
        this.#gateway.close();
        this.#release();
    }

    #assertOpen(): void {
        if (this.#closed) throw new ConnectionError(`connection to channel ${this.channelName} is closed`);
    }
}

/** Calls on a contract of a closed connection fail with ConnectionError, as on the embedded ledger. */
function guardContract(contract: LedgerContract, assertOpen: () => void): LedgerContract {
    const guarded: LedgerContract = {
        chaincodeName: contract.chaincodeName,
        submit: async (name, options) => {
            assertOpen();
            return await contract.submit(name, options);
        },
        evaluate: async (name, options) => {
            assertOpen();
            return await contract.evaluate(name, options);
        },
        submitAsync: async (name, options) => {
            assertOpen();
            return await contract.submitAsync(name, options);
        },
    };
    return contract.contractName === undefined ? guarded : { ...guarded, contractName: contract.contractName };
}

/** The identity and signer of a validated configuration; the private key stays inside the signer. */
export function fabricIdentity(config: FabricConnectionConfig): { identity: LedgerIdentity; signer: LedgerSigner } {
    return {
        identity: { mspId: config.mspId, credentials: new Uint8Array(config.certificate) },
        signer: newPrivateKeySigner(config.privateKey),
    };
}

/** Connects with the identity of the configuration, on its channel. */
export async function connectFabric(
    config: FabricConnectionConfig,
    extra: Partial<FabricConnectorOptions> = {},
): Promise<LedgerConnection> {
    const { identity, signer } = fabricIdentity(config);
    return await FabricLedgerConnector.fromConfig(config, extra).connect({
        identity,
        signer,
        channelName: config.channelName,
    });
}
