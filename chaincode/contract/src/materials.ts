/**
 * Material traceability (paper 000 §5, the "material blockchain"): material lots and the
 * transformations machines perform on them — a bale opened into laps, laps carded into sliver,
 * slivers drawn and combed into yarn. Each transformation consumes input lots (in part or whole)
 * and creates new output lots; it is recorded by the equipment that did it, as registered in the
 * M-EB, with its process parameters and references to the quality records of the step.
 *
 * Rules enforced here:
 *  - a lot is consumed at most once in total quantity: every consumption rewrites the lot record
 *    (consumed += quantity), so two concurrent transformations over-drawing one lot read the same
 *    version and Fabric's MVCC check invalidates the later one (as the double-use check does);
 *  - only the equipment's owner organisation, or the equipment itself (a Schnorr signature by its
 *    M-EB static key over the transformation, in the transient map), records a step, and a
 *    decommissioned or replaced machine records nothing;
 *  - outputs are new lots: an output that is an input or an ancestor of one is a cycle (lotCycle).
 *
 * Keys are laid out so that every step of a query is a point read or a bounded range read:
 *   lot [id]                               -> the lot, with the transformation that produced it
 *   transformation [id]                    -> inputs, outputs, machine, step, parameters, quality refs
 *   lot~consumer [lot, transformation]     -> the (at most MAX_CONSUMERS) transformations a lot fed
 *   machine~step [equipment, day, time, t] -> what a machine did, bucketed by UTC day
 * Traces walk breadth first and stop with traceDepthExceeded / traceTooLarge past their bounds.
 */
import {
    TransformationKind,
    type LotRecord,
    type TransformationInput,
    type TransformationOutput,
    type TransformationRecord,
    type TransformationSpec,
} from '@m2m-fabric/protocol';
import fca from 'fabric-contract-api';
import { Context } from 'fabric-contract-api';

import { fromHex } from '@m2m-fabric/protocol';
import { decodePoint } from '@m2m-fabric/protocol';
import { SchnorrContext, decodeSchnorrSignature, schnorrVerify } from '@m2m-fabric/protocol';
import { Role, requireRole } from './access.js';
import type { AccessPolicy } from './access.js';
import { M2MContract } from './base.js';
import { canonicalJson } from './canonical-json.js';
import type { JsonValue } from './canonical-json.js';
import { EquipmentStatus, readEquipment } from './equipment.js';
import { ErrorCode, reject } from './errors.js';
import { EventName, emitEvent } from './events.js';
import { KeyType, readCspConfig, readJson, stateKey, txTime, writeJson } from './state.js';
import {
    IDENTIFIER_PATTERN,
    LABEL_PATTERN,
    requireContentAddress,
    requireIdentifier,
    requireInteger,
    requireLabel,
    requireOneOf,
    requireOnlyTransientKeys,
    requireString,
} from './validate.js';

const { Info, Returns, Transaction } = fca;

/** Inputs and outputs per transformation (paper 000's cases need at most 8; headroom for 16). */
export const MAX_TRANSFORMATION_INPUTS = 16;
export const MAX_TRANSFORMATION_OUTPUTS = 16;
/** Transformations one lot may feed: bounds the forward step's range read. */
export const MAX_CONSUMERS = 16;
/** Deepest trace a query may ask for, and the longest production chain a lot may have. */
export const MAX_TRACE_DEPTH = 64;
/** Transformations one trace walk may visit (all pages together). */
export const MAX_TRACE_TRANSFORMATIONS = 2000;
export const MAX_TRACE_PAGE = 200;
/** Widest window of "what did this machine do between t1 and t2", in UTC days (one range read each). */
export const MAX_MACHINE_WINDOW_DAYS = 366;
export const MAX_PARAMETERS = 32;
export const MAX_QUALITY_REFS = 16;
/** Largest quantity (in the lot's unit, an integer: grams, metres, cones). */
export const MAX_QUANTITY = 1_000_000_000_000_000;
/** Largest transformation argument (JSON), bytes. */
export const MAX_TRANSFORMATION_BYTES = 32 * 1024;

const TRANSFORMATION_KINDS = Object.values(TransformationKind);

