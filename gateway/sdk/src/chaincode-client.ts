/**
 * Typed calls to the m2m chaincode (docs/chaincode.md) over any LedgerConnection — the embedded
 * ledger or a real Fabric network. Arguments are strings (hex, decimal, CIDs); sensitive inputs go
 * in the transient map; results are canonical JSON. One place knows the transaction names.
 */
import {
    assertCommitted,
    EndorseError,
    isTransientSubmitError,
    submitWithRetry,
    type LedgerConnection,
    type LedgerContract,
    type TransactionOptions,
} from './ledger/index.js';
import { CreditLotAllocator, type CreditLotBalance } from './credit-lots.js';
import type { RevocationRecord } from '@m2m-fabric/protocol';

export const DEFAULT_CHAINCODE_NAME = 'm2m';

/** Attempts of one purchase against conflicts with other clients. */
const PURCHASE_ATTEMPTS = 8;

/** An account's balance and its credit lots (the chaincode's `getCredit`). */
export interface CreditRecord {
    account: string;
    balance: number;
    lots: CreditLotBalance[];
}

/** One CA key epoch of the CSP (docs/protocol.md#csp-key-rotation). */
export interface CspKeyEpoch {
    keyId: number;
    /**
     * The epoch's suite when it is not the ledger's (`CspRecord.suite`): the CA moved to another
     * suite (docs/protocol.md#rotation-to-another-suite).
     */
    suite?: string;
    /** Q_c of the epoch, SEC1 compressed hex (in the epoch's suite). */
    caPublicKey: string;
    activeFrom: string;
    /** Absent for the current key. */
    validUntil?: string;
    /** The rotation that introduced the epoch; absent for epoch 0. */
    rotation?: { overlapSeconds: number; previousSignature: string; newSignature: string };
}

export interface CspRecord {
    suite: string;
    /** Epoch 0's Q_c, the CSP's registered identity key. */
    caPublicKey: string;
    mspId: string;
    /** Every CA key epoch, oldest first; the last is the one certificates are issued under now. */
    keys: CspKeyEpoch[];
}
export interface FogRecord {
    fogId: string;
    mspId: string;
    publicKey: string;
    address: string;
    status: 'pending' | 'approved' | 'revoked';
    /** The fog's keys for suites other than the ledger's (registry:addFogSuiteKey), oldest first. */
    suiteKeys?: FogSuiteKeyEntry[];
}
/** One fog key for another suite, signed by the fog's identity key and by itself (hex). */
export interface FogSuiteKeyEntry {
    suite: string;
    publicKey: string;
    identitySignature: string;
    newSignature: string;
    addedAt: string;
}
export interface CertificateRecord {
    idCert: string;
    status: string;
    counterCommitment: string;
    contentAddress?: string;
    /** The CSP key epoch it was issued under. */
    keyId: number;
    /** The certificate's suite when it is not the ledger's. */
    suite?: string;
}
export interface SessionRecord {
    primaryHash: string;
    status: string;
    fogId: string;
    idCert: string;
    /** B_i = i*G of the session's certificate (from its Table II record). */
    counterCommitment: string;
    publicKeyCommitment: string;
    symKeyCommitment: string;
    /** The CSP key epoch of the session's certificate. */
    keyId: number;
    /** The session's suite when it is not the ledger's. */
    suite?: string;
}
export interface RequestRecord {
    requestId: string;
    owner: string;
    n: number;
    status: string;
}
export interface EquipmentSpec {
    equipmentId: string;
    kind: string;
    model: string;
    fogGroup: string;
    /** Static public key, SEC1 compressed hex. */
    publicKey: string;
    privilegeLevel: number;
    serviceType: 'upload' | 'download' | 'upload-download';
    accessTime: string;
}
export type EquipmentRecord = EquipmentSpec & { owner: string; status: string } & Record<string, unknown>;

const decoder = new TextDecoder();

