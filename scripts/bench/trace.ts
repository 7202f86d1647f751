/**
 * npm run bench -- trace [--sizes 1000,10000,100000] [--samples N] [--queries N] [--concurrency 1,10,50] [--quick] [--out DIR]
 *
 * Material traceability and the record query (docs/traceability.md):
 *  1. backward and forward trace latency (p50/p99) of the materials contract's traceBackward /
 *     traceForward, evaluated through the embedded ledger's Gateway path, at 10³, 10⁴, 10⁵ lots —
 *     families of chains of depth 10 with fan-in / fan-out 1..8 (trace-loader.ts writes them in bulk
 *     with the chaincode's own writes). One ledger grows from size to size, so each size measures the
 *     same graph plus more.
 *  2. the 9-step record query round trip (asker signs, fog checks form, signature and M-EB, target
 *     checks the ledger access rule, searches, seals and signs; fog checks completeness; asker
 *     verifies signature and receipts and opens) for 1 / 10 / 50 concurrent askers. The fog and the
 *     target read the ledger with evaluate (no commit on the path); the packets move in-process.
 *
 * Results: bench/results/trace.{json,md} (a --quick run or --out elsewhere does not touch them).
 */
import { createHash, randomInt } from 'node:crypto';
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { contracts } from '@m2m-fabric/chaincode';
import {
    P256_SHA256,
    Responder,
    encodePoint,
    randomScalar,
    signRecordReceipt,
    toHex,
    verifyRecordReceipt,
    type AnsweredRecord,
} from '@m2m-fabric/protocol';
import { ChaincodeClient } from '@m2m-fabric/sdk';
import { MaterialsClient } from '@m2m-fabric/sdk';
import { QueryAsker } from '@m2m-fabric/device';
import { QueryResponder } from '@m2m-fabric/device';
import { MemoryReceiptBook, MemoryRecordHistory } from '@m2m-fabric/device';
import { FogQueryHandler } from '@m2m-fabric/services';
import { ledgerEquipmentDirectory, ledgerQueryAccess } from '@m2m-fabric/services';
import type { LedgerConnection } from '@m2m-fabric/sdk';
import { EmbeddedLedger } from '@m2m-fabric/embedded-ledger';

import { TraceLoadContract, TRACE_LOADER_MSP, baleId, familyShape, lotsOfFamily, yarnId } from './trace-loader.js';
import { resultsDir } from './results-dir.js';
import { UsageError } from './usage.js';

const CHAINCODE = 'm2m';
const FAMILIES_PER_TX = 40;

interface Options {
    sizes: number[];
    samples: number;
    queries: number;
    concurrency: number[];
    out: string | undefined;
    quick: boolean;
}

function parseOptions(args: string[]): Options {
    const o: Options = {
        sizes: [1000, 10_000, 100_000],
        samples: 400,
        queries: 200,
        concurrency: [1, 10, 50],
        out: undefined,
        quick: false,
    };
    const list = (v: string | undefined, name: string): number[] => {
        const values = (v ?? '').split(',').map(Number);
        if (v === undefined || values.some((n) => !Number.isSafeInteger(n) || n < 1))
            throw new UsageError(`${name} needs positive integers`);
        return values;
    };
    for (let k = 0; k < args.length; k++) {
        const a = args[k];
        const v = args[k + 1];
        switch (a) {
            case '--sizes':
                o.sizes = list(v, a).sort((x, y) => x - y);
                k++;
                break;
            case '--samples':
                o.samples = list(v, a)[0] ?? o.samples;
                k++;
                break;
            case '--queries':
                o.queries = list(v, a)[0] ?? o.queries;
                k++;
                break;
            case '--concurrency':
                o.concurrency = list(v, a);
                k++;
                break;
            case '--out':
                if (v === undefined) throw new UsageError('--out needs a directory');
                o.out = v;
                k++;
                break;
            case '--quick':
                o.quick = true;
                break;
            default:
                throw new UsageError(`unknown argument ${String(a)}`);
        }
    }
    if (o.quick) {
        o.sizes = [1000, 5000];
        o.samples = 50;
        o.queries = 30;
        o.concurrency = [1, 10];
    }
    return o;
}

