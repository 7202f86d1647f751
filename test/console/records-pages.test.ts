/**
 * The console's records API is paginated bookmark style with a bounded page, like the anchors
 * contract's listAnchors and the materials trace: a writer's batches 25 at a time (bookmark = the
 * last sequence shown), a batch's records 50 at a time (bookmark = the leaf the next page starts
 * at). Walking the bookmarks yields every batch and every record exactly once; a bookmark that is not
 * a leaf of the batch is malformedInput.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { test } from 'node:test';
import {
    CSP_WRITER,
    EncryptionType,
    PartyRole,
    RecordSigner,
    RecordType,
    encodeRecord,
    payloadDigest,
    randomScalar,
} from '@m2m-fabric/protocol';
import { BATCH_PAGE, RECORD_PAGE, startEmbeddedConsole, type EmbeddedConsole } from '@m2m-fabric/console';
import { EmbeddedNetwork, networkOrganisations } from '@m2m-fabric/cli';
import { DEFAULT_CHAINCODE_NAME } from '@m2m-fabric/sdk';
import { RecordBatcher, loadOrCreateServiceKey } from '@m2m-fabric/services';
import { tempDir } from '../services/helpers/temp-dir.js';

void test('records API: bounded pages, bookmarks walk every batch and every record', { timeout: 180_000 }, async () => {
    const dataDir = await tempDir('m2m-console-pages-');
    const net = new EmbeddedNetwork({ dataDir, fogs: 1, batchTimeoutMs: 20 });
    await net.start();
    let served: EmbeddedConsole | undefined;
    let batcher: RecordBatcher | undefined;
    try {
        const suite = net.suite;
        const cspKey = await loadOrCreateServiceKey(join(dataDir, 'keys', 'csp.json'), suite);
        const writerId = await net.ledger.loadOrEnrol('CSPMSP', 'records-writer', {
            attributes: { 'm2m.role': 'csp' },
        });
        const anchors = (
            await net.ledger.connect({ identity: writerId.identity, signer: writerId.signer })
        ).getContract(DEFAULT_CHAINCODE_NAME, 'anchors');
        const journal = join(dataDir, 'records', 'csp');
        const device = new RecordSigner(suite, randomScalar(suite));
        const csp = new RecordSigner(suite, cspKey.privateKey);
        let sequence = 0;
        const ingest = async (b: RecordBatcher, n: number): Promise<void> => {
            for (let k = 0; k < n; k++, sequence++) {
                const payload = new TextEncoder().encode(`reading ${sequence}`);
                await b.ingest(
                    encodeRecord(
                        device.sign({
                            suite,
                            type: RecordType.Upload,
                            encryption: EncryptionType.SessionChannel,
                            sender: device.party(PartyRole.Device),
                            receiver: csp.party(PartyRole.Csp),
                            sequence: BigInt(sequence),
                            timestamp: BigInt(Date.now()),
                            size: payload.length,
                            digest: payloadDigest(payload),
                        }),
                    ),
                );
            }
            await b.drain();
        };
        const writer = { suite, writer: CSP_WRITER, secretKey: cspKey.privateKey };
        // Batch 1: 60 records (more than a page of records); then 25 batches of one record, so the
        // writer has 26 batches (more than a page of batches).
        batcher = await RecordBatcher.open({ dir: journal, writer, anchors, batchSize: 60, maxDelayMs: 60_000 });
        await ingest(batcher, 60);
        await batcher.close();
        batcher = await RecordBatcher.open({ dir: journal, writer, anchors, batchSize: 1, maxDelayMs: 60_000 });
        await ingest(batcher, 25);

        const console = await startEmbeddedConsole(net, {
            organisations: networkOrganisations(net),
            recordLogs: [{ writer: CSP_WRITER, dir: journal, mspId: 'CSPMSP' }],
        });
        served = console;
        const token = new URL(console.logins.find((l) => l.mspId === 'CSPMSP')!.url).searchParams.get('token')!;
        const get = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
            const res = await fetch(`${console.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
            return { status: res.status, body: (await res.json()) as Record<string, unknown> };
        };

        // A writer's batches.
        const batches: number[] = [];
        let bookmark = '';
        let pages = 0;
        do {
            const page = await get(`/api/records/csp?${new URLSearchParams({ bookmark }).toString()}`);
            assert.equal(page.status, 200);
            const anchorsShown = page.body.anchors as { sequence: number }[];
            assert.ok(anchorsShown.length <= BATCH_PAGE && anchorsShown.length > 0);
            batches.push(...anchorsShown.map((a) => a.sequence));
            bookmark = page.body.bookmark as string;
            pages++;
        } while (bookmark !== '' && pages < 10);
        assert.equal(pages, 2);
        assert.deepEqual(
            batches,
            Array.from({ length: 26 }, (_, k) => k + 1),
        );

        // A batch's records.
        const leaves: number[] = [];
        bookmark = '';
        pages = 0;
        do {
            const page = await get(`/api/records/csp/1?${new URLSearchParams({ bookmark }).toString()}`);
            assert.equal(page.status, 200);
            assert.equal(page.body.pageSize, RECORD_PAGE);
            const records = page.body.records as { leafIndex: number; sequence: string }[];
            assert.ok(records.length <= RECORD_PAGE && records.length > 0);
            leaves.push(...records.map((r) => r.leafIndex));
            bookmark = page.body.bookmark as string;
            pages++;
        } while (bookmark !== '' && pages < 10);
        assert.equal(pages, 2);
        assert.deepEqual(
            leaves,
            Array.from({ length: 60 }, (_, k) => k),
        );
        const single = await get('/api/records/csp/2');
        assert.deepEqual(
            (single.body.records as { leafIndex: number }[]).map((r) => r.leafIndex),
            [60],
        );
        assert.equal(single.body.bookmark, '');

        // Bookmarks that are not a leaf of the batch.
        for (const [path, bad] of [
            ['/api/records/csp/1', 'x'],
            ['/api/records/csp/1', '-1'],
            ['/api/records/csp/1', '1e1'],
            ['/api/records/csp/1', '60'],
            ['/api/records/csp/2', '59'],
            ['/api/records/csp/2', '61'],
        ] as const) {
            const page = await get(`${path}?${new URLSearchParams({ bookmark: bad }).toString()}`);
            assert.equal(page.status, 400, `${path} bookmark ${bad}`);
            assert.equal(page.body.error, 'malformedInput');
        }
        // A malformed batch bookmark is refused by the contract.
        const badBatches = await get('/api/records/csp?bookmark=abc');
        assert.equal(badBatches.body.error, 'malformedInput');
    } finally {
        await served?.close();
        await batcher?.close();
        await net.close();
    }
});
