/**
 * `m2m demo --scenario spinning` (`npm start -- --scenario spinning`): paper 000's cotton-spinning
 * case on the embedded network. A line of registered machines (blow room, carding, drawing, lap
 * forming, combing, ring spinning) run as device agents: each establishes a session (Algorithms
 * 1-3), uploads its quality data as signed communication records (the CSP batches and anchors
 * them, then sends each machine the Merkle receipt of its record), asks the machine before it for
 * its quality records with the 9-step record query over MQTT (the asker's agent sends a Query
 * envelope to fog-1, which checks and routes it to the previous machine's agent — or over the
 * signed link to the CSP when that machine is offline — and relays the sealed answer), and records
 * its transformation of the material on the ledger, signed with its own M-EB key. The answers
 * carry the records' Merkle receipts, which the asker verifies offline against the channel's
 * trust roots its state file was provisioned with; the receipt of the record of each lot is
 * handed on with the lot, so the next machine catches a target that hides it. At the end: a
 * backward trace of one combed-yarn lot to its bales and a forward recall from one bale.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

import {
    Responder,
    answeredRecordOfReceipt,
    decodePoint,
    decodeRecord,
    encodePoint,
    fromHex,
    randomScalar,
    toHex,
    withPrecomputedTable,
    type AnsweredRecord,
    type Point,
} from '@m2m-fabric/protocol';
import {
    DeviceAgent,
    MemoryReceiptBook,
    MemoryRecordHistory,
    MerkleReceiptCheck,
    QueryAsker,
    QueryResponder,
    type QueryResult,
} from '@m2m-fabric/device';
import {
    ChaincodeClient,
    DEFAULT_CHAINCODE_NAME,
    MaterialsClient,
    verifyReceipt,
    type Trace,
    type TransformationSpec,
} from '@m2m-fabric/sdk';
import { ledgerQueryAccess, loadOrCreateServiceKey } from '@m2m-fabric/services';
import { errorCodeOf } from '@m2m-fabric/common';

import { EmbeddedNetwork, MANUFACTURER_MSP } from './network.js';

export interface SpinningOptions {
    dataDir: string;
    batchTimeoutMs: number;
    print: (line: string) => void;
}

export interface SpinningSummary {
    scenario: 'spinning';
    machines: number;
    bales: number;
    sessions: number;
    records: number;
    /** Merkle receipts of the quality records the CSP sent the machines (each verified by its machine). */
    receipts: number;
    transformations: number;
    /** 9-step queries answered, and how (by the target itself / by the CSP for an offline one). */
    queries: number;
    queriesByTarget: number;
    queriesByCsp: number;
    queryFailures: Record<string, number>;
    queryRoundTripMs: number[];
    /**
     * fog-1's relay records of the query packets and answers it relayed (docs/records.md): journaled,
     * anchored in its own batches (writer fog:fog-1), and one record's receipt verified offline.
     */
    relayRecords: {
        journaled: number;
        anchored: number;
        batches: number;
        allAnchored: boolean;
        receiptVerified: boolean;
    };
    /** Lots in the printed backward trace of the combed-yarn lot (bales included). */
    traced: number;
    tracedBales: string[];
    /** Combed-yarn lots the forward recall from one bale reached. */
    recalled: string[];
    durationMs: number;
}

interface Machine {
    id: string;
    kind: string;
    step: string;
    secret: bigint;
    publicKey: Point;
    agent?: DeviceAgent;
    online: boolean;
    history: MemoryRecordHistory;
    book: MemoryReceiptBook;
    responder?: QueryResponder;
    /** Step 9's check against the channel trust roots of the machine's state file. */
    check?: MerkleReceiptCheck;
}

const LINE: readonly [string, string, string][] = [
    ['blowroom-1', 'blow room (opening, cleaning, mixing)', 'blow room'],
    ['carding-1', 'carding machine', 'carding'],
    ['drawing-1', 'drawing frame', 'drawing'],
    ['lapformer-1', 'lap-forming machine', 'lap forming'],
    ['comber-1', 'combing machine', 'combing'],
    ['ringframe-1', 'ring spinning frame', 'ring spinning'],
];

