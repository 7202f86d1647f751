/**
 * Benchmark figures as SVG, rendered in Node from the results JSON with vega-lite (compiled to a
 * vega spec) and vega's headless SVG renderer — no browser, no canvas. Each bench run writes its
 * figure beside its JSON and Markdown (main.ts); `npm run bench -- plots [--dir DIR]` re-renders
 * every figure from the JSON already there without re-running anything.
 *
 *   storage.svg  Fig. 4  bytes per certificate: this project's Table II record vs the certificate
 *                        object on chain vs an RSA-3072 X.509 certificate
 *   lookup.svg   Fig. 5  certificate lookup latency vs registered certificates
 *   kx.svg       Fig. 6  key-exchange latency per concurrency and BatchTimeout, 2 x BatchTimeout floor
 *   ledger.svg           embedded ledger throughput and commit latency per BatchTimeout and clients
 *   records.svg          communication records anchored per second and ingest-to-anchored latency,
 *                        per batch size and record (payload) size
 *   trace.svg            material trace latency vs lot population (50 ms target drawn) and the
 *                        9-step record query round trip per concurrency
 *
 * The records and trace JSON shapes are still evolving, so their fields are read defensively:
 * a row without the numbers a panel needs is left out of that panel, never a crash.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import { UsageError } from './usage.js';

type Json = Record<string, unknown>;
type Figure = (results: Json) => TopLevelSpec;

const FONT = { font: 'DejaVu Sans, Arial, sans-serif' };
const CONFIG = { config: { ...FONT, view: { stroke: '#ddd' }, axis: { labelFontSize: 11, titleFontSize: 12 } } };

interface StorageSuite {
    suite: string;
    certificateRecordBytes: number;
    onChainCertificateObjectBytes: number;
}

/** Fig. 4. */
function storageFigure(r: Json): TopLevelSpec {
    const suites = r.suites as StorageSuite[];
    const rsa = r.rsa3072X509 as { derBytesMedian: number; base58BytesMedian: number };
    const values = [
        ...suites.flatMap((s) => [
            { what: `${s.suite} Table II record`, bytes: s.certificateRecordBytes, kind: 'this project' },
            {
                what: `${s.suite} ECQV object on chain`,
                bytes: s.onChainCertificateObjectBytes,
                kind: 'object on chain',
            },
        ]),
        { what: 'RSA-3072 X.509 (DER)', bytes: rsa.derBytesMedian, kind: 'X.509' },
        { what: 'RSA-3072 X.509 (Base58)', bytes: rsa.base58BytesMedian, kind: 'X.509' },
    ];
    return {
        ...CONFIG,
        title: {
            text: 'Fig. 4 — ledger bytes per certificate',
            subtitle: 'committed world state read back after Algorithms 1-3 (key + value); X.509: median of 3',
        },
        width: 520,
        height: 260,
        data: { values },
        layer: [
            {
                mark: 'bar',
                encoding: {
                    y: { field: 'what', type: 'nominal', sort: null, title: null, axis: { labelLimit: 320 } },
                    x: { field: 'bytes', type: 'quantitative', title: 'bytes per certificate (key + value)' },
                    color: { field: 'kind', type: 'nominal', title: null, legend: { orient: 'bottom' } },
                },
            },
            {
                mark: { type: 'text', align: 'left', dx: 4 },
                encoding: {
                    y: { field: 'what', type: 'nominal', sort: null },
                    x: { field: 'bytes', type: 'quantitative' },
                    text: { field: 'bytes', type: 'quantitative' },
                },
            },
        ],
    };
}

interface LookupRow {
    certificates: number;
    population: string;
    lookupMs: { p50: number; p90: number; p99: number };
}

