/**
 * World-state keys and the JSON records (configuration, fogs, credit, purchases, equipment).
 * Every key is a Fabric composite key whose object type names what it holds, so a range query over
 * one kind of record can never return another kind.
 */
import type { Context } from 'fabric-contract-api';

import { decodePoint, fromHex, toHex } from '@m2m-fabric/protocol';
import { epochOfSuite, epochSuites, getSuite, messageSuite, suiteOr } from '@m2m-fabric/protocol';
import type { MessageType, Point, Suite, SuiteId } from '@m2m-fabric/protocol';
import { fromJsonBytes, toJsonBytes } from './canonical-json.js';
import type { JsonValue } from './canonical-json.js';
import { ErrorCode, reject } from './errors.js';

export const KeyType = {
    Csp: 'csp',
    Fog: 'fog',
    /** Unused since credit lots (no record is written under it any more). */
    Credit: 'credit',
    /** One credit lot of a manufacturer account: (account, lotId). */
    CreditLot: 'credit~lot',
    Request: 'request',
    /** Table II: one record per certificate, keyed by IDCert_i. */
    Certificate: 'cert',
    /** Session records keyed by primaryHash. */
    Session: 'session',
    /** secondaryHash records (existence only). */
    Secondary: 'secondary',
    Equipment: 'equipment',
    EquipmentByOwner: 'equipment~owner',
    EquipmentByFogGroup: 'equipment~fogGroup',
    EquipmentByStatus: 'equipment~status',
    /** Revocation tag t_i -> the certificate it names and its owner (revocation.ts). */
    RevocationTag: 'revtag',
    /** H(rs_α) -> the revocation of one device. */
    Revocation: 'revocation',
    /** Material lots (paper 000 §5), keyed by lot id. */
    Lot: 'lot',
    /** Material transformations, keyed by transformation id. */
    Transformation: 'transformation',
    /** [lot, transformation]: the transformations that consumed a lot (forward trace). */
    LotConsumer: 'lot~consumer',
    /** [equipment, UTC day, recordedAt, transformation]: what a machine did, by time. */
    MachineStep: 'machine~step',
    /** [target, asker]: the target's owner lets the asker query the target (record queries, step 5). */
    QueryGrant: 'query~grant',
} as const;

export function stateKey(ctx: Context, type: (typeof KeyType)[keyof typeof KeyType], ...parts: string[]): string {
    return ctx.stub.createCompositeKey(type, parts);
}

export function certificateKey(ctx: Context, idCert: Uint8Array): string {
    return stateKey(ctx, KeyType.Certificate, toHex(idCert));
}

export function sessionKey(ctx: Context, primaryHash: Uint8Array): string {
    return stateKey(ctx, KeyType.Session, toHex(primaryHash));
}

export function secondaryKey(ctx: Context, secondaryHash: Uint8Array): string {
    return stateKey(ctx, KeyType.Secondary, toHex(secondaryHash));
}

/** Reads a key; undefined when absent (Fabric returns an empty value). */
export async function readState(ctx: Context, key: string): Promise<Uint8Array | undefined> {
    const value = await ctx.stub.getState(key);
    return value.length === 0 ? undefined : value;
}

export async function readJson(ctx: Context, key: string): Promise<Record<string, unknown> | undefined> {
    const bytes = await readState(ctx, key);
    if (bytes === undefined) {
        return undefined;
    }
    const value = fromJsonBytes(bytes);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new TypeError(`state under ${JSON.stringify(key)} is not a JSON object`);
    }
    return value as Record<string, unknown>;
}

export async function writeJson(ctx: Context, key: string, value: JsonValue): Promise<void> {
    await ctx.stub.putState(key, toJsonBytes(value));
}

/** The transaction's timestamp (the only clock chaincode may read), ISO 8601 UTC. */
export function txTime(ctx: Context): string {
    return ctx.stub.getDateTimestamp().toISOString();
}

// ---- CSP configuration ----------------------------------------------------------------------