export async function runSpinning(options: SpinningOptions): Promise<SpinningSummary> {
    const t0 = performance.now();
    const say = (msg: string): void => options.print(`[${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
    // The scenario's lots and machines have fixed names: each run starts from an empty directory.
    await rm(options.dataDir, { recursive: true, force: true });
    // Records on: every session frame is a signed communication record, anchored in Merkle batches;
    // the CSP sends each machine its upload's receipt once anchored, and the fog records every
    // query packet and answer it relays.
    const net = new EmbeddedNetwork({
        dataDir: options.dataDir,
        fogs: 1,
        batchTimeoutMs: options.batchTimeoutMs,
        records: { maxDelayMs: options.batchTimeoutMs },
        cspOptions: { deliverReceipts: true, instructionRetryMs: 500 },
    });
    say(`starting the embedded network (BatchTimeout ${options.batchTimeoutMs} ms) in ${options.dataDir}`);
    await net.start();
    const suite = net.suite;
    const summary: SpinningSummary = {
        scenario: 'spinning',
        machines: LINE.length,
        bales: 0,
        sessions: 0,
        records: 0,
        receipts: 0,
        transformations: 0,
        queries: 0,
        queriesByTarget: 0,
        queriesByCsp: 0,
        queryFailures: {},
        queryRoundTripMs: [],
        relayRecords: { journaled: 0, anchored: 0, batches: 0, allAnchored: false, receiptVerified: false },
        traced: 0,
        tracedBales: [],
        recalled: [],
        durationMs: 0,
    };
    const agents: DeviceAgent[] = [];
    try {
        const connect = async (mspId: string, name: string, role: string): Promise<ChaincodeClient> => {
            const e = await net.ledger.loadOrEnrol(mspId, name, { attributes: { 'm2m.role': role } });
            return new ChaincodeClient(
                await net.ledger.connect({ identity: e.identity, signer: e.signer }),
                DEFAULT_CHAINCODE_NAME,
                60_000,
            );
        };
        const ownerClient = await connect(MANUFACTURER_MSP, 'spinning-mill', 'manufacturer');
        const fogClient = await connect('FogAMSP', 'fog-1-query', 'fog');
        const ownerMaterials = new MaterialsClient(ownerClient.connection);
        // The machines' own transformations reach the ledger through their fog's organisation.
        const fogMaterials = new MaterialsClient(fogClient.connection);
        const cspKey = await loadOrCreateServiceKey(join(options.dataDir, 'keys', 'csp.json'), suite);
        const cspPublic = withPrecomputedTable(suite, cspKey.publicKey);

        // 1. The line's machines in the M-EB, with the static keys they sign and decrypt with.
        const machines: Machine[] = LINE.map(([id, kind, step]) => {
            const secret = randomScalar(suite);
            return {
                id,
                kind,
                step,
                secret,
                publicKey: suite.Point.BASE.multiply(secret),
                online: false,
                history: new MemoryRecordHistory(),
                book: new MemoryReceiptBook(),
            };
        });
        for (const m of machines) {
            await net.manufacturer.registerEquipment({
                equipmentId: m.id,
                kind: m.kind,
                model: 'TX-2026',
                fogGroup: net.fogId(0),
                publicKey: toHex(encodePoint(suite, m.publicKey)),
                privilegeLevel: 2,
                serviceType: 'upload-download',
                accessTime: 'always',
            });
        }
        // The owner lets each machine query the one before it (paper: carding asks lap forming ...).
        for (let k = 1; k < machines.length; k++)
            await ownerMaterials.grantQueryAccess(machines[k - 1]!.id, machines[k]!.id);
        say(
            `registered ${machines.length} machines: ${machines.map((m) => m.id).join(' → ')}; each may query the one before it`,
        );

        // Receipts of the machines' uploads, by `<machine>/<record sequence>`, as the agents get them.
        const receiptWaiters = new Map<string, (receipt: Uint8Array) => void>();
        const earlyReceipts = new Map<string, Uint8Array>();

        // 2. Sessions: one certificate each, then the device agents connect through fog-1.
        await net.csp.grantCredit(MANUFACTURER_MSP, machines.length);
        for (const m of machines) {
            await net.manufacturer.buySessions(m.id, 1);
            const statePath = join(options.dataDir, 'devices', `${m.id}.json`);
            await net.manufacturer.provisionDevice(m.id, statePath, { id: net.fogId(0) });
            m.agent = await DeviceAgent.open({ statePath, brokerUrl: net.fogs[0]!.deviceBrokerUrl });
            agents.push(m.agent);
            m.check = new MerkleReceiptCheck(m.agent.channelTrust!);
            const agent = m.agent;
            agent.onReceipt((receipt, record) => {
                summary.receipts++;
                const key = `${m.id}/${record.sequence}`;
                const waiter = receiptWaiters.get(key);
                if (waiter !== undefined) waiter(receipt);
                else earlyReceipts.set(key, receipt);
            });
            await m.agent.connect();
            const session = await m.agent.establishSession();
            m.online = true;
            summary.sessions++;
            say(`${m.id} session established in ${session.latencyMs.toFixed(0)} ms (Algorithms 1-3)`);
        }

        // 3. Quality records: the machine uploads over its session (its signed communication record
        // goes with the frame); the CSP anchors it and sends the machine the record's Merkle receipt.
        const cspHistory = new MemoryRecordHistory();
        // The CSP's copy of each receipt: its history for a machine that is offline.
        net.csp.onReceipt((r) => {
            if (r.equipmentId !== undefined)
                cspHistory.add(r.equipmentId, answeredRecordOfReceipt('quality', 'csp', r.receipt));
        });
        const uploadQuality = async (
            m: Machine,
            lot: string,
            values: Record<string, number>,
        ): Promise<AnsweredRecord> => {
            const started = performance.now();
            // The upload's frame sequence is its record's sequence: the receipt naming it is this one's.
            const sequence = await m.agent!.upload({ lot, step: m.step, ...values });
            const key = `${m.id}/${sequence}`;
            let timer: NodeJS.Timeout | undefined;
            const bytes =
                earlyReceipts.get(key) ??
                (await new Promise<Uint8Array>((resolve, reject) => {
                    receiptWaiters.set(key, resolve);
                    timer = setTimeout(
                        () => reject(new Error(`no receipt for ${m.id}'s record ${sequence} within 60 s`)),
                        60_000,
                    );
                }).finally(() => clearTimeout(timer)));
            receiptWaiters.delete(key);
            earlyReceipts.delete(key);
            const record = answeredRecordOfReceipt('quality', 'csp', bytes);
            m.history.add(m.id, record);
            summary.records++;
            say(
                `${m.id} uploads its ${lot} quality data; record ${toHex(record.recordId).slice(0, 12)}… anchored, receipt ` +
                    `(${bytes.length} B) back over the session in ${(performance.now() - started).toFixed(0)} ms`,
            );
            return record;
        };

        // 4. The record query: fog-1's public network area, each machine's private area, the CSP for offline ones.
        for (const m of machines) {
            m.responder = new QueryResponder({
                suite,
                equipmentId: m.id,
                responder: Responder.Target,
                signingSecret: m.secret,
                access: ledgerQueryAccess(fogMaterials),
                history: m.history,
            });
        }
        const cspResponders = new Map(
            machines.map((m) => [
                m.id,
                new QueryResponder({
                    suite,
                    equipmentId: m.id,
                    responder: Responder.Csp,
                    signingSecret: cspKey.privateKey,
                    access: ledgerQueryAccess(new MaterialsClient(fogClient.connection)),
                    history: cspHistory,
                }),
            ]),
        );
        // Over MQTT: each agent's connection is its machine's private area (a signed listen notice to
        // fog-1); fog-1's public network area routes queries there, or over the link to the CSP
        // while a machine is offline.
        for (const m of machines) await m.agent!.serveQueries(m.responder!, m.secret);
        net.csp.serveQueries((id) => cspResponders.get(id));
        const ask = async (asker: Machine, target: Machine, since: number): Promise<QueryResult | undefined> => {
            const client = new QueryAsker({
                suite,
                equipmentId: asker.id,
                secretKey: asker.secret,
                keyOf: async (id) => decodePoint(suite, fromHex((await fogClient.getEquipment(id)).publicKey)),
                cspKey: cspPublic,
                receipts: asker.check!,
                book: asker.book,
                send: (packet) => asker.agent!.sendQuery(packet),
            });
            const started = performance.now();
            try {
                const result = await client.query(target.id, {
                    since: new Date(since),
                    until: new Date(Date.now() + 1000),
                    kinds: ['quality'],
                });
                const ms = performance.now() - started;
                summary.queries++;
                summary.queryRoundTripMs.push(Math.round(ms * 10) / 10);
                if (result.responder === 'csp') summary.queriesByCsp++;
                else summary.queriesByTarget++;
                const latest = result.records[result.records.length - 1];
                const last =
                    latest === undefined
                        ? ''
                        : `; latest ${toHex(latest.recordId).slice(0, 12)}… (${decodeRecord(latest.body).size} B upload at ${new Date(latest.time).toISOString()})`;
                say(
                    `9-step query ${asker.id} → ${target.id}: ${result.records.length} quality record(s), answered by ${result.responder === 'csp' ? 'the CSP (target offline)' : 'the target'}, signature and Merkle receipts verified offline against the channel roots, ${ms.toFixed(1)} ms${last}`,
                );
                return result;
            } catch (error) {
                const code = errorCodeOf(error);
                summary.queryFailures[code] = (summary.queryFailures[code] ?? 0) + 1;
                say(`9-step query ${asker.id} → ${target.id} failed: ${(error as Error).message}`);
                return undefined;
            }
        };

        // 5. Bales enter; the line runs.
        const start = Date.now() - 1000;
        const bales = Array.from({ length: 8 }, (_, k) => `bale-${String(k + 1).padStart(3, '0')}`);
        for (const [k, bale] of bales.entries()) {
            await ownerMaterials.registerLot({
                lotId: bale,
                kind: 'cotton bale',
                quantity: 220_000,
                unit: 'g',
                origin: `gin ${1 + (k % 3)}, crop 2026`,
            });
        }
        summary.bales = bales.length;
        say(`${bales.length} cotton bales registered (220 kg each): ${bales.join(', ')}`);

        let seq = 0;
        const step = async (
            m: Machine,
            kind: TransformationSpec['kind'],
            inputs: [string, number][],
            outputs: [string, string, number][],
            parameters: Record<string, string>,
            quality: Record<string, number>,
        ): Promise<void> => {
            const previous = machines[machines.indexOf(m) - 1];
            if (previous !== undefined) await ask(m, previous, start);
            const record = await uploadQuality(m, outputs[0]![0], quality);
            // The next machine is handed the lot with this record's receipt, and keeps it once it verifies.
            const next = machines[machines.indexOf(m) + 1];
            if (next !== undefined) next.book.holdReceipt(m.id, 'quality', record.receipt, next.check!.verifier);
            const spec: TransformationSpec = {
                transformationId: `t-${String(++seq).padStart(3, '0')}-${m.step.replace(/ /g, '-')}`,
                kind,
                equipmentId: m.id,
                step: m.step,
                inputs: inputs.map(([lotId, quantity]) => ({ lotId, quantity })),
                outputs: outputs.map(([lotId, lotKind, quantity]) => ({ lotId, kind: lotKind, quantity, unit: 'g' })),
                parameters,
                qualityRefs: [toHex(record.recordId)],
            };
            // The blow room's step is recorded by the mill (owner); every other machine signs its own.
            const recorded =
                m.id === 'blowroom-1'
                    ? await ownerMaterials.recordTransformation(spec)
                    : await fogMaterials.recordTransformation(spec, { suite, secretKey: m.secret });
            summary.transformations++;
            say(
                `${m.id} ${kind} ${inputs.map(([l, q]) => `${l} (${q / 1000} kg)`).join(' + ')} → ${outputs.map(([l]) => l).join(', ')} [recorded by ${recorded.recordedBy === 'equipment' ? 'the machine’s own signature' : 'its owner'}]`,
            );
        };
        const [blow, card, draw, lap, comb, ring] = machines as [Machine, Machine, Machine, Machine, Machine, Machine];
        await step(
            blow,
            'merge',
            bales.slice(0, 4).map((b) => [b, 200_000]),
            [['lap-A', 'blow-room lap', 760_000]],
            { beaters: '3', cleaning: 'fine' },
            { trash_pct: 1.8, neps_per_g: 210 },
        );
        await step(
            blow,
            'merge',
            bales.slice(4).map((b) => [b, 200_000]),
            [['lap-B', 'blow-room lap', 760_000]],
            { beaters: '3', cleaning: 'fine' },
            { trash_pct: 2.1, neps_per_g: 230 },
        );
        await step(
            card,
            'process',
            [['lap-A', 760_000]],
            [['card-sliver-A', 'carded sliver', 720_000]],
            { cylinder_rpm: '450', doffer_rpm: '60' },
            { cv_pct: 3.9, neps_per_g: 60 },
        );
        // The blow room goes offline (maintenance): carding's second query is answered by the CSP.
        await blow.agent?.close();
        agents.splice(agents.indexOf(blow.agent!), 1);
        blow.online = false;
        say(
            `${blow.id} goes offline for maintenance; queries for it are now answered by the CSP from its copies of the receipts`,
        );
        await step(
            card,
            'process',
            [['lap-B', 760_000]],
            [['card-sliver-B', 'carded sliver', 720_000]],
            { cylinder_rpm: '450', doffer_rpm: '60' },
            { cv_pct: 4.1, neps_per_g: 64 },
        );
        await step(
            draw,
            'merge',
            [
                ['card-sliver-A', 720_000],
                ['card-sliver-B', 720_000],
            ],
            [['drawn-sliver-1', 'drawn sliver', 1_420_000]],
            { doublings: '8', draft: '8.0' },
            { cv_pct: 2.6 },
        );
        await step(
            lap,
            'split',
            [['drawn-sliver-1', 1_420_000]],
            [
                ['comber-lap-1', 'comber lap', 700_000],
                ['comber-lap-2', 'comber lap', 700_000],
            ],
            { lap_weight_g_per_m: '70' },
            { lap_cv_pct: 1.2 },
        );
        await step(
            comb,
            'merge',
            [
                ['comber-lap-1', 700_000],
                ['comber-lap-2', 700_000],
            ],
            [['combed-sliver-1', 'combed sliver', 1_160_000]],
            { noil_pct: '17', nips_per_min: '350' },
            { noil_pct: 17.2, short_fibre_pct: 4.9 },
        );
        await step(
            ring,
            'split',
            [['combed-sliver-1', 1_160_000]],
            [
                ['combed-yarn-1', 'combed yarn Ne 40', 280_000],
                ['combed-yarn-2', 'combed yarn Ne 40', 280_000],
                ['combed-yarn-3', 'combed yarn Ne 40', 280_000],
                ['combed-yarn-4', 'combed yarn Ne 40', 280_000],
            ],
            { spindle_rpm: '18000', twist_tpi: '24.5' },
            { count_cv_pct: 1.4, imperfections_per_km: 45 },
        );

        // The fog's records of the packets it relayed: anchored as fog:fog-1, one receipt checked offline.
        const relays = await net.drainFogRecords();
        summary.relayRecords = { ...relays, receiptVerified: false };
        const lastRelayBatch = net.fogAnchoredBatches[net.fogAnchoredBatches.length - 1];
        if (lastRelayBatch !== undefined) {
            const receipt = await net.fogReceipt(0, lastRelayBatch, lastRelayBatch.treeSize - 1);
            try {
                verifyReceipt(net.ledger.channelTrust(DEFAULT_CHAINCODE_NAME), receipt);
                summary.relayRecords.receiptVerified = true;
            } catch (error) {
                say(`fog-1's relay-record receipt FAILED verification: ${errorCodeOf(error)}`);
            }
        }
        say(
            `fog relay records: fog-1 signed and journaled ${relays.journaled} record(s) of the query packets and answers it relayed (payloads -> IPFS store, sealed answers unread), ` +
                `${relays.anchored} anchored in ${relays.batches} batch(es) as fog:fog-1${summary.relayRecords.receiptVerified ? '; one receipt verified offline' : ''}`,
        );

        // 6. Traceability: one combed-yarn lot back to its bales; one bale forward (recall).
        const back = await ownerMaterials.traceBackward('combed-yarn-2');
        const lots = new Set<string>([back.lot.lotId]);
        for (const s of back.steps) for (const lot of [...s.inputs, ...s.outputs]) lots.add(lot.lotId);
        summary.traced = lots.size;
        summary.tracedBales = [...lots].filter((l) => l.startsWith('bale-')).sort();
        options.print('');
        options.print(`Backward trace of combed-yarn-2 (${lots.size} lots, ${back.steps.length} steps):`);
        options.print(formatTrace(back, 'backward'));
        const recall = await ownerMaterials.traceForward('bale-006');
        summary.recalled = [...new Set(recall.steps.flatMap((s) => s.outputs.map((o) => o.lotId)))]
            .filter((l) => l.startsWith('combed-yarn'))
            .sort();
        options.print('');
        options.print(
            `Recall from bale-006 (${recall.steps.length} steps): the yarn made from it is ${summary.recalled.join(', ')}`,
        );
        options.print(formatTrace(recall, 'forward'));
        const carded = await ownerMaterials.machineSteps(card.id, new Date(start), new Date(Date.now() + 1000));
        options.print('');
        options.print(
            `What ${card.id} processed since the line started: ${carded.map((t) => `${t.inputs.map((i) => i.lotId).join('+')} → ${t.outputs.map((o) => o.lotId).join(', ')}`).join('; ')}`,
        );
        options.print('');
    } finally {
        await Promise.allSettled(agents.map((agent) => agent.close()));
        await net.close();
    }
    summary.durationMs = Math.round(performance.now() - t0);
    return summary;
}