/** Fig. 5. */
function lookupFigure(r: Json): TopLevelSpec {
    const rows = r.results as LookupRow[];
    const values = rows.flatMap((row) =>
        (['p50', 'p90', 'p99'] as const).map((q) => ({
            certificates: row.certificates,
            ms: row.lookupMs[q],
            quantile: q,
            population: row.population,
        })),
    );
    return {
        ...CONFIG,
        title: {
            text: 'Fig. 5 — certificate lookup latency vs registered certificates',
            subtitle: 'evaluate getCertificate + object store get + decode, embedded ledger',
        },
        width: 520,
        height: 280,
        data: { values },
        mark: { type: 'line', point: true },
        encoding: {
            x: {
                field: 'certificates',
                type: 'quantitative',
                scale: { type: 'log' },
                title: 'registered certificates',
            },
            y: { field: 'ms', type: 'quantitative', title: 'lookup latency (ms)' },
            color: { field: 'quantile', type: 'nominal', title: 'quantile' },
            tooltip: [{ field: 'population' }, { field: 'ms' }],
        },
    };
}

interface KxCell {
    batchTimeoutS: number;
    concurrency: number;
    sessionLatencyMs: { p50: number; p95: number };
}

/** Fig. 6. */
function kxFigure(r: Json): TopLevelSpec {
    const cells = r.cells as KxCell[];
    const values = cells.map((c) => ({
        concurrency: c.concurrency,
        batchTimeout: `${c.batchTimeoutS} s`,
        p50: c.sessionLatencyMs.p50,
        p95: c.sessionLatencyMs.p95,
    }));
    const timeouts = [...new Set(cells.map((c) => c.batchTimeoutS))];
    const concurrency = cells.map((c) => c.concurrency);
    const floors = timeouts.flatMap((bt) => [
        { concurrency: Math.min(...concurrency), floor: 2000 * bt, batchTimeout: `${bt} s` },
        { concurrency: Math.max(...concurrency), floor: 2000 * bt, batchTimeout: `${bt} s` },
    ]);
    const layout =
        typeof (r.options as Json | undefined)?.layout === 'string'
            ? ((r.options as Json).layout as string)
            : undefined;
    return {
        ...CONFIG,
        title: {
            text: 'Fig. 6 — key-exchange latency per concurrency and BatchTimeout',
            subtitle: `p50 (line) and p95 (band) of one session; dashed: 2 × BatchTimeout floor${layout !== undefined ? `; layout ${layout}` : ''}`,
        },
        width: 520,
        height: 320,
        layer: [
            {
                data: { values },
                mark: { type: 'area', opacity: 0.2 },
                encoding: {
                    x: { field: 'concurrency', type: 'quantitative', title: 'concurrent key exchanges' },
                    y: { field: 'p50', type: 'quantitative', title: 'session latency (ms)' },
                    y2: { field: 'p95' },
                    color: { field: 'batchTimeout', type: 'nominal', title: 'BatchTimeout' },
                },
            },
            {
                data: { values },
                mark: { type: 'line', point: true },
                encoding: {
                    x: { field: 'concurrency', type: 'quantitative' },
                    y: { field: 'p50', type: 'quantitative' },
                    color: { field: 'batchTimeout', type: 'nominal' },
                },
            },
            {
                data: { values: floors },
                mark: { type: 'line', strokeDash: [6, 4], strokeWidth: 1.5 },
                encoding: {
                    x: { field: 'concurrency', type: 'quantitative' },
                    y: { field: 'floor', type: 'quantitative' },
                    color: { field: 'batchTimeout', type: 'nominal' },
                },
            },
        ],
    };
}

interface LedgerRow {
    batchTimeoutMs: number;
    clients: number;
    txPerSecond: number;
    p50Ms: number;
    p95Ms: number;
}

function ledgerFigure(r: Json): TopLevelSpec {
    const rows = r.rows as LedgerRow[];
    const x = { field: 'clients', type: 'quantitative', scale: { type: 'log' }, title: 'concurrent clients' } as const;
    const color = { field: 'batchTimeoutMs', type: 'ordinal', title: 'BatchTimeout (ms)' } as const;
    return {
        ...CONFIG,
        title: {
            text: 'Embedded ledger throughput and commit latency',
            subtitle: typeof r.workload === 'string' ? r.workload : '',
        },
        data: { values: rows },
        hconcat: [
            {
                width: 300,
                height: 240,
                mark: { type: 'line', point: true },
                encoding: { x, y: { field: 'txPerSecond', type: 'quantitative', title: 'committed tx/s' }, color },
            },
            {
                width: 300,
                height: 240,
                mark: { type: 'line', point: true },
                encoding: { x, y: { field: 'p50Ms', type: 'quantitative', title: 'p50 submit-to-commit (ms)' }, color },
            },
        ],
    };
}

