/**
 * `EmbeddedLedger`: one channel of an in-process Fabric network — an MSP per organisation, one
 * endorsing peer per organisation, an ordering service (block cutter) and a committing peer with a
 * LevelDB ledger — hosting chaincode packages unchanged. Clients connect with an X.509 identity
 * and use the same {@link LedgerConnection} interface as the Fabric gateway implementation:
 *
 *   const ledger = await EmbeddedLedger.open({ dataDir, organisations: ['Org1MSP', 'Org2MSP'],
 *                                              chaincodes: [{ name: 'm2m', contracts }] });
 *   const user = await ledger.enrol('Org1MSP', 'user1');
 *   const connection = await ledger.connect({ identity: user.identity, signer: user.signer });
 *   await connection.getContract('m2m').submit('CreateAsset', { arguments: ['a1'] });
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import {
    assertCommitted,
    ConnectionError,
    DeadlineError,
    EndorseError,
    EndorsementPolicyError,
    LedgerError,
    SubmitError,
} from '@m2m-fabric/sdk';
import {
    validationCodeName,
    type ChaincodeEventsOptions,
    type ChaincodeEventStream,
    type CommitStatus,
    type LedgerConnectOptions,
    type LedgerConnection,
    type LedgerConnector,
    type LedgerContract,
    type LedgerIdentity,
    type LedgerSigner,
    type SubmittedTransaction,
    type TransactionOptions,
} from '@m2m-fabric/sdk';
import { ChaincodeRuntime, setShimLogLevel, type ChaincodeDefinition, type ChaincodeHost } from './chaincode.js';
import { ChaincodeWorker } from './chaincode-worker.js';
import { Committer } from './committer.js';
import { Endorser, ERROR_THRESHOLD, type ChannelContext, type ProposalOutcome } from './endorser.js';
import { BlockEventStream } from './events.js';
import { MspRegistry, Organisation, serializeIdentity, type Enrolment, type EnrolOptions } from './msp.js';
import { BlockCutter, DEFAULT_BATCH_CONFIG, MessageTooLargeError, type BatchConfig } from './orderer.js';
import { formatPolicy, parsePolicy, planEndorsers, type Policy } from './policy.js';
import { common, HeaderType, newTimestamp } from './protos.js';
import { LedgerStore } from './store.js';
import {
    createSignedProposal,
    createSignedTransaction,
    type SignedEnvelope,
    type SignedProposalBundle,
} from './transaction.js';
import { verifyLowS } from '@m2m-fabric/sdk';
import { BlockValidator } from './validator.js';
import { QSCC, QueryChaincode } from './qscc.js';

export const DEFAULT_CHANNEL = 'm2m';
export const DEFAULT_ENDORSEMENT_POLICY = 'MAJORITY Endorsement';
/** The ordering service's organisation; it signs every block and endorses nothing. */
export const DEFAULT_ORDERER_MSP = 'OrdererMSP';

/**
 * What an offline verifier trusts about a channel: its organisations' MSP root certificates (and
 * which of them order blocks). Receipts are verified against this and nothing else.
 */
export interface ChannelTrust {
    readonly channel: string;
    /** The chaincode whose transactions are verified (its namespace in the write set). */
    readonly chaincode: string;
    readonly orderers: readonly { mspId: string; rootCertificates: string[] }[];
    readonly organisations: readonly { mspId: string; rootCertificates: string[] }[];
    /** The channel's endorsement policy for the chaincode, e.g. `MAJORITY Endorsement`. */
    readonly endorsementPolicy: string;
}

