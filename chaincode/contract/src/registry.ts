/**
 * Registry contract: the CSP's public key and suite, fog registration and approval, and the
 * prepaid credit of manufacturer accounts (docs/design.md#setting-up-the-csp-fogs-equipment-and-credit).
 */
import fca from 'fabric-contract-api';
import { Context } from 'fabric-contract-api';

import { decodePoint, equalBytes, fromHex, toHex } from '@m2m-fabric/protocol';
import {
    MAX_CSP_KEY_OVERLAP_SECONDS,
    decodeSchnorrSignature,
    verifyCspKeyRotation,
    verifyFogSuiteKey,
} from '@m2m-fabric/protocol';
import { getSuite } from '@m2m-fabric/protocol';
import { Role, requireOwnerOrRole, requireRole } from './access.js';
import type { AccessPolicy } from './access.js';
import { M2MContract } from './base.js';
import { canonicalJson } from './canonical-json.js';
import { ErrorCode, reject } from './errors.js';
import { EventName, emitEvent } from './events.js';
import {
    FogStatus,
    KeyType,
    currentCspKey,
    readCredit,
    readCspConfig,
    readFog,
    readJson,
    stateKey,
    txTime,
    writeCreditLot,
    writeJson,
} from './state.js';
import type { CspKeyEpoch, CspRecord, FogRecord, FogSuiteKeyRecord } from './state.js';
import {
    requireHexBytes,
    requireIdentifier,
    requireInteger,
    requirePoint,
    requireStrongKey,
    requireString,
} from './validate.js';

const { Info, Returns, Transaction } = fca;

/** Largest single grant; keeps every balance far inside the safe-integer range. */
export const MAX_CREDIT_GRANT = 1_000_000_000;
/** Most lots one grant creates: the number of purchases that can consume credit of it at once. */
export const CREDIT_LOTS_PER_GRANT = 100;

@Info({ title: 'Registry', description: 'CSP key and suite, fog registration and approval, prepaid credit' })
export class RegistryContract extends M2MContract {
    constructor(policy?: AccessPolicy) {
        super('registry', policy);
    }

