/**
 * The console in a real browser: Debian's chromium, headless, driven by playwright-core (no browser
 * download), against a console over a running embedded deployment after a demo run. Skipped, with
 * the reason, when /usr/bin/chromium is absent (`apt-get install chromium`; .ci/run installs it).
 * With M2M_CONSOLE_SCREENSHOTS=DIR each view is saved there as a PNG (docs/images/ in the repo).
 */
import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodePoint, getSuite, randomScalar, toHex } from '@m2m-fabric/protocol';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startEmbeddedConsole, type EmbeddedConsole } from '@m2m-fabric/console';
import { networkOrganisations, runDemo, MANUFACTURER_MSP } from '@m2m-fabric/cli';
import { tempDir } from '../services/helpers/temp-dir.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SKIP = existsSync(CHROMIUM) ? false : `chromium not installed at ${CHROMIUM} (apt-get install -y chromium)`;
const OTHER_MAKER = 'OtherMakerMSP';
const SHOTS = process.env.M2M_CONSOLE_SCREENSHOTS;
// A second manufacturer org, known to the chaincode's access policy (read when the contracts load).
process.env.M2M_MANUFACTURER_MSPS = `${MANUFACTURER_MSP},${OTHER_MAKER}`;

async function shot(page: Page, name: string): Promise<void> {
    if (SHOTS === undefined || SHOTS === '') return;
    await mkdir(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `console-${name}.png`), fullPage: true });
}

async function open(context: BrowserContext, console: EmbeddedConsole, mspId: string, hash: string): Promise<Page> {
    const login = console.logins.find((l) => l.mspId === mspId);
    assert.ok(login, `a login for ${mspId}`);
    const page = await context.newPage();
    await page.goto(login.url);
    await page.waitForSelector('#live.on', { timeout: 10_000 });
    await page.goto(`${new URL(login.url).origin}/#/${hash}`);
    return page;
}