export interface EmbeddedLedgerOptions {
    /** Directory for the ledger database and the organisations' crypto material. */
    readonly dataDir: string;
    /** MSP IDs of the channel's organisations; each gets a CA and one endorsing peer. */
    readonly organisations: readonly string[];
    readonly chaincodes: readonly ChaincodeDefinition[];
    /** Default `m2m`. */
    readonly channelName?: string;
    /** Block cutting; Fabric's defaults (2 s, 500 messages, 2 MiB preferred, 10 MiB absolute). */
    readonly batch?: Partial<BatchConfig>;
    /** fsync each block commit (survives power loss, not only process death); default true. */
    readonly sync?: boolean;
    /** fabric-shim log level (it logs each failed transaction); default `CRITICAL` (silent). */
    readonly shimLogLevel?: string;
    /**
     * Where each peer runs its chaincodes. `in-process` (default): in the ledger's thread, one
     * runtime shared by the peers — quickest to open, what tests use. `worker-per-peer`: every peer
     * gets its own thread per chaincode, as Fabric runs a chaincode container per peer, so a
     * transaction's endorsements run side by side on the machine's cores and the ledger's thread
     * stays free for gateways, ordering and commits. Needs each chaincode's `module`.
     */
    readonly chaincodeExecution?: ChaincodeExecution;
    /** MSP id of the ordering service's organisation; default `OrdererMSP`. */
    readonly ordererMspId?: string;
}

export type ChaincodeExecution = 'in-process' | 'worker-per-peer';

interface ChannelConfig {
    channel: string;
    organisations: { mspId: string; caCertificate: string }[];
    /** Absent in ledgers created before blocks were signed. */
    orderer?: { mspId: string; caCertificate: string };
}

/** A promise that rejects with a {@link DeadlineError} at `deadlineAt` (epoch ms). */
async function beforeDeadline<T>(
    promise: Promise<T>,
    deadlineAt: number | undefined,
    deadlineMs: number | undefined,
    stage: 'endorse' | 'submit' | 'commit',
    transactionId?: string,
): Promise<T> {
    if (deadlineAt === undefined || deadlineMs === undefined) return promise;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
            () => reject(new DeadlineError({ stage, deadlineMs, transactionId })),
            Math.max(0, deadlineAt - Date.now()),
        );
    });
    try {
        return await Promise.race([promise, timeout]);
    } finally {
        clearTimeout(timer);
    }
}

function checkDeadline(deadlineMs: number | undefined): number | undefined {
    if (deadlineMs === undefined) return undefined;
    if (!Number.isFinite(deadlineMs) || deadlineMs <= 0)
        throw new RangeError(`deadlineMs must be a positive number, got ${deadlineMs}`);
    return Date.now() + deadlineMs;
}

export class EmbeddedLedger implements LedgerConnector {
    readonly channelName: string;
    readonly dataDir: string;
    readonly #store: LedgerStore;
    readonly #msps: MspRegistry;
    readonly #endorsers: ReadonlyMap<string, Endorser>;
    readonly #policies: ReadonlyMap<string, Policy>;
    readonly #committer: Committer;
    readonly #orderer: BlockCutter;
    readonly #connections = new Set<EmbeddedConnection>();
    readonly #chaincodeHosts: readonly ChaincodeHost[];
    readonly #ordererOrganisation: Organisation;
    readonly #endorsementPolicies: ReadonlyMap<string, string>;
    #closed = false;

    private constructor(parts: {
        ordererOrganisation: Organisation;
        endorsementPolicies: Map<string, string>;
        channelName: string;
        dataDir: string;
        store: LedgerStore;
        msps: MspRegistry;
        endorsers: Map<string, Endorser>;
        policies: Map<string, Policy>;
        committer: Committer;
        batch: BatchConfig;
        chaincodeHosts: ChaincodeHost[];
    }) {
        this.channelName = parts.channelName;
        this.dataDir = parts.dataDir;
        this.#store = parts.store;
        this.#msps = parts.msps;
        this.#endorsers = parts.endorsers;
        this.#policies = parts.policies;
        this.#committer = parts.committer;
        this.#chaincodeHosts = parts.chaincodeHosts;
        this.#ordererOrganisation = parts.ordererOrganisation;
        this.#endorsementPolicies = parts.endorsementPolicies;
        this.#orderer = new BlockCutter(parts.batch, (batch) => this.#committer.enqueue(batch));
    }