interface Percentiles {
    p50: number;
    p99: number;
    mean: number;
    n: number;
}

/** Nearest-rank percentiles, ms. */
function percentiles(samples: number[]): Percentiles {
    const sorted = [...samples].sort((a, b) => a - b);
    const at = (p: number): number =>
        sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN;
    const round = (x: number): number => Math.round(x * 1000) / 1000;
    return {
        p50: round(at(0.5)),
        p99: round(at(0.99)),
        mean: round(sorted.reduce((s, x) => s + x, 0) / sorted.length),
        n: sorted.length,
    };
}

interface TraceRow {
    lots: number;
    families: number;
    backward: Percentiles;
    forward: Percentiles;
    /** Transformations returned per trace (mean). */
    backwardSteps: number;
    forwardSteps: number;
    loadSeconds: number;
}

interface QueryRow {
    askers: number;
    roundTrip: Percentiles;
    throughputPerS: number;
}

export async function runTraceBench(args: string[]): Promise<void> {
    const options = parseOptions(args);
    const outDir = resultsDir(options.quick, options.out);
    const dataDir = await mkdtemp(join(tmpdir(), 'm2m-bench-trace-'));
    const ledger = await EmbeddedLedger.open({
        dataDir,
        organisations: ['CSPMSP', 'FogAMSP', TRACE_LOADER_MSP],
        chaincodes: [{ name: CHAINCODE, contracts: [...contracts, TraceLoadContract] }],
        batch: { batchTimeoutMs: 5 },
    });
    try {
        const connect = async (mspId: string, name: string, role: string): Promise<LedgerConnection> => {
            const e = await ledger.enrol(mspId, name, { attributes: { 'm2m.role': role } });
            return ledger.connect({ identity: e.identity, signer: e.signer });
        };
        const owner = await connect(TRACE_LOADER_MSP, 'bench-owner', 'manufacturer');
        const fogConnection = await connect('FogAMSP', 'bench-fog', 'fog');
        const cspConnection = await connect('CSPMSP', 'bench-csp', 'csp');
        const suite = P256_SHA256;
        const cspSecret = randomScalar(suite);
        const cspKey = suite.Point.BASE.multiply(cspSecret);
        await new ChaincodeClient(cspConnection, CHAINCODE).registerCsp(suite.id, toHex(encodePoint(suite, cspKey)));
        const materials = new MaterialsClient(owner, CHAINCODE);
        const loader = owner.getContract(CHAINCODE, 'benchtrace');

        // 1. Traces.
        const rows: TraceRow[] = [];
        let families = 0;
        let lots = 0;
        for (const size of options.sizes) {
            const started = performance.now();
            const batches: [number, number][] = [];
            let plannedLots = lots;
            let f = families;
            while (plannedLots < size) {
                const first = f;
                let count = 0;
                while (count < FAMILIES_PER_TX && plannedLots < size) {
                    plannedLots += lotsOfFamily(f);
                    f++;
                    count++;
                }
                batches.push([first, count]);
            }
            for (let k = 0; k < batches.length; k += 2) {
                await Promise.all(
                    batches
                        .slice(k, k + 2)
                        .map(([first, count]) =>
                            loader.submit('loadFamilies', { arguments: [String(first), String(count)] }),
                        ),
                );
            }
            families = f;
            lots = plannedLots;
            const loadSeconds = (performance.now() - started) / 1000;
            console.log(`trace: ${lots} lots in ${families} families (loaded in ${loadSeconds.toFixed(1)} s)`);
            const measure = async (direction: 'backward' | 'forward'): Promise<{ p: Percentiles; steps: number }> => {
                const samples: number[] = [];
                let steps = 0;
                const warmup = Math.min(50, options.samples);
                for (let s = 0; s < options.samples + warmup; s++) {
                    const fam = randomInt(families);
                    const { fanIn, fanOut } = familyShape(fam);
                    const lot =
                        direction === 'backward' ? yarnId(fam, randomInt(fanOut)) : baleId(fam, randomInt(fanIn));
                    const t0 = performance.now();
                    const page = await materials.tracePage(direction, lot, { maxDepth: 16 });
                    const t1 = performance.now();
                    if (page.bookmark !== '' || page.steps.length !== 10)
                        throw new Error(`trace of ${lot} returned ${page.steps.length} steps`);
                    if (s >= warmup) {
                        samples.push(t1 - t0);
                        steps += page.steps.length;
                    }
                }
                return { p: percentiles(samples), steps: steps / options.samples };
            };
            const backward = await measure('backward');
            const forward = await measure('forward');
            rows.push({
                lots,
                families,
                backward: backward.p,
                forward: forward.p,
                backwardSteps: backward.steps,
                forwardSteps: forward.steps,
                loadSeconds,
            });
            console.log(
                `  backward p50 ${backward.p.p50} ms p99 ${backward.p.p99} ms; forward p50 ${forward.p.p50} ms p99 ${forward.p.p99} ms`,
            );
        }

        // 2. The 9-step record query.
        const target = { id: 'bench-lap-former', secret: randomScalar(suite) };
        const maxAskers = Math.max(...options.concurrency);
        const askers = Array.from({ length: maxAskers }, (_, k) => ({
            id: `bench-carder-${k}`,
            secret: randomScalar(suite),
        }));
        const equipment = new ChaincodeClient(owner, CHAINCODE);
        for (const m of [target, ...askers]) {
            await equipment.registerEquipment({
                equipmentId: m.id,
                kind: 'spinning machine',
                model: 'S-1',
                fogGroup: 'line-a',
                publicKey: toHex(encodePoint(suite, suite.Point.BASE.multiply(m.secret))),
                privilegeLevel: 2,
                serviceType: 'upload-download',
                accessTime: 'always',
            });
        }
        for (const a of askers) await materials.grantQueryAccess(target.id, a.id);
        const history = new MemoryRecordHistory();
        const book = new MemoryReceiptBook();
        const now = Date.now();
        for (let k = 0; k < 20; k++) {
            const body = new TextEncoder().encode(`quality record ${k}: CV ${3 + k / 10}%`);
            const recordId = new Uint8Array(createHash('sha256').update(body).digest());
            const record: AnsweredRecord = {
                recordId,
                kind: 'quality',
                time: now - 60_000 * (20 - k),
                counterpart: 'csp',
                body,
                receipt: signRecordReceipt(suite, cspSecret, recordId, target.id),
            };
            history.add(target.id, record);
            if (k % 5 === 0) book.hold(target.id, record);
        }
        const responder = new QueryResponder({
            suite,
            equipmentId: target.id,
            responder: Responder.Target,
            signingSecret: target.secret,
            access: ledgerQueryAccess(new MaterialsClient(owner, CHAINCODE)),
            history,
        });
        const fog = new FogQueryHandler({
            suite,
            directory: ledgerEquipmentDirectory(new ChaincodeClient(fogConnection, CHAINCODE)),
            routes: { endpointsFor: () => [{ kind: 'target', deliver: (packet) => responder.respond(packet) }] },
        });
        const targetKey = suite.Point.BASE.multiply(target.secret);
        const queryRows: QueryRow[] = [];
        for (const concurrency of options.concurrency) {
            const clients = askers.slice(0, concurrency).map(
                (a) =>
                    new QueryAsker({
                        suite,
                        equipmentId: a.id,
                        secretKey: a.secret,
                        keyOf: () => Promise.resolve(targetKey),
                        cspKey,
                        receipts: { verify: (t, r) => verifyRecordReceipt(suite, cspKey, r.recordId, t, r.receipt) },
                        book,
                        send: (packet) => fog.handle(packet),
                        attempts: 1,
                    }),
            );
            const perAsker = Math.max(2, Math.ceil(options.queries / concurrency));
            const samples: number[] = [];
            const range = { since: new Date(now - 3_600_000), until: new Date(now) };
            // Warm-up: one query per asker.
            await Promise.all(clients.map((c) => c.query(target.id, range)));
            const started = performance.now();
            await Promise.all(
                clients.map(async (c) => {
                    for (let k = 0; k < perAsker; k++) {
                        const t0 = performance.now();
                        const result = await c.query(target.id, range);
                        samples.push(performance.now() - t0);
                        if (result.records.length !== 20) throw new Error('incomplete answer');
                    }
                }),
            );
            const wall = (performance.now() - started) / 1000;
            const row = {
                askers: concurrency,
                roundTrip: percentiles(samples),
                throughputPerS: Math.round((samples.length / wall) * 10) / 10,
            };
            queryRows.push(row);
            console.log(
                `query: ${concurrency} askers p50 ${row.roundTrip.p50} ms p99 ${row.roundTrip.p99} ms, ${row.throughputPerS} queries/s`,
            );
        }

        const largest = rows.find((r) => r.lots >= 100_000) ?? rows[rows.length - 1];
        const one = queryRows.find((r) => r.askers === 1) ?? queryRows[0];
        const result = {
            benchmark: 'trace',
            node: process.version,
            cores: cpus().length,
            loadAverageBefore: loadavg()[0],
            measuredAt: new Date().toISOString(),
            quick: options.quick,
            traceP99MsAt1e5: largest === undefined ? null : Math.max(largest.backward.p99, largest.forward.p99),
            traceP99LotsMeasured: largest?.lots ?? null,
            queryP50Ms: one?.roundTrip.p50 ?? null,
            traces: rows,
            queries: queryRows,
            targets: { traceP99MsAt1e5: 50, queryP50Ms: 100 },
        };
        await mkdir(outDir, { recursive: true });
        await writeFile(join(outDir, 'trace.json'), JSON.stringify(result, null, 4) + '\n');
        await writeFile(join(outDir, 'trace.md'), markdown(result, rows, queryRows));
        console.log(`written: ${join(outDir, 'trace.json')}, trace.md`);
    } finally {
        await ledger.close();
        await rm(dataDir, { recursive: true, force: true });
    }
}

