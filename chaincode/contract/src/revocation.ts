/**
 * Revocation of a device's remaining certificates (SCMS-style linkage; protocol revocation.ts).
 *
 * At purchase the manufacturer registers one revocation tag t_i = H(rs_α, i) per certificate
 * (requestSessions, transient 'revocationTags'); a tag is pseudorandom, so before revocation no
 * two of a device's certificates are linked on-chain. To revoke, the owner — or the CSP, given
 * the seed — submits rs_α in the transient map with a counter range; the chaincode recomputes the
 * tags of that range, and every certificate they name that is not yet used becomes 'revoked'
 * (activation then fails with certificateRevoked). The revocation record is keyed by H(rs_α), so
 * rs_α stays off the ledger: what becomes public is that these certificates (the records this
 * transaction writes) belong to one device — no other device's, and neither w, ID_i nor the
 * equipment id (unless the revocation is a decommissioning, which names the equipment).
 *
 * Concurrency: revocation reads and writes each certificate record an activation reads and
 * writes, so Fabric's MVCC check lets exactly one of a racing revocation and activation commit.
 * A second revocation of the same seed is refused with alreadyRevoked and changes nothing (the
 * first one stands, so retrying a revocation is safe).
 */
import fca from 'fabric-contract-api';
import { Context } from 'fabric-contract-api';

import { MAX_REVOCATION_RANGE, fromHex, revocationId, revocationTag, toHex } from '@m2m-fabric/protocol';
import type { Suite } from '@m2m-fabric/protocol';
import { Role, requireRole } from './access.js';
import type { AccessPolicy, Caller } from './access.js';
import { M2MContract } from './base.js';
import { canonicalJson } from './canonical-json.js';
import { ErrorCode, reject } from './errors.js';
import { EventName, emitEvent } from './events.js';
import type { RevocationRecord } from '@m2m-fabric/protocol';
import { readSessionRecord, setSessionStatus } from './sessions.js';
import { CertificateStatus, SessionStatus, decodeCertificateRecord, encodeCertificateRecord } from './records.js';
import {
    KeyType,
    certificateKey,
    readCspConfig,
    readJson,
    readState,
    stateKey,
    suitesInUse,
    txTime,
    writeJson,
} from './state.js';
import {
    requireHexBytes,
    requireHexBytesOf,
    requireInteger,
    requireOnlyTransientKeys,
    requireTransient,
} from './validate.js';

const { Info, Returns, Transaction } = fca;

/** Transient-map keys of revocation. */
export const RevocationTransientKey = {
    /** rs_α, the device's revocation seed (hashBytes). */
    Seed: 'revocationSeed',
} as const;

/** What a revocation did, as returned and recorded (keyed by H(rs_α)); canonical JSON. */
export type RevocationResult = RevocationRecord & Record<string, string | number>;

/**
 * Shared by revokeDevice and the M-EB decommissioning: revokes the unused certificates whose tags
 * H(seed, i), i in [from, to), are registered. Reads everything first and writes only when every
 * check passed, so a rejection changes nothing.
 */
export async function revokeBySeed(
    ctx: Context,
    caller: Caller,
    suite: Suite,
    seed: Uint8Array,
    fromCounter: number,
    toCounter: number,
): Promise<RevocationResult> {
    if (toCounter <= fromCounter || toCounter - fromCounter > MAX_REVOCATION_RANGE) {
        return reject(ErrorCode.MalformedInput, `the counter range must hold 1 to ${MAX_REVOCATION_RANGE} counters`);
    }
    const id = toHex(revocationId(suite, seed));
    const recordKey = stateKey(ctx, KeyType.Revocation, id);
    if ((await readJson(ctx, recordKey)) !== undefined) {
        return reject(ErrorCode.AlreadyRevoked, 'this device was already revoked');
    }
    const found: { certKey: string; bytes: Uint8Array }[] = [];
    let owner: string | undefined;
    for (let i = fromCounter; i < toCounter; i++) {
        const tag = toHex(revocationTag(suite, seed, BigInt(i)));
        const entry = await readJson(ctx, stateKey(ctx, KeyType.RevocationTag, tag));
        if (entry === undefined) continue; // a counter this device never bought
        const entryOwner = String(entry.owner);
        if (owner !== undefined && owner !== entryOwner) {
            return reject(ErrorCode.MalformedInput, 'the tags of this seed belong to several owners');
        }
        owner = entryOwner;
        const certKey = certificateKey(ctx, fromHex(String(entry.idCert)));
        const bytes = await readState(ctx, certKey);
        if (bytes === undefined) return reject(ErrorCode.UnknownCertificate, 'a tag names no Table II record');
        found.push({ certKey, bytes });
    }
    if (owner === undefined) {
        return reject(ErrorCode.UnknownCertificate, 'no certificate of this range carries a tag of this seed');
    }
    if (caller.role === Role.Manufacturer && caller.mspId !== owner) {
        return reject(ErrorCode.UnauthorisedMsp, "another organisation's device");
    }
    let revoked = 0;
    let used = 0;
    for (const { certKey, bytes } of found) {
        const record = decodeCertificateRecord(suite, bytes);
        if (record.status === CertificateStatus.Used) {
            used++;
            continue;
        }
        if (record.status === CertificateStatus.Revoked) continue;
        await ctx.stub.putState(
            certKey,
            encodeCertificateRecord(suite, { ...record, status: CertificateStatus.Revoked }),
        );
        revoked++;
    }
    const result: RevocationResult = {
        revocationId: id,
        owner,
        revokedBy: caller.mspId,
        revokedAt: txTime(ctx),
        fromCounter,
        toCounter,
        revoked,
        used,
    };
    await writeJson(ctx, recordKey, result);
    return result;
}

