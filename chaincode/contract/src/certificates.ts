/**
 * Certificate contract: paper 004 Algorithm 1 (certificate generation) with the CA's private key
 * kept off the ledger (docs/design.md#where-secrets-live, #algorithm-1-issuance).
 *
 *   1. requestSessions   (manufacturer) — the CertificateRequest object (I_alpha and the counter
 *      proofs, no equipment id) travels in the transient map; its CID is the request id. Chaincode
 *      checks the counter proofs, reserves one Table II record per IDCert_i, and escrows n credits
 *      (failedPayment when the balance is short).
 *   2. issueCertificates (CSP) — the CSP-CA service answers the SessionsRequested event with the n
 *      certificate objects (Table III) in the transient map. Chaincode matches them 1:1 with the
 *      request entries, checks the ECQV issuance equation and the counter proof, recomputes each
 *      object's content address and completes the Table II records. Resubmitting an issued batch
 *      returns the same result and writes nothing.
 *
 * Payment is checked once, at request time, where the n credits are escrowed: the CSP-CA never
 * works on a request that cannot be paid. The credit is held in lots, each under its own key
 * (state.ts): a purchase consumes only lots it reads and writes itself, so two purchases can spend
 * the same credit only by consuming the same lot, and then Fabric's MVCC check lets one commit.
 * `requestSessionsFromLots` names the lots to consume — a client running purchases side by side
 * gives each its own lots, and they do not conflict at all; `requestSessions` takes the account's
 * first lots in key order (a range read, so concurrent ones conflict and are retried).
 */
import fca from 'fabric-contract-api';
import { Context } from 'fabric-contract-api';

import { contentAddress, contentAddressBytes, formatContentAddress } from '@m2m-fabric/protocol';
import { verifyCounterProof } from '@m2m-fabric/protocol';
import { encodePoint, equalBytes, toHex } from '@m2m-fabric/protocol';
import { decodeCertificateObject, decodeCertificateRequest } from '@m2m-fabric/protocol';
import type { CertificateRequest } from '@m2m-fabric/protocol';
import { verifyIssuedCertificate } from '@m2m-fabric/protocol';
import type { Suite } from '@m2m-fabric/protocol';
import { Role, requireOwnerOrRole, requireRole } from './access.js';
import type { AccessPolicy } from './access.js';
import { M2MContract } from './base.js';
import { canonicalJson } from './canonical-json.js';
import { ErrorCode, reject } from './errors.js';
import { EventName, emitEvent } from './events.js';
import { CertificateStatus, decodeCertificateRecord, encodeCertificateRecord } from './records.js';
import type { CertificateRecord } from './records.js';
import {
    KeyType,
    RequestStatus,
    certificateKey,
    currentCspKey,
    listCreditLots,
    newestCspKeyOf,
    readCreditLot,
    readCspConfig,
    readJson,
    readRequest,
    readState,
    stateKey,
    suitesInUse,
    txTime,
    writeCreditLot,
    writeJson,
} from './state.js';
import type { CreditLot, RequestRecord } from './state.js';
import {
    requireContentAddress,
    requireHexBytesOf,
    requireInteger,
    requireOnlyTransientKeys,
    requireTransient,
} from './validate.js';

const { Info, Returns, Transaction } = fca;

/** Transient-map keys of Algorithm 1. */
export const CertificateTransientKey = {
    /** The encoded CertificateRequest (both transactions). */
    Request: 'request',
    /** Prefix of the k-th certificate object: 'certificate:0' ... 'certificate:<n-1>'. */
    CertificatePrefix: 'certificate:',
    /**
     * requestSessions, optional: the n revocation tags t_i (revocation.ts), concatenated in entry
     * order. Without them the batch cannot be revoked by its device's seed.
     */
    RevocationTags: 'revocationTags',
} as const;

/** Most certificates one request may buy (bounds the verification work of one transaction). */
export const MAX_SESSIONS_PER_REQUEST = 256;

/** Most lots one purchase may name. */
export const MAX_LOTS_PER_PURCHASE = 100;
const LOT_ID_PATTERN = /^[0-9a-f]{1,128}\.[0-9]{3}$/;