// The records' shapes live in the protocol module, shared with the SDK.
export { TransformationKind };
export type { LotRecord, TransformationInput, TransformationOutput, TransformationRecord, TransformationSpec };

/** Transient entry carrying the equipment's signature (hex of the Schnorr signature). */
export const MaterialsTransientKey = { EquipmentSignature: 'equipmentSignature' } as const;

/** Quality references: a CIDv1 of a communication record, or a 32-byte Merkle batch root in hex. */
const BATCH_ROOT_PATTERN = /^[0-9a-f]{64}$/;
const ISO_TIME_PATTERN = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$/;
const DAY_MS = 86_400_000;

@Info({ title: 'Materials', description: 'Material lots, transformations by M-EB equipment, traces' })
export class MaterialsContract extends M2MContract {
    constructor(policy?: AccessPolicy) {
        super('materials', policy);
    }

    /**
     * A manufacturer registers a raw lot entering production (a cotton bale); it owns the lot.
     * @throws {ContractError} `alreadyExists` when: lot … already exists
     */
    @Transaction()
    @Returns('string')
    async registerLot(
        ctx: Context,
        lotId: string,
        kind: string,
        quantity: string,
        unit: string,
        origin: string,
    ): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Manufacturer);
        const id = requireIdentifier('lotId', lotId);
        const record: LotRecord = {
            lotId: id,
            kind: requireLabel('kind', kind),
            quantity: requireInteger('quantity', quantity, 1, MAX_QUANTITY),
            unit: requireIdentifier('unit', unit),
            origin: requireLabel('origin', origin),
            owner: caller.mspId,
            generation: 0,
            consumed: 0,
            consumers: 0,
            createdAt: txTime(ctx),
        };
        if ((await readJson(ctx, stateKey(ctx, KeyType.Lot, id))) !== undefined) {
            return reject(ErrorCode.AlreadyExists, `lot ${id} already exists`);
        }
        await writeJson(ctx, stateKey(ctx, KeyType.Lot, id), record);
        emitEvent(ctx, EventName.LotRegistered, { lotId: id, owner: record.owner });
        return canonicalJson(record);
    }

    /**
     * Records a transformation (JSON argument: transformationId, kind, equipmentId, step, inputs
     * [{lotId, quantity}], outputs [{lotId, kind, quantity, unit}], parameters {name: value},
     * qualityRefs [CID or batch root]). Authorised by the equipment's owner organisation, or by any
     * channel member carrying the equipment's signature over the exact argument bytes in the
     * transient entry `equipmentSignature`.
     *
     * @throws unknownEquipment, equipmentRetired, unauthorisedMsp, failedSignatureVerification,
     *   unknownLot, lotOverConsumed, lotCycle, alreadyExists, traceDepthExceeded, malformedInput.
     */
    @Transaction()
    @Returns('string')
    async recordTransformation(ctx: Context, transformation: string): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Manufacturer, Role.Fog, Role.Csp);
        requireOnlyTransientKeys(ctx, (key) => key === MaterialsTransientKey.EquipmentSignature);
        const spec: TransformationSpec = parseTransformation(transformation);
        const equipment = await readEquipment(ctx, spec.equipmentId);
        if (equipment.status === EquipmentStatus.Decommissioned || equipment.status === EquipmentStatus.Replaced) {
            return reject(ErrorCode.EquipmentRetired, `equipment ${spec.equipmentId} is ${equipment.status}`);
        }
        const signature = ctx.stub.getTransient().get(MaterialsTransientKey.EquipmentSignature);
        let recordedBy: TransformationRecord['recordedBy'];
        if (signature !== undefined) {
            const { suite } = await readCspConfig(ctx);
            let parsed;
            try {
                parsed = decodeSchnorrSignature(suite, new Uint8Array(signature));
            } catch {
                return reject(ErrorCode.MalformedInput, 'equipmentSignature is not a signature of the suite');
            }
            const publicKey = decodePoint(suite, fromHex(equipment.publicKey));
            const message = new TextEncoder().encode(transformation);
            if (!schnorrVerify(suite, SchnorrContext.MaterialTransformation, publicKey, message, parsed)) {
                return reject(
                    ErrorCode.FailedSignatureVerification,
                    `the transformation is not signed by equipment ${spec.equipmentId}`,
                );
            }
            recordedBy = 'equipment';
        } else if (caller.role === Role.Manufacturer && caller.mspId === equipment.owner) {
            recordedBy = 'owner';
        } else {
            return reject(
                ErrorCode.UnauthorisedMsp,
                `only ${equipment.owner} or equipment ${spec.equipmentId} itself may record its steps`,
            );
        }
        const transformationKey = stateKey(ctx, KeyType.Transformation, spec.transformationId);
        if ((await readJson(ctx, transformationKey)) !== undefined) {
            return reject(ErrorCode.AlreadyExists, `transformation ${spec.transformationId} already exists`);
        }

        // Inputs: exist, belong to the machine's organisation, and hold what is drawn from them.
        const inputs: LotRecord[] = [];
        let generation = 0;
        for (const input of spec.inputs) {
            const lot = await readLot(ctx, input.lotId);
            if (lot.owner !== equipment.owner) {
                return reject(ErrorCode.UnauthorisedMsp, `lot ${lot.lotId} belongs to ${lot.owner}`);
            }
            if (input.quantity > lot.quantity - lot.consumed) {
                return reject(
                    ErrorCode.LotOverConsumed,
                    `lot ${lot.lotId} holds ${lot.quantity - lot.consumed} ${lot.unit}, ${input.quantity} requested`,
                );
            }
            if (lot.consumers >= MAX_CONSUMERS) {
                return reject(
                    ErrorCode.LotOverConsumed,
                    `lot ${lot.lotId} already fed ${MAX_CONSUMERS} transformations`,
                );
            }
            inputs.push(lot);
            generation = Math.max(generation, lot.generation + 1);
        }
        if (generation > MAX_TRACE_DEPTH) {
            return reject(ErrorCode.TraceDepthExceeded, `an output would be ${generation} steps from its raw lots`);
        }
        // Outputs: new lots. One that already exists is a cycle when it is an input's ancestor.
        const inputIds = new Set(spec.inputs.map((input) => input.lotId));
        for (const output of spec.outputs) {
            if (inputIds.has(output.lotId)) {
                return reject(ErrorCode.LotCycle, `lot ${output.lotId} cannot be made from itself`);
            }
            if ((await readJson(ctx, stateKey(ctx, KeyType.Lot, output.lotId))) !== undefined) {
                if (await isAncestorOf(ctx, output.lotId, inputs)) {
                    return reject(ErrorCode.LotCycle, `lot ${output.lotId} is an ancestor of the inputs`);
                }
                return reject(ErrorCode.AlreadyExists, `lot ${output.lotId} already exists`);
            }
        }

        const now = txTime(ctx);
        const record: TransformationRecord = {
            ...spec,
            owner: equipment.owner,
            recordedBy,
            submitter: caller.mspId,
            recordedAt: now,
        };
        await writeTransformation(ctx, record, inputs, generation);
        emitEvent(ctx, EventName.TransformationRecorded, {
            transformationId: spec.transformationId,
            equipmentId: spec.equipmentId,
            owner: equipment.owner,
        });
        return canonicalJson(record);
    }

    @Transaction(false)
    @Returns('string')
    async getLot(ctx: Context, lotId: string): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        return canonicalJson(await readLot(ctx, requireIdentifier('lotId', lotId)));
    }

    @Transaction(false)
    @Returns('string')
    async getTransformation(ctx: Context, transformationId: string): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        return canonicalJson(await readTransformation(ctx, requireIdentifier('transformationId', transformationId)));
    }

    /**
     * Backward trace: every ancestor of a lot — the transformations that led to it, nearest first,
     * with the machines and steps — one page at a time (bookmark '' first; each page returns the
     * next bookmark, '' after the last).
     *
     * @throws unknownLot; traceDepthExceeded when the history reaches further back than maxDepth;
     *   traceTooLarge past MAX_TRACE_TRANSFORMATIONS.
     */
    @Transaction(false)
    @Returns('string')
    async traceBackward(
        ctx: Context,
        lotId: string,
        maxDepth: string,
        pageSize: string,
        bookmark: string,
    ): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        return trace(ctx, 'backward', lotId, maxDepth, pageSize, bookmark);
    }

    /** Forward trace (recall: "which yarn came from bale X?"): every descendant of a lot. Same paging and errors. */
    @Transaction(false)
    @Returns('string')
    async traceForward(
        ctx: Context,
        lotId: string,
        maxDepth: string,
        pageSize: string,
        bookmark: string,
    ): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        return trace(ctx, 'forward', lotId, maxDepth, pageSize, bookmark);
    }

    /**
     * The faulty-machine question: every transformation `equipmentId` recorded in [from, until]
     * (ISO 8601 UTC with milliseconds), oldest first, with the lots it consumed and produced.
     * One range read per UTC day of the window (at most MAX_MACHINE_WINDOW_DAYS).
     * @throws {ContractError} `malformedInput` when: from and until must be valid times with from <= until; the window spans … days, at most …; bookmark is not …
     */
    @Transaction(false)
    @Returns('string')
    async queryMachineSteps(
        ctx: Context,
        equipmentId: string,
        from: string,
        until: string,
        pageSize: string,
        bookmark: string,
    ): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        const id = requireIdentifier('equipmentId', equipmentId);
        const start = requireString('from', from, ISO_TIME_PATTERN);
        const end = requireString('until', until, ISO_TIME_PATTERN);
        const size = requireInteger('pageSize', pageSize, 1, MAX_TRACE_PAGE);
        const startMs = Date.parse(start);
        const endMs = Date.parse(end);
        if (Number.isNaN(startMs) || Number.isNaN(endMs) || endMs < startMs) {
            return reject(ErrorCode.MalformedInput, 'from and until must be valid times with from <= until');
        }
        const days = Math.floor(endMs / DAY_MS) - Math.floor(startMs / DAY_MS) + 1;
        if (days > MAX_MACHINE_WINDOW_DAYS) {
            return reject(
                ErrorCode.MalformedInput,
                `the window spans ${days} days, at most ${MAX_MACHINE_WINDOW_DAYS}`,
            );
        }
        // Bookmark: '<recordedAt>|<transformationId>' of the last entry returned.
        let after: [string, string] | undefined;
        if (bookmark !== '') {
            const [time, tid, extra] = String(bookmark).split('|');
            if (
                extra !== undefined ||
                time === undefined ||
                tid === undefined ||
                !ISO_TIME_PATTERN.test(time) ||
                !IDENTIFIER_PATTERN.test(tid)
            ) {
                return reject(ErrorCode.MalformedInput, 'bookmark is not one this query returned');
            }
            after = [time, tid];
        }
        await readEquipment(ctx, id);
        const found: [string, string][] = [];
        let more = false;
        const firstDay = Math.floor((after === undefined ? startMs : Math.max(startMs, Date.parse(after[0]))) / DAY_MS);
        outer: for (let day = firstDay; day <= Math.floor(endMs / DAY_MS); day++) {
            const dayKey = new Date(day * DAY_MS).toISOString().slice(0, 10);
            const iterator = await ctx.stub.getStateByPartialCompositeKey(KeyType.MachineStep, [id, dayKey]);
            try {
                for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
                    const attributes = ctx.stub.splitCompositeKey(next.value.key).attributes;
                    const time = attributes[2];
                    const tid = attributes[3];
                    if (time === undefined || tid === undefined || time < start) continue;
                    if (time > end) break;
                    if (after !== undefined && (time < after[0] || (time === after[0] && tid <= after[1]))) continue;
                    if (found.length === size) {
                        more = true;
                        break outer;
                    }
                    found.push([time, tid]);
                }
            } finally {
                await iterator.close();
            }
        }
        const records: JsonValue[] = [];
        for (const [, tid] of found) records.push(await readTransformation(ctx, tid));
        const last = found[found.length - 1];
        return canonicalJson({
            equipmentId: id,
            records,
            count: records.length,
            bookmark: more && last !== undefined ? `${last[0]}|${last[1]}` : '',
        });
    }
}

