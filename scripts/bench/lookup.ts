/**
 * `npm run bench -- lookup [--sizes 1000,10000,100000,1000000] [--quick] [--samples N]
 *                          [--issue-limit N] [--dir DIR] [--keep]`
 *
 * Certificate lookup latency on the embedded ledger and the embedded object store (paper 004,
 * Fig. 5): with N certificates registered, a fog looks one up by IDCert_i —
 *   evaluate the chaincode's getCertificate (Table II record: status, B_i, content address)
 *   → store.get(CID) (read + CID verification) → decode the certificate object (Table III) and
 *   check it names the IDCert_i asked for.
 * Reported per N: p50/p99 of the whole lookup and of each step, and the same lookup with the ledger
 * step replaced by a direct world-state read (LedgerStore.getState + the chaincode's record decoder),
 * which shows how much of the evaluate path is transaction machinery rather than the state read.
 *
 * Population: sizes ≤ --issue-limit are issued through the chaincode (Algorithm 1: manufacturer
 * request with counter proofs, CSP ECQV issuance, chaincode verification), the objects stored by
 * the CSP side in the store. Larger sizes are bulk-loaded: one certificate is issued for real and
 * the rest are Table II records written through ordinary transactions of a bench-only contract
 * with the chaincode's key and record encoding (lookup-loader.ts), each pointing to its own
 * certificate object — the issued object with a distinct IDCert_i, so every object has its own
 * CID and decodes, though its ECQV equation does not hold (the lookup does not verify it).
 * Bulk-loaded objects are stored unpinned (pins do not touch the lookup path).
 */
import './lookup-quiet-logs.js';

import { randomInt } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import { contracts } from '@m2m-fabric/chaincode';
import { decodeCertificateRecord } from '@m2m-fabric/chaincode/contracts/records';
import { certificateKey } from '@m2m-fabric/chaincode/contracts/state';
import {
    contentAddress,
    contentAddressBytes,
    createCertificateRequest,
    decodeCertificateObject,
    encodeCertificateObject,
    encodeCertificateRequest,
    encodePoint,
    equalBytes,
    formatContentAddress,
    issueCertificates,
    P256_SHA256,
    randomScalar,
    toHex,
} from '@m2m-fabric/chaincode/protocol';
import type { CertificateObject, Point, Suite } from '@m2m-fabric/chaincode/protocol';
import type { LedgerContract } from '@m2m-fabric/gateway';
import { EmbeddedLedger } from '@m2m-fabric/gateway/ledger/embedded/index';
import { LedgerStore } from '@m2m-fabric/gateway/ledger/embedded/store';
import { EmbeddedObjectStore } from '@m2m-fabric/gateway/storage/index';

import { BULK_LOADER_MSP, BulkLoadContract } from './lookup-loader.js';

const CHAINCODE = 'm2m';
const ORGANISATIONS = [BULK_LOADER_MSP, 'FogAMSP', 'ManufacturerMSP'];
/** MAX_SESSIONS_PER_REQUEST of the chaincode. */
const REQUEST_SIZE = 256;
const BULK_BATCH = 1000;
const DEFAULT_SIZES = [1_000, 10_000, 100_000, 1_000_000];

interface Options {
    sizes: number[];
    samples: number;
    issueLimit: number;
    dir: string;
    keep: boolean;
    quick: boolean;
}

