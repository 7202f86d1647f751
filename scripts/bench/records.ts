/**
 * `npm run bench -- records [--quick] [--out DIR]`: communication records on the embedded
 * defaults (BatchTimeout 2 s, MAJORITY of three organisations, fsync on): signed records
 * ingested (verified, payload stored under its CID in the embedded store, journaled with group
 * fsync, acknowledged), batched and anchored by the CSP's RecordBatcher, for payloads of 256 B and
 * 4 KiB and batch sizes 100 / 1,000 / 10,000. Reports records anchored per second (first ingest to
 * last anchor), ingest-to-anchored latency p50/p99, a loss check (every acknowledged record under
 * the ledger's final head), the ledger bytes per record (world state, and the anchoring blocks),
 * receipt verifications per second on one core (cold: a fresh verifier per receipt; warm: one
 * verifier, block checked once) and the embedded store's disk use for 200-byte objects.
 * `--quick` runs small sizes and writes to bench/results/quick/ instead of the tracked results.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { contracts } from '@m2m-fabric/chaincode';
import {
    ANCHOR_VALUE_BYTES,
    CSP_WRITER,
    EncryptionType,
    P256_SHA256,
    PartyRole,
    RecordSigner,
    RecordType,
    anchorHeadKey,
    anchorKey,
    encodePoint,
    encodeRecord,
    encodeSealedPayload,
    payloadDigest,
    sealRecordPayload,
    hpkeRecipientFromScalar,
    randomScalar,
    toHex,
} from '@m2m-fabric/protocol';
import { EmbeddedLedger } from '@m2m-fabric/embedded-ledger';
import { RecordBatcher, RecordEnvelopes } from '@m2m-fabric/services';
import {
    EmbeddedObjectStore,
    ReceiptVerifier,
    buildReceipt,
    encodeReceipt,
    fetchBlockByTxId,
    type AnchoredBatch,
    type ChannelTrust,
} from '@m2m-fabric/sdk';

import { UsageError } from './usage.js';

const suite = P256_SHA256;
const ORGANISATIONS = ['CSPMSP', 'FogAMSP', 'ManufacturerMSP'];

interface RunResult {
    payloadBytes: number;
    /** Each record's payload also sealed (envelope encryption, RecordEnvelopes) before its acknowledgement. */
    envelopes: boolean;
    batchSize: number;
    records: number;
    anchoredPerSecond: number;
    latencyP50Ms: number;
    latencyP99Ms: number;
    acknowledged: number;
    lost: number;
    batches: number;
    stateBytesPerRecord: number;
    blockBytesPerRecord: number;
}