function markdown(
    result: {
        node: string;
        cores: number;
        measuredAt: string;
        traceP99MsAt1e5: number | null;
        queryP50Ms: number | null;
        loadAverageBefore: number | undefined;
    },
    rows: readonly TraceRow[],
    queries: readonly QueryRow[],
): string {
    const lines = [
        '# Trace and record-query benchmark',
        '',
        `\`npm run bench -- trace\` at ${result.measuredAt}, node ${result.node}, ${result.cores} cores (load average ${result.loadAverageBefore?.toFixed(2) ?? '?'} before).`,
        '',
        'Traces: `materials.traceBackward` / `traceForward` evaluated through the embedded ledger (one page, maxDepth 16),',
        'from a random combed-yarn lot (backward) or bale (forward) of families with chains of depth 10 and fan-in / fan-out 1..8.',
        'Each trace returns the 10 transformations of its family. Nearest-rank percentiles, ms.',
        '',
        '| lots | families | backward p50 | backward p99 | forward p50 | forward p99 | load s |',
        '|---:|---:|---:|---:|---:|---:|---:|',
        ...rows.map(
            (r) =>
                `| ${r.lots} | ${r.families} | ${r.backward.p50} | ${r.backward.p99} | ${r.forward.p50} | ${r.forward.p99} | ${r.loadSeconds.toFixed(1)} |`,
        ),
        '',
        'Record query (paper 000 Figs. 6-8, all 9 steps): asker signs; fog checks inspection, signature (M-EB key read) and target (M-EB read);',
        'target checks the ledger access rule (one evaluate), searches 20 records, seals (HPKE) and signs; fog checks completeness;',
        'asker verifies the signature and 20 receipts and opens. Packets move in-process (no MQTT hop); no ledger commit on the path.',
        '',
        '| concurrent askers | round trip p50 ms | p99 ms | queries/s |',
        '|---:|---:|---:|---:|',
        ...queries.map((q) => `| ${q.askers} | ${q.roundTrip.p50} | ${q.roundTrip.p99} | ${q.throughputPerS} |`),
        '',
        `traceP99MsAt1e5 = ${result.traceP99MsAt1e5} ms (target ≤ 50); queryP50Ms = ${result.queryP50Ms} ms (target ≤ 100).`,
        '',
    ];
    return lines.join('\n');
}
