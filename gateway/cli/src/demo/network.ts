/**
 * Everything on embedded defaults in one process: the embedded ledger running the m2m chaincode,
 * the embedded IPFS store, one CSP backend (with the link broker), F fog gateways (each with its
 * own device broker). Used by `m2m demo` (npm start), the services tests and the kx benchmark.
 * State lives under one data directory, so a second run continues from the first.
 */
import '@m2m-fabric/embedded-ledger'; // first: quiets fabric-contract-api's load-time logging
import { join } from 'node:path';
import { CSP_WRITER, fogWriter, getSuite, type Suite } from '@m2m-fabric/protocol';
import { EmbeddedLedger, type ChaincodeExecution } from '@m2m-fabric/embedded-ledger';
import { decodeBlock, summariseBlock } from '@m2m-fabric/embedded-ledger';
import type { LedgerConnection } from '@m2m-fabric/sdk';
import { openObjectStore, type ObjectStore, EmbeddedObjectStore } from '@m2m-fabric/sdk';
import { ChaincodeClient, DEFAULT_CHAINCODE_NAME } from '@m2m-fabric/sdk';
import { loadOrCreateServiceKey } from '@m2m-fabric/services';
import { CspBackend, RecordBatcher, RecordEnvelopes } from '@m2m-fabric/services';
import type { AnchoredBatch } from '@m2m-fabric/sdk';
import { buildReceipt, encodeReceipt, fetchBlockByTxId } from '@m2m-fabric/sdk';
import { FogGateway } from '@m2m-fabric/services';
import { ManufacturerClient } from '@m2m-fabric/services';
import { silentLogger, type Logger } from '@m2m-fabric/common';
import { ensureSecretDir } from '@m2m-fabric/common';

export const CSP_MSP = 'CSPMSP';
export const FOG_MSPS = ['FogAMSP', 'FogBMSP'] as const;
export const MANUFACTURER_MSP = 'ManufacturerMSP';
/** Every organisation of the embedded network, in channel order. */
export const NETWORK_ORGANISATIONS = [CSP_MSP, ...FOG_MSPS, MANUFACTURER_MSP] as const;
/** The m2m chaincode package, as an embedded peer's chaincode thread imports it. */
export const CHAINCODE_MODULE = '@m2m-fabric/chaincode';

/** MSP IDs of a network's organisations: the CSP, each fog's (in fog order), the manufacturer. */
export function networkOrganisations(net: EmbeddedNetwork): { csp: string; fogs: string[]; manufacturer: string } {
    return {
        csp: CSP_MSP,
        fogs: net.fogs.map((_, i) => FOG_MSPS[i % FOG_MSPS.length]!),
        manufacturer: MANUFACTURER_MSP,
    };
}

export interface EmbeddedNetworkOptions {
    dataDir: string;
    fogs: number;
    batchTimeoutMs: number;
    suiteId?: string;
    logger?: Logger;
    /** Chaincode contracts (default: the m2m chaincode package). */
    contracts?: readonly unknown[];
    /**
     * Where the embedded peers run the chaincode (EmbeddedLedgerOptions.chaincodeExecution; default
     * in process). `worker-per-peer` needs the default contracts (the package a thread can load).
     * With everything in one process, as `npm start` runs, threads per peer measured no faster
     * (10 devices, BatchTimeout 0.5 s: p50 1.31-1.32 s in process, 1.38-1.63 s threaded); they pay
     * off when the ledger has a process of its own (`m2m peer`, `bench -- kx`).
     */
    chaincodeExecution?: ChaincodeExecution;
    /**
     * One external broker (e.g. mosquitto) for devices and the fog-CSP link instead of embedded
     * ones; service accounts log in with these passwords (username = fog id, or `csp`).
     */
    externalBroker?: { url: string; passwords: Record<string, string> };
    /** Wraps each service's object store (tests inject faults this way). */
    wrapStore?: (store: ObjectStore, owner: string) => ObjectStore;
    /** Wraps the CSP's chaincode client (tests stand in for a lagging endorser this way). */
    wrapCspLedger?: (ledger: ChaincodeClient) => ChaincodeClient;
    fogOptions?: Partial<ConstructorParameters<typeof FogGateway>[0]>;
    cspOptions?: Partial<ConstructorParameters<typeof CspBackend>[0]>;
    /**
     * Connects each service to a ledger that runs elsewhere (e.g. the embedded ledger's Fabric Gateway
     * endpoints in another process, as `npm run bench -- kx --layout processes` does) instead of
     * opening an embedded ledger in this process. `role` is the identity's `m2m.role` attribute.
     */
    connect?: (mspId: string, name: string, role: string) => Promise<LedgerConnection>;
    /** More organisations on the channel (e.g. a second manufacturer for the console's access tests). */
    extraOrganisations?: readonly string[];
    /**
     * Communication records (docs/records.md): the CSP journals a record of every session-channel
     * frame in a RecordBatcher under `<dataDir>/csp/records` and anchors its batches; each fog
     * journals a relay record of every record-query packet it relays in its own RecordBatcher
     * (writer `fog:<id>`, under `<dataDir>/fogs/<id>/records`). Off unless set.
     */
    records?: { batchSize?: number; maxDelayMs?: number; envelopes?: boolean };
}

