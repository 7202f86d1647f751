/**
 * `npm run bench -- console [--devices N] [--runs R] [--out DIR]`: first render of the operator
 * console in Debian's chromium (headless, playwright-core) over an embedded network holding N
 * registered machines (default 10^4). For each view the time from navigation to its table being
 * on screen is measured R times (fresh page each, median reported), next to the same run's
 * baseline: the view's API call alone from Node. Target: first render <= 1 s at 10^4 devices.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startEmbeddedConsole } from '@m2m-fabric/console';
import { EmbeddedNetwork, networkOrganisations } from '@m2m-fabric/cli';
import { UsageError } from './usage.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

interface ViewResult {
    view: string;
    selector: string;
    renderMs: number[];
    renderMedianMs: number;
    apiMs: number[];
    apiMedianMs: number;
}

const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    const m = Math.floor(s.length / 2);
    return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number): number => Math.round(x * 10) / 10;

export async function runConsoleBench(args: string[]): Promise<void> {
    let devices = 10_000;
    let runs = 7;
    let outDir = join('bench', 'results');
    for (let i = 0; i < args.length; i++) {
        const a = args[i];
        const v = args[i + 1];
        if (a === '--devices' && v !== undefined) devices = Number(args[++i]);
        else if (a === '--runs' && v !== undefined) runs = Number(args[++i]);
        else if (a === '--out' && v !== undefined) outDir = args[++i]!;
        else throw new UsageError(`unknown argument ${a}`);
    }
    if (!Number.isInteger(devices) || devices < 1 || devices > 100_000) throw new UsageError('--devices 1..100000');
    if (!Number.isInteger(runs) || runs < 1 || runs > 100) throw new UsageError('--runs 1..100');
    if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM} (apt-get install -y chromium)`);

    const dataDir = await mkdtemp(join(tmpdir(), 'm2m-console-bench-'));
    const profile = await mkdtemp(join(tmpdir(), 'm2m-console-chromium-'));
    const net = new EmbeddedNetwork({ dataDir, fogs: 2, batchTimeoutMs: 50 });
    try {
        await net.start();
        const t0 = performance.now();
        const ids = Array.from({ length: devices }, (_, i) => `m-${String(i + 1).padStart(6, '0')}`);
        for (let k = 0; k < ids.length; k += 250) {
            await Promise.all(
                ids.slice(k, k + 250).map((id, j) =>
                    net.manufacturer.registerEquipment({
                        equipmentId: id,
                        kind: 'sensor',
                        model: 'rpi-4b',
                        fogGroup: net.fogId((k + j) % 2),
                        privilegeLevel: 1,
                        serviceType: 'upload-download',
                        accessTime: 'always',
                    }),
                ),
            );
        }
        const loadSeconds = round((performance.now() - t0) / 1000);
        console.log(`registered ${devices} machines in ${loadSeconds} s; ledger height ${net.ledger.height}`);
        const served = await startEmbeddedConsole(net, { organisations: networkOrganisations(net) });
        const login = (msp: string): string => served.logins.find((l) => l.mspId === msp)!.url;
        const token = (msp: string): string => new URL(login(msp)).searchParams.get('token')!;
        const context = await chromium.launchPersistentContext(profile, {
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
        });
        const views = [
            { view: 'equipment', msp: 'ManufacturerMSP', api: '/api/equipment', selector: '#equipment-table tbody tr' },
            { view: 'ledger', msp: 'CSPMSP', api: '/api/ledger', selector: '#blocks-table tbody tr' },
            { view: 'sessions', msp: 'CSPMSP', api: '/api/sessions', selector: '#issued-table tbody tr' },
            { view: 'services', msp: 'CSPMSP', api: '/api/services', selector: '#services .card' },
        ];
        const results: ViewResult[] = [];
        try {
            for (const v of views) {
                // Log in once (sets the cookie), then time fresh page loads of the view.
                const warm = await context.newPage();
                await warm.goto(login(v.msp));
                await warm.goto(`${served.url}/#/${v.view}`);
                await warm.waitForSelector(v.selector, { timeout: 30_000 });
                await warm.close();
                const renderMs: number[] = [];
                const apiMs: number[] = [];
                for (let r = 0; r < runs; r++) {
                    const a0 = performance.now();
                    const res = await fetch(`${served.url}${v.api}`, {
                        headers: { authorization: `Bearer ${token(v.msp)}` },
                    });
                    await res.arrayBuffer();
                    apiMs.push(performance.now() - a0);
                    const page = await context.newPage();
                    const p0 = performance.now();
                    await page.goto(`${served.url}/#/${v.view}`);
                    await page.waitForSelector(v.selector, { timeout: 30_000 });
                    renderMs.push(performance.now() - p0);
                    await page.close();
                }
                const result = {
                    view: v.view,
                    selector: v.selector,
                    renderMs: renderMs.map(round),
                    renderMedianMs: round(median(renderMs)),
                    apiMs: apiMs.map(round),
                    apiMedianMs: round(median(apiMs)),
                };
                results.push(result);
                console.log(
                    `${v.view}: first render median ${result.renderMedianMs} ms (API alone ${result.apiMedianMs} ms) over ${runs} runs`,
                );
            }
        } finally {
            await context.close();
            await served.close();
        }
        const worst = Math.max(...results.map((r) => r.renderMedianMs));
        const file = {
            bench: 'console',
            date: new Date().toISOString(),
            node: process.version,
            devices,
            runs,
            loadSeconds,
            ledgerHeight: Number(net.ledger.height),
            method: 'navigation to the view until its first table row (or card) is attached, fresh page per run, cookie already set; API = the same view call from Node',
            views: results,
            target: { firstRenderMs: 1000, worstMedianMs: worst, met: worst <= 1000 },
        };
        const md = [
            '# Console first render',
            '',
            `${devices} machines registered on the embedded ledger (height ${file.ledgerHeight}); ${runs} runs per view in headless chromium; ${file.method}.`,
            '',
            '| view | first render median (ms) | API call alone median (ms) |',
            '|---|---|---|',
            ...results.map((r) => `| ${r.view} | ${r.renderMedianMs} | ${r.apiMedianMs} |`),
            '',
            `Target ≤ 1000 ms: ${file.target.met ? 'met' : 'not met'} (worst median ${worst} ms).`,
            '',
        ].join('\n');
        mkdirSync(outDir, { recursive: true });
        writeFileSync(join(outDir, 'console.json'), `${JSON.stringify(file, null, 2)}\n`);
        writeFileSync(join(outDir, 'console.md'), md);
        console.log(md);
    } finally {
        await net.close();
        await rm(dataDir, { recursive: true, force: true });
        await rm(profile, { recursive: true, force: true });
    }
}
