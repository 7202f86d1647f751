/**
 * Machine-Equipment Blockchain (paper 000 §4.2, paper 002's block body): the registry of
 * manufacturing equipment. A manufacturer registers its equipment with a static public key, keeps
 * its operating status current, and replaces it; every version stays readable through the key's
 * history, including equipment that has left (replaced or decommissioned records are never
 * deleted). Equipment records are never linked to certificates or sessions.
 */
import fca from 'fabric-contract-api';
import { Context } from 'fabric-contract-api';

import { toHex } from '@m2m-fabric/protocol';
import { Role, requireOwnerOrRole, requireRole } from './access.js';
import type { AccessPolicy } from './access.js';
import { M2MContract } from './base.js';
import { canonicalJson, fromJsonBytes } from './canonical-json.js';
import type { JsonValue } from './canonical-json.js';
import { ErrorCode, reject } from './errors.js';
import { EventName, emitEvent } from './events.js';
import { RevocationTransientKey, requireSeed, revokeBySeed } from './revocation.js';
import { KeyType, readCspConfig, readJson, stateKey, txTime, writeJson } from './state.js';
import {
    requireBookmark,
    requireIdentifier,
    requireInteger,
    requireLabel,
    requireOneOf,
    requireOnlyTransientKeys,
    requirePoint,
    requireString,
} from './validate.js';

const { Info, Returns, Transaction } = fca;

export const EquipmentStatus = {
    Registered: 'registered',
    Online: 'online',
    Offline: 'offline',
    Maintenance: 'maintenance',
    Replaced: 'replaced',
    Decommissioned: 'decommissioned',
} as const;
export type EquipmentStatus = (typeof EquipmentStatus)[keyof typeof EquipmentStatus];
export const EQUIPMENT_STATUSES = Object.values(EquipmentStatus);

/**
 * Allowed status changes by updateEquipmentStatus. 'replaced' is reached only through
 * replaceEquipment (which links the successor); replaced and decommissioned are final.
 */
const STATUS_TRANSITIONS: Readonly<Record<EquipmentStatus, readonly EquipmentStatus[]>> = {
    registered: ['online', 'offline', 'maintenance', 'decommissioned'],
    online: ['offline', 'maintenance', 'decommissioned'],
    offline: ['online', 'maintenance', 'decommissioned'],
    maintenance: ['online', 'offline', 'decommissioned'],
    replaced: [],
    decommissioned: [],
};

/** Paper 000's communication data types: uploading (telemetry), downloading (orders, parameters). */
export const ServiceType = {
    Upload: 'upload',
    Download: 'download',
    UploadDownload: 'upload-download',
} as const;
export type ServiceType = (typeof ServiceType)[keyof typeof ServiceType];
export const SERVICE_TYPES = Object.values(ServiceType);