/** Index entries hold no data (a single byte: Fabric treats an empty value as a delete). */
const INDEX_MARKER = Uint8Array.of(0);

/**
 * The writes of one validated transformation: its record, the inputs' consumption and consumer
 * index, the output lots and the machine's time index. Exported for the trace benchmark's bulk
 * loader, so a loaded graph has exactly the layout recordTransformation writes.
 */
export async function writeTransformation(
    ctx: Context,
    record: TransformationRecord,
    inputs: readonly LotRecord[],
    generation: number,
): Promise<void> {
    const now = record.recordedAt;
    await writeJson(ctx, stateKey(ctx, KeyType.Transformation, record.transformationId), record);
    for (const [k, lot] of inputs.entries()) {
        const drawn = record.inputs[k]?.quantity ?? 0;
        await writeJson(ctx, stateKey(ctx, KeyType.Lot, lot.lotId), {
            ...lot,
            consumed: lot.consumed + drawn,
            consumers: lot.consumers + 1,
        });
        await ctx.stub.putState(stateKey(ctx, KeyType.LotConsumer, lot.lotId, record.transformationId), INDEX_MARKER);
    }
    for (const output of record.outputs) {
        const lot: LotRecord = {
            lotId: output.lotId,
            kind: output.kind,
            quantity: output.quantity,
            unit: output.unit,
            origin: `${record.step}@${record.equipmentId}`,
            owner: record.owner,
            generation,
            consumed: 0,
            consumers: 0,
            producedBy: record.transformationId,
            createdAt: now,
        };
        await writeJson(ctx, stateKey(ctx, KeyType.Lot, output.lotId), lot);
    }
    await ctx.stub.putState(
        stateKey(ctx, KeyType.MachineStep, record.equipmentId, now.slice(0, 10), now, record.transformationId),
        INDEX_MARKER,
    );
}

