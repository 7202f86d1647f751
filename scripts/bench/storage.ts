/**
 * `npm run bench -- storage`: world-state bytes per issued certificate and per session (paper 004
 * Fig. 4), for P-256 and P-384, beside what storing the certificate object itself on chain, or an
 * RSA-3072 X.509 certificate, would cost.
 *
 * The figures are measured, not computed: the real contracts run Algorithms 1-3 on the embedded
 * ledger, then the committed world state of the chaincode's namespace is read back from the
 * ledger's store and every key and value is counted (UTF-8 key bytes + value bytes; Fabric's own
 * per-key version metadata is not included).
 */
import { webcrypto } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { base58btc } from 'multiformats/bases/base58';

import { contracts } from '@m2m-fabric/chaincode';
import {
    P256_SHA256,
    P384_SHA384,
    computeSecondaryHash,
    computeSymKey,
    contentAddress,
    createActivation,
    createCertificateRequest,
    createM1,
    createM4,
    encodeActivation,
    encodeCertificateObject,
    encodeCertificateRequest,
    encodePoint,
    encodeSynchronisation,
    fogAddress,
    fromHex,
    hpkeRecipientFromScalar,
    issueCertificates,
    openM4,
    processM2,
    randomScalar,
    symKeyCommitment,
    toHex,
} from '@m2m-fabric/protocol';
import type { Suite } from '@m2m-fabric/protocol';
import type { LedgerContract } from '@m2m-fabric/sdk';
import { EmbeddedLedger } from '@m2m-fabric/embedded-ledger';
import { LedgerStore } from '@m2m-fabric/embedded-ledger/internal';

import { measureObjectStore, type ObjectStoreFigures } from './object-store.js';
import { UsageError } from './usage.js';

const CHAINCODE = 'm2m';
const CERTIFICATES = 16;
const SESSIONS = 8;
const RSA_SAMPLES = 3;
const TARGET_P256_BYTES_PER_CERTIFICATE = 150;

interface SuiteFigures {
    suite: string;
    certificates: number;
    sessions: number;
    /** Table II record: key + value, per certificate. */
    certificateRecordBytes: number;
    certificateKeyBytes: number;
    certificateValueBytes: number;
    /** The purchase record, shared by the certificates of one request. */
    purchaseRecordBytesPerCertificate: number;
    /** session record + secondaryHash record, per session. */
    sessionBytes: number;
    sessionRecordBytes: number;
    secondaryRecordBytes: number;
    /** The same key holding the encoded certificate object (Table III) instead of its CID. */
    onChainCertificateObjectBytes: number;
    certificateObjectBytes: number;
}

