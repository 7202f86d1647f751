/**
 * The lookup benchmark's population: N registered certificates on an embedded ledger, each with its
 * certificate object in an embedded object store, in one directory that can be kept and measured
 * again (`--keep`, `--reuse DIR`) — loading 10⁶ takes minutes, measuring it seconds.
 *
 *   <dir>/ledger/           EmbeddedLedger data directory (organisations, LevelDB)
 *   <dir>/objects/          EmbeddedObjectStore
 *   <dir>/idcerts.bin       IDCert_i of every certificate, fixed width, in load order
 *   <dir>/population.json   written last: count, how it was loaded, load time — a directory
 *                           without it is an interrupted load and is refused by --reuse
 *
 * Sizes up to the issue limit are issued through the chaincode (Algorithm 1: manufacturer request
 * with counter proofs, CSP ECQV issuance and storage of the objects, chaincode verification). Larger
 * sizes are bulk-loaded: one certificate is issued for real, the rest are Table II records written by
 * ordinary transactions of a bench-only contract with the chaincode's key and record encoding
 * (lookup-loader.ts), each pointing to its own object — the issued object with a distinct IDCert_i,
 * so every object has its own CID and decodes (its ECQV equation does not hold; a lookup does not
 * check it). Bulk-loaded objects are unpinned (pins are not on the lookup path).
 */
import { randomInt } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { ClassicLevel } from 'classic-level';

import { contracts } from '@m2m-fabric/chaincode';
import {
    contentAddress,
    contentAddressBytes,
    createCertificateRequest,
    decodeCertificateObject,
    encodeCertificateObject,
    encodeCertificateRequest,
    encodePoint,
    issueCertificates,
    P256_SHA256,
    randomScalar,
    toHex,
} from '@m2m-fabric/protocol';
import type { CertificateObject, Point, Suite } from '@m2m-fabric/protocol';
import type { LedgerContract } from '@m2m-fabric/sdk';
import { EmbeddedLedger } from '@m2m-fabric/embedded-ledger';
import { EmbeddedObjectStore } from '@m2m-fabric/sdk';

import { BULK_LOADER_MSP, BulkLoadContract } from './lookup-loader.js';

export const CHAINCODE = 'm2m';
export const ORGANISATIONS = [BULK_LOADER_MSP, 'FogAMSP', 'ManufacturerMSP'];
export const FOG_MSP = 'FogAMSP';
/** MAX_SESSIONS_PER_REQUEST of the chaincode. */
const REQUEST_SIZE = 256;
/** Table II records per bulk-load transaction (≈ 300 KB of transaction). */
const BULK_BATCH = 1000;
/**
 * Bulk-load transactions in flight. Two keep the store's fsyncs, the endorsement of the next batch and
 * the commit of the previous one overlapping, and let a block carry two transactions; more only
 * queues on 2 cores.
 */
const BULK_IN_FLIGHT = 2;

export type PopulationKind = 'issued' | 'bulk-loaded';

export interface PopulationInfo {
    count: number;
    kind: PopulationKind;
    suite: string;
    loadSeconds: number;
    loadedAt: string;
}

export interface Population {
    dir: string;
    info: PopulationInfo;
    /** IDCert_i of every certificate, `pointBytes` each, concatenated. */
    idCerts: Buffer;
}

export function ledgerDirectory(dir: string): string {
    return join(dir, 'ledger');
}

export function storeDirectory(dir: string): string {
    return join(dir, 'objects');
}

export function openBenchLedger(dir: string): Promise<EmbeddedLedger> {
    return EmbeddedLedger.open({
        dataDir: ledgerDirectory(dir),
        organisations: ORGANISATIONS,
        chaincodes: [{ name: CHAINCODE, contracts: [...contracts, BulkLoadContract] }],
        batch: { batchTimeoutMs: 5 },
    });
}

/** A contract handle of one organisation's enrolled identity. */
export async function partyContracts(
    ledger: EmbeddedLedger,
    mspId: string,
    name: string,
    role: string,
): Promise<(contract: string) => LedgerContract> {
    const enrolment = await ledger.loadOrEnrol(mspId, name, { attributes: { 'm2m.role': role } });
    const connection = await ledger.connect({ identity: enrolment.identity, signer: enrolment.signer });
    return (contract) => connection.getContract(CHAINCODE, contract);
}

/** Prints at most every 2 s (and at the end): count, rate, ETA, resident memory. */
class Progress {
    private readonly started = performance.now();
    private last = 0;

    constructor(
        private readonly label: string,
        private readonly total: number,
    ) {}