void test('console views in chromium after a demo run', { skip: SKIP, timeout: 180_000 }, async () => {
    const dataDir = await tempDir('m2m-console-');
    const userDataDir = await tempDir('m2m-chromium-');
    await runDemo({
        dataDir,
        devices: 3,
        sessions: 2,
        fogs: 2,
        batchTimeoutMs: 100,
        extraOrganisations: [OTHER_MAKER],
        print: () => undefined,
        attach: async (net) => {
            const served = await startEmbeddedConsole(net, {
                manufacturers: [OTHER_MAKER],
                organisations: networkOrganisations(net),
            });
            return {
                close: () => served.close(),
                hold: async (summary) => {
                    assert.equal(summary.established, 6);
                    // History: a decommissioning and a replacement; two more prepaid sessions for dev-0002.
                    await net.manufacturer.decommission('dev-0003');
                    await net.csp.grantCredit(MANUFACTURER_MSP, 2);
                    await net.manufacturer.buySessions('dev-0002', 2);
                    const suite = getSuite('P256-SHA256');
                    await net.manufacturer.replaceEquipment('dev-0002', {
                        equipmentId: 'dev-0004',
                        kind: 'sensor',
                        model: 'rpi-5',
                        fogGroup: 'fog-2',
                        publicKey: toHex(encodePoint(suite, suite.Point.BASE.multiply(randomScalar(suite)))),
                        privilegeLevel: 1,
                        serviceType: 'upload-download',
                        accessTime: 'always',
                    });
                    const context = await chromium.launchPersistentContext(userDataDir, {
                        executablePath: CHROMIUM,
                        headless: true,
                        args: [
                            '--no-sandbox',
                            '--disable-gpu',
                            '--disable-quic',
                            '--no-first-run',
                            '--disable-background-networking',
                            '--disable-component-update',
                            '--disable-sync',
                        ],
                        viewport: { width: 1200, height: 800 },
                    });
                    try {
                        // Equipment: the manufacturer's three machines.
                        let page = await open(context, served, MANUFACTURER_MSP, 'equipment');
                        await page.waitForSelector('#equipment-table tbody tr[data-id="dev-0004"]');
                        assert.equal(await page.locator('#equipment-table tbody tr').count(), 4);
                        assert.match((await page.locator('tr[data-id="dev-0002"]').textContent()) ?? '', /replaced/);
                        assert.match(
                            (await page.locator('tr[data-id="dev-0003"]').textContent()) ?? '',
                            /decommissioned/,
                        );
                        await shot(page, 'equipment');

                        // One machine: remaining prepaid sessions and its history.
                        await page.goto(`${new URL(served.url).origin}/#/equipment/dev-0002`);
                        await page.waitForSelector('#history-table tbody tr');
                        assert.equal(await page.locator('#remaining').textContent(), '2');
                        assert.match(
                            (await page.locator('#certificates').textContent()) ?? '',
                            /bought 4:\s*unused 2,\s*used\s*2/,
                        );
                        assert.equal(await page.locator('#history-table tbody tr').count(), 2);
                        assert.match(
                            (await page.locator('#history-table').textContent()) ?? '',
                            /replaced by dev-0004/,
                        );
                        await shot(page, 'equipment-detail');
                        await page.goto(`${new URL(served.url).origin}/#/equipment/dev-0003`);
                        // The previous machine's page is still on screen until this one renders.
                        await page.waitForSelector('[data-view="equipment"] h2:text-is("dev-0003")');
                        assert.equal(await page.locator('#remaining').textContent(), '0');
                        assert.match((await page.locator('#history-table').textContent()) ?? '', /decommissioned/);

                        // Another manufacturer cannot open it: the chaincode's refusal shows in the page.
                        const other = await open(context, served, OTHER_MAKER, 'equipment/dev-0001');
                        await other.waitForSelector('.error[data-error="unauthorisedMsp"]');
                        assert.equal(await other.locator('#equipment-record').count(), 0);
                        await other.goto(`${new URL(served.url).origin}/#/equipment`);
                        await other.waitForSelector('[data-view="equipment"] #equipment-table');
                        const otherView = (await other.locator('[data-view="equipment"]').textContent()) ?? '';
                        assert.doesNotMatch(otherView, /dev-000/, otherView);
                        assert.equal(await other.locator('#equipment-table tbody tr').count(), 0, otherView);
                        await other.close();

                        // Certificates and sessions (as the CSP): activations per fog, outcomes.
                        page = await open(context, served, 'CSPMSP', 'sessions');
                        await page.waitForSelector('#fog-sessions-table tbody tr');
                        const fogs = (await page.locator('#fog-sessions-table tbody').textContent()) ?? '';
                        assert.match(fogs, /fog-1/);
                        assert.match(fogs, /fog-2/);
                        assert.match(
                            (await page.locator('#issued-table').textContent()) ?? '',
                            /ManufacturerMSP\s*8\s*8\s*3/,
                        );
                        await page.waitForSelector('#outcomes-table tbody tr');
                        await page.waitForSelector('#activations-chart svg');
                        await shot(page, 'sessions');

                        // Ledger: blocks with codes and endorsers; a new block appears live.
                        await page.goto(`${new URL(served.url).origin}/#/ledger`);
                        await page.waitForSelector('#blocks-table tbody tr');
                        const height = Number(await page.locator('#height').textContent());
                        assert.ok(height > 5);
                        assert.match((await page.locator('#blocks-table').textContent()) ?? '', /VALID/);
                        await shot(page, 'ledger');
                        const committed = net.csp.grantCredit(MANUFACTURER_MSP, 1);
                        await committed;
                        const newBlock = Number(net.ledger.height) - 1;
                        // Functional deadline: the block is pushed by the event stream, not polled.
                        await page.waitForSelector(`#blocks-table tr[data-block="${newBlock}"]`, { timeout: 2000 });

                        // Fogs and CSP: health, outbox depth, latency histogram.
                        await page.goto(`${new URL(served.url).origin}/#/services`);
                        await page.waitForSelector('[data-service="fog-2"] svg');
                        assert.equal(await page.locator('#services .card').count(), 3);
                        assert.match((await page.locator('[data-service="fog-1"]').textContent()) ?? '', /Health\s*ok/);
                        await shot(page, 'services');

                        // Records: the demo's CSP journal, its anchored batches and one batch's records.
                        await page.goto(`${new URL(served.url).origin}/#/records`);
                        await page.waitForSelector('#writers-table tr[data-writer="csp"]');
                        await page.waitForSelector('#batches-table tbody tr[data-batch="1"]');
                        assert.ok((await page.locator('#batches-table tbody tr').count()) >= 1);
                        await page.goto(`${new URL(served.url).origin}/#/records/csp/1`);
                        await page.waitForSelector('#records-table tbody tr');
                        assert.match((await page.locator('#records-table').textContent()) ?? '', /device/);

                        // A manufacturer has no services view.
                        const maker = await open(context, served, MANUFACTURER_MSP, 'services');
                        await maker.waitForSelector('.error[data-error="unauthorisedMsp"]');
                        await maker.close();
                    } finally {
                        await context.close();
                    }
                },
            };
        },
    });
});