/** Highest privilege level (paper 002 leaves the scale open; 0 is the least privileged). */
export const MAX_PRIVILEGE_LEVEL = 15;
/** Daily access window in UTC, 'HH:MM-HH:MM', or 'always'. */
export const ACCESS_TIME_PATTERN = /^(always|([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9])$/;
export const MAX_PAGE_SIZE = 100;

export interface EquipmentRecord {
    [key: string]: JsonValue | undefined;
    equipmentId: string;
    owner: string;
    kind: string;
    model: string;
    fogGroup: string;
    /** Static public key, SEC1 compressed hex on the deployment's curve. */
    publicKey: string;
    status: EquipmentStatus;
    privilegeLevel: number;
    serviceType: ServiceType;
    accessTime: string;
    registeredAt: string;
    updatedAt: string;
    /** The equipment this one replaced. */
    replaces?: string;
    /** The equipment that replaced this one. */
    replacedBy?: string;
}

interface EquipmentFields {
    equipmentId: string;
    kind: string;
    model: string;
    fogGroup: string;
    publicKey: string;
    privilegeLevel: string;
    serviceType: string;
    accessTime: string;
}

@Info({ title: 'MachineEquipment', description: 'Machine-Equipment Blockchain (M-EB): equipment registry' })
export class EquipmentContract extends M2MContract {
    constructor(policy?: AccessPolicy) {
        super('equipment', policy);
    }

    /** A manufacturer registers a piece of equipment it owns; status starts as 'registered'. */
    @Transaction()
    @Returns('string')
    async registerEquipment(
        ctx: Context,
        equipmentId: string,
        kind: string,
        model: string,
        fogGroup: string,
        publicKey: string,
        privilegeLevel: string,
        serviceType: string,
        accessTime: string,
    ): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Manufacturer);
        const record = await this.newRecord(ctx, caller.mspId, {
            equipmentId,
            kind,
            model,
            fogGroup,
            publicKey,
            privilegeLevel,
            serviceType,
            accessTime,
        });
        await writeEquipment(ctx, record, undefined);
        emitEvent(ctx, EventName.EquipmentRegistered, { owner: record.owner, fogGroup: record.fogGroup });
        return canonicalJson(record);
    }

    /**
     * The owner changes the operating status (see STATUS_TRANSITIONS).
     * @throws {ContractError} `invalidStateTransition` when: equipment cannot go from … to …
     */
    @Transaction()
    @Returns('string')
    async updateEquipmentStatus(ctx: Context, equipmentId: string, status: string): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Manufacturer);
        const id = requireIdentifier('equipmentId', equipmentId);
        const next = requireOneOf('status', status, EQUIPMENT_STATUSES);
        const current = await readOwnedEquipment(ctx, id, caller.mspId);
        if (!STATUS_TRANSITIONS[current.status].includes(next)) {
            return reject(ErrorCode.InvalidStateTransition, `equipment cannot go from ${current.status} to ${next}`);
        }
        const updated: EquipmentRecord = { ...current, status: next, updatedAt: txTime(ctx) };
        await writeEquipment(ctx, updated, current);
        emitEvent(ctx, EventName.EquipmentStatusChanged, {
            owner: updated.owner,
            fogGroup: updated.fogGroup,
            status: next,
        });
        return canonicalJson(updated);
    }

    /**
     * The owner decommissions equipment and, in the same transaction, revokes its remaining
     * certificates: arguments the equipment id and the counter range of its purchased sessions;
     * transient 'revocationSeed' = the device's rs_α (revocation.ts). Decommissioning names the
     * equipment, so the certificates this revokes become linked to it on-chain (documented in
     * docs/protocol.md). Throws like updateEquipmentStatus and revokeDevice; nothing changes on any
     * rejection.
     * @throws {ContractError} `invalidStateTransition` when: equipment cannot go from … to decommissioned
     */
    @Transaction()
    @Returns('string')
    async decommissionEquipment(
        ctx: Context,
        equipmentId: string,
        fromCounter: string,
        toCounter: string,
    ): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Manufacturer);
        const id = requireIdentifier('equipmentId', equipmentId);
        const from = requireInteger('fromCounter', fromCounter, 1, Number.MAX_SAFE_INTEGER - 1);
        const to = requireInteger('toCounter', toCounter, 2, Number.MAX_SAFE_INTEGER);
        requireOnlyTransientKeys(ctx, (key) => key === RevocationTransientKey.Seed);
        const current = await readOwnedEquipment(ctx, id, caller.mspId);
        if (!STATUS_TRANSITIONS[current.status].includes(EquipmentStatus.Decommissioned)) {
            return reject(
                ErrorCode.InvalidStateTransition,
                `equipment cannot go from ${current.status} to decommissioned`,
            );
        }
        const { suite } = await readCspConfig(ctx);
        const revocation = await revokeBySeed(ctx, caller, suite, requireSeed(ctx, suite), from, to);
        const updated: EquipmentRecord = { ...current, status: EquipmentStatus.Decommissioned, updatedAt: txTime(ctx) };
        await writeEquipment(ctx, updated, current);
        emitEvent(ctx, EventName.EquipmentDecommissioned, {
            owner: updated.owner,
            fogGroup: updated.fogGroup,
            revoked: revocation.revoked,
        });
        return canonicalJson({ equipment: updated as unknown as JsonValue, revocation });
    }

    /**
     * The owner replaces equipment: the new equipment is registered with `replaces` pointing to the
     * old one, and the old one becomes 'replaced' with `replacedBy` pointing to the new one.
     * @throws {ContractError} `invalidStateTransition` when: equipment is … and cannot be replaced
     */
    @Transaction()
    @Returns('string')
    async replaceEquipment(
        ctx: Context,
        oldEquipmentId: string,
        equipmentId: string,
        kind: string,
        model: string,
        fogGroup: string,
        publicKey: string,
        privilegeLevel: string,
        serviceType: string,
        accessTime: string,
    ): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Manufacturer);
        const oldId = requireIdentifier('oldEquipmentId', oldEquipmentId);
        const old = await readOwnedEquipment(ctx, oldId, caller.mspId);
        if (old.status === EquipmentStatus.Replaced || old.status === EquipmentStatus.Decommissioned) {
            return reject(ErrorCode.InvalidStateTransition, `equipment is ${old.status} and cannot be replaced`);
        }
        const successor = await this.newRecord(ctx, caller.mspId, {
            equipmentId,
            kind,
            model,
            fogGroup,
            publicKey,
            privilegeLevel,
            serviceType,
            accessTime,
        });
        successor.replaces = oldId;
        const retired: EquipmentRecord = {
            ...old,
            status: EquipmentStatus.Replaced,
            replacedBy: successor.equipmentId,
            updatedAt: successor.updatedAt,
        };
        await writeEquipment(ctx, retired, old);
        await writeEquipment(ctx, successor, undefined);
        emitEvent(ctx, EventName.EquipmentReplaced, { owner: caller.mspId, fogGroup: successor.fogGroup });
        return canonicalJson({ replaced: retired, successor });
    }

    /** One record: its owner, the CSP and the fogs may read it. */
    @Transaction(false)
    @Returns('string')
    async getEquipment(ctx: Context, equipmentId: string): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        const record = await readEquipment(ctx, requireIdentifier('equipmentId', equipmentId));
        requireOwnerOrRole(caller, record.owner, 'this equipment');
        return canonicalJson(record);
    }

    /** Every version of a record, oldest first, with the transaction that wrote it. */
    @Transaction(false)
    @Returns('string')
    async getEquipmentHistory(ctx: Context, equipmentId: string): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        const id = requireIdentifier('equipmentId', equipmentId);
        const record = await readEquipment(ctx, id);
        requireOwnerOrRole(caller, record.owner, 'this equipment');
        const versions: JsonValue[] = [];
        const iterator = await ctx.stub.getHistoryForKey(stateKey(ctx, KeyType.Equipment, id));
        try {
            for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
                const modification = next.value;
                versions.push({
                    txId: modification.txId,
                    timestamp: timestampToIso(modification.timestamp),
                    isDelete: modification.isDelete,
                    record: modification.isDelete ? null : (fromJsonBytes(modification.value) as JsonValue),
                });
            }
        } finally {
            await iterator.close();
        }
        // Fabric returns history newest first; an audit reads oldest first.
        versions.reverse();
        return canonicalJson({ equipmentId: id, versions });
    }

    /** A page of the equipment owned by `owner` (a manufacturer may list its own only). */
    @Transaction(false)
    @Returns('string')
    async queryEquipmentByOwner(ctx: Context, owner: string, pageSize: string, bookmark: string): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        const account = requireIdentifier('owner', owner);
        requireOwnerOrRole(caller, account, `equipment of ${account}`);
        return queryIndex(ctx, KeyType.EquipmentByOwner, account, pageSize, bookmark);
    }

    /** A page of the equipment served by a fog group (CSP and fogs). */
    @Transaction(false)
    @Returns('string')
    async queryEquipmentByFogGroup(
        ctx: Context,
        fogGroup: string,
        pageSize: string,
        bookmark: string,
    ): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog);
        const group = requireIdentifier('fogGroup', fogGroup);
        return queryIndex(ctx, KeyType.EquipmentByFogGroup, group, pageSize, bookmark);
    }

    /** A page of the equipment in one status (CSP and fogs). */
    @Transaction(false)
    @Returns('string')
    async queryEquipmentByStatus(ctx: Context, status: string, pageSize: string, bookmark: string): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog);
        const wanted = requireOneOf('status', status, EQUIPMENT_STATUSES);
        return queryIndex(ctx, KeyType.EquipmentByStatus, wanted, pageSize, bookmark);
    }

    private async newRecord(ctx: Context, owner: string, fields: EquipmentFields): Promise<EquipmentRecord> {
        const id = requireIdentifier('equipmentId', fields.equipmentId);
        const kind = requireLabel('kind', fields.kind);
        const model = requireLabel('model', fields.model);
        const fogGroup = requireIdentifier('fogGroup', fields.fogGroup);
        const { suite } = await readCspConfig(ctx);
        const publicKey = requirePoint('publicKey', fields.publicKey, suite);
        const privilegeLevel = requireInteger('privilegeLevel', fields.privilegeLevel, 0, MAX_PRIVILEGE_LEVEL);
        const serviceType = requireOneOf('serviceType', fields.serviceType, SERVICE_TYPES);
        const accessTime = requireString('accessTime', fields.accessTime, ACCESS_TIME_PATTERN);
        if ((await readJson(ctx, stateKey(ctx, KeyType.Equipment, id))) !== undefined) {
            return reject(ErrorCode.AlreadyExists, `equipment ${id} is already registered`);
        }
        const now = txTime(ctx);
        return {
            equipmentId: id,
            owner,
            kind,
            model,
            fogGroup,
            publicKey: toHex(publicKey.bytes),
            status: EquipmentStatus.Registered,
            privilegeLevel,
            serviceType,
            accessTime,
            registeredAt: now,
            updatedAt: now,
        };
    }
}