    /**
     * Opens the ledger in `dataDir`, creating organisations, peers and the genesis block on first use.
     * @throws {RangeError} when: invalid channel name …; at least one organisation is needed; duplicate organisation
     * @throws {ConnectionError} when: ledger in … holds channel …, not …; ledger in … was created with other organisations or CAs
     */
    static async open(options: EmbeddedLedgerOptions): Promise<EmbeddedLedger> {
        const channelName = options.channelName ?? DEFAULT_CHANNEL;
        if (!/^[a-z][a-z0-9.-]*$/.test(channelName))
            throw new RangeError(`invalid channel name ${JSON.stringify(channelName)}`);
        if (options.organisations.length === 0) throw new RangeError('at least one organisation is needed');
        if (new Set(options.organisations).size !== options.organisations.length)
            throw new RangeError('duplicate organisation');
        const batch: BatchConfig = { ...DEFAULT_BATCH_CONFIG, ...options.batch };
        const shimLogLevel = options.shimLogLevel ?? 'CRITICAL';
        setShimLogLevel(shimLogLevel);
        const execution = options.chaincodeExecution ?? 'in-process';
        if (execution !== 'in-process' && execution !== 'worker-per-peer')
            throw new RangeError(`chaincodeExecution is in-process or worker-per-peer, not ${String(execution)}`);
        if (execution === 'worker-per-peer') {
            const missing = options.chaincodes.find((d) => d.module === undefined);
            if (missing !== undefined)
                throw new RangeError(`chaincode ${missing.name} needs a module to run in its own thread`);
        }

        await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
        const organisations: Organisation[] = [];
        for (const mspId of options.organisations) {
            organisations.push(await Organisation.open(mspId, join(options.dataDir, 'organisations', mspId)));
        }
        const msps = new MspRegistry(organisations);
        const ordererMspId = options.ordererMspId ?? DEFAULT_ORDERER_MSP;
        if (options.organisations.includes(ordererMspId))
            throw new RangeError(`${ordererMspId} is the ordering organisation, not an application one`);
        const ordererOrganisation = await Organisation.open(
            ordererMspId,
            join(options.dataDir, 'organisations', ordererMspId),
        );
        const ordererEnrolment = await ordererOrganisation.loadOrEnrol('orderer0', { role: 'orderer' });
        const blockSigner = {
            identity: serializeIdentity(ordererMspId, ordererEnrolment.certificatePem),
            sign: ordererEnrolment.signer,
        };
        const endorsementPolicies = new Map<string, string>();

        const chaincodes = new Map<string, ChaincodeRuntime>();
        const policies = new Map<string, Policy>();
        for (const definition of options.chaincodes) {
            if (!/^[A-Za-z0-9_-]+$/.test(definition.name))
                throw new RangeError(`invalid chaincode name ${JSON.stringify(definition.name)}`);
            if (chaincodes.has(definition.name)) throw new RangeError(`chaincode ${definition.name} defined twice`);
            if (definition.name === QSCC) throw new RangeError(`${QSCC} is the query system chaincode`);
            chaincodes.set(definition.name, new ChaincodeRuntime(definition));
            policies.set(
                definition.name,
                parsePolicy(definition.endorsementPolicy ?? DEFAULT_ENDORSEMENT_POLICY, options.organisations),
            );
            endorsementPolicies.set(definition.name, definition.endorsementPolicy ?? DEFAULT_ENDORSEMENT_POLICY);
        }

        const store = await LedgerStore.open(join(options.dataDir, 'ledger'), { sync: options.sync ?? true });
        const chaincodeHosts: ChaincodeHost[] = [];
        try {
            const channel: ChannelContext = { channelId: channelName, msps, store, chaincodes };
            // worker-per-peer: every peer's chaincode threads, started side by side.
            const peerChaincodes = await Promise.all(
                organisations.map(async () => {
                    if (execution !== 'worker-per-peer') return chaincodes;
                    const own = new Map<string, ChaincodeHost>();
                    await Promise.all(
                        options.chaincodes.map(async (definition) => {
                            const host = await ChaincodeWorker.start({
                                name: definition.name,
                                version: definition.version ?? '1.0',
                                module: definition.module!,
                                ...(definition.metadata === undefined ? {} : { metadata: definition.metadata }),
                                shimLogLevel,
                            });
                            chaincodeHosts.push(host);
                            own.set(definition.name, host);
                        }),
                    );
                    return own;
                }),
            );
            const qscc = new QueryChaincode(store);
            const endorsers = new Map<string, Endorser>();
            for (const [index, organisation] of organisations.entries()) {
                const peerEnrolment = await organisation.loadOrEnrol('peer0', { role: 'peer' });
                const identity = serializeIdentity(organisation.mspId, peerEnrolment.certificatePem);
                // Every peer also runs the query system chaincode over the block store.
                const peerMap = new Map<string, ChaincodeHost>(peerChaincodes[index]);
                peerMap.set(QSCC, qscc);
                endorsers.set(
                    organisation.mspId,
                    new Endorser(organisation.mspId, identity, peerEnrolment.signer, {
                        ...channel,
                        chaincodes: peerMap,
                    }),
                );
            }
            const committer = new Committer(store, new BlockValidator(channel, policies), blockSigner);

            const config: ChannelConfig = {
                channel: channelName,
                organisations: organisations.map((org) => ({ mspId: org.mspId, caCertificate: org.caCertificatePem })),
                orderer: { mspId: ordererMspId, caCertificate: ordererOrganisation.caCertificatePem },
            };
            const stored = await store.getConfig();
            if (store.height === 0) {
                await committer.commitGenesis(genesisEnvelope(config), JSON.stringify(config));
            } else if (stored !== undefined) {
                const previous = JSON.parse(stored) as ChannelConfig;
                if (previous.channel !== channelName) {
                    throw new ConnectionError(
                        `ledger in ${options.dataDir} holds channel ${previous.channel}, not ${channelName}`,
                    );
                }
                const same = JSON.stringify(previous.organisations) === JSON.stringify(config.organisations);
                if (!same)
                    throw new ConnectionError(
                        `ledger in ${options.dataDir} was created with other organisations or CAs`,
                    );
            }
            return new EmbeddedLedger({
                ordererOrganisation,
                endorsementPolicies,
                channelName,
                dataDir: options.dataDir,
                store,
                msps,
                endorsers,
                policies,
                committer,
                batch,
                chaincodeHosts,
            });
        } catch (err) {
            for (const host of chaincodeHosts) await host.close();
            await store.close();
            throw err;
        }
    }