function percentile(sorted: number[], p: number): number {
    if (sorted.length === 0) return 0;
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function runOne(
    payloadBytes: number,
    batchSize: number,
    records: number,
    withEnvelopes = false,
): Promise<{ result: RunResult; receipts: Uint8Array[]; trust: ChannelTrust }> {
    const dir = mkdtempSync(join(tmpdir(), 'm2m-bench-records-'));
    const ledger = await EmbeddedLedger.open({
        dataDir: join(dir, 'ledger'),
        organisations: ORGANISATIONS,
        chaincodes: [{ name: 'm2m', contracts }],
    });
    try {
        const enrolment = await ledger.loadOrEnrol('CSPMSP', 'csp', { attributes: { 'm2m.role': 'csp' } });
        const connection = await ledger.connect({ identity: enrolment.identity, signer: enrolment.signer });
        const d = randomScalar(suite);
        await connection
            .getContract('m2m', 'registry')
            .submit('registerCsp', { arguments: [suite.id, toHex(encodePoint(suite, suite.Point.BASE.multiply(d)))] });
        const store = await EmbeddedObjectStore.open(join(dir, 'objects'));
        const anchoredAt: { size: number; at: number; batch: AnchoredBatch }[] = [];
        const batcher = await RecordBatcher.open({
            dir: join(dir, 'journal'),
            writer: { suite, writer: CSP_WRITER, secretKey: d },
            anchors: connection.getContract('m2m', 'anchors'),
            store,
            batchSize,
            maxDelayMs: 2000,
            onAnchored: (batch) => anchoredAt.push({ size: batch.treeSize, at: performance.now(), batch }),
        });
        const envelopes = withEnvelopes
            ? await RecordEnvelopes.open({ dir: join(dir, 'envelopes'), store, suite, signerSecretKey: d })
            : undefined;
        // Records are signed up front: the bench measures ingest, storage and anchoring.
        const device = new RecordSigner(suite, randomScalar(suite));
        const csp = new RecordSigner(suite, d).party(PartyRole.Csp);
        const inputs = Array.from({ length: records }, (_, i) => {
            const payload = randomBytes(payloadBytes);
            const record = device.sign({
                suite,
                type: RecordType.Upload,
                encryption: EncryptionType.SessionChannel,
                sender: device.party(PartyRole.Device),
                receiver: csp,
                sequence: BigInt(i),
                timestamp: BigInt(Date.now()),
                size: payload.length,
                digest: payloadDigest(payload),
            });
            return { record, bytes: encodeRecord(record), payload };
        });
        const ackAt = new Float64Array(records);
        // Ingests run concurrently, so a record's leaf index is the order the journal took it in.
        const recordAt: Uint8Array[] = new Array<Uint8Array>(records);
        const start = performance.now();
        let next = 0;
        const worker = async (): Promise<void> => {
            while (next < records) {
                const i = next++;
                const input = inputs[i]!;
                // With envelopes, as CspRecords does: the payload sealed for the CSP and the device alongside.
                const [{ leafIndex }] = await Promise.all([
                    batcher.ingest(input.bytes, input.payload),
                    envelopes?.seal(input.record, input.bytes, input.payload, input.record.signerKey),
                ]);
                ackAt[leafIndex] = performance.now();
                recordAt[leafIndex] = input.bytes;
            }
        };
        await Promise.all(Array.from({ length: 64 }, worker));
        await batcher.drain();
        const elapsed = (performance.now() - start) / 1000;
        const anchors = connection.getContract('m2m', 'anchors');
        const head = JSON.parse(
            new TextDecoder().decode(await anchors.evaluate('getWriterHead', { arguments: [CSP_WRITER] })),
        ) as { treeSize: number; sequence: number };
        const latencies: number[] = [];
        let batchIndex = 0;
        for (let i = 0; i < records; i++) {
            while (batchIndex < anchoredAt.length && anchoredAt[batchIndex]!.size <= i) batchIndex++;
            const anchored = anchoredAt[batchIndex];
            if (anchored !== undefined) latencies.push(anchored.at - ackAt[i]!);
        }
        latencies.sort((a, b) => a - b);
        // Ledger bytes: each batch's two state entries, and the blocks of the anchoring transactions.
        const stateBytes =
            anchoredAt.length * (anchorKey(CSP_WRITER, 1).length + ANCHOR_VALUE_BYTES) +
            anchorHeadKey(CSP_WRITER).length +
            ANCHOR_VALUE_BYTES;
        let blockBytes = 0;
        const blocks = new Map<bigint, Uint8Array>();
        for (const { batch } of anchoredAt) {
            const block = await fetchBlockByTxId(connection, batch.transactionId);
            blocks.set(batch.blockNumber, block);
        }
        for (const block of blocks.values()) blockBytes += block.length;
        const result: RunResult = {
            payloadBytes,
            envelopes: withEnvelopes,
            batchSize,
            records,
            anchoredPerSecond: Math.round(records / elapsed),
            latencyP50Ms: Math.round(percentile(latencies, 50)),
            latencyP99Ms: Math.round(percentile(latencies, 99)),
            acknowledged: records,
            lost: Math.max(0, records - head.treeSize),
            batches: head.sequence,
            stateBytesPerRecord: Number((stateBytes / records).toFixed(3)),
            blockBytesPerRecord: Number((blockBytes / records).toFixed(3)),
        };
        // Receipts of the first batch, for the verification figure.
        const first = anchoredAt[0]!.batch;
        const block = blocks.get(first.blockNumber)!;
        const receipts = Array.from({ length: Math.min(first.treeSize, 2000) }, (_, leafIndex) =>
            encodeReceipt(
                buildReceipt(
                    {
                        record: recordAt[leafIndex]!,
                        writer: CSP_WRITER,
                        sequence: first.sequence,
                        leafIndex,
                        treeSize: first.treeSize,
                        inclusionProof: batcher.tree.inclusionProof(leafIndex, first.treeSize),
                        root: first.root,
                        transactionId: first.transactionId,
                    },
                    block,
                ),
            ),
        );
        const trust = ledger.channelTrust('m2m');
        await batcher.close();
        await envelopes?.close();
        connection.close();
        return { result, receipts, trust };
    } finally {
        await ledger.close();
        rmSync(dir, { recursive: true, force: true });
    }
}

function verifyRate(trust: ChannelTrust, receipts: Uint8Array[], warm: boolean): number {
    const rounds: number[] = [];
    for (let round = 0; round < 3; round++) {
        const shared = buildVerifier(trust);
        const start = performance.now();
        for (const receipt of receipts) (warm ? shared : buildVerifier(trust)).verifyBytes(receipt);
        rounds.push(receipts.length / ((performance.now() - start) / 1000));
    }
    rounds.sort((a, b) => a - b);
    return Math.round(rounds[1]!);
}

function buildVerifier(trust: ChannelTrust): ReceiptVerifier {
    return new ReceiptVerifier(trust);
}

/**
 * CPU per record of envelope encryption alone (seal for two readers, sign, encode), against the
 * device's record signature measured in the same loop: medians of 3 rounds, microseconds.
 */
async function envelopeCpu(payloadBytes: number, n: number): Promise<{ sealMicros: number; signMicros: number }> {
    const csp = new RecordSigner(suite, randomScalar(suite));
    const device = new RecordSigner(suite, randomScalar(suite));
    const storage = await hpkeRecipientFromScalar(suite, randomScalar(suite));
    const readers = [storage.publicKey, encodePoint(suite, device.publicKey)];
    const payload = randomBytes(payloadBytes);
    const seal: number[] = [];
    const sign: number[] = [];
    for (let round = 0; round < 3; round++) {
        let t = performance.now();
        const records: Uint8Array[] = [];
        for (let i = 0; i < n; i++) {
            records.push(
                encodeRecord(
                    device.sign({
                        suite,
                        type: RecordType.Upload,
                        encryption: EncryptionType.SessionChannel,
                        sender: device.party(PartyRole.Device),
                        receiver: csp.party(PartyRole.Csp),
                        sequence: BigInt(i),
                        timestamp: BigInt(Date.now()),
                        size: payload.length,
                        digest: payloadDigest(payload),
                    }),
                ),
            );
        }
        sign.push(((performance.now() - t) * 1000) / n);
        t = performance.now();
        for (const record of records) encodeSealedPayload(await sealRecordPayload(csp, record, payload, readers));
        seal.push(((performance.now() - t) * 1000) / n);
    }
    const median = (v: number[]): number => Number([...v].sort((a, b) => a - b)[1]!.toFixed(1));
    return { sealMicros: median(seal), signMicros: median(sign) };
}

async function storeMiBPerMillion(objects: number): Promise<{ objects: number; mibPerMillion: number }> {
    const dir = mkdtempSync(join(tmpdir(), 'm2m-bench-store-'));
    try {
        const store = await EmbeddedObjectStore.open(dir);
        for (let i = 0; i < objects; i += 500) {
            await store.putMany(Array.from({ length: Math.min(500, objects - i) }, () => randomBytes(200)));
        }
        // Closed first: the close seals the segments, and their index files count too.
        await store.close();
        const kib = Number(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0]);
        return { objects, mibPerMillion: Number(((kib / 1024) * (1_000_000 / objects)).toFixed(1)) };
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

export async function runRecordsBench(args: string[]): Promise<void> {
    let quick = false;
    let out = 'bench/results';
    for (let i = 0; i < args.length; i++) {
        if (args[i] === '--quick') quick = true;
        else if (args[i] === '--out' && args[i + 1] !== undefined) out = args[++i]!;
        else throw new UsageError(`unknown argument ${args[i]}`);
    }
    if (quick && out === 'bench/results') out = 'bench/results/quick';
    const batchSizes = quick ? [100, 1000] : [100, 1000, 10_000];
    const payloads = quick ? [256] : [256, 4096];
    const runs: RunResult[] = [];
    const envelopeRuns: RunResult[] = [];
    let receiptFigures = { cold: 0, warm: 0, receipts: 0 };
    for (const payloadBytes of payloads) {
        for (const batchSize of batchSizes) {
            const records = quick ? batchSize * 2 : Math.max(batchSize * 3, 3000);
            const { result, receipts, trust } = await runOne(payloadBytes, batchSize, records);
            runs.push(result);
            console.log(JSON.stringify(result));
            if (batchSize === 1000 && payloadBytes === 256) {
                receiptFigures = {
                    cold: verifyRate(trust, receipts.slice(0, 300), false),
                    warm: verifyRate(trust, receipts, true),
                    receipts: receipts.length,
                };
                console.log(JSON.stringify({ receiptVerifyPerSecond: receiptFigures }));
                // The same configuration with envelope encryption on, right after (same machine state).
                const sealed = (await runOne(payloadBytes, batchSize, records, true)).result;
                envelopeRuns.push(sealed);
                console.log(JSON.stringify(sealed));
            }
        }
    }
    const envelopeCpuFigures = await envelopeCpu(256, quick ? 500 : 3000);
    console.log(JSON.stringify({ envelopeCpu: envelopeCpuFigures }));
    const storeObjects = quick ? 2000 : 20_000;
    const store = await storeMiBPerMillion(storeObjects);
    const best = Math.max(...runs.map((r) => r.anchoredPerSecond));
    const at1000 = runs.find((r) => r.batchSize === 1000 && r.payloadBytes === 256)!;
    const summary = {
        bench: 'records',
        date: new Date().toISOString(),
        quick,
        anchoredPerSecond: best,
        lost: runs.reduce((sum, r) => sum + r.lost, 0),
        acknowledged: runs.reduce((sum, r) => sum + r.acknowledged, 0),
        receiptVerifyPerSecond: receiptFigures.warm,
        receiptVerifyColdPerSecond: receiptFigures.cold,
        onChainBytesPerRecord: at1000.stateBytesPerRecord,
        blockBytesPerRecordAt1000: at1000.blockBytesPerRecord,
        storeMiBPerMillionObjects: store.mibPerMillion,
        storeObjectsMeasured: store.objects,
        storeLayout: 'packed embedded store (append-only segments; npm run bench -- storage measures 10⁴-10⁶)',
        envelopeAnchoredPerSecondAt1000: envelopeRuns[0]?.anchoredPerSecond,
        envelopeSealMicrosPerRecord: envelopeCpuFigures.sealMicros,
        recordSignMicrosPerRecord: envelopeCpuFigures.signMicros,
        runs,
        envelopeRuns,
    };
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'records.json'), `${JSON.stringify(summary, null, 4)}\n`);
    const rows = runs.map(
        (r) =>
            `| ${r.payloadBytes} | ${r.batchSize} | ${r.records} | ${r.anchoredPerSecond} | ${r.latencyP50Ms} | ${r.latencyP99Ms} | ${r.lost} | ${r.batches} | ${r.stateBytesPerRecord} | ${r.blockBytesPerRecord} |`,
    );
    writeFileSync(
        join(out, 'records.md'),
        [
            '# records bench',
            '',
            `\`npm run bench -- records${quick ? ' --quick' : ''}\`, ${summary.date}; embedded defaults (BatchTimeout 2 s, MAJORITY of 3 organisations, fsync on), one writer (the CSP), 64 concurrent ingests.`,
            '',
            '| payload B | batch | records | anchored/s | ingest→anchored p50 ms | p99 ms | lost | batches | state B/record | block B/record |',
            '|---|---|---|---|---|---|---|---|---|---|',
            ...rows,
            '',
            `Loss check: ${summary.acknowledged} records acknowledged, ${summary.lost} not under the ledger's final head.`,
            '',
            `Receipt verification, one core: warm ${receiptFigures.warm}/s — one verifier for a batch of receipts, which caches a verified block header (and its anchoring transaction's endorsements) by hash: the block's orderer signature and endorsements are checked once, each receipt's data hash, record signature (OpenSSL ECDSA) and Merkle path every time; cold ${receiptFigures.cold}/s — a new verifier per receipt, no cache: every certificate and signature checked. ${receiptFigures.receipts} receipts of one batch, median of 3. The target (≥ 5,000/s) is claimed for the warm figure, what an auditor checking a batch of receipts sees.`,
            '',
            `Envelope encryption (each payload also sealed for the CSP storage key and the device, signed by the CSP, stored and indexed before the acknowledgement), 256 B, batch 1,000, run right after the plain one: ${envelopeRuns.map((r) => `${r.anchoredPerSecond}/s anchored (p50 ${r.latencyP50Ms} ms, lost ${r.lost})`).join(', ')} vs ${at1000.anchoredPerSecond}/s without. CPU alone: ${envelopeCpuFigures.sealMicros} µs per sealed payload (HPKE wrap ×2, AES-256-GCM, ECDSA sign) against ${envelopeCpuFigures.signMicros} µs for the device's record signature, median of 3 rounds.`,
            '',
            `Store: ${store.mibPerMillion} MiB per million 200-byte objects in the embedded blockstore (measured with ${store.objects} objects, du -sk, extrapolated); ${summary.storeLayout}.`,
            '',
        ].join('\n'),
    );
}