/** The `lots` argument: a JSON array of distinct lot IDs. */
function parseLotIds(lots: string): string[] {
    let parsed: unknown;
    try {
        parsed = JSON.parse(lots);
    } catch {
        return reject(ErrorCode.MalformedInput, 'lots must be a JSON array of lot IDs');
    }
    if (!Array.isArray(parsed) || parsed.length > MAX_LOTS_PER_PURCHASE) {
        return reject(
            ErrorCode.MalformedInput,
            `lots must be a JSON array of at most ${MAX_LOTS_PER_PURCHASE} lot IDs`,
        );
    }
    const ids = new Set<string>();
    for (const id of parsed) {
        if (typeof id !== 'string' || !LOT_ID_PATTERN.test(id)) {
            return reject(ErrorCode.MalformedInput, `${JSON.stringify(id)} is not a lot ID`);
        }
        if (ids.has(id)) return reject(ErrorCode.MalformedInput, `lot ${id} is named twice`);
        ids.add(id);
    }
    return [...ids];
}

/**
 * Takes `count` credits of `account`: from the named lots in the order given, or (no names) from
 * the account's lots in key order; each lot used is decremented, or deleted when emptied.
 * Rejects with failedPayment, writing nothing, when they hold fewer than `count`.
 */
async function escrowCredit(
    ctx: Context,
    account: string,
    count: number,
    lotIds: readonly string[] | undefined,
): Promise<void> {
    const taken: CreditLot[] = [];
    let needed = count;
    if (lotIds === undefined) {
        for (const lot of await listCreditLots(ctx, account)) {
            if (needed === 0) break;
            const take = Math.min(lot.remaining, needed);
            taken.push({ ...lot, remaining: lot.remaining - take });
            needed -= take;
        }
    } else {
        for (const lotId of lotIds) {
            if (needed === 0) break;
            const lot = await readCreditLot(ctx, account, lotId);
            if (lot === undefined) continue; // spent (or never this account's): holds nothing
            const take = Math.min(lot.remaining, needed);
            taken.push({ ...lot, remaining: lot.remaining - take });
            needed -= take;
        }
    }
    if (needed > 0) {
        const where = lotIds === undefined ? 'the account holds' : 'the named lots hold';
        return reject(ErrorCode.FailedPayment, `${where} ${count - needed} credits, ${count} needed`);
    }
    for (const lot of taken) await writeCreditLot(ctx, lot);
}

const CERTIFICATE_KEY_PATTERN = /^certificate:(0|[1-9][0-9]{0,3})$/;

@Info({ title: 'Certificates', description: 'Algorithm 1: session purchase and ECQV certificate issuance' })
export class CertificateContract extends M2MContract {
    constructor(policy?: AccessPolicy) {
        super('certificates', policy);
    }

    /**
     * Algorithm 1, manufacturer side: buys n sessions, paid from the account's first credit lots in
     * key order. Arguments: n and the request's CID; transient 'request' = the encoded
     * CertificateRequest (I_alpha + counter proofs). Concurrent calls read the same lots and so
     * conflict (PHANTOM_READ_CONFLICT / MVCC); use `requestSessionsFromLots` for parallel purchases.
     */
    @Transaction()
    @Returns('string')
    async requestSessions(ctx: Context, n: string, requestCid: string): Promise<string> {
        return await this.#requestSessions(ctx, n, requestCid, undefined);
    }

    /**
     * As `requestSessions`, paid from the named lots only (a JSON array of lot IDs of the caller's
     * account, consumed in the order given, as many as needed): purchases naming different lots
     * touch no common key. failedPayment when the named lots hold fewer than n credits (a lot that
     * is gone was spent).
     */
    @Transaction()
    @Returns('string')
    async requestSessionsFromLots(ctx: Context, n: string, requestCid: string, lots: string): Promise<string> {
        return await this.#requestSessions(ctx, n, requestCid, lots);
    }