@Info({ title: 'Revocation', description: "Revocation of a device's unused certificates; the CSP ends sessions" })
export class RevocationContract extends M2MContract {
    constructor(policy?: AccessPolicy) {
        super('revocation', policy);
    }

    /**
     * The owner (manufacturer) or the CSP revokes a device: arguments the counter range
     * [fromCounter, toCounter); transient 'revocationSeed' = rs_α. Throws alreadyRevoked,
     * unknownCertificate (no tag of the seed in the range), unauthorisedMsp (another owner's
     * device), malformedInput.
     */
    @Transaction()
    @Returns('string')
    async revokeDevice(ctx: Context, fromCounter: string, toCounter: string): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Manufacturer, Role.Csp);
        const from = requireInteger('fromCounter', fromCounter, 1, Number.MAX_SAFE_INTEGER - 1);
        const to = requireInteger('toCounter', toCounter, 2, Number.MAX_SAFE_INTEGER);
        requireOnlyTransientKeys(ctx, (key) => key === RevocationTransientKey.Seed);
        const { suite } = await readCspConfig(ctx);
        const seed = requireSeed(ctx, suite);
        const result = await revokeBySeed(ctx, caller, suite, seed, from, to);
        emitEvent(ctx, EventName.DeviceRevoked, { owner: result.owner, revoked: result.revoked });
        return canonicalJson(result);
    }

    /**
     * A device's revocation record, by revocationId = H(rs_α) (the owner or the CSP).
     * @throws {ContractError} `unknownCertificate` when: no revocation with this id
     * @throws {ContractError} `unauthorisedMsp` when: another organisation's revocation
     */
    @Transaction(false)
    @Returns('string')
    async getRevocation(ctx: Context, revocationIdHex: string): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Manufacturer, Role.Csp, Role.Fog);
        const { suite } = await readCspConfig(ctx);
        const id = requireHexBytes('revocationId', revocationIdHex, suite.hashBytes);
        const record = await readJson(ctx, stateKey(ctx, KeyType.Revocation, toHex(id)));
        if (record === undefined) return reject(ErrorCode.UnknownCertificate, 'no revocation with this id');
        if (caller.role === Role.Manufacturer && record.owner !== caller.mspId) {
            return reject(ErrorCode.UnauthorisedMsp, "another organisation's revocation");
        }
        return canonicalJson(record as RevocationResult);
    }

    /**
     * The CSP ends an established (or acknowledged) session, e.g. of a revoked device: its record
     * becomes 'ended'; the CSP's backend closes the channel. Ending an ended session changes nothing.
     * @throws {ContractError} `invalidPrimaryHash` when: primaryHash names no session
     */
    @Transaction()
    @Returns('string')
    async endSession(ctx: Context, primaryHash: string): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp);
        const config = await readCspConfig(ctx);
        const { suite } = config;
        const hash = requireHexBytesOf(
            'primaryHash',
            primaryHash,
            suitesInUse(config).map((s) => s.hashBytes),
        );
        const { key, session } = await readSessionRecord(ctx, suite, hash);
        if (session.status === SessionStatus.Ended) {
            return canonicalJson({ primaryHash: toHex(hash), fogId: session.fogId, status: SessionStatus.Ended });
        }
        return setSessionStatus(ctx, suite, key, session, hash, SessionStatus.Ended);
    }
}

/** The transient revocation seed, hashBytes long. */
export function requireSeed(ctx: Context, suite: Suite): Uint8Array {
    const seed = requireTransient(ctx, RevocationTransientKey.Seed);
    if (seed.length !== suite.hashBytes) {
        return reject(ErrorCode.MalformedInput, `revocationSeed must be ${suite.hashBytes} bytes`);
    }
    return seed;
}