    update(done: number, extra = ''): void {
        const now = performance.now();
        if (done < this.total && now - this.last < 2000) return;
        this.last = now;
        const seconds = (now - this.started) / 1000;
        const rate = done / Math.max(seconds, 1e-3);
        const eta = (this.total - done) / Math.max(rate, 1e-3);
        const rss = process.memoryUsage.rss() / 2 ** 20;
        process.stdout.write(
            `  ${this.label}: ${done.toLocaleString('en-US')}/${this.total.toLocaleString('en-US')} ` +
                `${seconds.toFixed(0)} s, ${rate.toFixed(0)}/s, ETA ${eta.toFixed(0)} s, RSS ${rss.toFixed(0)} MB${extra}\n`,
        );
    }
}

async function issueThroughChaincode(
    suite: Suite,
    cspKey: bigint,
    manufacturer: LedgerContract,
    csp: LedgerContract,
    store: EmbeddedObjectStore,
    idCerts: Buffer,
    count: number,
): Promise<Uint8Array> {
    const device = { w: randomScalar(suite), equipmentId: `bench-device-${randomInt(1 << 30)}` };
    const progress = new Progress('issued', count);
    let firstObject: Uint8Array | undefined;
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
        firstObject ??= objects[0];
        progress.update(first + n);
    }
    if (firstObject === undefined) throw new Error('nothing issued');
    return firstObject;
}

/** Writes certificates from..count-1 as bulk-load transactions, BULK_IN_FLIGHT at a time. */
async function bulkLoad(
    suite: Suite,
    template: CertificateObject,
    loader: LedgerContract,
    store: EmbeddedObjectStore,
    idCerts: Buffer,
    from: number,
    count: number,
): Promise<void> {
    const counterCommitment = toHex(encodePoint(suite, template.counterProof.B));
    const G = suite.Point.BASE;
    // Distinct IDCert_i by repeated addition (one point addition each instead of a multiplication).
    let P: Point = G.multiply(randomScalar(suite));
    const width = suite.pointBytes + 36;
    const progress = new Progress('bulk-loaded', count);
    let storeMs = 0;
    let ledgerMs = 0;
    let next = from;
    let done = from;
    // Each worker builds its next batch only when it is free, so memory holds ≤ BULK_IN_FLIGHT batches.
    const worker = async (): Promise<void> => {
        while (next < count) {
            const start = next;
            const n = Math.min(BULK_BATCH, count - start);
            next += n;
            const objects: Uint8Array[] = [];
            const records = Buffer.alloc(n * width);
            for (let k = 0; k < n; k++) {
                P = P.add(G);
                const object = encodeCertificateObject({ ...template, idCert: P });
                objects.push(object);
                const idCert = encodePoint(suite, P);
                Buffer.from(idCert).copy(records, k * width);
                Buffer.from(contentAddressBytes(object)).copy(records, k * width + suite.pointBytes);
                Buffer.from(idCert).copy(idCerts, (start + k) * suite.pointBytes);
            }
            const t0 = performance.now();
            await Promise.all([
                store.putMany(objects, { pin: false }).then(() => (storeMs += performance.now() - t0)),
                loader
                    .submit('loadCertificates', { arguments: [records.toString('hex'), counterCommitment] })
                    .then(() => (ledgerMs += performance.now() - t0)),
            ]);
            done += n;
            progress.update(
                done,
                ` (busy: store ${(storeMs / 1000).toFixed(0)} s, ledger ${(ledgerMs / 1000).toFixed(0)} s)`,
            );
        }
    };
    await Promise.all(Array.from({ length: BULK_IN_FLIGHT }, worker));
}

/** Loads `count` certificates into a fresh directory `dir` and records it as a reusable population. */
export async function loadPopulation(dir: string, count: number, issueLimit: number): Promise<Population> {
    const suite = P256_SHA256;
    const kind: PopulationKind = count <= issueLimit ? 'issued' : 'bulk-loaded';
    const ledger = await openBenchLedger(dir);
    const store = await EmbeddedObjectStore.open(storeDirectory(dir));
    const idCerts = Buffer.alloc(count * suite.pointBytes);
    const started = performance.now();
    try {
        const csp = await partyContracts(ledger, BULK_LOADER_MSP, 'csp', 'csp');
        const manufacturer = await partyContracts(ledger, 'ManufacturerMSP', 'manufacturer', 'manufacturer');
        const cspKey = randomScalar(suite);
        await csp('registry').submit('registerCsp', {
            arguments: [suite.id, toHex(encodePoint(suite, suite.Point.BASE.multiply(cspKey)))],
        });
        await csp('registry').submit('grantCredit', { arguments: ['ManufacturerMSP', String(count)] });
        const issuedCount = kind === 'issued' ? count : 1;
        const template = await issueThroughChaincode(
            suite,
            cspKey,
            manufacturer('certificates'),
            csp('certificates'),
            store,
            idCerts,
            issuedCount,
        );
        if (kind === 'bulk-loaded') {
            await bulkLoad(suite, decodeCertificateObject(template), csp('benchload'), store, idCerts, 1, count);
        }
    } finally {
        await ledger.close();
        await store.close();
    }
    const info: PopulationInfo = {
        count,
        kind,
        suite: suite.id,
        loadSeconds: Math.round((performance.now() - started) / 100) / 10,
        loadedAt: new Date().toISOString(),
    };
    await writeFile(join(dir, 'idcerts.bin'), idCerts);
    await writeFile(join(dir, 'population.json'), JSON.stringify(info, null, 4) + '\n');
    return { dir, info, idCerts };
}