    async #requestSessions(ctx: Context, n: string, requestCid: string, lots: string | undefined): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Manufacturer);
        const lotIds = lots === undefined ? undefined : parseLotIds(lots);
        const count = requireInteger('n', n, 1, MAX_SESSIONS_PER_REQUEST);
        requireContentAddress('requestCid', requestCid);
        requireOnlyTransientKeys(
            ctx,
            (key) => key === CertificateTransientKey.Request || key === CertificateTransientKey.RevocationTags,
        );
        const requestBytes = requireTransient(ctx, CertificateTransientKey.Request);
        const config = await readCspConfig(ctx);
        // Revocation tags are hashes of the ledger's suite (they outlive any CA key's suite);
        // the request itself must be in the current CA key's suite.
        const tagSuite = config.suite;
        const { suite } = currentCspKey(config);
        const tagBytes = ctx.stub.getTransient().has(CertificateTransientKey.RevocationTags)
            ? requireTransient(ctx, CertificateTransientKey.RevocationTags)
            : undefined;
        if (tagBytes !== undefined && tagBytes.length !== count * tagSuite.hashBytes) {
            return reject(
                ErrorCode.MalformedInput,
                `revocationTags must be ${count} tags of ${tagSuite.hashBytes} bytes`,
            );
        }
        if (contentAddress(requestBytes) !== requestCid) {
            return reject(ErrorCode.ContentAddressMismatch, 'the request bytes do not match requestCid');
        }
        const request = decodeRequestFor(suite, requestBytes);
        if (request.entries.length !== count) {
            return reject(
                ErrorCode.MalformedInput,
                `n is ${count} but the request has ${request.entries.length} entries`,
            );
        }
        const requestKey = stateKey(ctx, KeyType.Request, requestCid);
        if ((await readJson(ctx, requestKey)) !== undefined) {
            return reject(ErrorCode.AlreadyExists, `request ${requestCid} was already submitted`);
        }

        const idCerts = new Set<string>();
        const reservations: { key: string; record: CertificateRecord }[] = [];
        for (const [index, entry] of request.entries.entries()) {
            const idCert = toHex(encodePoint(suite, entry.idCert));
            if (idCerts.has(idCert)) {
                return reject(ErrorCode.MalformedInput, `entry ${index} repeats an IDCert_i`);
            }
            idCerts.add(idCert);
            if (!verifyCounterProof(suite, entry.idCert, entry.counterProof)) {
                return reject(ErrorCode.FailedChallenge, `the counter proof of entry ${index} does not verify`);
            }
            const key = certificateKey(ctx, encodePoint(suite, entry.idCert));
            if ((await readState(ctx, key)) !== undefined) {
                return reject(ErrorCode.AlreadyExists, `the IDCert_i of entry ${index} is already registered`);
            }
            reservations.push({
                key,
                record: {
                    status: CertificateStatus.Requested,
                    counterCommitment: encodePoint(suite, entry.counterProof.B),
                    suite,
                },
            });
        }
        const tags: { key: string; idCert: string }[] = [];
        if (tagBytes !== undefined) {
            const seen = new Set<string>();
            for (let index = 0; index < count; index++) {
                const tag = toHex(tagBytes.subarray(index * tagSuite.hashBytes, (index + 1) * tagSuite.hashBytes));
                const key = stateKey(ctx, KeyType.RevocationTag, tag);
                if (seen.has(tag) || (await readState(ctx, key)) !== undefined) {
                    return reject(
                        ErrorCode.AlreadyExists,
                        `the revocation tag of entry ${index} is already registered`,
                    );
                }
                seen.add(tag);
                const entry = request.entries[index];
                if (entry === undefined) return reject(ErrorCode.MalformedInput, 'entry missing');
                tags.push({ key, idCert: toHex(encodePoint(suite, entry.idCert)) });
            }
        }

