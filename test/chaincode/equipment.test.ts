/**
 * The Machine-Equipment Blockchain on the embedded ledger: registration, owner-only status
 * changes, replacement links, full history (also of equipment that left), and paginated queries
 * by owner, fog group and status.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { P256_SHA256, encodePoint, randomScalar, toHex } from '@m2m-fabric/protocol';
import { ErrorCode } from '@m2m-fabric/protocol';

import { startNetwork } from './network.js';
import type { Party, TestNetwork } from './network.js';
import { assertRejectedUnchanged, bootstrap, evaluate, submit } from './scenario.js';
import type { Json } from './scenario.js';

const suite = P256_SHA256;

function staticKey(): string {
    return toHex(encodePoint(suite, suite.Point.BASE.multiply(randomScalar(suite))));
}

function equipmentArgs(id: string, fogGroup: string): string[] {
    return [id, 'hydraulic-press', 'HP-200', fogGroup, staticKey(), '3', 'upload-download', '06:00-22:00'];
}

/** Every page of a paginated query, following bookmarks until the last page says there is none. */
async function allPages(party: Party, transaction: string, value: string, pageSize: number): Promise<Json[][]> {
    const pages: Json[][] = [];
    let bookmark = '';
    for (let guard = 0; guard < 100; guard++) {
        const page = await evaluate(party, 'equipment', transaction, { args: [value, String(pageSize), bookmark] });
        const records = page.records as Json[];
        assert.equal(page.count, records.length);
        assert.ok(records.length <= pageSize);
        if (records.length > 0) pages.push(records);
        bookmark = page.bookmark as string;
        if (bookmark === '') return pages;
        assert.equal(records.length, pageSize, 'only the last page may be short');
    }
    throw new Error('pagination did not end');
}

