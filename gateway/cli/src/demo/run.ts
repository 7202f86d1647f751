/**
 * `m2m demo` — what `npm start` runs: the embedded network, N devices, K sessions each:
 * registration -> purchase -> issuance -> sessions -> encrypted telemetry round trips, with
 * progress lines and a summary. Re-running on the same data directory continues: equipment is
 * already registered, devices keep their counters, and only missing sessions are bought.
 *
 * The progress lines name the paper's steps (Algorithm 1 issuance, Algorithm 2 activation with
 * M1-M3, Algorithm 3 synchronisation with M4) and say where each kind of data went: the ledger,
 * the IPFS object store, or the device's state file. The first session of a run is shown message
 * by message. The summary gives this run's figures apart from the totals since the first run.
 */
import { join } from 'node:path';
import { DeviceAgent, type SessionStep } from '@m2m-fabric/device';
import { readDeviceState } from '@m2m-fabric/device';
import { errorCodeOf } from '@m2m-fabric/common';
import {
    DEFAULT_CHAINCODE_NAME,
    buildReceipt,
    encodeReceipt,
    fetchBlockByTxId,
    openSharedRecord,
    verifyReceipt,
} from '@m2m-fabric/sdk';
import { contentAddressOfDigest, encodeRecordShare, hpkeRecipientFromScalar, randomScalar } from '@m2m-fabric/protocol';
import { EmbeddedNetwork, MANUFACTURER_MSP } from './network.js';

export interface DemoOptions {
    dataDir: string;
    devices: number;
    sessions: number;
    fogs: number;
    batchTimeoutMs: number;
    /** Progress output (one line per call). */
    print: (line: string) => void;
    /** More organisations on the channel (EmbeddedNetworkOptions.extraOrganisations). */
    extraOrganisations?: readonly string[];
    /**
     * Something to run beside the demo's network (the operator console): started once the network
     * is up; `hold` is awaited after the sessions (e.g. until Ctrl-C) and `close` before the
     * network stops.
     */
    attach?: (net: EmbeddedNetwork) => Promise<{ hold(summary: DemoSummary): Promise<void>; close(): Promise<void> }>;
}

/** What one run added to the ledger and the object store. */
export interface RunFigures {
    transactions: number;
    validTransactions: number;
    blocks: number;
    onChainBytes: number;
    storedObjects: number;
}

export interface DemoSummary {
    devices: number;
    fogs: number;
    sessionsPerDevice: number;
    batchTimeoutMs: number;
    established: number;
    failed: number;
    failures: Record<string, number>;
    latency_ms: { p50: number; p95: number; mean: number; max: number };
    roundTrip_ms: { p50: number; p95: number };
    telemetryRoundTrips: number;
    transactions: number;
    validTransactions: number;
    blocks: number;
    onChainBytes: number;
    storedObjects: number;
    durationMs: number;
    /** This run's share of the totals above (which count since the first run on the data directory). */
    thisRun: RunFigures;
    /** Communication records of this run's session-channel frames (docs/records.md). */
    records: RecordFigures;
}

/** What the CSP's record batcher did in one run. */
export interface RecordFigures {
    /** Records journaled: the devices' records of the frames they sent, and the CSP's of its own. */
    created: number;
    fromDevices: number;
    fromCsp: number;
    /** Batches anchored on the ledger this run, and the records they cover. */
    batchesAnchored: number;
    recordsAnchored: number;
    /** Every journaled record is anchored (the batcher drained) at the end of the run. */
    allAnchored: boolean;
    /** One record's receipt verified offline against the channel's MSP roots (undefined: none anchored). */
    receipt?: { writer: string; sequence: number; leafIndex: number; bytes: number; verified: boolean };
    /**
     * That record shared with a fresh auditor key (envelope encryption): its sealed payload's CID,
     * unchanged by the share, and whether the auditor opened it offline against the receipt.
     */
    auditorShare?: { sealedPayload: string; opened: boolean };
}

export function percentile(sorted: readonly number[], p: number): number {
    if (sorted.length === 0) return 0;
    const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[idx]!;
}

const round = (x: number): number => Math.round(x * 10) / 10;