export async function readEquipment(ctx: Context, id: string): Promise<EquipmentRecord> {
    const stored = await readJson(ctx, stateKey(ctx, KeyType.Equipment, id));
    if (stored === undefined) {
        return reject(ErrorCode.UnknownEquipment, `no equipment ${id}`);
    }
    return stored as unknown as EquipmentRecord;
}

async function readOwnedEquipment(ctx: Context, id: string, mspId: string): Promise<EquipmentRecord> {
    const record = await readEquipment(ctx, id);
    if (record.owner !== mspId) {
        return reject(ErrorCode.UnauthorisedMsp, 'only the owner may change this equipment');
    }
    return record;
}

/** Index entries hold no data (a single byte: Fabric treats an empty value as a delete). */
const INDEX_MARKER = Uint8Array.of(0);

/** Writes the record and keeps the owner / fog-group / status indexes in step with it. */
async function writeEquipment(
    ctx: Context,
    record: EquipmentRecord,
    previous: EquipmentRecord | undefined,
): Promise<void> {
    const id = record.equipmentId;
    await writeJson(ctx, stateKey(ctx, KeyType.Equipment, id), record);
    if (previous === undefined) {
        await ctx.stub.putState(stateKey(ctx, KeyType.EquipmentByOwner, record.owner, id), INDEX_MARKER);
        await ctx.stub.putState(stateKey(ctx, KeyType.EquipmentByFogGroup, record.fogGroup, id), INDEX_MARKER);
        await ctx.stub.putState(stateKey(ctx, KeyType.EquipmentByStatus, record.status, id), INDEX_MARKER);
    } else if (previous.status !== record.status) {
        await ctx.stub.deleteState(stateKey(ctx, KeyType.EquipmentByStatus, previous.status, id));
        await ctx.stub.putState(stateKey(ctx, KeyType.EquipmentByStatus, record.status, id), INDEX_MARKER);
    }
}