void describe('Machine-Equipment Blockchain', () => {
    let net: TestNetwork;
    let owner: Party;
    before(async () => {
        net = await startNetwork(suite);
        await bootstrap(net, 0);
        owner = net.parties.manufacturer;
        for (const [id, group] of [
            ['eq-0', 'line-a'],
            ['eq-1', 'line-a'],
            ['eq-2', 'line-a'],
            ['eq-3', 'line-b'],
            ['eq-4', 'line-b'],
        ] as const) {
            const record = await submit(owner, 'equipment', 'registerEquipment', { args: equipmentArgs(id, group) });
            assert.equal(record.status, 'registered');
            assert.equal(record.owner, owner.mspId);
        }
    });
    after(async () => net.close());

    void it('lets the owner move an equipment through its operating states', async () => {
        for (const status of ['online', 'maintenance', 'online']) {
            const record = await submit(owner, 'equipment', 'updateEquipmentStatus', { args: ['eq-0', status] });
            assert.equal(record.status, status);
        }
        await submit(owner, 'equipment', 'updateEquipmentStatus', { args: ['eq-1', 'decommissioned'] });
        await assertRejectedUnchanged(
            net,
            () => submit(owner, 'equipment', 'updateEquipmentStatus', { args: ['eq-1', 'online'] }),
            ErrorCode.InvalidStateTransition,
        );
        await assertRejectedUnchanged(
            net,
            () => submit(owner, 'equipment', 'updateEquipmentStatus', { args: ['eq-0', 'replaced'] }),
            ErrorCode.InvalidStateTransition,
        );
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.csp, 'equipment', 'updateEquipmentStatus', { args: ['eq-0', 'offline'] }),
            ErrorCode.UnauthorisedMsp,
        );
    });

    void it('replaces equipment, linking the old record to the new one', async () => {
        const result = await submit(owner, 'equipment', 'replaceEquipment', {
            args: ['eq-2', ...equipmentArgs('eq-5', 'line-a')],
        });
        const replaced = result.replaced as Json;
        const successor = result.successor as Json;
        assert.equal(replaced.status, 'replaced');
        assert.equal(replaced.replacedBy, 'eq-5');
        assert.equal(successor.replaces, 'eq-2');
        assert.equal(successor.status, 'registered');
        assert.deepEqual(await evaluate(net.parties.fogA, 'equipment', 'getEquipment', { args: ['eq-2'] }), replaced);
        await assertRejectedUnchanged(
            net,
            () =>
                submit(owner, 'equipment', 'replaceEquipment', { args: ['eq-2', ...equipmentArgs('eq-6', 'line-a')] }),
            ErrorCode.InvalidStateTransition,
        );
        await assertRejectedUnchanged(
            net,
            () =>
                submit(owner, 'equipment', 'replaceEquipment', { args: ['eq-3', ...equipmentArgs('eq-4', 'line-b')] }),
            ErrorCode.AlreadyExists,
        );
    });

    void it('keeps the full history, also of equipment that left', async () => {
        const history = await evaluate(net.parties.csp, 'equipment', 'getEquipmentHistory', { args: ['eq-0'] });
        const statuses = (history.versions as Json[]).map((v) => (v.record as Json).status);
        assert.deepEqual(statuses, ['registered', 'online', 'maintenance', 'online']);
        const left = await evaluate(owner, 'equipment', 'getEquipmentHistory', { args: ['eq-2'] });
        assert.deepEqual(
            (left.versions as Json[]).map((v) => (v.record as Json).status),
            ['registered', 'replaced'],
        );
        const gone = await evaluate(owner, 'equipment', 'getEquipmentHistory', { args: ['eq-1'] });
        assert.deepEqual(
            (gone.versions as Json[]).map((v) => (v.record as Json).status),
            ['registered', 'decommissioned'],
        );
        for (const version of left.versions as Json[]) {
            assert.match(version.txId as string, /^[0-9a-f]{64}$/);
            assert.equal(version.isDelete, false);
        }
    });

    void it('answers paginated queries by owner, fog group and status', async () => {
        const byOwner = await allPages(owner, 'queryEquipmentByOwner', owner.mspId, 2);
        assert.deepEqual(
            byOwner.map((page) => page.length),
            [2, 2, 2],
        );
        assert.deepEqual(
            byOwner.flat().map((r) => r.equipmentId),
            ['eq-0', 'eq-1', 'eq-2', 'eq-3', 'eq-4', 'eq-5'],
        );
        const lineA = await allPages(net.parties.fogB, 'queryEquipmentByFogGroup', 'line-a', 3);
        assert.deepEqual(
            lineA.flat().map((r) => r.equipmentId),
            ['eq-0', 'eq-1', 'eq-2', 'eq-5'],
        );
        const registered = await allPages(net.parties.csp, 'queryEquipmentByStatus', 'registered', 10);
        assert.deepEqual(
            registered.flat().map((r) => r.equipmentId),
            ['eq-3', 'eq-4', 'eq-5'],
        );
        const online = await allPages(net.parties.csp, 'queryEquipmentByStatus', 'online', 10);
        assert.deepEqual(
            online.flat().map((r) => r.equipmentId),
            ['eq-0'],
        );
        assert.deepEqual(await allPages(net.parties.csp, 'queryEquipmentByStatus', 'maintenance', 10), []);
    });

    void it('rejects malformed and duplicate registrations without changing state', async () => {
        const cases: [string[], ErrorCode][] = [
            [equipmentArgs('eq-0', 'line-a'), ErrorCode.AlreadyExists],
            [equipmentArgs('bad id', 'line-a'), ErrorCode.MalformedInput],
            [['eq-9', 'press', 'HP', 'line-a', 'zz', '3', 'upload', 'always'], ErrorCode.MalformedInput],
            [['eq-9', 'press', 'HP', 'line-a', staticKey(), '16', 'upload', 'always'], ErrorCode.MalformedInput],
            [['eq-9', 'press', 'HP', 'line-a', staticKey(), '1', 'sideways', 'always'], ErrorCode.MalformedInput],
            [['eq-9', 'press', 'HP', 'line-a', staticKey(), '1', 'upload', '25:00-26:00'], ErrorCode.MalformedInput],
        ];
        for (const [args, code] of cases) {
            await assertRejectedUnchanged(net, () => submit(owner, 'equipment', 'registerEquipment', { args }), code);
        }
        await assertRejectedUnchanged(
            net,
            () => submit(owner, 'equipment', 'updateEquipmentStatus', { args: ['eq-404', 'online'] }),
            ErrorCode.UnknownEquipment,
        );
    });
});