export interface CspConfig {
    /**
     * The ledger's suite, registered with the CSP: its identity key (epoch 0), the fogs' identity
     * keys and addresses, M-EB keys and revocation tags are in it. A CA key epoch may be of
     * another suite (CspKeyEpoch.suite): that epoch's certificates and sessions are in that suite.
     */
    suite: Suite;
    /** Q_c of epoch 0, the key the CSP registered with (fog addresses, link and anchor signatures). */
    caPublicKey: Point;
    record: CspRecord;
    /** The CA key epochs, oldest first (never empty: epoch 0 is caPublicKey). */
    keys: CspKeyEpoch[];
}

/**
 * One CA key epoch (docs/protocol.md#csp-key-rotation). Times come from transaction timestamps
 * only. `validUntil` is absent for the current key; certificates issued under an epoch fail
 * activation (cspKeyExpired) once a transaction's timestamp is at or past it.
 */
export interface CspKeyEpoch {
    [key: string]: JsonValue | undefined;
    keyId: number;
    /** The epoch's suite when it is not the ledger's (a rotation to another suite). */
    suite?: SuiteId;
    /** Q_c of this epoch, SEC1 compressed hex (in the epoch's suite). */
    caPublicKey: string;
    activeFrom: string;
    validUntil?: string;
    /** The rotation that introduced this epoch (absent for epoch 0). */
    rotation?: { overlapSeconds: number; previousSignature: string; newSignature: string };
}

export interface CspRecord {
    [key: string]: JsonValue | undefined;
    suite: SuiteId;
    /** Epoch 0's Q_c: the CSP's registered identity key. */
    caPublicKey: string;
    mspId: string;
    registeredAt: string;
    /** Every CA key epoch; a record written before rotation existed has none (epoch 0 only). */
    keys?: CspKeyEpoch[];
}

/** The suite and Q_c; NotConfigured until the CSP has registered them. */
export async function readCspConfig(ctx: Context): Promise<CspConfig> {
    const stored = await readJson(ctx, stateKey(ctx, KeyType.Csp));
    if (stored === undefined) {
        return reject(ErrorCode.NotConfigured, 'the CSP has not registered Q_c and the suite yet');
    }
    const record = stored as unknown as CspRecord;
    const suite = getSuite(record.suite);
    const keys = record.keys ?? [{ keyId: 0, caPublicKey: record.caPublicKey, activeFrom: record.registeredAt }];
    return { suite, caPublicKey: decodePoint(suite, fromHex(record.caPublicKey)), record: { ...record, keys }, keys };
}

/** The suite of a CA key epoch: its own, or the ledger's. */
export function epochSuite(config: CspConfig, epoch: CspKeyEpoch): Suite {
    return suiteOr(epoch.suite, config.suite);
}

/** A CA key epoch with its suite and decoded key. */
export interface CspKeyInUse {
    epoch: CspKeyEpoch;
    suite: Suite;
    key: Point;
}

function keyInUse(config: CspConfig, epoch: CspKeyEpoch): CspKeyInUse {
    const suite = epochSuite(config, epoch);
    return { epoch, suite, key: decodePoint(suite, fromHex(epoch.caPublicKey)) };
}

/** The current CA key epoch: the one new certificate requests are made for. */
export function currentCspKey(config: CspConfig): CspKeyInUse {
    return keyInUse(config, config.keys[config.keys.length - 1]!);
}

/**
 * The newest CA key epoch of `suite`: the one a request of that suite is issued under. After a
 * rotation to another suite, a request made just before it is issued under the previous epoch
 * (which stays live for its overlap), so nothing it paid for is lost.
 * @throws notConfigured when no epoch is of that suite
 */
export function newestCspKeyOf(config: CspConfig, suite: Suite): CspKeyInUse {
    const epoch = epochOfSuite(config.keys, config.suite, suite);
    if (epoch === undefined) {
        return reject(ErrorCode.NotConfigured, `the ledger holds no CSP key epoch of suite ${suite.id}`);
    }
    return keyInUse(config, epoch);
}

/** The suites the ledger uses: its own first, then those of later CA key epochs, each once. */
export function suitesInUse(config: CspConfig): Suite[] {
    return epochSuites(config.keys, config.suite);
}

/**
 * The suite a protocol message is in, which must be one the ledger uses.
 * @throws malformedInput for a header that does not parse or names a suite no epoch uses
 */