async function readLot(ctx: Context, id: string): Promise<LotRecord> {
    const stored = await readJson(ctx, stateKey(ctx, KeyType.Lot, id));
    if (stored === undefined) {
        return reject(ErrorCode.UnknownLot, `no lot ${id}`);
    }
    return stored as unknown as LotRecord;
}

async function readTransformation(ctx: Context, id: string): Promise<TransformationRecord> {
    const stored = await readJson(ctx, stateKey(ctx, KeyType.Transformation, id));
    if (stored === undefined) {
        return reject(ErrorCode.UnknownTransformation, `no transformation ${id}`);
    }
    return stored as unknown as TransformationRecord;
}

/** The ids of the transformations that consumed a lot, in key order (at most MAX_CONSUMERS). */
async function consumersOf(ctx: Context, lotId: string): Promise<string[]> {
    const ids: string[] = [];
    const iterator = await ctx.stub.getStateByPartialCompositeKey(KeyType.LotConsumer, [lotId]);
    try {
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
            const tid = ctx.stub.splitCompositeKey(next.value.key).attributes[1];
            if (tid !== undefined) ids.push(tid);
            if (ids.length > MAX_CONSUMERS) break;
        }
    } finally {
        await iterator.close();
    }
    return ids;
}

/** True when `candidate` is one of the inputs' ancestors (a bounded backward walk). */
async function isAncestorOf(ctx: Context, candidate: string, inputs: readonly LotRecord[]): Promise<boolean> {
    const seen = new Set<string>();
    let frontier = inputs.map((lot) => lot.producedBy).filter((t): t is string => t !== undefined);
    for (let depth = 0; depth <= MAX_TRACE_DEPTH && frontier.length > 0; depth++) {
        const next: string[] = [];
        for (const tid of frontier) {
            if (seen.has(tid)) continue;
            seen.add(tid);
            if (seen.size > MAX_TRACE_TRANSFORMATIONS) {
                return reject(ErrorCode.TraceTooLarge, 'the inputs have too many ancestors to check for a cycle');
            }
            const t = await readTransformation(ctx, tid);
            for (const input of t.inputs) {
                if (input.lotId === candidate) return true;
                const lot = await readLot(ctx, input.lotId);
                if (lot.producedBy !== undefined) next.push(lot.producedBy);
            }
        }
        frontier = next;
    }
    return false;
}

