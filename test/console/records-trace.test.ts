/**
 * The records and traceability views in a real browser (Debian's chromium, headless, through
 * playwright-core) over a running embedded deployment: a mill's carding machine turns two bales
 * into sliver and splits it into yarn (materials contract), and the CSP's record batcher anchors
 * seven signed communication records in two batches (anchors contract). The records view lists
 * the writer's batches and a batch's records; a receipt picked with the file input verifies, the
 * same receipt with one flipped bit dropped on the page is rejected with receiptInvalid; a
 * manufacturer sees the batches but not the CSP's records. The traceability view shows the
 * backward and forward graph and the machine's lots in a window, for any member (lots are shared
 * by design). Skipped, with the reason, when /usr/bin/chromium is absent.
 */
import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
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
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startEmbeddedConsole, type EmbeddedConsole } from '@m2m-fabric/console';
import { EmbeddedNetwork, MANUFACTURER_MSP, networkOrganisations } from '@m2m-fabric/cli';
import {
    DEFAULT_CHAINCODE_NAME,
    MaterialsClient,
    buildReceipt,
    encodeReceipt,
    fetchBlockByTxId,
    type AnchoredBatch,
} from '@m2m-fabric/sdk';
import { RecordBatcher, loadOrCreateServiceKey } from '@m2m-fabric/services';
import { tempDir } from '../services/helpers/temp-dir.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SKIP = existsSync(CHROMIUM) ? false : `chromium not installed at ${CHROMIUM} (apt-get install -y chromium)`;
const OTHER_MAKER = 'OtherMakerMSP';
const SHOTS = process.env.M2M_CONSOLE_SCREENSHOTS;
process.env.M2M_MANUFACTURER_MSPS = `${MANUFACTURER_MSP},${OTHER_MAKER}`;

async function shot(page: Page, name: string): Promise<void> {
    if (SHOTS === undefined || SHOTS === '') return;
    await mkdir(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `console-${name}.png`), fullPage: true });
}

/** Drops a file on the page's receipt drop zone, as a user dragging it from the desktop does. */
async function drop(page: Page, name: string, bytes: Uint8Array): Promise<void> {
    // A string: the test is compiled without the DOM library; this runs in the page.
    await page.evaluate(`(() => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(${JSON.stringify([...bytes])})], ${JSON.stringify(name)}));
        document.getElementById('receipt-drop')
            .dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    })()`);
}

async function open(context: BrowserContext, served: EmbeddedConsole, mspId: string, hash: string): Promise<Page> {
    const login = served.logins.find((l) => l.mspId === mspId);
    assert.ok(login, `a login for ${mspId}`);
    const page = await context.newPage();
    await page.goto(login.url);
    await page.waitForSelector('#live.on', { timeout: 10_000 });
    await page.goto(`${new URL(login.url).origin}/#/${hash}`);
    return page;
}