export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
    const t0 = performance.now();
    const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(1)}s`;
    const say = (msg: string): void => options.print(`[${elapsed()}] ${msg}`);
    const net = new EmbeddedNetwork({
        dataDir: options.dataDir,
        fogs: options.fogs,
        batchTimeoutMs: options.batchTimeoutMs,
        // Records cut at one BatchTimeout, so a batch is anchored about two BatchTimeouts after its first record.
        records: { maxDelayMs: options.batchTimeoutMs },
        ...(options.extraOrganisations !== undefined ? { extraOrganisations: options.extraOrganisations } : {}),
    });
    say(
        `starting embedded ledger (BatchTimeout ${options.batchTimeoutMs} ms), IPFS store, CSP and ${options.fogs} fog gateway(s) in ${options.dataDir}`,
    );
    await net.start();
    let attached: Awaited<ReturnType<NonNullable<DemoOptions['attach']>>> | undefined;
    try {
        const before = net.atOpen ?? { ...(await net.ledgerTotals()), storedObjects: await net.storedObjects() };
        const startedAt = new Date().toISOString();
        attached = await options.attach?.(net);
        say(
            `CSP ${net.csp.publicKeyHex.slice(0, 16)}… link broker ${net.csp.brokerUrl}; fogs ${net.fogs.map((f) => `${f.fogId}@${f.deviceBrokerUrl}`).join(', ')}`,
        );
        const ids = Array.from({ length: options.devices }, (_, i) => `dev-${String(i + 1).padStart(4, '0')}`);
        const statePath = (id: string): string => join(options.dataDir, 'devices', `${id}.json`);

        // Registration (M-EB).
        const records = await Promise.all(
            ids.map((id, i) =>
                net.manufacturer.registerEquipment({
                    equipmentId: id,
                    kind: 'sensor',
                    model: 'rpi-4b',
                    fogGroup: net.fogId(i % options.fogs),
                    privilegeLevel: 1,
                    serviceType: 'upload-download',
                    accessTime: 'always',
                }),
            ),
        );
        const added = records.filter((r) => String(r.registeredAt) >= startedAt).length;
        say(
            `M-EB: ${ids.length} equipment record(s) on the ledger (${added} registered now, ${ids.length - added} already there)`,
        );

        // Purchase + issuance (Alg. 1): top up each device to K remaining sessions.
        const needs = await Promise.all(
            ids.map(async (id) => {
                // Read-only look at the state file (no agent runs yet; opening one would take its lock).
                const state = await readDeviceState(statePath(id)).catch(() => undefined);
                const remaining = state === undefined ? 0n : BigInt(state.endCounter) - BigInt(state.nextCounter);
                return Math.max(0, options.sessions - Number(remaining));
            }),
        );
        const total = needs.reduce((a, b) => a + b, 0);
        if (total > 0) {
            const balance = await net.csp.grantCredit(MANUFACTURER_MSP, total);
            // The manufacturer buys on its own peer, which has the CSP's grant moments later.
            await net.manufacturer.waitForCredit(balance);
            await Promise.all(
                ids.map((id, i) => (needs[i]! > 0 ? net.manufacturer.buySessions(id, needs[i]!) : Promise.resolve())),
            );
        }
        await Promise.all(
            ids.map((id, i) =>
                net.manufacturer.provisionDevice(id, statePath(id), { id: net.fogId(i % options.fogs) }),
            ),
        );
        say(
            `Algorithm 1 (issuance): bought and issued ${total} certificate(s): request and certificate objects -> IPFS ` +
                `object store; their content addresses and Table II records (IDCert_i, B_i) -> ledger; ` +
                `${ids.length} device state file(s) (w, counter range) -> ${join(options.dataDir, 'devices')}`,
        );

        // Sessions and telemetry round trips.
        const latencies: number[] = [];
        const roundTrips: number[] = [];
        const failures: Record<string, number> = {};
        let established = 0;
        let failed = 0;
        // The first session of the run is shown message by message; the others in one line each.
        let detailed = false;
        const steps = (id: string, fogId: string): ((step: SessionStep, counter: bigint) => void) | undefined => {
            if (detailed) return undefined;
            detailed = true;
            return (step, counter) => {
                const at = `${id} (counter ${counter})`;
                if (step === 'M1') {
                    say(`${at} Algorithm 2 at ${fogId}: M1 sent (C1 for the fog, C2 for the CSP, proof of possession)`);
                } else if (step === 'M2') {
                    say(
                        `${at} M2 received: its certificate object from the IPFS store, checked; d_i and symKey_i derived`,
                    );
                } else {
                    say(
                        `${at} M3 sent (Q_i, H(symKey_i), signature); ${fogId} submits the activation -> ledger ` +
                            `(session record), then M4 -> CSP: Algorithm 3, synchronisation -> ledger (secondaryHash)`,
                    );
                }
            };
        };
        await Promise.all(
            ids.map(async (id, i) => {
                const fog = net.fogs[i % options.fogs]!;
                const agent = await DeviceAgent.open({ statePath: statePath(id), brokerUrl: fog.deviceBrokerUrl });
                const instructions: ((p: Uint8Array) => void)[] = [];
                agent.onInstruction((p) => instructions.shift()?.(p));
                try {
                    await agent.connect();
                    for (let s = 0; s < options.sessions; s++) {
                        try {
                            const session = await agent.establishSession(steps(id, fog.fogId));
                            established++;
                            latencies.push(session.latencyMs);
                            const rt0 = performance.now();
                            const got = new Promise<Uint8Array>((resolve) => instructions.push(resolve));
                            await agent.upload({ temperature: 20 + Math.random() * 5, session: s });
                            await net.csp.sendInstruction(
                                { routeId: session.routeId },
                                new TextEncoder().encode(JSON.stringify({ setpoint: 21 })),
                            );
                            await got;
                            roundTrips.push(performance.now() - rt0);
                            say(
                                `${id} session ${s + 1}/${options.sessions} (counter ${session.counter}) established in ${session.latencyMs.toFixed(0)} ms via ${fog.fogId} ` +
                                    `(Algorithms 2-3, M1-M4; forward-secret K_i -> device state file and CSP session store, symKey_i and x_D erased); ` +
                                    `telemetry/instruction round trip over the session channel ${(performance.now() - rt0).toFixed(1)} ms`,
                            );
                        } catch (err) {
                            failed++;
                            const code = errorCodeOf(err);
                            failures[code] = (failures[code] ?? 0) + 1;
                            say(`${id} session ${s + 1}/${options.sessions} failed: ${(err as Error).message}`);
                        }
                    }
                } catch (err) {
                    const code = errorCodeOf(err);
                    failed += options.sessions;
                    failures[code] = (failures[code] ?? 0) + options.sessions;
                    say(`${id} could not connect: ${(err as Error).message}`);
                } finally {
                    await agent.close();
                }
            }),
        );
        latencies.sort((a, b) => a - b);
        roundTrips.sort((a, b) => a - b);
        const recordFigures = await anchorRecords(net, say);
        const totals = await net.ledgerTotals();
        const storedObjects = await net.storedObjects();
        const summary: DemoSummary = {
            devices: options.devices,
            fogs: options.fogs,
            sessionsPerDevice: options.sessions,
            batchTimeoutMs: options.batchTimeoutMs,
            established,
            failed,
            failures,
            latency_ms: {
                p50: round(percentile(latencies, 50)),
                p95: round(percentile(latencies, 95)),
                mean: round(latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)),
                max: round(latencies[latencies.length - 1] ?? 0),
            },
            roundTrip_ms: { p50: round(percentile(roundTrips, 50)), p95: round(percentile(roundTrips, 95)) },
            telemetryRoundTrips: roundTrips.length,
            transactions: totals.transactions,
            validTransactions: totals.validTransactions,
            blocks: totals.blocks,
            onChainBytes: totals.onChainBytes,
            storedObjects,
            durationMs: Math.round(performance.now() - t0),
            thisRun: {
                transactions: totals.transactions - before.transactions,
                validTransactions: totals.validTransactions - before.validTransactions,
                blocks: totals.blocks - before.blocks,
                onChainBytes: totals.onChainBytes - before.onChainBytes,
                storedObjects: storedObjects - before.storedObjects,
            },
            records: recordFigures,
        };
        await attached?.hold(summary);
        return summary;
    } finally {
        await attached?.close();
        await net.close();
    }
}

/**
 * Waits until every record the CSP journaled is anchored, then builds one record's receipt (the
 * last record of the last batch) and verifies it offline against the channel's MSP roots.
 */
async function anchorRecords(net: EmbeddedNetwork, say: (msg: string) => void): Promise<RecordFigures> {
    const batcher = net.recordBatcher;
    const counts = net.csp.records;
    const fromDevices = counts?.received ?? 0;
    const fromCsp = counts?.sent ?? 0;
    const figures: RecordFigures = {
        created: fromDevices + fromCsp,
        fromDevices,
        fromCsp,
        batchesAnchored: 0,
        recordsAnchored: 0,
        allAnchored: false,
    };
    if (batcher === undefined) return figures;
    await batcher.drain();
    figures.allAnchored = batcher.anchoredSize === batcher.durableSize;
    const batches = net.anchoredBatches;
    figures.batchesAnchored = batches.length;
    figures.recordsAnchored = batcher.anchoredSize - (net.recordsAnchoredAtOpen ?? 0);
    const last = batches[batches.length - 1];
    say(
        `communication records: ${figures.created} signed record(s) this run (${fromDevices} by devices with d_i, ${fromCsp} by the CSP), ` +
            `frames -> IPFS object store under their CIDs, records -> CSP journal; ${figures.batchesAnchored} Merkle batch root(s) anchored -> ledger`,
    );
    if (last !== undefined && net.cspConnection !== undefined && net.ledger !== undefined) {
        const leafIndex = last.treeSize - 1;
        const receipt = encodeReceipt(
            buildReceipt(
                {
                    record: await batcher.readRecord(leafIndex),
                    writer: last.writer,
                    sequence: last.sequence,
                    leafIndex,
                    treeSize: last.treeSize,
                    inclusionProof: batcher.tree.inclusionProof(leafIndex, last.treeSize),
                    root: last.root,
                    transactionId: last.transactionId,
                },
                await fetchBlockByTxId(net.cspConnection, last.transactionId),
            ),
        );
        let verified = false;
        try {
            verifyReceipt(net.ledger.channelTrust(DEFAULT_CHAINCODE_NAME), receipt);
            verified = true;
        } catch (err) {
            say(`receipt of record ${leafIndex} did not verify: ${(err as Error).message}`);
        }
        figures.receipt = { writer: last.writer, sequence: last.sequence, leafIndex, bytes: receipt.length, verified };
        if (verified) {
            say(
                `receipt of record ${leafIndex} (batch ${last.sequence} of ${last.writer}, ${receipt.length} bytes) verified offline: ` +
                    `record signature, Merkle path, block orderer signature and MAJORITY endorsements against the MSP roots`,
            );
        }
        const envelopes = net.recordEnvelopes;
        if (verified && envelopes !== undefined) {
            figures.auditorShare = await shareWithAuditor(net, envelopes, receipt, say);
        }
    }
    return figures;
}

/**
 * Shares the receipt's record with a fresh auditor key (the CSP re-wraps its one data key) and
 * opens it as the auditor would, offline against the receipt.
 */
async function shareWithAuditor(
    net: EmbeddedNetwork,
    envelopes: NonNullable<EmbeddedNetwork['recordEnvelopes']>,
    receipt: Uint8Array,
    say: (msg: string) => void,
): Promise<{ sealedPayload: string; opened: boolean }> {
    const trust = net.ledger.channelTrust(DEFAULT_CHAINCODE_NAME);
    const record = verifyReceipt(trust, receipt);
    const recordCid = contentAddressOfDigest(record.digest);
    const sealedPayload = envelopes.sealedCid(recordCid);
    const auditor = await hpkeRecipientFromScalar(net.suite, randomScalar(net.suite));
    try {
        const share = await envelopes.share(recordCid, auditor.publicKey);
        const opened = await openSharedRecord(trust, receipt, encodeRecordShare(share), auditor);
        say(
            `record shared with an auditor key: its data key re-wrapped (sealed payload ${sealedPayload} unchanged); ` +
                `the auditor opened its ${opened.plaintext.length}-byte payload offline against the receipt`,
        );
        return { sealedPayload, opened: true };
    } catch (err) {
        say(`auditor share of the receipt's record failed: ${(err as Error).message}`);
        return { sealedPayload, opened: false };
    }
}