/** One transformation of a trace, with how many steps it lies from the traced lot. */
interface TraceStep {
    distance: number;
    transformation: TransformationRecord;
}

/**
 * Breadth-first walk from a lot, transformations in a deterministic order (distance, then key
 * order of the lots and transformations met). The page is [offset, offset + size); the walk stops
 * once it has seen one transformation past the page, so a page costs O(offset + size) reads.
 */
async function trace(
    ctx: Context,
    direction: 'backward' | 'forward',
    lotId: string,
    maxDepth: string,
    pageSize: string,
    bookmark: string,
): Promise<string> {
    const id = requireIdentifier('lotId', lotId);
    const depthLimit = requireInteger('maxDepth', maxDepth, 1, MAX_TRACE_DEPTH);
    const size = requireInteger('pageSize', pageSize, 1, MAX_TRACE_PAGE);
    const offset = bookmark === '' ? 0 : requireInteger('bookmark', bookmark, 1, Number.MAX_SAFE_INTEGER);
    if (offset + size > MAX_TRACE_TRANSFORMATIONS) {
        return reject(ErrorCode.TraceTooLarge, `a trace walk stops after ${MAX_TRACE_TRANSFORMATIONS} steps`);
    }
    const root = await readLot(ctx, id);
    const wanted = offset + size + 1;
    const steps: TraceStep[] = [];
    const seenTransformations = new Set<string>();
    const seenLots = new Set<string>([id]);
    let frontier: LotRecord[] = [root];
    for (let distance = 1; frontier.length > 0 && steps.length < wanted; distance++) {
        const next: LotRecord[] = [];
        for (const lot of frontier) {
            const tids =
                direction === 'backward'
                    ? lot.producedBy === undefined
                        ? []
                        : [lot.producedBy]
                    : await consumersOf(ctx, lot.lotId);
            if (tids.length > 0 && distance > depthLimit) {
                return reject(
                    ErrorCode.TraceDepthExceeded,
                    `the ${direction} trace of ${id} reaches further than ${depthLimit} steps`,
                );
            }
            for (const tid of tids) {
                if (seenTransformations.has(tid)) continue;
                seenTransformations.add(tid);
                if (seenTransformations.size > MAX_TRACE_TRANSFORMATIONS) {
                    return reject(
                        ErrorCode.TraceTooLarge,
                        `the trace of ${id} has more than ${MAX_TRACE_TRANSFORMATIONS} steps`,
                    );
                }
                const transformation = await readTransformation(ctx, tid);
                steps.push({ distance, transformation });
                const neighbours = direction === 'backward' ? transformation.inputs : transformation.outputs;
                for (const neighbour of neighbours) {
                    if (seenLots.has(neighbour.lotId)) continue;
                    seenLots.add(neighbour.lotId);
                    next.push(await readLot(ctx, neighbour.lotId));
                }
                if (steps.length >= wanted) break;
            }
            if (steps.length >= wanted) break;
        }
        frontier = next;
    }
    const page = steps.slice(offset, offset + size);
    const more = steps.length > offset + size;
    return canonicalJson({
        lotId: id,
        direction,
        lot: root,
        steps: page.map((step) => ({ distance: step.distance, ...step.transformation })),
        count: page.length,
        bookmark: more ? String(offset + size) : '',
    });
}

