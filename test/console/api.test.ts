/**
 * The console's HTTP API over an embedded network, without a browser: who may see and do what
 * (each refusal typed, nothing written), the write actions through the same client calls as the
 * CLI, the live stream, and the feed's checkpoint (a restart counts no event twice).
 */
import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ActivityFeed, embeddedBlockSource, startEmbeddedConsole, type EmbeddedConsole } from '@m2m-fabric/console';
import { EmbeddedNetwork, MANUFACTURER_MSP, networkOrganisations } from '@m2m-fabric/cli';
import { tempDir } from '../services/helpers/temp-dir.js';

const OTHER_MAKER = 'OtherMakerMSP';
process.env.M2M_MANUFACTURER_MSPS = `${MANUFACTURER_MSP},${OTHER_MAKER}`;

let net: EmbeddedNetwork;
let served: EmbeddedConsole;
let dataDir: string;

const token = (mspId: string): string =>
    new URL(served.logins.find((l) => l.mspId === mspId)!.url).searchParams.get('token')!;

async function call(
    mspId: string | undefined,
    path: string,
    init: { method?: string; body?: unknown; contentType?: string } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
    const headers: Record<string, string> = {};
    if (mspId !== undefined) headers.authorization = `Bearer ${token(mspId)}`;
    if (init.body !== undefined) headers['content-type'] = init.contentType ?? 'application/json';
    const res = await fetch(`${served.url}${path}`, {
        method: init.method ?? 'GET',
        headers,
        ...(init.body !== undefined
            ? { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) }
            : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

before(async () => {
    dataDir = await tempDir('m2m-console-api-');
    net = new EmbeddedNetwork({ dataDir, fogs: 1, batchTimeoutMs: 50, extraOrganisations: [OTHER_MAKER] });
    await net.start();
    for (const id of ['api-1', 'api-2'])
        await net.manufacturer.registerEquipment({
            equipmentId: id,
            kind: 'sensor',
            model: 'rpi-4b',
            fogGroup: 'fog-1',
            privilegeLevel: 1,
            serviceType: 'upload-download',
            accessTime: 'always',
        });
    served = await startEmbeddedConsole(net, {
        organisations: networkOrganisations(net),
        manufacturers: [OTHER_MAKER],
        actions: ['register', 'decommission', 'grantCredit'],
    });
});

after(async () => {
    await served?.close();
    await net?.close();
});

void test('no or an unknown token is refused; the console listens on 127.0.0.1', async () => {
    assert.match(served.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await call(undefined, '/api/me')).status, 401);
    const res = await fetch(`${served.url}/api/me`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(res.status, 401);
    assert.equal((await fetch(`${served.url}/login?token=nope`, { redirect: 'manual' })).status, 401);
    const login = await fetch(served.logins[0]!.url, { redirect: 'manual' });
    assert.equal(login.status, 303);
    assert.match(login.headers.get('set-cookie') ?? '', /HttpOnly; SameSite=Strict/i);
});

void test("a manufacturer sees its own equipment only; another's is refused with a typed error", async () => {
    const own = await call(MANUFACTURER_MSP, '/api/equipment');
    assert.equal(own.status, 200);
    assert.deepEqual(
        (own.body.records as { equipmentId: string }[]).map((r) => r.equipmentId),
        ['api-1', 'api-2'],
    );
    const other = await call(OTHER_MAKER, '/api/equipment/api-1');
    assert.equal(other.status, 403);
    assert.equal(other.body.error, 'unauthorisedMsp');
    const otherList = await call(OTHER_MAKER, `/api/equipment?by=owner&value=${MANUFACTURER_MSP}`);
    assert.equal(otherList.status, 403);
    assert.equal(((await call(OTHER_MAKER, '/api/equipment')).body.records as unknown[]).length, 0);
    assert.equal((await call(MANUFACTURER_MSP, '/api/services')).status, 403);
    const unknown = await call(MANUFACTURER_MSP, '/api/equipment/no-such');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error, 'unknownEquipment');
    // The CSP sees every owner's equipment, but no device's certificate counts.
    const csp = await call('CSPMSP', '/api/equipment/api-1');
    assert.equal(csp.status, 200);
    assert.equal(csp.body.certificates, null);
});

void test('writes: refused unless enabled, JSON only, through the client calls; refusals change nothing', async () => {
    const height = net.ledger.height;
    const form = await call(MANUFACTURER_MSP, '/api/equipment', {
        method: 'POST',
        body: 'equipmentId=x',
        contentType: 'application/x-www-form-urlencoded',
    });
    assert.equal(form.status, 415);
    const notEnabled = await call(OTHER_MAKER, '/api/equipment', {
        method: 'POST',
        body: { equipmentId: 'x-1', kind: 'sensor', model: 'm', fogGroup: 'fog-1' },
    });
    assert.equal(notEnabled.status, 403);
    assert.equal(
        (await call('FogAMSP', '/api/credit', { method: 'POST', body: { account: 'x', amount: 1 } })).status,
        403,
    );
    const badAmount = await call('CSPMSP', '/api/credit', {
        method: 'POST',
        body: { account: MANUFACTURER_MSP, amount: -1 },
    });
    assert.equal(badAmount.status, 400);
    assert.equal(net.ledger.height, height, 'no block for refused writes');

    const registered = await call(MANUFACTURER_MSP, '/api/equipment', {
        method: 'POST',
        body: { equipmentId: 'api-3', kind: 'sensor', model: 'rpi-5', fogGroup: 'fog-1', privilegeLevel: 2 },
    });
    assert.equal(registered.status, 201);
    assert.equal((await net.manufacturer.listEquipment()).length, 3);
    const decommissioned = await call(MANUFACTURER_MSP, '/api/equipment/api-3/decommission', {
        method: 'POST',
        body: {},
    });
    assert.equal(decommissioned.status, 200);
    assert.equal(decommissioned.body.status, 'decommissioned');
    const heightAfter = net.ledger.height;
    const again = await call(MANUFACTURER_MSP, '/api/equipment/api-3/decommission', { method: 'POST', body: {} });
    assert.equal(again.status, 409);
    assert.equal(again.body.error, 'invalidStateTransition');
    assert.equal(net.ledger.height, heightAfter);
    const credit = await call('CSPMSP', '/api/credit', {
        method: 'POST',
        body: { account: MANUFACTURER_MSP, amount: 4 },
    });
    assert.equal(credit.status, 200);
    const more = await call('CSPMSP', '/api/credit', {
        method: 'POST',
        body: { account: MANUFACTURER_MSP, amount: 1 },
    });
    assert.equal(more.body.balance, (credit.body.balance as number) + 1);
});

void test('the live stream pushes a committed block; the ledger view lists codes and endorsers', async () => {
    const res = await fetch(`${served.url}/api/events`, { headers: { authorization: `Bearer ${token('CSPMSP')}` } });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let text = '';
    const read = async (pattern: RegExp): Promise<void> => {
        while (!pattern.test(text)) {
            const chunk = await reader.read();
            assert.ok(!chunk.done, 'stream ended');
            text += Buffer.from(chunk.value).toString('utf8');
        }
    };
    await read(/event: hello/);
    await net.csp.grantCredit(MANUFACTURER_MSP, 1);
    const block = Number(net.ledger.height) - 1;
    await read(new RegExp(`event: block\\ndata: \\{"type":"block","block":\\{"number":${block},`));
    await reader.cancel();
    const ledger = await call('CSPMSP', '/api/ledger');
    const newest = (ledger.body.blocks as { number: number; codes: Record<string, number>; endorsers: string[] }[])[0]!;
    assert.equal(newest.number, block);
    assert.deepEqual(newest.codes, { VALID: 1 });
    assert.ok(newest.endorsers.includes('CSPMSP'));
    const detail = await call('CSPMSP', `/api/ledger/blocks/${block}`);
    const tx = (detail.body.transactions as { function: string; code: string; creatorMsp: string }[])[0]!;
    assert.equal(tx.function, 'registry:grantCredit');
    assert.equal(tx.creatorMsp, 'CSPMSP');
    assert.equal((await call('CSPMSP', '/api/ledger/blocks/999999')).status, 404);
});

void test('the feed resumes from its checkpoint without counting an event twice', async () => {
    const statePath = join(dataDir, 'feed-test.json');
    const enrolment = await net.ledger.loadOrEnrol('CSPMSP', 'feed-test', { attributes: { 'm2m.role': 'csp' } });
    const conn = await net.ledger.connect({ identity: enrolment.identity, signer: enrolment.signer });
    const blocks = embeddedBlockSource(net.ledger);
    const waitFor = async (feed: ActivityFeed, n: number): Promise<void> => {
        for (let i = 0; i < 200 && (feed.tally.events.CreditGranted ?? 0) < n; i++)
            await new Promise((r) => setTimeout(r, 25));
    };
    const first = await ActivityFeed.start({
        connection: conn,
        chaincodeName: 'm2m',
        blocks,
        statePath,
        saveDelayMs: 10,
    });
    const granted = served.feed.tally.events.CreditGranted ?? 0;
    await waitFor(first, granted);
    assert.equal(first.tally.events.CreditGranted, granted);
    await first.close();
    // The position and the tallies are saved together, so the second feed starts from both.
    const saved = JSON.parse(await readFile(statePath, 'utf8')) as { blockNumber: string; tally: unknown };
    assert.deepEqual(saved.tally, first.tally);
    assert.ok(Number(saved.blockNumber) > 0);
    await net.csp.grantCredit(MANUFACTURER_MSP, 1);
    const second = await ActivityFeed.start({
        connection: conn,
        chaincodeName: 'm2m',
        blocks,
        statePath,
        saveDelayMs: 10,
    });
    await waitFor(second, granted + 1);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(second.tally.events.CreditGranted, granted + 1, 'the event after the checkpoint, once');
    assert.equal(second.tally.events.EquipmentRegistered, first.tally.events.EquipmentRegistered);
    await second.close();
    conn.close();
});