export interface LedgerTotals {
    blocks: number;
    transactions: number;
    validTransactions: number;
    onChainBytes: number;
}

export class EmbeddedNetwork {
    readonly fogs: FogGateway[] = [];
    csp!: CspBackend;
    manufacturer!: ManufacturerClient;
    store!: ObjectStore;
    ledger!: EmbeddedLedger;
    /**
     * The embedded ledger's and store's figures when start() opened them, before this run's own
     * set-up transactions: what a run added is the difference (undefined with `connect`).
     */
    atOpen: (LedgerTotals & { storedObjects: number }) | undefined;
    readonly suite: Suite;
    private readonly connections: LedgerConnection[] = [];
    private fogFactories: (() => Promise<FogGateway>)[] = [];
    private cspFactory: (() => Promise<CspBackend>) | undefined;
    /** The CSP's record batcher (with `records`), reopened with the CSP. */
    recordBatcher: RecordBatcher | undefined;
    /** The CSP's sealed payloads (with `records`, unless `records.envelopes` is false). */
    recordEnvelopes: RecordEnvelopes | undefined;

    /** Where the CSP keeps its sealed-payload index and storage key (with `records`). */
    get recordEnvelopeDir(): string | undefined {
        return this.options.records === undefined ? undefined : join(this.options.dataDir, 'csp', 'envelopes');
    }

    /** Where the CSP journals its communication records (with `records`). */
    get recordJournalDir(): string | undefined {
        return this.options.records === undefined ? undefined : join(this.options.dataDir, 'csp', 'records');
    }
    /** The batcher's anchored log size when start() first opened it (what a run anchored is the difference). */
    recordsAnchoredAtOpen: number | undefined;
    /** Batches the CSP anchored since start(), oldest first. */
    readonly anchoredBatches: AnchoredBatch[] = [];
    /** Each fog's relay-record batcher (with `records`), by fog index, reopened with the fog. */
    readonly fogRecordBatchers: (RecordBatcher | undefined)[] = [];
    /** Each fog's anchored log size when start() first opened its batcher. */
    readonly fogRecordsAnchoredAtOpen: number[] = [];
    /** Batches the fogs anchored since start(), oldest first (writer `fog:<id>`). */
    readonly fogAnchoredBatches: AnchoredBatch[] = [];
    /** Each fog's ledger connection (with `records`), for anchoring and qscc block reads. */
    readonly fogConnections: LedgerConnection[] = [];

    /** Where fog i journals its relay records (with `records`). */
    fogRecordJournalDir(index: number): string | undefined {
        return this.options.records === undefined
            ? undefined
            : join(this.options.dataDir, 'fogs', this.fogId(index), 'records');
    }
    /** The CSP's ledger connection, for qscc block reads (receipts). */
    cspConnection: LedgerConnection | undefined;