        // Payment (the paper's verifyAccountFromPaymentService): escrow n credits now.
        await escrowCredit(ctx, caller.mspId, count, lotIds);
        for (const { key, record } of reservations) {
            await ctx.stub.putState(key, encodeCertificateRecord(config.suite, record));
        }
        for (const { key, idCert } of tags) {
            await writeJson(ctx, key, { idCert, owner: caller.mspId });
        }
        const record: RequestRecord = {
            requestId: requestCid,
            owner: caller.mspId,
            n: count,
            status: RequestStatus.Pending,
            requestedAt: txTime(ctx),
        };
        await writeJson(ctx, requestKey, record);
        emitEvent(ctx, EventName.SessionsRequested, { requestId: requestCid, owner: caller.mspId, n: count });
        return canonicalJson(record);
    }

    /**
     * Algorithm 1, CSP-CA side: records the issued certificates of a pending request. Argument: the
     * request id; transient 'request' = the request bytes, 'certificate:<k>' = the object answering
     * entry k. Idempotent: an issued request returns its result again without writing.
     * @throws {ContractError} `contentAddressMismatch` when: the request bytes do not match requestId; certificate … differs from the issued one
     * @throws {ContractError} `malformedInput` when: expected exactly … certificate objects; certificate … uses suite …; certificate … does not answer request e…
     * @throws {ContractError} `unknownCertificate` when: no Table II record for entry …
     * @throws {ContractError} `failedChallenge` when: certificate … carries another counter commitment B_i
     * @throws {ContractError} `certificateRevoked` when: a certificate of this request was revoked before issuance
     * @throws {ContractError} `alreadyExists` when: a certificate of this request is already issued
     *
     * The objects must be issued under the current CSP key epoch (invalidIssuance otherwise); the
     * Table II records remember that epoch.
     */
    @Transaction()
    @Returns('string')
    async issueCertificates(ctx: Context, requestId: string): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp);
        requireContentAddress('requestId', requestId);
        const config = await readCspConfig(ctx);
        const record = await readRequest(ctx, requestId);
        requireOnlyTransientKeys(
            ctx,
            (key) => key === CertificateTransientKey.Request || CERTIFICATE_KEY_PATTERN.test(key),
        );
        const requestBytes = requireTransient(ctx, CertificateTransientKey.Request);
        if (contentAddress(requestBytes) !== requestId) {
            return reject(ErrorCode.ContentAddressMismatch, 'the request bytes do not match requestId');
        }
        const request = decodeCertificateRequest(requestBytes);
        const { suite } = request;
        // Algorithm 1 issues under the newest CA key epoch of the request's suite
        // (docs/protocol.md#csp-key-rotation): the current one, unless the CA moved to another
        // suite after the request was paid for; then the previous epoch, live for its overlap.
        const { epoch: issuingEpoch, key: caPublicKey } = newestCspKeyOf(config, suite);
        if (ctx.stub.getTransient().size !== request.entries.length + 1) {
            return reject(ErrorCode.MalformedInput, `expected exactly ${request.entries.length} certificate objects`);
        }

        const issued: { key: string; idCert: string; record: CertificateRecord; stored: CertificateRecord }[] = [];
        for (const [index, entry] of request.entries.entries()) {
            const objectBytes = requireTransient(ctx, `${CertificateTransientKey.CertificatePrefix}${index}`);
            const object = decodeCertificateObject(objectBytes);
            if (object.suite.id !== suite.id) {
                return reject(ErrorCode.MalformedInput, `certificate ${index} uses suite ${object.suite.id}`);
            }
            const idCertBytes = encodePoint(suite, entry.idCert);
            if (!equalBytes(encodePoint(suite, object.idCert), idCertBytes)) {
                return reject(ErrorCode.MalformedInput, `certificate ${index} does not answer request entry ${index}`);
            }
            const key = certificateKey(ctx, idCertBytes);
            const storedBytes = await readState(ctx, key);
            if (storedBytes === undefined) {
                return reject(ErrorCode.UnknownCertificate, `no Table II record for entry ${index}`);
            }
            const stored = decodeCertificateRecord(config.suite, storedBytes);
            if ((stored.suite ?? config.suite).tag !== suite.tag) {
                return reject(ErrorCode.MalformedInput, `certificate ${index} was requested in another suite`);
            }
            const cid = contentAddressBytes(objectBytes);
            issued.push({
                key,
                idCert: toHex(idCertBytes),
                record: {
                    status: CertificateStatus.Unused,
                    counterCommitment: stored.counterCommitment,
                    contentAddress: cid,
                    ...(issuingEpoch.keyId === 0 ? {} : { keyId: issuingEpoch.keyId }),
                    suite,
                },
                stored,
            });
            if (record.status === RequestStatus.Issued) {
                // Resubmission: the same objects must be the ones on the ledger; nothing is verified again.
                if (stored.contentAddress === undefined || !equalBytes(stored.contentAddress, cid)) {
                    return reject(ErrorCode.ContentAddressMismatch, `certificate ${index} differs from the issued one`);
                }
                continue;
            }
            if (!equalBytes(encodePoint(suite, object.counterProof.B), stored.counterCommitment)) {
                return reject(ErrorCode.FailedChallenge, `certificate ${index} carries another counter commitment B_i`);
            }
            // ECQV issuance equation and counter proof (InvalidIssuance | FailedChallenge).
            verifyIssuedCertificate(suite, object, caPublicKey);
        }

        const result = canonicalJson({
            requestId,
            status: RequestStatus.Issued,
            certificates: issued.map(({ idCert, record: issuedRecord }) => ({
                idCert,
                contentAddress: formatContentAddress(issuedRecord.contentAddress ?? new Uint8Array()),
            })),
        });
        if (record.status === RequestStatus.Issued) {
            return result;
        }
        for (const { key, record: issuedRecord, stored } of issued) {
            if (stored.status === CertificateStatus.Revoked) {
                return reject(
                    ErrorCode.CertificateRevoked,
                    'a certificate of this request was revoked before issuance',
                );
            }
            if (stored.status !== CertificateStatus.Requested) {
                return reject(ErrorCode.AlreadyExists, 'a certificate of this request is already issued');
            }
            await ctx.stub.putState(key, encodeCertificateRecord(config.suite, issuedRecord));
        }
        await writeJson(ctx, stateKey(ctx, KeyType.Request, requestId), {
            ...record,
            status: RequestStatus.Issued,
            issuedAt: txTime(ctx),
        });
        emitEvent(ctx, EventName.CertificatesIssued, { requestId, owner: record.owner, n: record.n });
        return result;
    }

    /**
     * A Table II record: status, B_i, the content address of the certificate object and the CSP
     * key epoch it was issued under (keyId).
     * @throws {ContractError} `unknownCertificate` when: no Table II record for this IDCert_i
     */
    @Transaction(false)
    @Returns('string')
    async getCertificate(ctx: Context, idCert: string): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        const config = await readCspConfig(ctx);
        const idCertBytes = requireHexBytesOf(
            'idCert',
            idCert,
            suitesInUse(config).map((s) => s.pointBytes),
        );
        const stored = await readState(ctx, certificateKey(ctx, idCertBytes));
        if (stored === undefined) {
            return reject(ErrorCode.UnknownCertificate, 'no Table II record for this IDCert_i');
        }
        const record = decodeCertificateRecord(config.suite, stored);
        return canonicalJson({
            idCert: toHex(idCertBytes),
            status: record.status,
            counterCommitment: toHex(record.counterCommitment),
            contentAddress: record.contentAddress === undefined ? null : formatContentAddress(record.contentAddress),
            keyId: record.keyId ?? 0,
            ...(record.suite === undefined ? {} : { suite: record.suite.id }),
        });
    }

    /** A purchase record: its manufacturer or the CSP. */
    @Transaction(false)
    @Returns('string')
    async getRequest(ctx: Context, requestId: string): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Csp, Role.Manufacturer);
        requireContentAddress('requestId', requestId);
        const record = await readRequest(ctx, requestId);
        requireOwnerOrRole(caller, record.owner, 'this request');
        return canonicalJson(record);
    }
}

function decodeRequestFor(suite: Suite, bytes: Uint8Array): CertificateRequest {
    const request = decodeCertificateRequest(bytes);
    if (request.suite.id !== suite.id) {
        return reject(
            ErrorCode.MalformedInput,
            `the request uses suite ${request.suite.id}, the current CSP key ${suite.id}`,
        );
    }
    return request;
}