void test('records and traceability views in chromium', { skip: SKIP, timeout: 180_000 }, async () => {
    const dataDir = await tempDir('m2m-console-rt-');
    const net = new EmbeddedNetwork({ dataDir, fogs: 1, batchTimeoutMs: 50, extraOrganisations: [OTHER_MAKER] });
    await net.start();
    const suite = net.suite;
    let served: EmbeddedConsole | undefined;
    let batcher: RecordBatcher | undefined;
    let context: BrowserContext | undefined;
    try {
        // Materials: two bales carded into sliver, the sliver split into two yarn lots.
        await net.manufacturer.registerEquipment({
            equipmentId: 'carder-1',
            kind: 'carding machine',
            model: 'C70',
            fogGroup: 'fog-1',
            privilegeLevel: 1,
            serviceType: 'upload-download',
            accessTime: 'always',
        });
        const mill = await net.ledger.loadOrEnrol(MANUFACTURER_MSP, 'mill', {
            attributes: { 'm2m.role': 'manufacturer' },
        });
        const materials = new MaterialsClient(
            await net.ledger.connect({ identity: mill.identity, signer: mill.signer }),
        );
        for (const lotId of ['bale-1', 'bale-2'])
            await materials.registerLot({ lotId, kind: 'cotton bale', quantity: 1000, unit: 'g', origin: 'farm-7' });
        await materials.recordTransformation({
            transformationId: 't-card-1',
            kind: 'merge',
            equipmentId: 'carder-1',
            step: 'carding',
            inputs: [
                { lotId: 'bale-1', quantity: 600 },
                { lotId: 'bale-2', quantity: 400 },
            ],
            outputs: [{ lotId: 'sliver-1', kind: 'sliver', quantity: 1000, unit: 'g' }],
            parameters: { speed: '120' },
            qualityRefs: [],
        });
        await materials.recordTransformation({
            transformationId: 't-split-1',
            kind: 'split',
            equipmentId: 'carder-1',
            step: 'lap splitting',
            inputs: [{ lotId: 'sliver-1', quantity: 1000 }],
            outputs: [
                { lotId: 'yarn-1', kind: 'yarn', quantity: 500, unit: 'g' },
                { lotId: 'yarn-2', kind: 'yarn', quantity: 500, unit: 'g' },
            ],
            parameters: {},
            qualityRefs: [],
        });

        // Records: the CSP's batcher anchors seven device uploads in two batches (5 by size, 2 by time).
        const cspKey = await loadOrCreateServiceKey(join(dataDir, 'keys', 'csp.json'), suite);
        const writerId = await net.ledger.loadOrEnrol('CSPMSP', 'records-writer', {
            attributes: { 'm2m.role': 'csp' },
        });
        const cspConnection = await net.ledger.connect({ identity: writerId.identity, signer: writerId.signer });
        const batches: AnchoredBatch[] = [];
        const journal = join(dataDir, 'records', 'csp');
        batcher = await RecordBatcher.open({
            dir: journal,
            writer: { suite, writer: CSP_WRITER, secretKey: cspKey.privateKey },
            anchors: cspConnection.getContract(DEFAULT_CHAINCODE_NAME, 'anchors'),
            batchSize: 5,
            maxDelayMs: 60_000,
            onAnchored: (b) => batches.push(b),
        });
        const device = new RecordSigner(suite, randomScalar(suite));
        const csp = new RecordSigner(suite, cspKey.privateKey);
        const records: Uint8Array[] = [];
        for (let i = 0; i < 7; i++) {
            const payload = new TextEncoder().encode(`reading ${i}`);
            const record = encodeRecord(
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
            );
            records.push(record);
            await batcher.ingest(record);
        }
        await batcher.drain();
        assert.deepEqual(
            batches.map((b) => b.treeSize),
            [5, 7],
        );
        // The receipt of leaf 1 (batch 1), as the CSP hands it to the device, and a copy with one bit flipped.
        const first = batches[0]!;
        const receipt = encodeReceipt(
            buildReceipt(
                {
                    record: records[1]!,
                    writer: CSP_WRITER,
                    sequence: first.sequence,
                    leafIndex: 1,
                    treeSize: first.treeSize,
                    inclusionProof: batcher.tree.inclusionProof(1, first.treeSize),
                    root: first.root,
                    transactionId: first.transactionId,
                },
                await fetchBlockByTxId(cspConnection, first.transactionId),
            ),
        );
        const goodPath = join(dataDir, 'good.receipt');
        const badPath = join(dataDir, 'bad.receipt');
        await writeFile(goodPath, receipt);
        const bad = Uint8Array.from(receipt);
        bad[Math.floor(bad.length / 2)]! ^= 0x08;
        await writeFile(badPath, bad);

        served = await startEmbeddedConsole(net, {
            organisations: networkOrganisations(net),
            manufacturers: [OTHER_MAKER],
            recordLogs: [{ writer: CSP_WRITER, dir: journal, mspId: 'CSPMSP' }],
        });
        context = await chromium.launchPersistentContext(await tempDir('m2m-chromium-'), {
            executablePath: CHROMIUM,
            headless: true,
            args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
            viewport: { width: 1200, height: 800 },
        });
        const origin = new URL(served.url).origin;

        // Records as the CSP: its writer, two batches, the five records of batch 1.
        const page = await open(context, served, 'CSPMSP', 'records');
        await page.waitForSelector('#batches-table tbody tr[data-batch="2"]');
        assert.match((await page.locator('#writers-table tr[data-writer="csp"]').textContent()) ?? '', /csp\s*2\s*7/);
        assert.equal(await page.locator('#batches-table tbody tr').count(), 2);

        // A good receipt through the file picker is valid; one flipped bit dropped on the page is not.
        await page.setInputFiles('#receipt-file', goodPath);
        await page.waitForSelector('.verdict[data-valid="true"]');
        assert.match((await page.locator('.verdict').textContent()) ?? '', /leaf\s*1\s*of batch 1 of csp/);
        await drop(page, 'bad.receipt', await readFile(badPath));
        await page.waitForSelector('.verdict[data-valid="false"][data-error="receiptInvalid"]');
        assert.match((await page.locator('.verdict').textContent()) ?? '', /receiptInvalid/);
        await shot(page, 'records');
        // Dropping the good one again is accepted.
        await drop(page, 'good.receipt', receipt);
        await page.waitForSelector('.verdict[data-valid="true"]');

        await page.goto(`${origin}/#/records/csp/1`);
        await page.waitForSelector('#records-table tbody tr');
        assert.equal(await page.locator('#records-table tbody tr').count(), 5);
        assert.match((await page.locator('#records-table tr[data-leaf="4"]').textContent()) ?? '', /device/);
        await page.goto(`${origin}/#/records/csp/2`);
        await page.waitForSelector('#records-table tbody tr[data-leaf="6"]');
        assert.equal(await page.locator('#records-table tbody tr').count(), 2);
        await shot(page, 'records-batch');

        // A manufacturer sees the anchored batches (channel data) but not the CSP's records.
        const maker = await open(context, served, MANUFACTURER_MSP, 'records');
        await maker.waitForSelector('#batches-table tbody tr[data-batch="1"]');
        assert.match((await maker.locator('#writers-table tr[data-writer="csp"]').textContent()) ?? '', /batches only/);
        await maker.goto(`${origin}/#/records/csp/1`);
        await maker.waitForSelector('.error[data-error="unauthorisedMsp"]');
        assert.equal(await maker.locator('#records-table').count(), 0);
        await maker.close();

        // Traceability: yarn-1 back to both bales, with the machine and step on each edge.
        await page.goto(`${origin}/#/trace?lot=yarn-1&direction=backward`);
        await page.waitForSelector('#trace-table tbody tr');
        assert.equal(await page.locator('#trace-table tbody tr').count(), 2);
        const back = (await page.locator('#trace-table').textContent()) ?? '';
        assert.match(back, /t-card-1/);
        assert.match(back, /bale-1/);
        assert.match(back, /bale-2/);
        await page.waitForSelector('#trace-graph svg');
        assert.match((await page.locator('#trace-graph').textContent()) ?? '', /carder-1 · carding/);
        await shot(page, 'trace');
        // Forward from bale-2 (the recall): the sliver and both yarn lots.
        await page.goto(`${origin}/#/trace?lot=bale-2&direction=forward`);
        await page.waitForSelector('#trace-table tbody tr[data-transformation="t-split-1"]');
        assert.match((await page.locator('#trace-table').textContent()) ?? '', /yarn-2/);
        // What carder-1 processed in the last day.
        const from = new Date(Date.now() - 3_600_000).toISOString().slice(0, 16);
        const until = new Date(Date.now() + 3_600_000).toISOString().slice(0, 16);
        await page.goto(`${origin}/#/trace?machine=carder-1&from=${from}&until=${until}`);
        await page.waitForSelector('#machine-table tbody tr');
        assert.equal(await page.locator('#machine-table tbody tr').count(), 2);
        const lots = (await page.locator('#machine-lots').textContent()) ?? '';
        for (const l of ['bale-1', 'bale-2', 'sliver-1', 'yarn-1', 'yarn-2']) assert.match(lots, new RegExp(l));
        await shot(page, 'trace-machine');
        // An unknown lot is the chaincode's typed error.
        await page.goto(`${origin}/#/trace?lot=no-such-lot&direction=backward`);
        await page.waitForSelector('.error[data-error="unknownLot"]');

        // Lots are shared by design (a recall reaches every party): another manufacturer traces them too.
        const other = await open(context, served, OTHER_MAKER, 'trace?lot=yarn-2&direction=backward');
        await other.waitForSelector('#trace-table tbody tr');
        assert.equal(await other.locator('#trace-table tbody tr').count(), 2);
        await other.close();
    } finally {
        await context?.close();
        await served?.close();
        await batcher?.close();
        await net.close();
    }
});