    constructor(readonly options: EmbeddedNetworkOptions) {
        this.suite = getSuite(options.suiteId ?? 'P256-SHA256');
    }

    fogId(index: number): string {
        return `fog-${index + 1}`;
    }

    private async connection(mspId: string, name: string, role: string): Promise<LedgerConnection> {
        let connection: LedgerConnection;
        if (this.options.connect !== undefined) connection = await this.options.connect(mspId, name, role);
        else {
            const enrolment = await this.ledger.loadOrEnrol(mspId, name, { attributes: { 'm2m.role': role } });
            connection = await this.ledger.connect({ identity: enrolment.identity, signer: enrolment.signer });
        }
        this.connections.push(connection);
        return connection;
    }

    private async client(mspId: string, name: string, role: string): Promise<ChaincodeClient> {
        return new ChaincodeClient(await this.connection(mspId, name, role), DEFAULT_CHAINCODE_NAME, 60_000);
    }

    async start(): Promise<void> {
        const { dataDir } = this.options;
        await ensureSecretDir(dataDir);
        if (this.options.connect === undefined) {
            const custom = this.options.contracts;
            const contracts = custom ?? (await import('@m2m-fabric/chaincode')).contracts;
            this.ledger = await EmbeddedLedger.open({
                dataDir: join(dataDir, 'ledger'),
                organisations: [...NETWORK_ORGANISATIONS, ...(this.options.extraOrganisations ?? [])],
                chaincodes: [
                    {
                        name: DEFAULT_CHAINCODE_NAME,
                        contracts,
                        ...(custom === undefined ? { module: CHAINCODE_MODULE } : {}),
                    },
                ],
                batch: { batchTimeoutMs: this.options.batchTimeoutMs },
                ...(this.options.chaincodeExecution === undefined
                    ? {}
                    : { chaincodeExecution: this.options.chaincodeExecution }),
            });
        }
        this.store = await openObjectStore({ backend: 'embedded', directory: join(dataDir, 'objects') });
        if (this.options.connect === undefined) {
            this.atOpen = { ...(await this.ledgerTotals()), storedObjects: await this.storedObjects() };
        }
        const log = this.options.logger ?? silentLogger;
        const ext = this.options.externalBroker;
        const wrap = (owner: string): ObjectStore => this.options.wrapStore?.(this.store, owner) ?? this.store;
        const cspKey = await loadOrCreateServiceKey(join(dataDir, 'keys', 'csp.json'), this.suite);
        const ownLedger = await this.client(CSP_MSP, 'csp-backend', 'csp');
        const cspLedger = this.options.wrapCspLedger?.(ownLedger) ?? ownLedger;
        let cspPort = 0;
        const records = this.options.records;
        if (records !== undefined) this.cspConnection = await this.connection(CSP_MSP, 'csp-backend', 'csp');
        this.cspFactory = async () => {
            this.recordBatcher =
                records === undefined
                    ? undefined
                    : await RecordBatcher.open({
                          dir: this.recordJournalDir!,
                          writer: { suite: this.suite, writer: CSP_WRITER, secretKey: cspKey.privateKey },
                          anchors: this.cspConnection!.getContract(DEFAULT_CHAINCODE_NAME, 'anchors'),
                          store: wrap('csp'),
                          ...(records.batchSize !== undefined ? { batchSize: records.batchSize } : {}),
                          ...(records.maxDelayMs !== undefined ? { maxDelayMs: records.maxDelayMs } : {}),
                          onAnchored: (batch) => this.anchoredBatches.push(batch),
                      });
            this.recordsAnchoredAtOpen ??= this.recordBatcher?.anchoredSize;
            this.recordEnvelopes =
                records === undefined || records.envelopes === false
                    ? undefined
                    : await RecordEnvelopes.open({
                          dir: this.recordEnvelopeDir!,
                          store: wrap('csp'),
                          suite: this.suite,
                          signerSecretKey: cspKey.privateKey,
                      });
            const csp = new CspBackend({
                brokerPort: cspPort,
                key: cspKey,
                ledger: cspLedger,
                store: wrap('csp'),
                dataDir: join(dataDir, 'csp'),
                logger: log.child('csp'),
                ...(ext !== undefined ? { brokerUrl: ext.url, brokerPassword: ext.passwords.csp } : {}),
                ...(this.recordBatcher !== undefined ? { records: this.recordBatcher } : {}),
                ...(this.recordEnvelopes !== undefined ? { envelopes: this.recordEnvelopes } : {}),
                ...this.options.cspOptions,
            });
            await csp.start();
            if (ext === undefined) cspPort = Number(new URL(csp.brokerUrl).port);
            return csp;
        };
        this.csp = await this.cspFactory();
        const cspBrokerUrl = this.csp.brokerUrl;
        this.fogFactories = await Promise.all(
            Array.from({ length: this.options.fogs }, async (_, i) => {
                const fogId = this.fogId(i);
                const mspId = FOG_MSPS[i % FOG_MSPS.length]!;
                const key = await loadOrCreateServiceKey(join(dataDir, 'keys', `${fogId}.json`), this.suite);
                const ledger = await this.client(mspId, `${fogId}-svc`, 'fog');
                if (records !== undefined) this.fogConnections[i] = await this.connection(mspId, `${fogId}-svc`, 'fog');
                let port = 0;
                return async () => {
                    const batcher =
                        records === undefined
                            ? undefined
                            : await RecordBatcher.open({
                                  dir: this.fogRecordJournalDir(i)!,
                                  writer: { suite: this.suite, writer: fogWriter(fogId), secretKey: key.privateKey },
                                  anchors: this.fogConnections[i]!.getContract(DEFAULT_CHAINCODE_NAME, 'anchors'),
                                  store: wrap(fogId),
                                  ...(records.batchSize !== undefined ? { batchSize: records.batchSize } : {}),
                                  ...(records.maxDelayMs !== undefined ? { maxDelayMs: records.maxDelayMs } : {}),
                                  onAnchored: (batch) => this.fogAnchoredBatches.push(batch),
                              });
                    this.fogRecordBatchers[i] = batcher;
                    if (batcher !== undefined) this.fogRecordsAnchoredAtOpen[i] ??= batcher.anchoredSize;
                    const fog = new FogGateway({
                        fogId,
                        key,
                        ledger,
                        store: wrap(fogId),
                        dataDir: join(dataDir, 'fogs'),
                        cspBrokerUrl,
                        deviceBrokerPort: port,
                        logger: log.child(fogId),
                        ...(batcher !== undefined ? { records: batcher } : {}),
                        ...(ext !== undefined
                            ? {
                                  deviceBrokerUrl: ext.url,
                                  brokerPassword: ext.passwords[fogId],
                                  cspBrokerPassword: ext.passwords[fogId],
                              }
                            : {}),
                        ...this.options.fogOptions,
                    });
                    await fog.start();
                    // A restarted fog comes back on the same port, so devices reconnect to it.
                    port = Number(new URL(fog.deviceBrokerUrl).port);
                    return fog;
                };
            }),
        );
        for (let i = 0; i < this.fogFactories.length; i++) this.fogs[i] = await this.fogFactories[i]!();
        this.manufacturer = new ManufacturerClient({
            suite: this.suite,
            ledger: await this.client(MANUFACTURER_MSP, 'manufacturer', 'manufacturer'),
            store: this.store,
            dataDir: join(dataDir, 'manufacturer'),
            // Devices verify record-query receipts offline against the channel's roots.
            ...(this.options.connect === undefined
                ? { channelTrust: this.ledger.channelTrust(DEFAULT_CHAINCODE_NAME) }
                : {}),
        });
    }

