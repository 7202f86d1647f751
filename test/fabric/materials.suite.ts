/**
 * Material traceability and the record-query access rule through the ledger client interface, on
 * the targets of targets.ts (a real Fabric network with FABRIC_CONNECTION, or --embedded: the
 * embedded ledger behind its Fabric Gateway endpoints through @hyperledger/fabric-gateway). State on
 * a real network outlives a run, so every identifier is fresh.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { DEFAULT_SUITE, ErrorCode, encodePoint, randomScalar, toHex } from '@m2m-fabric/protocol';
import {
    ChaincodeClient,
    CommitError,
    EndorseError,
    MaterialsClient,
    type LedgerConnection,
    type TransformationSpec,
} from '@m2m-fabric/sdk';

import {
    chooseTarget,
    openEmbeddedGatewayTarget,
    openFabricTarget,
    openInProcessTarget,
    type SuiteTarget,
} from './targets.js';

const choice = chooseTarget(process.argv.slice(2), process.env);
const skip = typeof choice === 'object' ? choice.skip : false;
const options = { skip };
const suite = DEFAULT_SUITE;

async function refused(call: Promise<unknown>, code: string): Promise<void> {
    await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof EndorseError, String(err));
        assert.equal(err.errorCode, code, err.chaincodeMessage);
        return true;
    });
}

void describe(`materials through the ledger client (${typeof choice === 'string' ? choice : 'no target'})`, () => {
    let target: SuiteTarget;
    const connections: LedgerConnection[] = [];
    let owner: MaterialsClient;
    let fog: MaterialsClient;
    // A submit returns once the submitter's own peer has committed; the other organisation reads (or
    // endorses) on its own peer, which may not have the block yet (CI, 2.5.12: the fog still saw
    // no grant 1 time in 19 runs). Each change names the other party's connection to wait for.
    let ownerSide: LedgerConnection;
    let fogSide: LedgerConnection;
    const run = randomBytes(4).toString('hex');
    const id = (name: string): string => `${name}-${run}`;
    const carder = { id: id('carding'), secret: randomScalar(suite) };

    before(async () => {
        if (skip !== false) return;
        target =
            choice === 'embedded'
                ? await openEmbeddedGatewayTarget()
                : choice === 'in-process'
                  ? await openInProcessTarget()
                  : await openFabricTarget(process.env);
        const manufacturer = await target.connect('manufacturer');
        const foga = await target.connect('foga');
        const csp = await target.connect('csp');
        connections.push(manufacturer, foga, csp);
        ownerSide = manufacturer;
        fogSide = foga;
        const registry = new ChaincodeClient(csp, target.chaincodeName);
        try {
            await registry.registerCsp(
                suite.id,
                toHex(encodePoint(suite, suite.Point.BASE.multiply(randomScalar(suite)))),
            );
        } catch (err) {
            if (!(err instanceof EndorseError && err.errorCode === ErrorCode.AlreadyExists)) throw err;
        }
        owner = new MaterialsClient(manufacturer, target.chaincodeName);
        fog = new MaterialsClient(foga, target.chaincodeName);
        const equipment = new ChaincodeClient(manufacturer, target.chaincodeName);
        for (const m of [carder, { id: id('lapformer'), secret: randomScalar(suite) }]) {
            await equipment.registerEquipment({
                equipmentId: m.id,
                kind: 'spinning machine',
                model: 'S-1',
                fogGroup: 'line-a',
                publicKey: toHex(encodePoint(suite, suite.Point.BASE.multiply(m.secret))),
                privilegeLevel: 2,
                serviceType: 'upload-download',
                accessTime: 'always',
            });
        }
    });
    after(async () => {
        for (const c of connections) c.close();
        await target?.close();
    });

    void it('records a machine-signed transformation submitted by a fog and traces it both ways', options, async () => {
        for (const bale of ['b1', 'b2']) {
            await owner.registerLot(
                {
                    lotId: id(bale),
                    kind: 'cotton bale',
                    quantity: 1000,
                    unit: 'g',
                    origin: 'farm',
                },
                { visibleOn: [fogSide] },
            );
        }
        const recorded = await fog.recordTransformation(
            {
                transformationId: id('t1'),
                kind: 'merge',
                equipmentId: carder.id,
                step: 'carding',
                inputs: [
                    { lotId: id('b1'), quantity: 1000 },
                    { lotId: id('b2'), quantity: 500 },
                ],
                outputs: [{ lotId: id('sliver'), kind: 'sliver', quantity: 1400, unit: 'g' }],
                parameters: { speed: '900 rpm' },
                qualityRefs: [],
            },
            { suite, secretKey: carder.secret },
            { visibleOn: [ownerSide] },
        );
        assert.equal(recorded.recordedBy, 'equipment');
        const back = await owner.traceBackward(id('sliver'));
        assert.deepEqual(
            back.steps.map((s) => s.transformationId),
            [id('t1')],
        );
        const forward = await fog.traceForward(id('b2'));
        assert.deepEqual(
            forward.steps.flatMap((s) => s.outputs.map((o) => o.lotId)),
            [id('sliver')],
        );
        assert.equal((await owner.getLot(id('b2'))).consumed, 500);
    });

    void it(
        'refuses over-consumption, concurrently too, and a fog without the machine signature',
        options,
        async () => {
            await owner.registerLot(
                { lotId: id('b3'), kind: 'cotton bale', quantity: 100, unit: 'g', origin: 'farm' },
                { visibleOn: [fogSide] },
            );
            const spec = (k: number): TransformationSpec => ({
                transformationId: id(`race-${k}`),
                kind: 'process',
                equipmentId: carder.id,
                step: 'carding',
                inputs: [{ lotId: id('b3'), quantity: 60 }],
                outputs: [{ lotId: id(`race-out-${k}`), kind: 'sliver', quantity: 60, unit: 'g' }],
                parameters: {},
                qualityRefs: [],
            });
            const outcomes = await Promise.allSettled([0, 1, 2, 3].map((k) => owner.recordTransformation(spec(k))));
            assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
            for (const o of outcomes) {
                if (o.status === 'fulfilled') continue;
                const err: unknown = o.reason;
                assert.ok(
                    (err instanceof CommitError && err.code === 'MVCC_READ_CONFLICT') ||
                        (err instanceof EndorseError && err.errorCode === ErrorCode.LotOverConsumed),
                    String(err),
                );
            }
            assert.equal((await owner.getLot(id('b3'))).consumed, 60);
            await refused(fog.recordTransformation(spec(9)), ErrorCode.UnauthorisedMsp);
        },
    );

    void it('keeps the query access rule on the ledger', options, async () => {
        const lapformer = id('lapformer');
        assert.equal((await fog.checkQueryAccess(lapformer, carder.id)).allowed, false);
        await owner.grantQueryAccess(lapformer, carder.id, { visibleOn: [fogSide] });
        assert.equal((await fog.checkQueryAccess(lapformer, carder.id)).allowed, true);
        await refused(fog.grantQueryAccess(lapformer, carder.id), ErrorCode.UnauthorisedMsp);
        await owner.revokeQueryAccess(lapformer, carder.id, { visibleOn: [fogSide] });
        assert.equal((await fog.checkQueryAccess(lapformer, carder.id)).allowed, false);
    });
});