export function messageSuiteIn(config: CspConfig, type: MessageType, bytes: Uint8Array, what: string): Suite {
    let suite: Suite;
    try {
        suite = messageSuite(type, bytes);
    } catch (err) {
        return reject(ErrorCode.MalformedInput, `${what}: ${(err as Error).message}`);
    }
    if (!suitesInUse(config).some((s) => s.tag === suite.tag)) {
        return reject(ErrorCode.MalformedInput, `${what} uses suite ${suite.id}, which no CSP key epoch uses`);
    }
    return suite;
}

/**
 * The CA key a certificate was issued under, for a use at this transaction's time.
 * @throws cspKeyExpired when the epoch's validUntil is at or before the transaction timestamp;
 *   notConfigured when the ledger has no such epoch (a corrupt record).
 */
export function cspKeyForUse(ctx: Context, config: CspConfig, keyId: number): CspKeyInUse {
    const epoch = config.keys[keyId];
    if (epoch === undefined || epoch.keyId !== keyId) {
        return reject(ErrorCode.NotConfigured, `the ledger holds no CSP key epoch ${keyId}`);
    }
    if (epoch.validUntil !== undefined && Date.parse(epoch.validUntil) <= Date.parse(txTime(ctx))) {
        return reject(
            ErrorCode.CspKeyExpired,
            `the certificate's CSP key (epoch ${keyId}) ended at ${epoch.validUntil}`,
        );
    }
    return keyId === 0 ? { epoch, suite: config.suite, key: config.caPublicKey } : keyInUse(config, epoch);
}

// ---- Fogs -----------------------------------------------------------------------------------

export const FogStatus = { Pending: 'pending', Approved: 'approved', Revoked: 'revoked' } as const;
export type FogStatus = (typeof FogStatus)[keyof typeof FogStatus];

export interface FogRecord {
    [key: string]: JsonValue | undefined;
    fogId: string;
    mspId: string;
    /** Q_f, SEC1 compressed hex. */
    publicKey: string;
    /** addr_f = H(ID_f, d_f*Q_c), hex. */
    address: string;
    status: FogStatus;
    registeredAt: string;
    approvedAt?: string;
    revokedAt?: string;
    /**
     * The fog's session keys for suites other than the ledger's, oldest first
     * (registry:addFogSuiteKey; docs/protocol.md#rotation-to-another-suite).
     */
    suiteKeys?: FogSuiteKeyRecord[];
}

/** One fog session key for another suite, signed by the fog's identity key and by itself. */
export interface FogSuiteKeyRecord {
    [key: string]: JsonValue | undefined;
    suite: SuiteId;
    /** Q_f^S, SEC1 compressed hex in that suite. */
    publicKey: string;
    /** Schnorr by d_f (identity suite), hex. */
    identitySignature: string;
    /** Schnorr by d_f^S (its suite), hex. */
    newSignature: string;
    addedAt: string;
}

/**
 * The fog key Algorithm 2 checks a session of `suite` against: Q_f for the ledger's suite, else
 * the fog's registered key for that suite.
 * @throws fogSuiteKeyMissing when the fog has registered no key for that suite
 */
export function fogKeyFor(config: CspConfig, fog: FogRecord, suite: Suite): Point {
    if (suite.tag === config.suite.tag) return decodePoint(suite, fromHex(fog.publicKey));
    const entry = (fog.suiteKeys ?? []).find((k) => k.suite === suite.id);
    if (entry === undefined) {
        return reject(ErrorCode.FogSuiteKeyMissing, `fog ${fog.fogId} has no key for suite ${suite.id}`);
    }
    return decodePoint(suite, fromHex(entry.publicKey));
}

export async function readFog(ctx: Context, fogId: string): Promise<FogRecord> {
    const stored = await readJson(ctx, stateKey(ctx, KeyType.Fog, fogId));
    if (stored === undefined) {
        return reject(ErrorCode.UnknownFog, `no fog registered as ${fogId}`);
    }
    return stored as unknown as FogRecord;
}

