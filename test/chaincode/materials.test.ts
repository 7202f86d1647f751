/**
 * Material traceability on the embedded ledger: lots, transformations recorded by M-EB equipment
 * (its owner or its own signature), quantity accounting under concurrency (MVCC), cycles, and the
 * backward / forward / per-machine queries with their pages and bounds. Every rejection leaves the
 * world state unchanged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
    ErrorCode,
    P256_SHA256,
    SchnorrContext,
    encodePoint,
    encodeSchnorrSignature,
    randomScalar,
    schnorrSign,
    toHex,
} from '@m2m-fabric/protocol';
import { CommitError, EndorseError } from '@m2m-fabric/sdk';

import { startNetwork } from './network.js';
import type { Party, TestNetwork } from './network.js';
import { assertRejectedUnchanged, bootstrap, evaluate, submit } from './scenario.js';
import type { Json } from './scenario.js';

const suite = P256_SHA256;

interface Machine {
    id: string;
    secret: bigint;
}

function machine(id: string): Machine {
    return { id, secret: randomScalar(suite) };
}

async function register(owner: Party, m: Machine, kind: string): Promise<void> {
    const publicKey = toHex(encodePoint(suite, suite.Point.BASE.multiply(m.secret)));
    await submit(owner, 'equipment', 'registerEquipment', {
        args: [m.id, kind, 'TX-1', 'line-a', publicKey, '3', 'upload-download', 'always'],
    });
}

interface Spec {
    transformationId: string;
    kind: 'split' | 'merge' | 'process';
    equipmentId: string;
    step: string;
    inputs: { lotId: string; quantity: number }[];
    outputs: { lotId: string; kind: string; quantity: number; unit: string }[];
    parameters: Record<string, string>;
    qualityRefs: string[];
}

function spec(
    id: string,
    m: Machine,
    inputs: [string, number][],
    outputs: [string, number][],
    kind: Spec['kind'] = 'process',
): Spec {
    return {
        transformationId: id,
        kind,
        equipmentId: m.id,
        step: 'carding',
        inputs: inputs.map(([lotId, quantity]) => ({ lotId, quantity })),
        outputs: outputs.map(([lotId, quantity]) => ({ lotId, kind: 'sliver', quantity, unit: 'g' })),
        parameters: { speed: '900 rpm' },
        qualityRefs: ['ab'.repeat(32)],
    };
}

function signedBy(m: Machine, argument: string): Record<string, Uint8Array> {
    const signature = schnorrSign(
        suite,
        SchnorrContext.MaterialTransformation,
        m.secret,
        new TextEncoder().encode(argument),
    );
    return { equipmentSignature: encodeSchnorrSignature(suite, signature) };
}

void describe('material traceability', () => {
    let net: TestNetwork;
    let owner: Party;
    const carder = machine('carding-1');
    const comber = machine('comber-1');
    const retired = machine('drawing-old');
    before(async () => {
        net = await startNetwork(suite, { batchTimeoutMs: 20 });
        await bootstrap(net, 0);
        owner = net.parties.manufacturer;
        await register(owner, carder, 'carding machine');
        await register(owner, comber, 'combing machine');
        await register(owner, retired, 'drawing frame');
        await submit(owner, 'equipment', 'updateEquipmentStatus', { args: [retired.id, 'decommissioned'] });
        for (const bale of ['bale-1', 'bale-2', 'bale-3']) {
            await submit(owner, 'materials', 'registerLot', { args: [bale, 'cotton bale', '1000', 'g', 'farm-7'] });
        }
    });
    after(async () => net.close());

    const record = (s: Spec, party?: Party, transient?: Record<string, Uint8Array>): Promise<Json> => {
        const argument = JSON.stringify(s);
        return submit(party ?? owner, 'materials', 'recordTransformation', {
            args: [argument],
            ...(transient === undefined ? {} : { transient }),
        });
    };

    void it('records a transformation by the owner and one signed by the machine itself', async () => {
        const byOwner = await record(
            spec(
                't-card-1',
                carder,
                [
                    ['bale-1', 600],
                    ['bale-2', 1000],
                ],
                [['sliver-1', 1500]],
                'merge',
            ),
        );
        assert.equal(byOwner.recordedBy, 'owner');
        assert.equal(byOwner.owner, owner.mspId);
        const lot = await evaluate(owner, 'materials', 'getLot', { args: ['bale-1'] });
        assert.equal(lot.consumed, 600);
        assert.equal(lot.consumers, 1);
        const sliver = await evaluate(owner, 'materials', 'getLot', { args: ['sliver-1'] });
        assert.equal(sliver.generation, 1);
        assert.equal(sliver.producedBy, 't-card-1');

        // A fog (another organisation) submits what the comber signed.
        const s = spec(
            't-comb-1',
            comber,
            [['sliver-1', 1500]],
            [
                ['yarn-1', 700],
                ['yarn-2', 700],
            ],
            'split',
        );
        const bySignature = await record(s, net.parties.fogA, signedBy(comber, JSON.stringify(s)));
        assert.equal(bySignature.recordedBy, 'equipment');
        assert.equal(bySignature.submitter, 'FogAMSP');
    });

    void it('rejects over-consumption, reuse of an id, cycles and retired or foreign recorders, changing nothing', async () => {
        await assertRejectedUnchanged(
            net,
            () => record(spec('t-x1', carder, [['bale-1', 401]], [['x-1', 1]])),
            ErrorCode.LotOverConsumed,
        );
        await assertRejectedUnchanged(
            net,
            () => record(spec('t-x2', carder, [['bale-2', 1]], [['x-2', 1]])),
            ErrorCode.LotOverConsumed,
        );
        await assertRejectedUnchanged(
            net,
            () => record(spec('t-x3', carder, [['bale-404', 1]], [['x-3', 1]])),
            ErrorCode.UnknownLot,
        );
        await assertRejectedUnchanged(
            net,
            () => record(spec('t-card-1', carder, [['bale-3', 1]], [['x-4', 1]])),
            ErrorCode.AlreadyExists,
        );
        // yarn-1 descends from bale-1; making bale-1 again out of yarn-1 closes a cycle.
        await assertRejectedUnchanged(
            net,
            () => record(spec('t-x5', comber, [['yarn-1', 1]], [['bale-1', 1]])),
            ErrorCode.LotCycle,
        );
        await assertRejectedUnchanged(
            net,
            () => record(spec('t-x6', comber, [['yarn-1', 1]], [['yarn-1', 1]])),
            ErrorCode.LotCycle,
        );
        // An existing lot that is not an ancestor is simply taken.
        await assertRejectedUnchanged(
            net,
            () => record(spec('t-x7', comber, [['yarn-1', 1]], [['bale-3', 1]])),
            ErrorCode.AlreadyExists,
        );
        await assertRejectedUnchanged(
            net,
            () => record(spec('t-x8', retired, [['bale-3', 1]], [['x-8', 1]])),
            ErrorCode.EquipmentRetired,
        );
        await assertRejectedUnchanged(
            net,
            () => record(spec('t-x9', machine('ghost'), [['bale-3', 1]], [['x-9', 1]])),
            ErrorCode.UnknownEquipment,
        );
        // A fog without the machine's signature, and with another machine's signature.
        const s = spec('t-x10', carder, [['bale-3', 1]], [['x-10', 1]]);
        await assertRejectedUnchanged(net, () => record(s, net.parties.fogA), ErrorCode.UnauthorisedMsp);
        await assertRejectedUnchanged(
            net,
            () => record(s, net.parties.fogA, signedBy(comber, JSON.stringify(s))),
            ErrorCode.FailedSignatureVerification,
        );
        // The signature covers the exact argument: a changed quantity is not what the machine signed.
        const tampered = { ...s, inputs: [{ lotId: 'bale-3', quantity: 2 }] };
        await assertRejectedUnchanged(
            net,
            () => record(tampered, net.parties.fogA, signedBy(carder, JSON.stringify(s))),
            ErrorCode.FailedSignatureVerification,
        );
        // Split and merge shapes, duplicates, unknown fields, bad quality references.
        await assertRejectedUnchanged(
            net,
            () => record(spec('t-x11', carder, [['bale-3', 1]], [['x-11', 1]], 'split')),
            ErrorCode.MalformedInput,
        );
        await assertRejectedUnchanged(
            net,
            () =>
                record(
                    spec(
                        't-x12',
                        carder,
                        [
                            ['bale-3', 1],
                            ['bale-3', 1],
                        ],
                        [['x-12', 1]],
                    ),
                ),
            ErrorCode.MalformedInput,
        );
        await assertRejectedUnchanged(
            net,
            () => record({ ...spec('t-x13', carder, [['bale-3', 1]], [['x-13', 1]]), qualityRefs: ['not-a-cid'] }),
            ErrorCode.MalformedInput,
        );
        await assertRejectedUnchanged(
            net,
            () => submit(owner, 'materials', 'recordTransformation', { args: ['{"transformationId":"t","extra":1}'] }),
            ErrorCode.MalformedInput,
        );
        await assertRejectedUnchanged(
            net,
            () => record({ ...spec('t-x14', carder, [['bale-3', 0]], [['x-14', 1]]) }),
            ErrorCode.MalformedInput,
        );
        // Only a manufacturer registers raw lots.
        await assertRejectedUnchanged(
            net,
            () =>
                submit(net.parties.fogA, 'materials', 'registerLot', {
                    args: ['bale-9', 'cotton bale', '5', 'g', 'farm'],
                }),
            ErrorCode.UnauthorisedMsp,
        );
    });

    void it('lets exactly the transformations fit that a lot holds when they race (MVCC)', async () => {
        await submit(owner, 'materials', 'registerLot', { args: ['bale-race', 'cotton bale', '100', 'g', 'farm-7'] });
        const RACERS = 12;
        // Each draws 60 g of 100 g: at most one may commit.
        const outcomes = await Promise.allSettled(
            Array.from({ length: RACERS }, (_, k) =>
                record(spec(`t-race-${k}`, carder, [['bale-race', 60]], [[`race-out-${k}`, 60]])),
            ),
        );
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        assert.equal(won.length, 1);
        for (const o of outcomes) {
            if (o.status === 'fulfilled') continue;
            const error: unknown = o.reason;
            if (error instanceof CommitError) assert.equal(error.code, 'MVCC_READ_CONFLICT');
            else {
                assert.ok(error instanceof EndorseError, String(error));
                assert.equal(error.errorCode, ErrorCode.LotOverConsumed);
            }
        }
        const lot = await evaluate(owner, 'materials', 'getLot', { args: ['bale-race'] });
        assert.equal(lot.consumed, 60);
        assert.equal(lot.consumers, 1);
        const state = await net.dumpState();
        assert.equal(state.filter((e) => e.type === 'transformation' && e.key.includes('t-race-')).length, 1);
    });

    void it('traces backward to the bales and forward to the yarn, with machines and steps', async () => {
        const back = await evaluate(owner, 'materials', 'traceBackward', { args: ['yarn-2', '10', '100', ''] });
        const steps = back.steps as Json[];
        assert.deepEqual(
            steps.map((s) => [s.distance, s.transformationId, s.equipmentId]),
            [
                [1, 't-comb-1', 'comber-1'],
                [2, 't-card-1', 'carding-1'],
            ],
        );
        assert.equal(back.bookmark, '');
        const forward = await evaluate(owner, 'materials', 'traceForward', { args: ['bale-2', '10', '100', ''] });
        const outputs = (forward.steps as Json[]).flatMap((s) => (s.outputs as Json[]).map((o) => o.lotId));
        assert.deepEqual(outputs, ['sliver-1', 'yarn-1', 'yarn-2']);
        // A raw lot has no ancestors.
        const none = await evaluate(owner, 'materials', 'traceBackward', { args: ['bale-3', '10', '100', ''] });
        assert.deepEqual(none.steps, []);
    });

    void it('pages a trace and refuses one deeper than its bound', async () => {
        // A chain of 6 process steps from bale-3.
        let previous = 'bale-3';
        for (let k = 1; k <= 6; k++) {
            await record(spec(`t-chain-${k}`, carder, [[previous, 1]], [[`chain-${k}`, 1]]));
            previous = `chain-${k}`;
        }
        const seen: string[] = [];
        let bookmark = '';
        for (let guard = 0; guard < 10; guard++) {
            const page = await evaluate(owner, 'materials', 'traceBackward', {
                args: ['chain-6', '10', '4', bookmark],
            });
            seen.push(...(page.steps as Json[]).map((s) => s.transformationId as string));
            bookmark = page.bookmark as string;
            if (bookmark === '') break;
        }
        assert.deepEqual(
            seen,
            [6, 5, 4, 3, 2, 1].map((k) => `t-chain-${k}`),
        );
        await assertRejectedUnchanged(
            net,
            () => evaluate(owner, 'materials', 'traceBackward', { args: ['chain-6', '5', '100', ''] }),
            ErrorCode.TraceDepthExceeded,
        );
        await assertRejectedUnchanged(
            net,
            () => evaluate(owner, 'materials', 'traceForward', { args: ['bale-3', '3', '100', ''] }),
            ErrorCode.TraceDepthExceeded,
        );
        await assertRejectedUnchanged(
            net,
            () => evaluate(owner, 'materials', 'traceForward', { args: ['bale-404', '3', '100', ''] }),
            ErrorCode.UnknownLot,
        );
        await assertRejectedUnchanged(
            net,
            () => evaluate(owner, 'materials', 'traceForward', { args: ['bale-3', '65', '100', ''] }),
            ErrorCode.MalformedInput,
        );
    });

    void it('lists what one machine processed between two times, paged', async () => {
        const from = new Date(Date.now() - 3_600_000).toISOString();
        const until = new Date(Date.now() + 3_600_000).toISOString();
        const ids: string[] = [];
        let bookmark = '';
        for (let guard = 0; guard < 20; guard++) {
            const page = await evaluate(owner, 'materials', 'queryMachineSteps', {
                args: [carder.id, from, until, '3', bookmark],
            });
            ids.push(...(page.records as Json[]).map((r) => r.transformationId as string));
            bookmark = page.bookmark as string;
            if (bookmark === '') break;
        }
        // Oldest first: the first carding step, the race's one winner, then the chain.
        assert.equal(ids[0], 't-card-1');
        assert.equal(ids.filter((id) => id.startsWith('t-race-')).length, 1);
        assert.deepEqual(
            ids.filter((id) => id.startsWith('t-chain-')),
            [1, 2, 3, 4, 5, 6].map((k) => `t-chain-${k}`),
        );
        assert.equal(ids.length, 8);
        // Before anything was recorded: nothing.
        const early = await evaluate(owner, 'materials', 'queryMachineSteps', {
            args: [carder.id, '2020-01-01T00:00:00.000Z', '2020-01-02T00:00:00.000Z', '10', ''],
        });
        assert.deepEqual(early.records, []);
        await assertRejectedUnchanged(
            net,
            () =>
                evaluate(owner, 'materials', 'queryMachineSteps', {
                    args: [carder.id, '2020-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '10', ''],
                }),
            ErrorCode.MalformedInput,
        );
    });
});