function parseOptions(args: string[]): Options {
    const options: Options = {
        sizes: DEFAULT_SIZES,
        samples: 2000,
        issueLimit: 1_000,
        dir: tmpdir(),
        keep: false,
        quick: false,
    };
    let samplesSet = false;
    let issueLimitSet = false;
    let sizesSet = false;
    for (let i = 0; i < args.length; i++) {
        const arg = args[i];
        const value = (): string => {
            const v = args[++i];
            if (v === undefined) throw new Error(`${arg} needs a value`);
            return v;
        };
        const count = (v: string): number => {
            const n = Number(v.replace(/_/g, ''));
            if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${arg}: not a positive integer: ${v}`);
            return n;
        };
        switch (arg) {
            case '--sizes':
                options.sizes = value().split(',').map(count);
                sizesSet = true;
                break;
            case '--samples':
                options.samples = count(value());
                samplesSet = true;
                break;
            case '--issue-limit':
                options.issueLimit = Number(value());
                issueLimitSet = true;
                break;
            case '--dir':
                options.dir = value();
                break;
            case '--keep':
                options.keep = true;
                break;
            case '--quick':
                options.quick = true;
                break;
            default:
                throw new Error(`unknown option ${arg}`);
        }
    }
    if (options.quick) {
        if (!sizesSet) options.sizes = [1_000, 10_000];
        if (!samplesSet) options.samples = 500;
        if (!issueLimitSet) options.issueLimit = 1_000;
    }
    return options;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number {
    if (sorted.length === 0) return Number.NaN;
    const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[rank] as number;
}

interface Distribution {
    p50: number;
    p99: number;
    mean: number;
    max: number;
}

function distribution(values: number[]): Distribution {
    const sorted = [...values].sort((a, b) => a - b);
    const round = (v: number): number => Math.round(v * 1000) / 1000;
    return {
        p50: round(percentile(sorted, 50)),
        p99: round(percentile(sorted, 99)),
        mean: round(sorted.reduce((s, v) => s + v, 0) / Math.max(1, sorted.length)),
        max: round(sorted[sorted.length - 1] ?? Number.NaN),
    };
}

interface SizeResult {
    certificates: number;
    population: 'issued through the chaincode' | 'bulk-loaded (1 issued + records in the chaincode format)';
    loadSeconds: number;
    samples: number;
    /** Whole lookup through the chaincode: evaluate getCertificate + store.get/verify + decode. */
    lookupMs: Distribution;
    evaluateMs: Distribution;
    storeGetMs: Distribution;
    decodeMs: Distribution;
    /** Same lookup with a direct world-state read (LedgerStore.getState + record decode) instead of evaluate. */
    stateReadLookupMs: Distribution;
    stateReadMs: Distribution;
    loadAverage: number[];
}

interface Population {
    /** IDCert_i of every registered certificate, `pointBytes` each, concatenated. */
    idCerts: Buffer;
    count: number;
}

type Shim = { prototype: { createCompositeKey(objectType: string, attributes: string[]): string } };
const ChaincodeStub = createRequire(import.meta.url)('fabric-shim/lib/stub.js') as Shim;
/** Just enough of a chaincode Context for the chaincode's own key function outside a transaction. */
const keyContext = {
    stub: {
        createCompositeKey: (type: string, parts: string[]): string =>
            ChaincodeStub.prototype.createCompositeKey(type, parts),
    },
} as unknown as Parameters<typeof certificateKey>[0];

function progress(label: string, done: number, total: number, started: number): void {
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(`\r  ${label}: ${done}/${total} (${seconds.toFixed(0)} s)   `);
    if (done === total) process.stdout.write('\n');
}

async function issueThroughChaincode(
    suite: Suite,
    cspKey: bigint,
    manufacturer: LedgerContract,
    csp: LedgerContract,
    store: EmbeddedObjectStore,
    count: number,
    onIssued?: (objects: Uint8Array[]) => void,
): Promise<Population> {
    const idCerts = Buffer.alloc(count * suite.pointBytes);
    const device = { w: randomScalar(suite), equipmentId: `bench-device-${randomInt(1 << 30)}` };
    const started = performance.now();
    for (let first = 0; first < count; first += REQUEST_SIZE) {
        const n = Math.min(REQUEST_SIZE, count - first);
        const request = createCertificateRequest(suite, device, BigInt(first + 1), n);
        const requestBytes = encodeCertificateRequest(request);
        const requestId = contentAddress(requestBytes);
        await manufacturer.submit('requestSessions', {
            arguments: [String(n), requestId],
            transientData: { request: requestBytes },
        });
        const objects = issueCertificates(suite, cspKey, request).map((o) => encodeCertificateObject(o));
        // As the CSP service does: store (durably, pinned) before the ledger refers to the objects.
        await store.putMany(objects);
        const transientData: Record<string, Uint8Array> = { request: requestBytes };
        objects.forEach((object, k) => (transientData[`certificate:${k}`] = object));
        await csp.submit('issueCertificates', { arguments: [requestId], transientData });
        request.entries.forEach((entry, k) =>
            Buffer.from(encodePoint(suite, entry.idCert)).copy(idCerts, (first + k) * suite.pointBytes),
        );
        onIssued?.(objects);
        progress('issued', first + n, count, started);
    }
    return { idCerts, count };
}

async function bulkLoad(
    suite: Suite,
    template: CertificateObject,
    loader: LedgerContract,
    store: EmbeddedObjectStore,
    into: Population,
    from: number,
): Promise<void> {
    const counterCommitment = toHex(encodePoint(suite, template.counterProof.B));
    const G = suite.Point.BASE;
    // Distinct IDCert_i by repeated addition (one point addition each instead of a multiplication).
    let P: Point = G.multiply(randomScalar(suite));
    const width = suite.pointBytes + 36;
    const started = performance.now();
    for (let start = from; start < into.count; start += BULK_BATCH) {
        const n = Math.min(BULK_BATCH, into.count - start);
        const objects: Uint8Array[] = [];
        const records = Buffer.alloc(n * width);
        for (let k = 0; k < n; k++) {
            P = P.add(G);
            const object = encodeCertificateObject({ ...template, idCert: P });
            objects.push(object);
            const idCert = encodePoint(suite, P);
            Buffer.from(idCert).copy(records, k * width);
            Buffer.from(contentAddressBytes(object)).copy(records, k * width + suite.pointBytes);
            Buffer.from(idCert).copy(into.idCerts, (start + k) * suite.pointBytes);
        }
        await Promise.all([
            store.putMany(objects, { pin: false }),
            loader.submit('loadCertificates', { arguments: [records.toString('hex'), counterCommitment] }),
        ]);
        progress('bulk-loaded', start + n, into.count, started);
    }
}

interface Timings {
    total: number[];
    ledger: number[];
    get: number[];
    decode: number[];
}

/** One lookup: ledger step (given), then fetch + verify + decode + identity check. */
async function timedLookup(
    suite: Suite,
    store: EmbeddedObjectStore,
    idCert: Uint8Array,
    readRecord: (idCert: Uint8Array) => Promise<string>,
    timings: Timings | undefined,
): Promise<void> {
    const t0 = performance.now();
    const cid = await readRecord(idCert);
    const t1 = performance.now();
    const bytes = await store.get(cid);
    const t2 = performance.now();
    const object = decodeCertificateObject(bytes);
    if (!equalBytes(encodePoint(suite, object.idCert), idCert)) {
        throw new Error(`the object at ${cid} names another IDCert_i`);
    }
    const t3 = performance.now();
    if (timings !== undefined) {
        timings.total.push(t3 - t0);
        timings.ledger.push(t1 - t0);
        timings.get.push(t2 - t1);
        timings.decode.push(t3 - t2);
    }
}

async function measure(
    suite: Suite,
    store: EmbeddedObjectStore,
    population: Population,
    samples: number,
    readRecord: (idCert: Uint8Array) => Promise<string>,
): Promise<Timings> {
    const pick = (): Uint8Array => {
        const i = randomInt(population.count);
        return population.idCerts.subarray(i * suite.pointBytes, (i + 1) * suite.pointBytes);
    };
    const warmup = Math.min(200, Math.ceil(samples / 5));
    for (let i = 0; i < warmup; i++) await timedLookup(suite, store, pick(), readRecord, undefined);
    const timings: Timings = { total: [], ledger: [], get: [], decode: [] };
    for (let i = 0; i < samples; i++) await timedLookup(suite, store, pick(), readRecord, timings);
    return timings;
}

async function runSize(count: number, options: Options): Promise<SizeResult> {
    const suite = P256_SHA256;
    const dir = await mkdtemp(join(options.dir, `m2m-lookup-${count}-`));
    console.log(`\n${count} certificates (data in ${dir})`);
    const ledgerDir = join(dir, 'ledger');
    const ledger = await EmbeddedLedger.open({
        dataDir: ledgerDir,
        organisations: ORGANISATIONS,
        chaincodes: [{ name: CHAINCODE, contracts: [...contracts, BulkLoadContract] }],
        batch: { batchTimeoutMs: 5 },
    });
    const store = await EmbeddedObjectStore.open(join(dir, 'objects'));
    try {
        const party = async (
            mspId: string,
            name: string,
            role: string,
        ): Promise<(contract: string) => LedgerContract> => {
            const enrolment = await ledger.enrol(mspId, name, { attributes: { 'm2m.role': role } });
            const connection = await ledger.connect({ identity: enrolment.identity, signer: enrolment.signer });
            return (contract) => connection.getContract(CHAINCODE, contract);
        };
        const csp = await party(BULK_LOADER_MSP, 'csp', 'csp');
        const fog = await party('FogAMSP', 'fog', 'fog');
        const manufacturer = await party('ManufacturerMSP', 'manufacturer', 'manufacturer');
        const cspKey = randomScalar(suite);
        await csp('registry').submit('registerCsp', {
            arguments: [suite.id, toHex(encodePoint(suite, suite.Point.BASE.multiply(cspKey)))],
        });
        await csp('registry').submit('grantCredit', { arguments: ['ManufacturerMSP', String(count)] });

        const loadStarted = performance.now();
        let population: Population;
        const issued = count <= options.issueLimit;
        if (issued) {
            population = await issueThroughChaincode(
                suite,
                cspKey,
                manufacturer('certificates'),
                csp('certificates'),
                store,
                count,
            );
        } else {
            let template: Uint8Array | undefined;
            const first = await issueThroughChaincode(
                suite,
                cspKey,
                manufacturer('certificates'),
                csp('certificates'),
                store,
                1,
                (objects) => {
                    template = objects[0];
                },
            );
            if (template === undefined) throw new Error('no template certificate issued');
            population = { idCerts: Buffer.alloc(count * suite.pointBytes), count };
            first.idCerts.copy(population.idCerts, 0);
            await bulkLoad(suite, decodeCertificateObject(template), csp('benchload'), store, population, 1);
        }
        const loadSeconds = (performance.now() - loadStarted) / 1000;

        console.log(`  measuring ${options.samples} lookups through evaluate(getCertificate)`);
        const certificates = fog('certificates');
        const decoder = new TextDecoder();
        const viaEvaluate = await measure(suite, store, population, options.samples, async (idCert) => {
            const payload = await certificates.evaluate('getCertificate', { arguments: [toHex(idCert)] });
            const record = JSON.parse(decoder.decode(payload)) as { status: string; contentAddress: string | null };
            if (record.contentAddress === null) throw new Error('certificate not issued');
            return record.contentAddress;
        });
        await ledger.close();

        console.log(`  measuring ${options.samples} lookups through a direct world-state read`);
        const state = await LedgerStore.open(join(ledgerDir, 'ledger'), { sync: false });
        let viaState: Timings;
        try {
            viaState = await measure(suite, store, population, options.samples, async (idCert) => {
                const entry = await state.getState(CHAINCODE, certificateKey(keyContext, idCert));
                if (entry === undefined) throw new Error('no Table II record');
                const record = decodeCertificateRecord(suite, entry.value);
                if (record.contentAddress === undefined) throw new Error('certificate not issued');
                return formatContentAddress(record.contentAddress);
            });
        } finally {
            await state.close();
        }
        return {
            certificates: count,
            population: issued
                ? 'issued through the chaincode'
                : 'bulk-loaded (1 issued + records in the chaincode format)',
            loadSeconds: Math.round(loadSeconds * 10) / 10,
            samples: options.samples,
            lookupMs: distribution(viaEvaluate.total),
            evaluateMs: distribution(viaEvaluate.ledger),
            storeGetMs: distribution(viaEvaluate.get),
            decodeMs: distribution(viaEvaluate.decode),
            stateReadLookupMs: distribution(viaState.total),
            stateReadMs: distribution(viaState.ledger),
            loadAverage: loadavg().map((v) => Math.round(v * 100) / 100),
        };
    } finally {
        await ledger.close().catch(() => undefined);
        await store.close();
        if (!options.keep) await rm(dir, { recursive: true, force: true });
    }
}

function table(results: SizeResult[]): string {
    const f = (d: Distribution): string => `${d.p50.toFixed(3)} / ${d.p99.toFixed(3)}`;
    const lines = [
        '| certificates | population | load (s) | lookup p50 / p99 (ms) | evaluate | store.get + verify | decode | lookup via state read | state read |',
        '|---:|---|---:|---:|---:|---:|---:|---:|---:|',
        ...results.map(
            (r) =>
                `| ${r.certificates.toLocaleString('en-US')} | ${r.population.startsWith('issued') ? 'issued' : 'bulk-loaded'} | ${r.loadSeconds} | ` +
                `${f(r.lookupMs)} | ${f(r.evaluateMs)} | ${f(r.storeGetMs)} | ${f(r.decodeMs)} | ${f(r.stateReadLookupMs)} | ${f(r.stateReadMs)} |`,
        ),
    ];
    return lines.join('\n');
}

export async function runLookupBench(args: string[]): Promise<void> {
    const options = parseOptions(args);
    console.log(
        `lookup benchmark: sizes ${options.sizes.join(', ')}; ${options.samples} lookups each; ` +
            `issued through the chaincode up to ${options.issueLimit}, bulk-loaded above`,
    );
    const started = new Date();
    const results: SizeResult[] = [];
    for (const size of options.sizes) results.push(await runSize(size, options));
    const markdown = [
        '# Certificate lookup latency (paper 004, Fig. 5)',
        '',
        `Run ${started.toISOString()}, Node ${process.version}, ${cpus().length} cores, load average at the end ${loadavg()
            .map((v) => v.toFixed(2))
            .join(' ')}.`,
        'Lookup = evaluate getCertificate on the embedded ledger (fog identity) + store.get (read + CID check) on the',
        'embedded store + decode of the certificate object; per-step columns are p50 / p99 in ms of the same lookups.',
        '"lookup via state read" replaces evaluate by LedgerStore.getState + the chaincode record decoder.',
        'Bulk-loaded sizes: 1 certificate issued through the chaincode, the rest Table II records written by ordinary',
        'transactions of a bench-only contract with the chaincode key and record encoding, each pointing to its own',
        'stored object (the issued object with a distinct IDCert_i; unpinned).',
        '',
        table(results),
        '',
    ].join('\n');
    console.log(`\n${table(results)}`);
    await mkdir('bench/results', { recursive: true });
    await writeFile(
        'bench/results/lookup.json',
        JSON.stringify(
            {
                benchmark: 'lookup',
                started: started.toISOString(),
                node: process.version,
                cores: cpus().length,
                options,
                results,
            },
            null,
            4,
        ) + '\n',
    );
    await writeFile('bench/results/lookup.md', markdown);
    console.log('written: bench/results/lookup.json, bench/results/lookup.md');
}