    /** Stops fog i (as a crash would: no draining) and starts it again with the same key and data. */
    async restartFog(i: number, pauseMs = 0): Promise<FogGateway> {
        await this.fogs[i]!.close();
        await this.fogRecordBatchers[i]?.close();
        if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
        this.fogs[i] = await this.fogFactories[i]!();
        return this.fogs[i];
    }

    /** Stops the CSP backend and starts it again (same key, store and data directory). */
    async restartCsp(pauseMs = 0): Promise<CspBackend> {
        await this.csp.close();
        await this.recordBatcher?.close();
        await this.recordEnvelopes?.close();
        if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
        this.csp = await this.cspFactory!();
        return this.csp;
    }

    /**
     * Waits until every relay record the fogs journaled is anchored: what the fogs recorded and
     * anchored since start() (records on; zeros otherwise).
     * @throws {Error} when a fog's group commit or anchor failed for good
     */
    async drainFogRecords(): Promise<{ journaled: number; anchored: number; batches: number; allAnchored: boolean }> {
        let journaled = 0;
        let anchored = 0;
        let allAnchored = true;
        for (let i = 0; i < this.fogs.length; i++) {
            const batcher = this.fogRecordBatchers[i];
            if (batcher === undefined) continue;
            await batcher.drain();
            const counts = this.fogs[i]!.relayRecords?.counts;
            journaled += (counts?.queries ?? 0) + (counts?.answers ?? 0);
            anchored += batcher.anchoredSize - (this.fogRecordsAnchoredAtOpen[i] ?? 0);
            allAnchored &&= batcher.anchoredSize === batcher.durableSize;
        }
        return { journaled, anchored, batches: this.fogAnchoredBatches.length, allAnchored };
    }