/**
 * One page of an index. `bookmark` is '' for the first page; each result carries the bookmark of
 * the next (the last equipment id returned). The page is cut by the contract over a partial
 * composite-key query rather than with Fabric's paginated query, so the same chaincode pages
 * identically on a peer and on the embedded ledger (which has no paginated queries). Keys come
 * back in key order on both, so the pages are deterministic.
 */
async function queryIndex(
    ctx: Context,
    index: (typeof KeyType)['EquipmentByOwner' | 'EquipmentByFogGroup' | 'EquipmentByStatus'],
    value: string,
    pageSize: string,
    bookmark: string,
): Promise<string> {
    const size = requireInteger('pageSize', pageSize, 1, MAX_PAGE_SIZE);
    const after = requireBookmark('bookmark', bookmark);
    const ids: string[] = [];
    let more = false;
    const iterator = await ctx.stub.getStateByPartialCompositeKey(index, [value]);
    try {
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
            const id = ctx.stub.splitCompositeKey(next.value.key).attributes[1];
            if (id === undefined || (after !== '' && compareKeys(id, after) <= 0)) {
                continue;
            }
            if (ids.length === size) {
                more = true;
                break;
            }
            ids.push(id);
        }
    } finally {
        await iterator.close();
    }
    const records: JsonValue[] = [];
    for (const id of ids) {
        records.push(await readEquipment(ctx, id));
    }
    const last = ids[ids.length - 1];
    return canonicalJson({ records, count: records.length, bookmark: more && last !== undefined ? last : '' });
}

/** Fabric orders keys by their UTF-8 bytes. */
function compareKeys(a: string, b: string): number {
    return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function timestampToIso(timestamp: { seconds: unknown; nanos: number }): string {
    const seconds = Number(String(timestamp.seconds));
    return new Date(seconds * 1000 + Math.floor(timestamp.nanos / 1e6)).toISOString();
}