function parse<T>(bytes: Uint8Array): T {
    return JSON.parse(decoder.decode(bytes)) as T;
}

export class ChaincodeClient {
    readonly registry: LedgerContract;
    readonly equipment: LedgerContract;
    readonly certificates: LedgerContract;
    readonly sessions: LedgerContract;
    readonly revocation: LedgerContract;
    /** Ledger call deadline; a Fabric commit takes up to BatchTimeout plus validation. */
    deadlineMs: number;
    /** The credit lots of this client's own account, for its purchases. */
    readonly #credit = new CreditLotAllocator(
        async (): Promise<readonly CreditLotBalance[]> => (await this.getCredit(this.connection.identity.mspId)).lots,
    );

    constructor(
        readonly connection: LedgerConnection,
        chaincodeName = DEFAULT_CHAINCODE_NAME,
        deadlineMs = 30_000,
    ) {
        this.registry = connection.getContract(chaincodeName, 'registry');
        this.equipment = connection.getContract(chaincodeName, 'equipment');
        this.certificates = connection.getContract(chaincodeName, 'certificates');
        this.sessions = connection.getContract(chaincodeName, 'sessions');
        this.revocation = connection.getContract(chaincodeName, 'revocation');
        this.deadlineMs = deadlineMs;
    }

    /**
     * Submits, re-endorsing after an MVCC conflict or an endorsement mismatch: registrations and
     * issuance are safe to run again. Activation and synchronisation
     * are never retried: there a lost race IS the double-use verdict.
     */
    private retrying(contract: LedgerContract, name: string, options: TransactionOptions): Promise<Uint8Array> {
        return submitWithRetry(contract, name, options, { attempts: 8, backoffMs: 20 });
    }

    private opts(args: string[], transientData?: Record<string, Uint8Array>): TransactionOptions {
        const o: TransactionOptions = { arguments: args, deadlineMs: this.deadlineMs };
        if (transientData !== undefined) o.transientData = transientData;
        return o;
    }

    // registry
    async registerCsp(suiteId: string, caPublicKeyHex: string): Promise<void> {
        await this.retrying(this.registry, 'registerCsp', this.opts([suiteId, caPublicKeyHex]));
    }
    /**
     * CSP only: rotates the CA key to `newCaPublicKeyHex` (registry:rotateCspKey); the signatures
     * are signCspKeyRotation's, encoded with encodeSchnorrSignature, in hex.
     */
    async rotateCspKey(
        suiteId: string,
        newCaPublicKeyHex: string,
        overlapSeconds: number,
        previousSignatureHex: string,
        newSignatureHex: string,
    ): Promise<CspRecord> {
        return parse(
            await this.retrying(
                this.registry,
                'rotateCspKey',
                this.opts([suiteId, newCaPublicKeyHex, String(overlapSeconds), previousSignatureHex, newSignatureHex]),
            ),
        );
    }
    async getCsp(): Promise<CspRecord> {
        return parse(await this.registry.evaluate('getCsp', this.opts([])));
    }
    async registerFog(fogId: string, publicKeyHex: string, addressHex: string): Promise<void> {
        await this.retrying(this.registry, 'registerFog', this.opts([fogId, publicKeyHex, addressHex]));
    }
    async approveFog(fogId: string, addressHex: string): Promise<void> {
        await this.retrying(this.registry, 'approveFog', this.opts([fogId, addressHex]));
    }
    /** CSP only: the fog can no longer activate sessions. */
    async revokeFog(fogId: string): Promise<FogRecord> {
        return parse(await this.retrying(this.registry, 'revokeFog', this.opts([fogId])));
    }
    /**
     * Fog organisations: adds the fog's key for another suite (registry:addFogSuiteKey); the
     * signatures are signFogSuiteKey's, encoded with encodeSchnorrSignature, in hex.
     */
    async addFogSuiteKey(
        fogId: string,
        suiteId: string,
        publicKeyHex: string,
        identitySignatureHex: string,
        newSignatureHex: string,
    ): Promise<FogRecord> {
        return parse(
            await this.retrying(
                this.registry,
                'addFogSuiteKey',
                this.opts([fogId, suiteId, publicKeyHex, identitySignatureHex, newSignatureHex]),
            ),
        );
    }
    async getFog(fogId: string): Promise<FogRecord> {
        return parse(await this.registry.evaluate('getFog', this.opts([fogId])));
    }
    /** Grants credit (as new lots) and returns the account's balance on this client's peer after the commit. */
    async grantCredit(account: string, amount: number): Promise<{ account: string; balance: number }> {
        await this.retrying(this.registry, 'grantCredit', this.opts([account, String(amount)]));
        const { balance } = await this.getCredit(account);
        return { account, balance };
    }
    async getCredit(account: string): Promise<CreditRecord> {
        return parse(await this.registry.evaluate('getCredit', this.opts([account])));
    }

    // equipment
    private equipmentArgs(e: EquipmentSpec): string[] {
        return [
            e.equipmentId,
            e.kind,
            e.model,
            e.fogGroup,
            e.publicKey,
            String(e.privilegeLevel),
            e.serviceType,
            e.accessTime,
        ];
    }
    async registerEquipment(e: EquipmentSpec): Promise<EquipmentRecord> {
        return parse(await this.retrying(this.equipment, 'registerEquipment', this.opts(this.equipmentArgs(e))));
    }
    async updateEquipmentStatus(equipmentId: string, status: string): Promise<EquipmentRecord> {
        return parse(await this.retrying(this.equipment, 'updateEquipmentStatus', this.opts([equipmentId, status])));
    }
    async replaceEquipment(oldEquipmentId: string, e: EquipmentSpec): Promise<unknown> {
        return parse(
            await this.retrying(
                this.equipment,
                'replaceEquipment',
                this.opts([oldEquipmentId, ...this.equipmentArgs(e)]),
            ),
        );
    }
    async getEquipment(equipmentId: string): Promise<EquipmentRecord> {
        return parse(await this.equipment.evaluate('getEquipment', this.opts([equipmentId])));
    }
    async getEquipmentHistory(equipmentId: string): Promise<unknown> {
        return parse(await this.equipment.evaluate('getEquipmentHistory', this.opts([equipmentId])));
    }
    /** Every page of queryEquipmentByOwner. */
    async listEquipmentByOwner(owner: string): Promise<EquipmentRecord[]> {
        const out: EquipmentRecord[] = [];
        let bookmark = '';
        for (;;) {
            const page = parse<{ records: EquipmentRecord[]; bookmark: string }>(
                await this.equipment.evaluate('queryEquipmentByOwner', this.opts([owner, '100', bookmark])),
            );
            out.push(...page.records);
            if (page.bookmark === '' || page.records.length === 0) return out;
            bookmark = page.bookmark;
        }
    }

    // certificates (Alg. 1)
    /**
     * Alg. 1 purchase, paid from credit lots of this client's account that no other purchase of this
     * client is using (credit-lots.ts), so concurrent purchases do not conflict. A conflict with
     * another client (MVCC, an endorsement mismatch, or a lot spent meanwhile: failedPayment although
     * the lots covered n when read) is retried with the lots read again.
     *
     * @throws EndorseError `failedPayment` when the account cannot pay n credits; the last
     *   `CommitError`/`EndorsementMismatchError` when every attempt conflicted.
     */
    async requestSessions(
        n: number,
        requestCid: string,
        requestBytes: Uint8Array,
        revocationTags?: Uint8Array,
    ): Promise<unknown> {
        const transient: Record<string, Uint8Array> = { request: requestBytes };
        if (revocationTags !== undefined) transient.revocationTags = revocationTags;
        let delay = 20;
        for (let attempt = 1; ; attempt++) {
            const reservation = await this.#credit.reserve(n);
            try {
                const result = await this.certificates.submit(
                    'requestSessionsFromLots',
                    this.opts([String(n), requestCid, JSON.stringify(reservation.lots)], transient),
                );
                reservation.release(true);
                return parse(result);
            } catch (err) {
                reservation.release(false);
                const spentMeanwhile =
                    reservation.covered && err instanceof EndorseError && err.errorCode === 'failedPayment';
                if (attempt >= PURCHASE_ATTEMPTS || !(isTransientSubmitError(err) || spentMeanwhile)) throw err;
                await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random())));
                delay *= 2;
            }
        }
    }
    async issueCertificates(requestId: string, requestBytes: Uint8Array, objects: Uint8Array[]): Promise<unknown> {
        const transient: Record<string, Uint8Array> = { request: requestBytes };
        objects.forEach((o, k) => {
            transient[`certificate:${k}`] = o;
        });
        return parse(await this.retrying(this.certificates, 'issueCertificates', this.opts([requestId], transient)));
    }
    /**
     * revocation:revokeDevice: the device's unused certificates of counters [fromCounter, toCounter)
     * become revoked; rs_α travels in the transient map (never on the ledger). Not retried on a
     * conflict: a lost race against an activation is the ledger's verdict.
     *
     * @throws EndorseError with the chaincode's alreadyRevoked, unknownCertificate, unauthorisedMsp,
     *   malformedInput.
     */
    async revokeDevice(revocationSeed: Uint8Array, fromCounter: bigint, toCounter: bigint): Promise<RevocationRecord> {
        const submitted = await this.revocation.submit(
            'revokeDevice',
            this.opts([fromCounter.toString(), toCounter.toString()], { revocationSeed }),
        );
        return parse(submitted);
    }
    async getCertificate(idCertHex: string): Promise<CertificateRecord> {
        return parse(await this.certificates.evaluate('getCertificate', this.opts([idCertHex])));
    }
    async getRequest(requestId: string): Promise<RequestRecord> {
        return parse(await this.certificates.evaluate('getRequest', this.opts([requestId])));
    }

    // sessions (Alg. 2 / 3)
    /** `ordered` (optional) is called once the orderer accepted the transaction, before it commits. */
    async activateSession(
        fogId: string,
        activation: Uint8Array,
        ordered?: () => void,
    ): Promise<{ primaryHash: string; status: string }> {
        return parse(
            await this.submitReporting(this.sessions, 'activateSession', this.opts([fogId], { activation }), ordered),
        );
    }
    /** `ordered` (optional) is called once the orderer accepted the transaction, before it commits. */
    async synchroniseSession(synchronisation: Uint8Array, ordered?: () => void): Promise<unknown> {
        return parse(
            await this.submitReporting(
                this.sessions,
                'synchroniseSession',
                this.opts([], { synchronisation }),
                ordered,
            ),
        );
    }

    /**
     * `submit`, telling `ordered` when the orderer has accepted the transaction: a service that holds
     * back other work while this one is endorsed can let it go while the transaction waits for its
     * block (a BatchTimeout). Same errors as `submit`.
     */
    private async submitReporting(
        contract: LedgerContract,
        name: string,
        options: TransactionOptions,
        ordered: (() => void) | undefined,
    ): Promise<Uint8Array> {
        if (ordered === undefined) return contract.submit(name, options);
        const started = Date.now();
        const submitted = await contract.submitAsync(name, options);
        ordered();
        const left =
            options.deadlineMs === undefined ? undefined : Math.max(1, options.deadlineMs - (Date.now() - started));
        const status = await submitted.getStatus(left === undefined ? {} : { deadlineMs: left });
        assertCommitted(status);
        return submitted.getResult();
    }
    async getSession(primaryHashHex: string): Promise<SessionRecord> {
        return parse(await this.sessions.evaluate('getSession', this.opts([primaryHashHex])));
    }
}