    /**
     * The receipt of record `leafIndex` of fog i's log, in its anchored batch `batch` (one of
     * {@link fogAnchoredBatches}): the record read back from the fog's journal, its inclusion path
     * and the anchoring block fetched with qscc over the fog's connection.
     * @throws {RangeError} when the batch does not cover the leaf or records are off
     */
    async fogReceipt(i: number, batch: AnchoredBatch, leafIndex: number): Promise<Uint8Array> {
        const batcher = this.fogRecordBatchers[i];
        const connection = this.fogConnections[i];
        if (batcher === undefined || connection === undefined) throw new RangeError(`fog ${i} keeps no records`);
        if (leafIndex >= batch.treeSize) throw new RangeError(`batch ${batch.sequence} ends before leaf ${leafIndex}`);
        return encodeReceipt(
            buildReceipt(
                {
                    record: await batcher.readRecord(leafIndex),
                    writer: batch.writer,
                    sequence: batch.sequence,
                    leafIndex,
                    treeSize: batch.treeSize,
                    inclusionProof: batcher.tree.inclusionProof(leafIndex, batch.treeSize),
                    root: batch.root,
                    transactionId: batch.transactionId,
                },
                await fetchBlockByTxId(connection, batch.transactionId),
            ),
        );
    }

    /** Blocks, transactions and bytes on the ledger (read from the committed blocks). */
    async ledgerTotals(): Promise<LedgerTotals> {
        const height = Number(this.ledger.height);
        const totals: LedgerTotals = { blocks: height, transactions: 0, validTransactions: 0, onChainBytes: 0 };
        for (let n = 0; n < height; n++) {
            const bytes = await this.ledger.getBlock(BigInt(n));
            if (bytes === undefined) continue;
            totals.onChainBytes += bytes.length;
            for (const tx of summariseBlock(decodeBlock(bytes))) {
                totals.transactions++;
                if (tx.code === 0) totals.validTransactions++;
            }
        }
        return totals;
    }

    async storedObjects(): Promise<number> {
        return this.store instanceof EmbeddedObjectStore ? (await this.store.stats()).objects : -1;
    }

    async close(): Promise<void> {
        await Promise.allSettled(this.fogs.map((f) => f.close()));
        await Promise.allSettled(this.fogRecordBatchers.map((b) => b?.close() ?? Promise.resolve()));
        await this.csp?.close().catch(() => undefined);
        await this.recordBatcher?.close().catch(() => undefined);
        await this.recordEnvelopes?.close().catch(() => undefined);
        for (const c of this.connections) c.close();
        await this.store?.close();
        await this.ledger?.close();
    }
}