// ---- Credit ---------------------------------------------------------------------------------
//
// A manufacturer's prepaid credit is held in lots, each under its own key (account, lotId), never
// in one balance record: a single balance key would be written by every purchase of the account,
// so concurrent purchases would lose MVCC races and, with peers at different heights, fail at
// endorsement with mismatched results (the hot-key anti-pattern of fabric-samples'
// high-throughput example). A grant writes new lots; a purchase consumes (decrements or deletes)
// only the lots it names, so purchases that name different lots never touch the same key and
// commit side by side. The balance is the sum of the account's lots, aggregated on read.
//
// Why lots and not "deltas aggregated on read" (the fabric-samples pattern as it is): with deltas,
// the insufficient-credit check would have to read the aggregate, i.e. a range over every delta
// of the account, inside the purchase; Fabric records that range and invalidates the purchase
// (PHANTOM_READ_CONFLICT) whenever a concurrent one adds a delta to it — the hot key again, as a
// hot range. A lot is read and written only by the purchase that consumes it, so a credit can be
// spent only once (two purchases consuming one lot: Fabric's MVCC check lets one commit), the
// balance can never go negative, and the check needs no aggregate at all.

export interface CreditLot {
    [key: string]: JsonValue;
    account: string;
    lotId: string;
    /** Credits left in the lot (> 0; a lot that reaches 0 is deleted). */
    remaining: number;
    grantedAt: string;
}

export interface CreditRecord {
    [key: string]: JsonValue;
    account: string;
    balance: number;
    /** The account's lots in key order, as a purchase may name them. */
    lots: { lotId: string; remaining: number }[];
}

export function creditLotKey(ctx: Context, account: string, lotId: string): string {
    return stateKey(ctx, KeyType.CreditLot, account, lotId);
}

export async function readCreditLot(ctx: Context, account: string, lotId: string): Promise<CreditLot | undefined> {
    return (await readJson(ctx, creditLotKey(ctx, account, lotId))) as CreditLot | undefined;
}

/** Writes a lot, or deletes it when nothing remains in it. */
export async function writeCreditLot(ctx: Context, lot: CreditLot): Promise<void> {
    if (lot.remaining > 0) await writeJson(ctx, creditLotKey(ctx, lot.account, lot.lotId), lot);
    else await ctx.stub.deleteState(creditLotKey(ctx, lot.account, lot.lotId));
}

/** Every lot of an account, in key order (a range read: in a submit it conflicts with any change to them). */
export async function listCreditLots(ctx: Context, account: string): Promise<CreditLot[]> {
    const lots: CreditLot[] = [];
    const iterator = await ctx.stub.getStateByPartialCompositeKey(KeyType.CreditLot, [account]);
    try {
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
            const value = fromJsonBytes(next.value.value);
            lots.push(value as CreditLot);
        }
    } finally {
        await iterator.close();
    }
    return lots;
}

/** The balance of an account: the sum of its lots. */
export async function readCredit(ctx: Context, account: string): Promise<CreditRecord> {
    const lots = await listCreditLots(ctx, account);
    return {
        account,
        balance: lots.reduce((sum, lot) => sum + lot.remaining, 0),
        lots: lots.map((lot) => ({ lotId: lot.lotId, remaining: lot.remaining })),
    };
}

// ---- Session purchases (Alg. 1 requests) ----------------------------------------------------

export const RequestStatus = { Pending: 'pending', Issued: 'issued' } as const;
export type RequestStatus = (typeof RequestStatus)[keyof typeof RequestStatus];

export interface RequestRecord {
    [key: string]: JsonValue | undefined;
    /** The CID of the CertificateRequest object in IPFS; also the request's id. */
    requestId: string;
    /** The manufacturer account (MSP id) that paid. */
    owner: string;
    n: number;
    status: RequestStatus;
    requestedAt: string;
    issuedAt?: string;
}

export async function readRequest(ctx: Context, requestId: string): Promise<RequestRecord> {
    const stored = await readJson(ctx, stateKey(ctx, KeyType.Request, requestId));
    if (stored === undefined) {
        return reject(ErrorCode.UnknownRequest, `no session request ${requestId}`);
    }
    return stored as unknown as RequestRecord;
}