function formatTrace(trace: Trace, direction: 'backward' | 'forward'): string {
    const lines: string[] = [];
    for (const s of trace.steps) {
        const from = s.inputs.map((i) => `${i.lotId} (${i.quantity / 1000} kg)`).join(' + ');
        const to = s.outputs.map((o) => `${o.lotId} [${o.kind}]`).join(', ');
        const params = Object.entries(s.parameters)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ');
        lines.push(
            `  ${direction === 'backward' ? '←' : '→'} ${'  '.repeat(s.distance - 1)}step ${s.distance}: ${s.step} on ${s.equipmentId} at ${s.recordedAt}: ${from} ⇒ ${to}${params === '' ? '' : ` (${params})`}; quality record ${s.qualityRefs[0]?.slice(0, 12) ?? '-'}…`,
        );
    }
    return lines.join('\n');
}

export function formatSpinningSummary(s: SpinningSummary): string {
    const failures = Object.entries(s.queryFailures)
        .map(([c, n]) => `${c}×${n}`)
        .join(', ');
    const sorted = [...s.queryRoundTripMs].sort((a, b) => a - b);
    const p50 = sorted[Math.max(0, Math.ceil(sorted.length / 2) - 1)] ?? 0;
    return [
        `${s.machines} machines, ${s.sessions} sessions, ${s.bales} bales, ${s.records} anchored quality records (${s.receipts} Merkle receipts sent to the machines and verified there), ${s.transformations} transformations`,
        `9-step queries answered ${s.queries} (${s.queriesByTarget} by the target, ${s.queriesByCsp} by the CSP for an offline target), failed ${Object.values(s.queryFailures).reduce((a, b) => a + b, 0)}${failures === '' ? '' : ` (${failures})`}; round trip p50 ${p50} ms`,
        `fog relay records ${s.relayRecords.journaled} journaled, ${s.relayRecords.anchored} anchored in ${s.relayRecords.batches} batch(es)${s.relayRecords.allAnchored ? ', none left unanchored' : ''}${s.relayRecords.receiptVerified ? ', receipt verified offline' : ''}`,
        `trace: ${s.traced} lots back to bales ${s.tracedBales.join(', ')}; recall from bale-006 reaches ${s.recalled.join(', ')}; ${(s.durationMs / 1000).toFixed(1)} s`,
    ].join('\n');
}