/** A population a previous run kept (--keep), for --reuse. */
export async function readPopulation(dir: string): Promise<Population> {
    let info: PopulationInfo;
    try {
        info = JSON.parse(await readFile(join(dir, 'population.json'), 'utf8')) as PopulationInfo;
    } catch (cause) {
        throw new Error(`${dir} holds no complete lookup population (population.json missing or unreadable)`, {
            cause,
        });
    }
    const idCerts = await readFile(join(dir, 'idcerts.bin'));
    if (idCerts.length !== info.count * P256_SHA256.pointBytes) {
        throw new Error(`${dir}/idcerts.bin holds ${idCerts.length} bytes, expected ${info.count} IDCert_i`);
    }
    return { dir, info, idCerts };
}

export interface LevelDbSettle {
    compacted: boolean;
    seconds: number;
    /** Table files per level before and after, from LevelDB's own counters. */
    filesPerLevelBefore: number[];
    filesPerLevelAfter: number[];
}

function filesPerLevel(db: ClassicLevel<Buffer, Buffer>): number[] {
    const levels: number[] = [];
    for (let level = 0; level < 7; level++) {
        levels.push(Number(db.getProperty(`leveldb.num-files-at-level${level}`)));
    }
    return levels;
}

/**
 * Settles the ledger's LevelDB after the bulk load: a full manual compaction, so the measurement
 * does not pay for the compaction debt of millions of writes made seconds earlier (a peer that has
 * run for a while has paid it in the background). Run on the closed ledger's directory.
 */
export async function settleLedger(dir: string, compact: boolean): Promise<LevelDbSettle> {
    const db = new ClassicLevel<Buffer, Buffer>(join(ledgerDirectory(dir), 'ledger'), {
        keyEncoding: 'buffer',
        valueEncoding: 'buffer',
        createIfMissing: false,
    });
    await db.open();
    const started = performance.now();
    try {
        const filesPerLevelBefore = filesPerLevel(db);
        if (compact) await db.compactRange(Buffer.from([0x00]), Buffer.alloc(8, 0xff));
        return {
            compacted: compact,
            seconds: Math.round((performance.now() - started) / 100) / 10,
            filesPerLevelBefore,
            filesPerLevelAfter: filesPerLevel(db),
        };
    } finally {
        await db.close();
    }
}

export interface DiskUsage {
    /** Segment files of the object store, their bytes and bytes allocated on disk (st_blocks). */
    objectFiles: number;
    objectBytes: number;
    objectAllocatedBytes: number;
    shardDirectories: number;
    maxFilesPerShard: number;
    ledgerBytes: number;
}

function walk(dir: string, visit: (path: string, isDir: boolean) => void): void {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        visit(path, entry.isDirectory());
        if (entry.isDirectory()) walk(path, visit);
    }
}

/** File counts and sizes of a population (one stat per file: a few seconds at 10⁶). */
export function diskUsage(dir: string): DiskUsage {
    const usage: DiskUsage = {
        objectFiles: 0,
        objectBytes: 0,
        objectAllocatedBytes: 0,
        shardDirectories: 0,
        maxFilesPerShard: 0,
        ledgerBytes: 0,
    };
    // The packed store (format 2): segment files in one directory.
    const segments = join(storeDirectory(dir), 'segments');
    usage.shardDirectories = 1;
    for (const name of readdirSync(segments)) {
        const st = statSync(join(segments, name));
        usage.objectFiles++;
        usage.objectBytes += st.size;
        usage.objectAllocatedBytes += st.blocks * 512;
    }
    usage.maxFilesPerShard = usage.objectFiles;
    walk(ledgerDirectory(dir), (path, isDir) => {
        if (!isDir) usage.ledgerBytes += statSync(path).size;
    });
    return usage;
}