    /** Number of committed blocks (the genesis block included). */
    get height(): bigint {
        return BigInt(this.#store.height);
    }

    get organisations(): string[] {
        return this.#msps.mspIds;
    }

    /** The ordering service's organisation (its CA certifies the identity that signs blocks). */
    get ordererOrganisation(): Organisation {
        return this.#ordererOrganisation;
    }

    /**
     * The channel's MSP roots and endorsement policy for `chaincodeName`: everything an offline
     * verifier of a receipt needs to trust (docs/records.md).
     * @throws {ConnectionError} when: no chaincode …
     */
    channelTrust(chaincodeName: string): ChannelTrust {
        const endorsementPolicy = this.#endorsementPolicies.get(chaincodeName);
        if (endorsementPolicy === undefined) throw new ConnectionError(`no chaincode ${chaincodeName}`);
        return {
            channel: this.channelName,
            chaincode: chaincodeName,
            orderers: [
                {
                    mspId: this.#ordererOrganisation.mspId,
                    rootCertificates: [this.#ordererOrganisation.caCertificatePem],
                },
            ],
            organisations: this.#msps.mspIds.map((mspId) => ({
                mspId,
                rootCertificates: [this.organisation(mspId).caCertificatePem],
            })),
            endorsementPolicy,
        };
    }

    /**
     * An organisation's CA, to enrol identities.
     * @throws {ConnectionError} when: unknown organisation …
     */
    organisation(mspId: string): Organisation {
        const organisation = this.#msps.organisation(mspId);
        if (organisation === undefined) throw new ConnectionError(`unknown organisation ${mspId}`);
        return organisation;
    }

    /** Enrols a new identity with an organisation's CA (stored under the data directory). */
    async enrol(mspId: string, name: string, options?: EnrolOptions): Promise<Enrolment> {
        return this.organisation(mspId).enrol(name, options);
    }

    /** The stored identity `name` of an organisation, enrolling it first if needed. */
    async loadOrEnrol(mspId: string, name: string, options?: EnrolOptions): Promise<Enrolment> {
        return this.organisation(mspId).loadOrEnrol(name, options);
    }

    /**
     * @throws {ConnectionError} when: channel … not found
     */
    async connect(options: LedgerConnectOptions): Promise<LedgerConnection> {
        this.#checkOpen();
        const channelName = options.channelName ?? this.channelName;
        if (channelName !== this.channelName) throw new ConnectionError(`channel ${channelName} not found`);
        const connection = new EmbeddedConnection(this, options.identity, options.signer, (c) =>
            this.#connections.delete(c),
        );
        this.#connections.add(connection);
        return connection;
    }

    /** Commit status of a transaction, or undefined if it is not (yet) in a committed block. */
    async getTransactionStatus(transactionId: string): Promise<CommitStatus | undefined> {
        const location = await this.#store.getTransaction(transactionId);
        if (location === undefined) return undefined;
        const code = validationCodeName(location.code);
        return { transactionId, blockNumber: BigInt(location.blockNum), code, successful: code === 'VALID' };
    }

    /** A committed block as stored (`common.Block` bytes). */
    async getBlock(blockNumber: bigint): Promise<Uint8Array | undefined> {
        return this.#store.getBlock(Number(blockNumber));
    }

    /**
     * Stops the ledger. By default the orderer's pending batch is cut and committed first; with
     * `flush: false` it is dropped, as a crash would.
     */
    async close(options: { flush?: boolean } = {}): Promise<void> {
        if (this.#closed) return;
        for (const connection of [...this.#connections]) connection.close();
        this.#orderer.close(options.flush ?? true);
        await this.#committer.drain();
        this.#closed = true;
        this.#committer.close(new ConnectionError('ledger closed'));
        for (const host of this.#chaincodeHosts) await host.close();
        await this.#store.close();
    }

    // ---- used by connections -------------------------------------------------------------

    /** Gateway endorsement: proposal to enough peers, matching responses. */
    async endorse(
        identity: LedgerIdentity,
        signer: LedgerSigner,
        chaincodeName: string,
        functionName: string,
        options: TransactionOptions,
        evaluateOnly: boolean,
    ): Promise<{ proposal: SignedProposalBundle; outcomes: ProposalOutcome[] }> {
        this.#checkOpen();
        const creator = serializeIdentity(identity.mspId, identity.credentials);
        const proposal = await createSignedProposal(
            {
                channelId: this.channelName,
                chaincodeName,
                functionName,
                args: options.arguments ?? [],
                transient: options.transientData ?? {},
                creator,
            },
            signer,
        );
        const outcomes = await this.endorseProposal(proposal, chaincodeName, {
            localMspId: identity.mspId,
            endorsingOrganizations: options.endorsingOrganizations,
            evaluateOnly,
        });
        return { proposal, outcomes };
    }

    /**
     * Sends a signed proposal to the endorsing peers a gateway of organisation `localMspId` would
     * choose: its own peer first, then enough others to satisfy the chaincode's endorsement policy
     * (or exactly `endorsingOrganizations`; one peer to evaluate). Throws {@link EndorseError} when a
     * peer refuses or the chaincode fails, {@link EndorsementPolicyError} when the policy cannot be
     * met or the peers' results differ.
     * @throws {EndorsementPolicyError}
     * @throws {EndorseError}
     */
    async endorseProposal(
        proposal: SignedProposalBundle,
        chaincodeName: string,
        options: {
            localMspId: string;
            endorsingOrganizations?: readonly string[] | undefined;
            evaluateOnly: boolean;
        },
    ): Promise<ProposalOutcome[]> {
        this.#checkOpen();
        const txId = proposal.txId;
        const preferred = [options.localMspId, ...this.#msps.mspIds.filter((id) => id !== options.localMspId)].filter(
            (id) => this.#endorsers.has(id),
        );
        let organisations: string[];
        if (options.evaluateOnly) {
            organisations =
                options.endorsingOrganizations !== undefined && options.endorsingOrganizations.length > 0
                    ? [...new Set(options.endorsingOrganizations)].slice(0, 1)
                    : preferred.slice(0, 1);
        } else if (options.endorsingOrganizations !== undefined && options.endorsingOrganizations.length > 0) {
            organisations = [...new Set(options.endorsingOrganizations)];
        } else {
            const policy = this.#policies.get(chaincodeName);
            const plan = policy === undefined ? preferred.slice(0, 1) : planEndorsers(policy, preferred);
            if (plan === undefined || policy === undefined) {
                throw new EndorsementPolicyError({
                    transactionId: txId,
                    policy: policy === undefined ? '?' : formatPolicy(policy),
                    endorsers: [],
                    reason: 'no set of channel organisations can satisfy it',
                });
            }
            organisations = plan;
        }
        const endorsers = organisations.map((mspId) => {
            const endorser = this.#endorsers.get(mspId);
            if (endorser === undefined)
                throw new ConnectionError(`no peers of organisation ${mspId} on channel ${this.channelName}`, {
                    transactionId: txId,
                });
            return endorser;
        });
        const outcomes = await Promise.all(
            endorsers.map((endorser) => endorser.processProposal(proposal.signedProposal)),
        );
        const failed = outcomes.find((outcome) => outcome.status >= ERROR_THRESHOLD || outcome.endorsed === undefined);
        if (failed !== undefined) {
            throw new EndorseError({ transactionId: txId, status: failed.status, chaincodeMessage: failed.message });
        }
        const first = outcomes[0]?.endorsed?.responsePayload ?? new Uint8Array();
        if (
            outcomes.some(
                (outcome) => Buffer.compare(outcome.endorsed?.responsePayload ?? new Uint8Array(), first) !== 0,
            )
        ) {
            const policy = this.#policies.get(chaincodeName);
            throw new EndorsementPolicyError({
                transactionId: txId,
                policy: policy === undefined ? '?' : formatPolicy(policy),
                endorsers: organisations,
                reason: 'endorsing peers returned different results (non-deterministic chaincode?)',
            });
        }
        return outcomes;
    }

    /** Orders an endorsed transaction; returns once the orderer accepted it. */
    async order(
        signer: LedgerSigner,
        proposal: SignedProposalBundle,
        outcomes: readonly ProposalOutcome[],
    ): Promise<void> {
        this.#checkOpen();
        const envelope = await createSignedTransaction(
            proposal,
            outcomes.flatMap((o) => (o.endorsed === undefined ? [] : [o.endorsed])),
            signer,
        );
        this.orderEnvelope(envelope, proposal.txId);
    }

    /**
     * Broadcasts a signed transaction envelope to the ordering service (a gateway's Submit).
     * @throws {SubmitError} when: ordering service refused transaction: …
     */
    orderEnvelope(envelope: SignedEnvelope, transactionId: string): void {
        this.#checkOpen();
        try {
            this.#orderer.order(envelope);
        } catch (err) {
            if (err instanceof MessageTooLargeError) throw new SubmitError(err.message, transactionId, { cause: err });
            throw new SubmitError(`ordering service refused transaction: ${(err as Error).message}`, transactionId, {
                cause: err,
            });
        }
    }

    /**
     * Checks a client's signed request (a gateway's CommitStatus and ChaincodeEvents requests): the
     * serialized identity must be a valid member of a channel organisation and the signature over
     * `message` must verify. Returns the MSP ID, or why the request is refused.
     */
    authenticate(
        serializedIdentity: Uint8Array,
        message: Uint8Array,
        signature: Uint8Array,
    ): string | { mspId: string } {
        const identity = this.#msps.deserialize(serializedIdentity);
        if (typeof identity === 'string') return `creator identity is not valid: ${identity}`;
        if (!verifyLowS(identity.publicKey, message, signature)) return 'signature is invalid';
        return { mspId: identity.mspId };
    }

    /**
     * @throws {ConnectionError} when: commit status of … unavailable: …
     */
    async waitForCommit(transactionId: string, signal?: AbortSignal): Promise<CommitStatus> {
        try {
            const location = await this.#committer.waitForStatus(transactionId, signal);
            const code = validationCodeName(location.code);
            return { transactionId, blockNumber: BigInt(location.blockNum), code, successful: code === 'VALID' };
        } catch (err) {
            if (err instanceof LedgerError) throw err;
            throw new ConnectionError(`commit status of ${transactionId} unavailable: ${(err as Error).message}`, {
                cause: err,
                transactionId,
            });
        }
    }

    /**
     * @throws {RangeError} when: startBlock must not be negative
     */
    openEventStream(chaincodeName: string, options: ChaincodeEventsOptions, onClose: () => void): ChaincodeEventStream {
        this.#checkOpen();
        const checkpointBlock = options.checkpoint?.getBlockNumber();
        const start = checkpointBlock ?? options.startBlock ?? BigInt(this.#store.height);
        if (start < 0n) throw new RangeError('startBlock must not be negative');
        const afterTransactionId = checkpointBlock === undefined ? undefined : options.checkpoint?.getTransactionId();
        return new BlockEventStream(
            this.#store,
            this.#committer,
            chaincodeName,
            Number(start),
            afterTransactionId,
            onClose,
        );
    }

    #checkOpen(): void {
        if (this.#closed) throw new ConnectionError('ledger closed');
        if (this.#committer.failure !== undefined) {
            throw new ConnectionError(`ledger failed: ${this.#committer.failure.message}`, {
                cause: this.#committer.failure,
            });
        }
    }
}

function genesisEnvelope(config: ChannelConfig): Uint8Array {
    const channelHeader = new common.ChannelHeader();
    channelHeader.setType(HeaderType.CONFIG);
    channelHeader.setChannelId(config.channel);
    channelHeader.setTimestamp(newTimestamp(Date.now()));
    const header = new common.Header();
    header.setChannelHeader(channelHeader.serializeBinary());
    header.setSignatureHeader(new common.SignatureHeader().serializeBinary());
    const payload = new common.Payload();
    payload.setHeader(header);
    // The embedded channel configuration, as JSON (not a Fabric ConfigEnvelope).
    payload.setData(Buffer.from(JSON.stringify(config), 'utf8'));
    const envelope = new common.Envelope();
    envelope.setPayload(payload.serializeBinary());
    return envelope.serializeBinary();
}

class EmbeddedConnection implements LedgerConnection {
    readonly channelName: string;
    readonly identity: LedgerIdentity;
    readonly #ledger: EmbeddedLedger;
    readonly #signer: LedgerSigner;
    readonly #streams = new Set<ChaincodeEventStream>();
    readonly #onClose: (connection: EmbeddedConnection) => void;
    #closed = false;

    constructor(
        ledger: EmbeddedLedger,
        identity: LedgerIdentity,
        signer: LedgerSigner,
        onClose: (c: EmbeddedConnection) => void,
    ) {
        this.#ledger = ledger;
        this.channelName = ledger.channelName;
        this.identity = identity;
        this.#signer = signer;
        this.#onClose = onClose;
    }

    getContract(chaincodeName: string, contractName?: string): LedgerContract {
        return new EmbeddedContract(this, chaincodeName, contractName);
    }

    async getChaincodeEvents(
        chaincodeName: string,
        options: ChaincodeEventsOptions = {},
    ): Promise<ChaincodeEventStream> {
        this.checkOpen();
        const stream = this.#ledger.openEventStream(chaincodeName, options, () => this.#streams.delete(stream));
        this.#streams.add(stream);
        return stream;
    }

    close(): void {
        if (this.#closed) return;
        this.#closed = true;
        for (const stream of [...this.#streams]) stream.close();
        this.#onClose(this);
    }

    checkOpen(): void {
        if (this.#closed) throw new ConnectionError('connection closed');
    }

    get ledger(): EmbeddedLedger {
        return this.#ledger;
    }

    get signer(): LedgerSigner {
        return this.#signer;
    }
}

class EmbeddedContract implements LedgerContract {
    readonly chaincodeName: string;
    readonly contractName?: string;
    readonly #connection: EmbeddedConnection;

    constructor(connection: EmbeddedConnection, chaincodeName: string, contractName: string | undefined) {
        this.#connection = connection;
        this.chaincodeName = chaincodeName;
        if (contractName !== undefined) this.contractName = contractName;
    }

    async evaluate(transactionName: string, options: TransactionOptions = {}): Promise<Uint8Array> {
        const deadlineAt = checkDeadline(options.deadlineMs);
        const { outcomes } = await beforeDeadline(
            this.#endorse(transactionName, options, true),
            deadlineAt,
            options.deadlineMs,
            'endorse',
        );
        return outcomes[0]?.payload ?? new Uint8Array();
    }

    async submit(transactionName: string, options: TransactionOptions = {}): Promise<Uint8Array> {
        const deadlineAt = checkDeadline(options.deadlineMs);
        const submitted = await this.#submitAsync(transactionName, options, deadlineAt);
        const status = await this.#waitForStatus(submitted.transactionId, deadlineAt, options.deadlineMs);
        assertCommitted(status);
        return submitted.getResult();
    }

    async submitAsync(transactionName: string, options: TransactionOptions = {}): Promise<SubmittedTransaction> {
        return this.#submitAsync(transactionName, options, checkDeadline(options.deadlineMs));
    }

    async #submitAsync(
        transactionName: string,
        options: TransactionOptions,
        deadlineAt: number | undefined,
    ): Promise<SubmittedTransaction> {
        const { proposal, outcomes } = await beforeDeadline(
            this.#endorse(transactionName, options, false),
            deadlineAt,
            options.deadlineMs,
            'endorse',
        );
        if (deadlineAt !== undefined && Date.now() > deadlineAt && options.deadlineMs !== undefined) {
            throw new DeadlineError({ stage: 'submit', deadlineMs: options.deadlineMs, transactionId: proposal.txId });
        }
        await this.#connection.ledger.order(this.#connection.signer, proposal, outcomes);
        const result = outcomes[0]?.payload ?? new Uint8Array();
        const transactionId = proposal.txId;
        return {
            transactionId,
            getResult: () => result,
            getStatus: async (statusOptions = {}) =>
                this.#waitForStatus(transactionId, checkDeadline(statusOptions.deadlineMs), statusOptions.deadlineMs),
        };
    }

    async #waitForStatus(
        transactionId: string,
        deadlineAt: number | undefined,
        deadlineMs: number | undefined,
    ): Promise<CommitStatus> {
        if (deadlineAt === undefined || deadlineMs === undefined)
            return this.#connection.ledger.waitForCommit(transactionId);
        const controller = new AbortController();
        const timer = setTimeout(
            () => controller.abort(new DeadlineError({ stage: 'commit', deadlineMs, transactionId })),
            Math.max(0, deadlineAt - Date.now()),
        );
        try {
            return await this.#connection.ledger.waitForCommit(transactionId, controller.signal);
        } finally {
            clearTimeout(timer);
        }
    }

    async #endorse(
        transactionName: string,
        options: TransactionOptions,
        evaluateOnly: boolean,
    ): Promise<{ proposal: SignedProposalBundle; outcomes: ProposalOutcome[] }> {
        this.#connection.checkOpen();
        const functionName =
            this.contractName === undefined ? transactionName : `${this.contractName}:${transactionName}`;
        return this.#connection.ledger.endorse(
            this.#connection.identity,
            this.#connection.signer,
            this.chaincodeName,
            functionName,
            options,
            evaluateOnly,
        );
    }
}
