/**
 * Bench-only contract for the trace benchmark, installed next to the chaincode's contracts on the
 * bench ledger (same chaincode, so the same state namespace). Submitting 10⁵ lots one
 * transformation per transaction is too slow on 2 cores, so this writes whole production families
 * per transaction through the chaincode's own `writeTransformation` (materials.ts) — the keys and
 * records recordTransformation writes — inside ordinary transactions (endorsed, ordered, validated
 * and committed by the embedded ledger). The queries then run through the real materials contract.
 *
 * One family, for fan-in a and fan-out b (1..8 each):
 *   a bales --merge/process--> lap --process x8--> combed sliver --split/process--> b yarn lots
 * i.e. a chain of depth 10 with a + 9 + b lots and 10 transformations.
 */
import fca from 'fabric-contract-api';
import { Context, Contract } from 'fabric-contract-api';

import { writeTransformation } from '@m2m-fabric/chaincode/internal';
import type { LotRecord, TransformationRecord } from '@m2m-fabric/chaincode/internal';
import { writeJson, stateKey, KeyType, txTime } from '@m2m-fabric/chaincode/internal';

const { Returns, Transaction } = fca;

export const TRACE_LOADER_MSP = 'ManufacturerMSP';
export const CHAIN_DEPTH = 10;
export const MAX_FAN = 8;
const STEPS = [
    'blow room',
    'carding',
    'drawing-1',
    'drawing-2',
    'lap forming',
    'combing',
    'drawing-3',
    'roving',
    'ring spinning',
];

/** Fan-in and fan-out of family `f` (deterministic, 1..MAX_FAN, all combinations). */
export function familyShape(f: number): { fanIn: number; fanOut: number } {
    return { fanIn: 1 + (f % MAX_FAN), fanOut: 1 + (Math.floor(f / MAX_FAN) % MAX_FAN) };
}

export function lotsOfFamily(f: number): number {
    const { fanIn, fanOut } = familyShape(f);
    return fanIn + (CHAIN_DEPTH - 1) + fanOut;
}

export const baleId = (f: number, k: number): string => `f${f}-bale-${k}`;
export const yarnId = (f: number, k: number): string => `f${f}-yarn-${k}`;
const middleId = (f: number, level: number): string => `f${f}-l${level}`;

export class TraceLoadContract extends Contract {
    constructor() {
        super('benchtrace');
    }

    /** Writes families [first, first + count). Returns the number of lots written. */
    @Transaction()
    @Returns('number')
    async loadFamilies(ctx: Context, first: string, count: string): Promise<number> {
        if (ctx.clientIdentity.getMSPID() !== TRACE_LOADER_MSP) {
            throw new Error(`only ${TRACE_LOADER_MSP} may bulk-load lots`);
        }
        const now = txTime(ctx);
        const owner = TRACE_LOADER_MSP;
        let lots = 0;
        for (let f = Number(first); f < Number(first) + Number(count); f++) {
            const { fanIn, fanOut } = familyShape(f);
            const bales: LotRecord[] = [];
            for (let k = 0; k < fanIn; k++) {
                const bale: LotRecord = {
                    lotId: baleId(f, k),
                    kind: 'cotton bale',
                    quantity: 200_000,
                    unit: 'g',
                    origin: `farm-${k}`,
                    owner,
                    generation: 0,
                    consumed: 0,
                    consumers: 0,
                    createdAt: now,
                };
                await writeJson(ctx, stateKey(ctx, KeyType.Lot, bale.lotId), bale);
                bales.push(bale);
            }
            lots += fanIn;
            let inputs = bales;
            for (let level = 1; level <= CHAIN_DEPTH; level++) {
                const last = level === CHAIN_DEPTH;
                const outputs = last
                    ? Array.from({ length: fanOut }, (_, k) => ({
                          lotId: yarnId(f, k),
                          kind: 'combed yarn',
                          quantity: 1000,
                          unit: 'g',
                      }))
                    : [{ lotId: middleId(f, level), kind: STEPS[level - 1] ?? 'sliver', quantity: 150_000, unit: 'g' }];
                const record: TransformationRecord = {
                    transformationId: `f${f}-t${level}`,
                    kind:
                        inputs.length > 1 && outputs.length === 1
                            ? 'merge'
                            : inputs.length === 1 && outputs.length > 1
                              ? 'split'
                              : 'process',
                    equipmentId: `machine-${level}-${f % 16}`,
                    step: STEPS[level - 1] ?? 'winding',
                    inputs: inputs.map((lot) => ({ lotId: lot.lotId, quantity: Math.min(lot.quantity, 1000) })),
                    outputs,
                    parameters: { speed: `${700 + level} rpm` },
                    qualityRefs: [],
                    owner,
                    recordedBy: 'owner',
                    submitter: owner,
                    recordedAt: now,
                };
                await writeTransformation(ctx, record, inputs, level);
                lots += outputs.length;
                inputs = outputs.map((o) => ({
                    ...o,
                    origin: `${record.step}@${record.equipmentId}`,
                    owner,
                    generation: level,
                    consumed: 0,
                    consumers: 0,
                    producedBy: record.transformationId,
                    createdAt: now,
                }));
            }
        }
        return lots;
    }
}