/** A finite number at `path` in a JSON value, or undefined. */
function num(value: unknown, ...path: string[]): number | undefined {
    let v = value;
    for (const key of path) {
        if (v === null || typeof v !== 'object') return undefined;
        v = (v as Json)[key];
    }
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** The rows of an array field, or none. */
function rowsOf(r: Json, ...names: string[]): Json[] {
    for (const name of names) {
        const v = r[name];
        if (Array.isArray(v)) return v.filter((x): x is Json => x !== null && typeof x === 'object');
    }
    return [];
}

/** records: anchored/s and ingest-to-anchored latency per batch size, one line per record size. */
function recordsFigure(r: Json): TopLevelSpec {
    const runs = rowsOf(r, 'runs', 'rows');
    const throughput: Json[] = [];
    const latency: Json[] = [];
    for (const run of runs) {
        const batchSize = num(run, 'batchSize');
        const payload = num(run, 'payloadBytes') ?? num(run, 'recordBytes');
        if (batchSize === undefined || payload === undefined) continue;
        const size = `${payload} B payload`;
        const perSecond = num(run, 'anchoredPerSecond') ?? num(run, 'recordsPerSecond');
        if (perSecond !== undefined) throughput.push({ batchSize, size, perSecond });
        for (const [q, v] of [
            ['p50', num(run, 'latencyP50Ms') ?? num(run, 'latencyMs', 'p50')],
            ['p99', num(run, 'latencyP99Ms') ?? num(run, 'latencyMs', 'p99')],
        ] as const)
            if (v !== undefined) latency.push({ batchSize, size, quantile: q, seconds: v / 1000 });
    }
    const x = {
        field: 'batchSize',
        type: 'quantitative',
        scale: { type: 'log' },
        title: 'batch size (records)',
    } as const;
    const color = { field: 'size', type: 'nominal', title: 'record payload' } as const;
    const target = num(r, 'targets', 'anchoredPerSecond') ?? 2000;
    const verify = num(r, 'receiptVerifyPerSecond');
    return {
        ...CONFIG,
        title: {
            text: 'Communication records: anchoring throughput and latency',
            subtitle: `one writer (the CSP), embedded ledger; dashed: ${target} records/s target${verify !== undefined ? `; receipt verification ${verify}/s warm` : ''}`,
        },
        hconcat: [
            {
                width: 300,
                height: 240,
                layer: [
                    {
                        data: { values: throughput },
                        mark: { type: 'line', point: true },
                        encoding: {
                            x,
                            y: { field: 'perSecond', type: 'quantitative', title: 'records anchored per second' },
                            color,
                        },
                    },
                    {
                        data: { values: [{ target }] },
                        mark: { type: 'rule', strokeDash: [6, 4], color: '#c0392b' },
                        encoding: { y: { field: 'target', type: 'quantitative' } },
                    },
                ],
            },
            {
                width: 300,
                height: 240,
                data: { values: latency },
                mark: { type: 'line', point: true },
                encoding: {
                    x,
                    y: { field: 'seconds', type: 'quantitative', title: 'ingest → anchored (s)' },
                    color,
                    strokeDash: { field: 'quantile', type: 'nominal', title: 'quantile' },
                },
            },
        ],
    };
}

/** A horizontal dashed line at a target value (a vega-lite layer). */
interface TargetRule {
    data: { values: { value: number }[] };
    mark: { type: 'rule'; strokeDash: number[]; color: string };
    encoding: { y: { field: 'value'; type: 'quantitative' } };
}

/** trace: trace latency vs lots with the 50 ms target, and the query round trip per concurrency. */
function traceFigure(r: Json): TopLevelSpec {
    const traces: Json[] = [];
    for (const row of rowsOf(r, 'traces')) {
        const lots = num(row, 'lots');
        if (lots === undefined) continue;
        for (const direction of ['backward', 'forward'])
            for (const q of ['p50', 'p99']) {
                const ms = num(row, direction, q);
                if (ms !== undefined) traces.push({ lots, ms, series: `${direction} ${q}` });
            }
    }
    const queries: Json[] = [];
    for (const row of rowsOf(r, 'queries')) {
        const askers = num(row, 'askers') ?? num(row, 'concurrency');
        if (askers === undefined) continue;
        for (const q of ['p50', 'p99']) {
            const ms = num(row, 'roundTrip', q);
            if (ms !== undefined) queries.push({ askers, ms, quantile: q });
        }
    }
    const traceTarget = num(r, 'targets', 'traceP99MsAt1e5') ?? 50;
    const queryTarget = num(r, 'targets', 'queryP50Ms') ?? 100;
    const rule = (value: number): TargetRule => ({
        data: { values: [{ value }] },
        mark: { type: 'rule', strokeDash: [6, 4], color: '#c0392b' },
        encoding: { y: { field: 'value', type: 'quantitative' } },
    });
    return {
        ...CONFIG,
        title: {
            text: 'Material traceability: trace latency and record-query round trip',
            subtitle: `embedded ledger, evaluate through the materials contract; dashed: targets (trace p99 ${traceTarget} ms, query p50 ${queryTarget} ms)`,
        },
        hconcat: [
            {
                width: 300,
                height: 240,
                layer: [
                    {
                        data: { values: traces },
                        mark: { type: 'line', point: true },
                        encoding: {
                            x: {
                                field: 'lots',
                                type: 'quantitative',
                                scale: { type: 'log' },
                                title: 'lots on the ledger',
                            },
                            y: { field: 'ms', type: 'quantitative', title: 'trace latency (ms)' },
                            color: { field: 'series', type: 'nominal', title: 'trace' },
                        },
                    },
                    rule(traceTarget),
                ],
            },
            {
                width: 300,
                height: 240,
                layer: [
                    {
                        data: { values: queries },
                        mark: { type: 'line', point: true },
                        encoding: {
                            x: {
                                field: 'askers',
                                type: 'quantitative',
                                scale: { type: 'log' },
                                title: 'concurrent askers',
                            },
                            y: {
                                field: 'ms',
                                type: 'quantitative',
                                scale: { type: 'log' },
                                title: '9-step query round trip (ms)',
                            },
                            color: { field: 'quantile', type: 'nominal', title: 'quantile' },
                        },
                    },
                    rule(queryTarget),
                ],
            },
        ],
    };
}

/** The benches that have a figure, by results name. */
export const FIGURES: Readonly<Record<string, Figure>> = {
    storage: storageFigure,
    lookup: lookupFigure,
    kx: kxFigure,
    ledger: ledgerFigure,
    records: recordsFigure,
    trace: traceFigure,
};

/** SVG text of a vega-lite spec, rendered headless. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
    const compiled = vl.compile(spec).spec;
    const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
    try {
        return await view.toSVG();
    } finally {
        view.finalize();
    }
}

/**
 * Writes `<dir>/<name>.svg` from `<dir>/<name>.json`; returns the path, or undefined when the bench
 * has no figure or no results there.
 */
export async function plotBench(name: string, dir: string): Promise<string | undefined> {
    const figure = FIGURES[name];
    const json = join(dir, `${name}.json`);
    if (figure === undefined || !existsSync(json)) return undefined;
    const results = JSON.parse(await readFile(json, 'utf8')) as Json;
    const out = join(dir, `${name}.svg`);
    await writeFile(out, `${await renderSvg(figure(results))}\n`);
    return out;
}

/** `npm run bench -- plots [--dir DIR]`: re-renders every figure from the JSON in DIR. */
export async function runPlots(args: string[]): Promise<void> {
    let dir = join('bench', 'results');
    for (let i = 0; i < args.length; i++) {
        if (args[i] === '--dir' && args[i + 1] !== undefined) dir = args[++i]!;
        else throw new UsageError(`unknown argument ${args[i]}`);
    }
    for (const name of Object.keys(FIGURES)) {
        const out = await plotBench(name, dir);
        console.log(out === undefined ? `${name}: no ${join(dir, `${name}.json`)}, skipped` : `wrote ${out}`);
    }
}