function median(values: number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

function keyType(key: string): string {
    return key.startsWith('\u0000') ? (key.split('\u0000')[1] ?? '') : '';
}

async function measureSuite(suite: Suite): Promise<SuiteFigures> {
    const dataDir = mkdtempSync(join(tmpdir(), 'm2m-bench-storage-'));
    try {
        const ledger = await EmbeddedLedger.open({
            dataDir,
            organisations: ['CSPMSP', 'FogAMSP', 'ManufacturerMSP'],
            chaincodes: [{ name: CHAINCODE, contracts }],
            batch: { batchTimeoutMs: 5 },
            sync: false,
        });
        const objects: Uint8Array[] = [];
        try {
            const contractOf = async (mspId: string, role: string): Promise<(name: string) => LedgerContract> => {
                const enrolment = await ledger.enrol(mspId, `${role}-bench`, { attributes: { 'm2m.role': role } });
                const connection = await ledger.connect({ identity: enrolment.identity, signer: enrolment.signer });
                return (name) => connection.getContract(CHAINCODE, name);
            };
            const csp = await contractOf('CSPMSP', 'csp');
            const fog = await contractOf('FogAMSP', 'fog');
            const manufacturer = await contractOf('ManufacturerMSP', 'manufacturer');

            const dC = randomScalar(suite);
            const qC = suite.Point.BASE.multiply(dC);
            const dF = randomScalar(suite);
            const qF = suite.Point.BASE.multiply(dF);
            const fogId = 'fog-a';
            await csp('registry').submit('registerCsp', { arguments: [suite.id, toHex(encodePoint(suite, qC))] });
            await fog('registry').submit('registerFog', {
                arguments: [fogId, toHex(encodePoint(suite, qF)), toHex(fogAddress(suite, fogId, qC.multiply(dF)))],
            });
            await csp('registry').submit('approveFog', {
                arguments: [fogId, toHex(fogAddress(suite, fogId, qF.multiply(dC)))],
            });
            await csp('registry').submit('grantCredit', { arguments: ['ManufacturerMSP', String(CERTIFICATES)] });

            // Algorithm 1: one request for CERTIFICATES sessions of one device.
            const device = { w: randomScalar(suite), equipmentId: 'bench-press-1' };
            const request = createCertificateRequest(suite, device, 1n, CERTIFICATES);
            const requestBytes = encodeCertificateRequest(request);
            const requestId = contentAddress(requestBytes);
            await manufacturer('certificates').submit('requestSessions', {
                arguments: [String(CERTIFICATES), requestId],
                transientData: { request: requestBytes },
            });
            const transient: Record<string, Uint8Array> = { request: requestBytes };
            for (const [index, object] of issueCertificates(suite, dC, request).entries()) {
                const bytes = encodeCertificateObject(object);
                objects.push(bytes);
                transient[`certificate:${index}`] = bytes;
            }
            await csp('certificates').submit('issueCertificates', { arguments: [requestId], transientData: transient });

            // Algorithms 2 and 3 for the first SESSIONS certificates.
            const cspRecipient = await hpkeRecipientFromScalar(suite, dC);
            for (let k = 0; k < SESSIONS; k++) {
                const object = objects[k];
                if (object === undefined) throw new Error('missing certificate object');
                const counter = BigInt(k + 1);
                const { m1, session } = await createM1(suite, device, counter, fogId, qF, qC);
                const { m3, publicKey } = processM2(session, object, qC, fogId);
                const activation = createActivation(suite, dF, object, m1, m3);
                const result = await fog('sessions').submit('activateSession', {
                    arguments: [fogId],
                    transientData: { activation: encodeActivation(activation) },
                });
                const primaryHash = fromHex(
                    (JSON.parse(new TextDecoder().decode(result)) as { primaryHash: string }).primaryHash,
                );
                const opened = await openM4(
                    suite,
                    cspRecipient,
                    qF,
                    await createM4(suite, fogId, dF, m1, primaryHash, qC),
                );
                const synchronisation = encodeSynchronisation({
                    suite,
                    primaryHash: opened.primaryHash,
                    secondaryHash: computeSecondaryHash(suite, dC, opened.dynamicId, opened.counter),
                    symKeyCommitment: symKeyCommitment(suite, computeSymKey(suite, dC, publicKey)),
                });
                await csp('sessions').submit('synchroniseSession', { transientData: { synchronisation } });
            }
        } finally {
            await ledger.close();
        }

        // Read the committed world state back from the ledger's store.
        const store = await LedgerStore.open(join(dataDir, 'ledger'), { sync: false });
        const bytesByType = new Map<string, { count: number; key: number; value: number }>();
        try {
            for (const { key, value } of await store.getStateRange(CHAINCODE, '', '', false)) {
                const type = keyType(key);
                const totals = bytesByType.get(type) ?? { count: 0, key: 0, value: 0 };
                totals.count++;
                totals.key += Buffer.byteLength(key, 'utf8');
                totals.value += value.length;
                bytesByType.set(type, totals);
            }
        } finally {
            await store.close();
        }
        const of = (type: string): { count: number; key: number; value: number } =>
            bytesByType.get(type) ?? { count: 0, key: 0, value: 0 };
        const certs = of('cert');
        const sessions = of('session');
        const secondaries = of('secondary');
        const purchases = of('request');
        if (certs.count !== CERTIFICATES || sessions.count !== SESSIONS || secondaries.count !== SESSIONS) {
            throw new Error(`unexpected state: ${JSON.stringify([...bytesByType])}`);
        }
        const certificateKeyBytes = certs.key / certs.count;
        const objectBytes = objects.map((object) => object.length);
        return {
            suite: suite.id,
            certificates: certs.count,
            sessions: sessions.count,
            certificateRecordBytes: (certs.key + certs.value) / certs.count,
            certificateKeyBytes,
            certificateValueBytes: certs.value / certs.count,
            purchaseRecordBytesPerCertificate: (purchases.key + purchases.value) / CERTIFICATES,
            sessionBytes: (sessions.key + sessions.value + secondaries.key + secondaries.value) / SESSIONS,
            sessionRecordBytes: (sessions.key + sessions.value) / sessions.count,
            secondaryRecordBytes: (secondaries.key + secondaries.value) / secondaries.count,
            onChainCertificateObjectBytes: certificateKeyBytes + median(objectBytes),
            certificateObjectBytes: median(objectBytes),
        };
    } finally {
        rmSync(dataDir, { recursive: true, force: true });
    }
}

/** An RSA-3072 X.509 certificate as the paper's RSA baseline would store it: DER, and Base58 as the paper encodes. */
async function measureRsaCertificate(): Promise<{ der: number; base58: number }> {
    const algorithm = {
        name: 'RSASSA-PKCS1-v1_5',
        hash: 'SHA-256',
        publicExponent: new Uint8Array([1, 0, 1]),
        modulusLength: 3072,
    };
    const keys = await webcrypto.subtle.generateKey(algorithm, false, ['sign', 'verify']);
    const certificate = await x509.X509CertificateGenerator.createSelfSigned(
        {
            serialNumber: '01',
            name: 'CN=bench-press-1, O=ManufacturerMSP',
            notBefore: new Date('2026-01-01T00:00:00Z'),
            notAfter: new Date('2027-01-01T00:00:00Z'),
            signingAlgorithm: algorithm,
            keys,
            extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
        },
        webcrypto,
    );
    const der = new Uint8Array(certificate.rawData);
    return { der: der.length, base58: base58btc.baseEncode(der).length };
}

export async function runStorageBench(args: string[]): Promise<void> {
    let quick = false;
    let sizes = [10_000, 100_000, 1_000_000];
    let out = 'bench/results';
    for (let i = 0; i < args.length; i++) {
        if (args[i] === '--quick') quick = true;
        else if (args[i] === '--objects' && args[i + 1] !== undefined)
            sizes = (args[++i] as string).split(',').map((n) => Number(n));
        else
            throw new UsageError(`storage bench: unknown argument ${JSON.stringify(args[i])} (--quick, --objects N,N)`);
    }
    if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError('--objects: positive integers');
    if (quick) {
        out = 'bench/results/quick';
        if (!args.includes('--objects')) sizes = [10_000];
    }
    const objectStore: ObjectStoreFigures[] = [];
    for (const n of sizes) {
        const figures = await measureObjectStore(n);
        console.log(JSON.stringify({ objectStore: figures }));
        objectStore.push(figures);
    }
    const largest = objectStore[objectStore.length - 1] as ObjectStoreFigures;
    // The machine is shared: the figures above are read beside this load.
    const loadAverage = loadavg().map((l) => Number(l.toFixed(1)));
    const suites: SuiteFigures[] = [];
    for (const suite of [P256_SHA256, P384_SHA384]) {
        suites.push(await measureSuite(suite));
    }
    const rsa: { der: number; base58: number }[] = [];
    for (let k = 0; k < RSA_SAMPLES; k++) rsa.push(await measureRsaCertificate());
    const rsaDer = median(rsa.map((r) => r.der));
    const rsaBase58 = median(rsa.map((r) => r.base58));
    const p256 = suites.find((s) => s.suite === 'P256-SHA256');
    const result = {
        benchmark: 'storage',
        date: new Date().toISOString(),
        method: 'Algorithms 1-3 run by the real contracts on the embedded ledger; committed world state of the chaincode namespace read back; bytes = UTF-8 key + value',
        suites,
        rsa3072X509: { samples: RSA_SAMPLES, derBytesMedian: rsaDer, base58BytesMedian: rsaBase58 },
        target: {
            p256BytesPerCertificate: TARGET_P256_BYTES_PER_CERTIFICATE,
            met: p256 !== undefined && p256.certificateRecordBytes <= TARGET_P256_BYTES_PER_CERTIFICATE,
        },
        /** Packed embedded object store (segments), 200-byte objects; figure from the largest population. */
        storeMiBPerMillionObjects: largest.mibPerMillionObjects,
        storeMiBTarget: 400,
        /** Reopen seconds (from the segment indexes) per population, e.g. reopenSeconds["1000000"]. */
        loadAverageAfterObjectStore: loadAverage,
        reopenSeconds: Object.fromEntries(objectStore.map((f) => [String(f.objects), f.openSeconds])),
        objectStore,
    };

    const rows = [
        ['', ...suites.map((s) => s.suite), 'RSA-3072 X.509'],
        [
            'Table II record per certificate (key + value)',
            ...suites.map(
                (s) => `${s.certificateRecordBytes} B (${s.certificateKeyBytes} + ${s.certificateValueBytes})`,
            ),
            '—',
        ],
        [
            'purchase record share per certificate',
            ...suites.map((s) => `${s.purchaseRecordBytesPerCertificate.toFixed(1)} B`),
            '—',
        ],
        [
            'per session (session + secondaryHash records)',
            ...suites.map((s) => `${s.sessionBytes} B (${s.sessionRecordBytes} + ${s.secondaryRecordBytes})`),
            '—',
        ],
        [
            'certificate object on chain instead (key + object)',
            ...suites.map((s) => `${s.onChainCertificateObjectBytes} B (object ${s.certificateObjectBytes})`),
            `${rsaDer} B DER, ${rsaBase58} B Base58`,
        ],
    ];
    const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
    const line = (row: string[]): string =>
        `| ${row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ')} |`;
    const table = [
        line(rows[0] ?? []),
        `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
        ...rows.slice(1).map(line),
    ].join('\n');
    console.log(table);
    console.log(
        `P-256 target ≤ ${TARGET_P256_BYTES_PER_CERTIFICATE} B per certificate: ${result.target.met ? 'met' : 'NOT met'} (${p256?.certificateRecordBytes ?? '?'} B)`,
    );

    const storeTable = [
        '| objects (200 B) | put/s (64 in flight) | disk MiB (indexes) | MiB per 10⁶ | reopen s (indexes) | CPU s | reopen s (scan) | CPU s | get p50 ms | get p99 ms |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
        ...objectStore.map(
            (f) =>
                `| ${f.objects.toLocaleString('en-US')} | ${f.putsPerSecond} | ${f.diskMiB} (${f.indexMiB}) | ${f.mibPerMillionObjects} | ${f.openSeconds} | ${f.openCpuSeconds} | ${f.scanOpenSeconds} | ${f.scanOpenCpuSeconds} | ${f.getP50Ms} | ${f.getP99Ms} |`,
        ),
    ].join('\n');
    console.log(storeTable);
    console.log(`packed store: ${largest.mibPerMillionObjects} MiB per 10⁶ objects of 200 B (target < 400)`);
    for (const f of objectStore) {
        console.log(
            `packed store reopen at ${f.objects.toLocaleString('en-US')}: ${f.openSeconds} s (CPU ${f.openCpuSeconds} s) from segment indexes, ${f.scanOpenSeconds} s (CPU ${f.scanOpenCpuSeconds} s) by scan (median of 3)`,
        );
    }

    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'storage.json'), `${JSON.stringify(result, null, 4)}\n`);
    writeFileSync(
        join(out, 'storage.md'),
        `# Storage per certificate and per session\n\n${result.method}.\n\n${table}\n\nP-256 target ≤ ${TARGET_P256_BYTES_PER_CERTIFICATE} B per certificate: ${result.target.met ? 'met' : 'not met'}.\n\n` +
            `## Packed embedded object store\n\n\`npm run bench -- storage${quick ? ' --quick' : ''}\`, ${result.date}: puts with 64 in flight (each acknowledged after its group's fdatasync), disk = \`du -sk\` of the store, reopen = median of 3 opens (wall, and the CPU seconds of the process meanwhile), from the segment indexes written when the segments were sealed, and by scan (index files moved away: every entry read and hashed, as after a crash), gets of uniformly random objects one at a time (CID verified), 5,000 after 1,000 warm-up. Load average at the end (1, 5, 15 min): ${loadAverage.join(', ')} on ${cpus().length} cores.\n\n${storeTable}\n`,
    );
}