export function formatSummary(s: DemoSummary): string {
    const failures = Object.entries(s.failures)
        .map(([c, n]) => `${c}×${n}`)
        .join(', ');
    const r = s.thisRun;
    return [
        `this run: sessions established ${s.established}, failed ${s.failed}${failures === '' ? '' : ` (${failures})`}`,
        `this run: session latency p50 ${s.latency_ms.p50} ms, p95 ${s.latency_ms.p95} ms (BatchTimeout ${s.batchTimeoutMs} ms); telemetry round trips ${s.telemetryRoundTrips}, p50 ${s.roundTrip_ms.p50} ms`,
        `this run: ledger +${r.transactions} transactions (${r.validTransactions} valid) in +${r.blocks} blocks, +${r.onChainBytes} bytes on chain; +${r.storedObjects} objects in the IPFS store; ${(s.durationMs / 1000).toFixed(1)} s`,
        `this run: communication records ${s.records.created} (${s.records.fromDevices} device, ${s.records.fromCsp} CSP), ${s.records.recordsAnchored} anchored in ${s.records.batchesAnchored} batch(es)${s.records.allAnchored ? ', none left unanchored' : ''}; ` +
            (s.records.receipt === undefined
                ? 'no receipt'
                : `receipt of record ${s.records.receipt.leafIndex} (batch ${s.records.receipt.sequence}) ${s.records.receipt.verified ? 'verified offline' : 'FAILED verification'}`) +
            (s.records.auditorShare === undefined
                ? ''
                : `; shared with an auditor: ${s.records.auditorShare.opened ? 'opened offline' : 'FAILED to open'}`),
        `since the first run: ledger ${s.transactions} transactions (${s.validTransactions} valid) in ${s.blocks} blocks, ${s.onChainBytes} bytes on chain; ${s.storedObjects} objects in the IPFS store`,
    ].join('\n');
}