/** Parses and validates the transformation argument; MalformedInput for anything off-spec. */
function parseTransformation(argument: string): TransformationSpec {
    if (typeof argument !== 'string' || argument.length > MAX_TRANSFORMATION_BYTES) {
        return reject(
            ErrorCode.MalformedInput,
            `transformation must be JSON of at most ${MAX_TRANSFORMATION_BYTES} bytes`,
        );
    }
    let value: unknown;
    try {
        value = JSON.parse(argument);
    } catch {
        return reject(ErrorCode.MalformedInput, 'transformation is not JSON');
    }
    const spec = requireObject('transformation', value, [
        'transformationId',
        'kind',
        'equipmentId',
        'step',
        'inputs',
        'outputs',
        'parameters',
        'qualityRefs',
    ]);
    const kind = requireOneOf('kind', spec.kind, TRANSFORMATION_KINDS);
    const inputs = requireArray('inputs', spec.inputs, 1, MAX_TRANSFORMATION_INPUTS).map((item, k) => {
        const input = requireObject(`inputs[${k}]`, item, ['lotId', 'quantity']);
        return {
            lotId: requireIdentifier(`inputs[${k}].lotId`, input.lotId),
            quantity: requireQuantity(`inputs[${k}].quantity`, input.quantity),
        };
    });
    const outputs = requireArray('outputs', spec.outputs, 1, MAX_TRANSFORMATION_OUTPUTS).map((item, k) => {
        const output = requireObject(`outputs[${k}]`, item, ['lotId', 'kind', 'quantity', 'unit']);
        return {
            lotId: requireIdentifier(`outputs[${k}].lotId`, output.lotId),
            kind: requireLabel(`outputs[${k}].kind`, output.kind),
            quantity: requireQuantity(`outputs[${k}].quantity`, output.quantity),
            unit: requireIdentifier(`outputs[${k}].unit`, output.unit),
        };
    });
    requireDistinct(
        'inputs',
        inputs.map((input) => input.lotId),
    );
    requireDistinct(
        'outputs',
        outputs.map((output) => output.lotId),
    );
    if (kind === TransformationKind.Split && (inputs.length !== 1 || outputs.length < 2)) {
        return reject(ErrorCode.MalformedInput, 'a split has one input and at least two outputs');
    }
    if (kind === TransformationKind.Merge && (inputs.length < 2 || outputs.length !== 1)) {
        return reject(ErrorCode.MalformedInput, 'a merge has at least two inputs and one output');
    }
    const parametersValue = spec.parameters;
    if (typeof parametersValue !== 'object' || parametersValue === null || Array.isArray(parametersValue)) {
        return reject(ErrorCode.MalformedInput, 'parameters must be an object of strings');
    }
    const names = Object.keys(parametersValue).sort();
    if (names.length > MAX_PARAMETERS) {
        return reject(ErrorCode.MalformedInput, `at most ${MAX_PARAMETERS} parameters`);
    }
    const parameters: { [name: string]: string } = {};
    for (const name of names) {
        requireIdentifier('parameter name', name);
        parameters[name] = requireString(
            `parameters.${name}`,
            (parametersValue as Record<string, unknown>)[name],
            LABEL_PATTERN,
        );
    }
    const qualityRefs = requireArray('qualityRefs', spec.qualityRefs, 0, MAX_QUALITY_REFS).map((ref, k) => {
        if (typeof ref === 'string' && BATCH_ROOT_PATTERN.test(ref)) return ref;
        requireContentAddress(`qualityRefs[${k}]`, ref);
        return ref as string;
    });
    return {
        transformationId: requireIdentifier('transformationId', spec.transformationId),
        kind,
        equipmentId: requireIdentifier('equipmentId', spec.equipmentId),
        step: requireLabel('step', spec.step),
        inputs,
        outputs,
        parameters,
        qualityRefs,
    };
}

function requireObject(name: string, value: unknown, fields: readonly string[]): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        return reject(ErrorCode.MalformedInput, `${name} must be an object`);
    }
    for (const key of Object.keys(value)) {
        if (!fields.includes(key)) reject(ErrorCode.MalformedInput, `${name} has an unknown field ${key}`);
    }
    for (const field of fields) {
        if (!(field in value)) reject(ErrorCode.MalformedInput, `${name} lacks ${field}`);
    }
    return value as Record<string, unknown>;
}

function requireArray(name: string, value: unknown, min: number, max: number): unknown[] {
    if (!Array.isArray(value) || value.length < min || value.length > max) {
        return reject(ErrorCode.MalformedInput, `${name} must be a list of ${min} to ${max} entries`);
    }
    return value as unknown[];
}

function requireQuantity(name: string, value: unknown): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > MAX_QUANTITY) {
        return reject(ErrorCode.MalformedInput, `${name} must be an integer between 1 and ${MAX_QUANTITY}`);
    }
    return value;
}

function requireDistinct(name: string, ids: readonly string[]): void {
    if (new Set(ids).size !== ids.length) {
        reject(ErrorCode.MalformedInput, `${name} name a lot twice`);
    }
}