    /**
     * CSP only, once: records the suite and Q_c every other check verifies against.
     * @throws {ContractError} `alreadyExists` when: the CSP is already registered
     */
    @Transaction()
    @Returns('string')
    async registerCsp(ctx: Context, suiteId: string, caPublicKey: string): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Csp);
        const suite = getSuite(requireString('suiteId', suiteId, /^[A-Za-z0-9.-]{1,32}$/));
        const key = requirePoint('caPublicKey', caPublicKey, suite);
        const stateKeyCsp = stateKey(ctx, KeyType.Csp);
        if ((await readJson(ctx, stateKeyCsp)) !== undefined) {
            return reject(ErrorCode.AlreadyExists, 'the CSP is already registered');
        }
        const record: CspRecord = {
            suite: suite.id,
            caPublicKey: toHex(key.bytes),
            mspId: caller.mspId,
            registeredAt: txTime(ctx),
            keys: [{ keyId: 0, caPublicKey: toHex(key.bytes), activeFrom: txTime(ctx) }],
        };
        await writeJson(ctx, stateKeyCsp, record);
        emitEvent(ctx, EventName.CspRegistered, { suite: suite.id, caPublicKey: record.caPublicKey });
        return canonicalJson(record);
    }

    /**
     * CSP only: rotates the CA key (docs/protocol.md#csp-key-rotation). The new key Q_c' becomes
     * the current epoch (new certificates are issued under it); the current key stays valid for
     * `overlapSeconds` from this transaction's timestamp, then certificates issued under it fail
     * activation (cspKeyExpired). Both signatures are Schnorr (context csp-key-rotation) over
     * cspKeyRotationMessage: `previousSignature` by the current key, `newSignature` by Q_c'.
     * Refused while an earlier overlap is still open, so at most two keys are ever live. `suiteId`
     * may name another suite than the current key's: the rotation then migrates the CA, and the
     * new epoch's certificates and sessions are in that suite (`previousSignature` is in the old
     * suite, `newSignature` in the new one).
     * @throws {ContractError} `malformedInput` when: newCaPublicKey is not a valid … point; overlapSeconds …; a rotation signature is not two scalars in [1, n-1]
     * @throws {ContractError} `weakKey` when: newCaPublicKey is the identity or a tiny multiple of G
     * @throws {ContractError} `alreadyExists` when: the new CA key is already registered (epoch …)
     * @throws {ContractError} `invalidStateTransition` when: the previous key's overlap is still open until …
     * @throws {ContractError} `failedSignatureVerification` when: the rotation is not signed by the previous CSP key
     * @throws {ContractError} `invalidProofOfPossession` when: the rotation is not signed by the new CSP key
     */
    @Transaction()
    @Returns('string')
    async rotateCspKey(
        ctx: Context,
        suiteId: string,
        newCaPublicKey: string,
        overlapSeconds: string,
        previousSignature: string,
        newSignature: string,
    ): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp);
        const config = await readCspConfig(ctx);
        const { epoch: current, suite, key: currentKey } = currentCspKey(config);
        // The new key may be of another suite (a migration, docs/protocol.md#rotation-to-another-suite):
        // certificates of the new epoch are in that suite; the ledger's own suite stays for identities.
        const newSuite = getSuite(requireString('suiteId', suiteId, /^[A-Za-z0-9.-]{1,32}$/));
        const key = requireStrongKey('newCaPublicKey', newCaPublicKey, newSuite);
        const overlap = requireInteger('overlapSeconds', overlapSeconds, 0, MAX_CSP_KEY_OVERLAP_SECONDS);
        const previousSig = requireHexBytes('previousSignature', previousSignature, 2 * suite.scalarBytes);
        const newSig = requireHexBytes('newSignature', newSignature, 2 * newSuite.scalarBytes);
        const hex = toHex(key.bytes);
        const existing = config.keys.find((epoch) => epoch.caPublicKey === hex);
        if (existing !== undefined) {
            return reject(ErrorCode.AlreadyExists, `the new CA key is already registered (epoch ${existing.keyId})`);
        }
        const now = txTime(ctx);
        const open = config.keys.find(
            (epoch) => epoch.validUntil !== undefined && Date.parse(epoch.validUntil) > Date.parse(now),
        );
        if (open !== undefined) {
            return reject(
                ErrorCode.InvalidStateTransition,
                `the previous key's overlap is still open until ${open.validUntil}`,
            );
        }
        const rotation = {
            suite,
            newSuite,
            previousKeyId: current.keyId,
            previousKey: currentKey,
            keyId: current.keyId + 1,
            newKey: key.point,
            overlapSeconds: overlap,
        };
        let signatures;
        try {
            signatures = {
                previousSignature: decodeSchnorrSignature(suite, previousSig),
                newSignature: decodeSchnorrSignature(newSuite, newSig),
            };
        } catch {
            return reject(ErrorCode.MalformedInput, 'a rotation signature is not two scalars in [1, n-1]');
        }
        verifyCspKeyRotation(rotation, signatures);
        const validUntil = new Date(Date.parse(now) + overlap * 1000).toISOString();
        const keys: CspKeyEpoch[] = [
            ...config.keys.slice(0, -1),
            { ...current, validUntil },
            {
                keyId: rotation.keyId,
                ...(newSuite.tag === config.suite.tag ? {} : { suite: newSuite.id }),
                caPublicKey: hex,
                activeFrom: now,
                rotation: { overlapSeconds: overlap, previousSignature, newSignature },
            },
        ];
        const record: CspRecord = { ...config.record, keys };
        await writeJson(ctx, stateKey(ctx, KeyType.Csp), record);
        emitEvent(ctx, EventName.CspKeyRotated, {
            suite: newSuite.id,
            keyId: rotation.keyId,
            caPublicKey: hex,
            previousKeyId: current.keyId,
            previousValidUntil: validUntil,
        });
        return canonicalJson(record);
    }

    /** The CSP record: the suite, epoch 0's Q_c and every CA key epoch (`keys`). */
    @Transaction(false)
    @Returns('string')
    async getCsp(ctx: Context): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        const config = await readCspConfig(ctx);
        return canonicalJson(config.record);
    }

    /**
     * A fog organisation registers one of its fogs: ID_f, Q_f and addr_f = H(ID_f, d_f*Q_c).
     * The fog stays pending until the CSP has recomputed addr_f from d_c*Q_f.
     * @throws {ContractError} `alreadyExists` when: fog … is already registered
     */
    @Transaction()
    @Returns('string')
    async registerFog(ctx: Context, fogId: string, publicKey: string, address: string): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Fog);
        const id = requireIdentifier('fogId', fogId);
        const { suite } = await readCspConfig(ctx);
        const key = requirePoint('publicKey', publicKey, suite);
        const addr = requireHexBytes('address', address, suite.hashBytes);
        const fogKey = stateKey(ctx, KeyType.Fog, id);
        if ((await readJson(ctx, fogKey)) !== undefined) {
            return reject(ErrorCode.AlreadyExists, `fog ${id} is already registered`);
        }
        const record: FogRecord = {
            fogId: id,
            mspId: caller.mspId,
            publicKey: toHex(key.bytes),
            address: toHex(addr),
            status: FogStatus.Pending,
            registeredAt: txTime(ctx),
        };
        await writeJson(ctx, fogKey, record);
        emitEvent(ctx, EventName.FogRegistered, { fogId: id, mspId: caller.mspId });
        return canonicalJson(record);
    }

    /**
     * CSP only: approves a pending fog. `address` is the CSP backend's own H(ID_f, d_c*Q_f); it must
     * equal the registered addr_f, which proves the fog holds d_f (InvalidProofOfPossession).
     * @throws {ContractError} `invalidStateTransition` when: fog … is …, not pending
     * @throws {ContractError} `invalidProofOfPossession` when: addr_f of fog … does not match H(ID_f, d_c*Q_f)
     */
    @Transaction()
    @Returns('string')
    async approveFog(ctx: Context, fogId: string, address: string): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp);
        const id = requireIdentifier('fogId', fogId);
        const { suite } = await readCspConfig(ctx);
        const recomputed = requireHexBytes('address', address, suite.hashBytes);
        const record = await readFog(ctx, id);
        if (record.status !== FogStatus.Pending) {
            return reject(ErrorCode.InvalidStateTransition, `fog ${id} is ${record.status}, not pending`);
        }
        if (!equalBytes(recomputed, fromHex(record.address))) {
            return reject(ErrorCode.InvalidProofOfPossession, `addr_f of fog ${id} does not match H(ID_f, d_c*Q_f)`);
        }
        const approved: FogRecord = { ...record, status: FogStatus.Approved, approvedAt: txTime(ctx) };
        await writeJson(ctx, stateKey(ctx, KeyType.Fog, id), approved);
        emitEvent(ctx, EventName.FogApproved, { fogId: id, mspId: record.mspId });
        return canonicalJson(approved);
    }

    /**
     * CSP only: a revoked fog can no longer activate sessions.
     * @throws {ContractError} `invalidStateTransition` when: fog … is already revoked
     */
    @Transaction()
    @Returns('string')
    async revokeFog(ctx: Context, fogId: string): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp);
        const id = requireIdentifier('fogId', fogId);
        const record = await readFog(ctx, id);
        if (record.status === FogStatus.Revoked) {
            return reject(ErrorCode.InvalidStateTransition, `fog ${id} is already revoked`);
        }
        const revoked: FogRecord = { ...record, status: FogStatus.Revoked, revokedAt: txTime(ctx) };
        await writeJson(ctx, stateKey(ctx, KeyType.Fog, id), revoked);
        emitEvent(ctx, EventName.FogRevoked, { fogId: id, mspId: record.mspId });
        return canonicalJson(revoked);
    }

    /**
     * A fog's organisation adds the fog's session key for another suite (docs/protocol.md#rotation-to-another-suite),
     * needed to serve certificates of a CA key epoch of that suite. The key is authorised by the fog's
     * approved identity key, so it needs no second approval: `identitySignature` (Schnorr by d_f, in
     * the ledger's suite) and `newSignature` (by the new key, in its suite) are over fogSuiteKeyMessage.
     * May precede the CSP's rotation to that suite, so the fog is ready when it commits.
     * @throws {ContractError} `unauthorisedMsp` when: fog … belongs to another organisation
     * @throws {ContractError} `fogNotApproved` when: fog … is …
     * @throws {ContractError} `malformedInput` when: the ledger's own suite needs no suite key; a signature is not two scalars in [1, n-1]
     * @throws {ContractError} `weakKey` when: publicKey is the identity or a tiny multiple of G
     * @throws {ContractError} `alreadyExists` when: fog … already has a key for suite …
     * @throws {ContractError} `failedSignatureVerification` when: the suite key is not signed by the fog's identity key
     * @throws {ContractError} `invalidProofOfPossession` when: the suite key is not signed by itself
     */
    @Transaction()
    @Returns('string')
    async addFogSuiteKey(
        ctx: Context,
        fogId: string,
        suiteId: string,
        publicKey: string,
        identitySignature: string,
        newSignature: string,
    ): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Fog);
        const id = requireIdentifier('fogId', fogId);
        const config = await readCspConfig(ctx);
        const record = await readFog(ctx, id);
        if (record.mspId !== caller.mspId) {
            return reject(ErrorCode.UnauthorisedMsp, `fog ${id} belongs to another organisation`);
        }
        if (record.status !== FogStatus.Approved) {
            return reject(ErrorCode.FogNotApproved, `fog ${id} is ${record.status}`);
        }
        const suite = getSuite(requireString('suiteId', suiteId, /^[A-Za-z0-9.-]{1,32}$/));
        if (suite.tag === config.suite.tag) {
            return reject(ErrorCode.MalformedInput, "the ledger's own suite needs no suite key (it is Q_f)");
        }
        const key = requireStrongKey('publicKey', publicKey, suite);
        const identitySig = requireHexBytes('identitySignature', identitySignature, 2 * config.suite.scalarBytes);
        const newSig = requireHexBytes('newSignature', newSignature, 2 * suite.scalarBytes);
        if ((record.suiteKeys ?? []).some((k) => k.suite === suite.id)) {
            return reject(ErrorCode.AlreadyExists, `fog ${id} already has a key for suite ${suite.id}`);
        }
        let signatures;
        try {
            signatures = {
                identitySignature: decodeSchnorrSignature(config.suite, identitySig),
                newSignature: decodeSchnorrSignature(suite, newSig),
            };
        } catch {
            return reject(ErrorCode.MalformedInput, 'a signature is not two scalars in [1, n-1]');
        }
        verifyFogSuiteKey(
            {
                fogId: id,
                identitySuite: config.suite,
                identityKey: decodePoint(config.suite, fromHex(record.publicKey)),
                suite,
                key: key.point,
            },
            signatures,
        );
        const entry: FogSuiteKeyRecord = {
            suite: suite.id,
            publicKey: toHex(key.bytes),
            identitySignature: toHex(identitySig),
            newSignature: toHex(newSig),
            addedAt: txTime(ctx),
        };
        const updated: FogRecord = { ...record, suiteKeys: [...(record.suiteKeys ?? []), entry] };
        await writeJson(ctx, stateKey(ctx, KeyType.Fog, id), updated);
        emitEvent(ctx, EventName.FogSuiteKeyAdded, { fogId: id, mspId: record.mspId, suite: suite.id });
        return canonicalJson(updated);
    }

    @Transaction(false)
    @Returns('string')
    async getFog(ctx: Context, fogId: string): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        return canonicalJson(await readFog(ctx, requireIdentifier('fogId', fogId)));
    }

    /**
     * CSP only: adds prepaid credit (one credit buys one session certificate) to a manufacturer
     * account, as `min(amount, CREDIT_LOTS_PER_GRANT)` new lots of (nearly) equal size — so that up
     * to that many purchases can each consume a lot of their own at the same time (state.ts, credit
     * lots). Writes no balance record: the balance is aggregated from the lots on read.
     * @throws {ContractError} `malformedInput` when: account … is not a manufacturer organisation
     */
    @Transaction()
    @Returns('string')
    async grantCredit(ctx: Context, account: string, amount: string): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp);
        const owner = requireIdentifier('account', account);
        if (!this.policy.msps.manufacturer.includes(owner)) {
            return reject(ErrorCode.MalformedInput, `account ${owner} is not a manufacturer organisation`);
        }
        const grant = requireInteger('amount', amount, 1, MAX_CREDIT_GRANT);
        const count = Math.min(grant, CREDIT_LOTS_PER_GRANT);
        const base = Math.floor(grant / count);
        const lots: string[] = [];
        for (let k = 0; k < count; k++) {
            // The transaction ID makes the lot IDs unique; the index keeps one grant's lots in order.
            const lotId = `${ctx.stub.getTxID()}.${String(k).padStart(3, '0')}`;
            const remaining = base + (k < grant % count ? 1 : 0);
            await writeCreditLot(ctx, { account: owner, lotId, remaining, grantedAt: txTime(ctx) });
            lots.push(lotId);
        }
        emitEvent(ctx, EventName.CreditGranted, { account: owner, amount: grant });
        return canonicalJson({ account: owner, amount: grant, lots });
    }

    /** The balance of an account and its lots (state.ts, credit lots): its own manufacturer, or the CSP. */
    @Transaction(false)
    @Returns('string')
    async getCredit(ctx: Context, account: string): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Csp, Role.Manufacturer);
        const owner = requireIdentifier('account', account);
        requireOwnerOrRole(caller, owner, `account ${owner}`);
        return canonicalJson(await readCredit(ctx, owner));
    }
}
