/**
 * The CSP's sealed payloads (docs/records.md "Envelope encryption"): for every record it journals,
 * the frame's clear payload sealed under a fresh data key for the CSP's storage key and the
 * device's Q_i (protocol record-envelope.ts), stored in the object store under its own CID beside
 * the frame, and an index from the record's CID (its frame) to the sealed payload's CID. Sharing a
 * record with an auditor re-wraps that one data key: the stored object and its CID stay as they are.
 *
 * Durability like the batcher's: a seal resolves once its object is in the store (one putMany per
 * group) and its index entry fsync'd, so the CSP acknowledges a frame only when both the record
 * and its sealed payload are durable. The storage key is the CSP's own HPKE key for stored
 * payloads, kept apart from its signing key d_c (no key serves two schemes) in `storage-key.json`
 * (a service key file, keys.ts).
 *
 *   index entry: record CID (36 bytes, CIDv1 raw sha2-256) | sealed payload CID (36)
 */
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

import {
    ErrorCode,
    ProtocolError,
    RecordSigner,
    contentAddressOfDigest,
    encodeSealedPayload,
    formatContentAddress,
    hpkeRecipientFromScalar,
    openSealedPayload,
    decodeSealedPayload,
    parseContentAddress,
    sealRecordPayload,
    shareSealedPayload,
    getSuite,
    encodePoint,
    type CommunicationRecord,
    type HpkeRecipient,
    type RecordShare,
    type Suite,
} from '@m2m-fabric/protocol';
import type { ObjectStore } from '@m2m-fabric/sdk';

import { loadOrCreateServiceKey } from '../keys.js';

export const ENVELOPE_INDEX_FILE = 'envelopes.idx';
export const STORAGE_KEY_FILE = 'storage-key.json';
const CID_BYTES = 36;
const ENTRY_BYTES = 2 * CID_BYTES;

export interface RecordEnvelopesOptions {
    /** Directory of the index and the storage key (created if missing). */
    readonly dir: string;
    readonly store: ObjectStore;
    readonly suite: Suite;
    /** The CSP key d_c: signs each sealed payload. */
    readonly signerSecretKey: bigint;
    /** Longest wait before a group commit; default 2 ms. */
    readonly syncDelayMs?: number;
    /**
     * Read and share only (`m2m records share` beside a running CSP): the index is read as it is —
     * a tail being written is skipped, never cut — and seal() is refused.
     */
    readonly readOnly?: boolean;
}

interface Pending {
    recordCid: Uint8Array;
    sealed: Uint8Array;
    resolve: (cid: string) => void;
    reject: (err: unknown) => void;
}

export class RecordEnvelopes {
    readonly suite: Suite;
    readonly #store: ObjectStore;
    readonly #signer: RecordSigner;
    readonly #storage: HpkeRecipient;
    readonly #index: FileHandle;
    /** Record CID -> sealed payload CID. */
    readonly #byRecord = new Map<string, string>();
    readonly #syncDelayMs: number;
    #pending: Pending[] = [];
    #timer: NodeJS.Timeout | undefined;
    #chain: Promise<void> = Promise.resolve();
    #closed = false;
    #readOnly = false;

    private constructor(options: RecordEnvelopesOptions, storage: HpkeRecipient, index: FileHandle) {
        this.suite = options.suite;
        this.#store = options.store;
        this.#signer = new RecordSigner(options.suite, options.signerSecretKey);
        this.#storage = storage;
        this.#index = index;
        this.#syncDelayMs = options.syncDelayMs ?? 2;
    }

    /**
     * Opens (or creates) the index and storage key; a torn index tail (a write a crash interrupted,
     * never acknowledged) is cut off.
     * @throws {PersistedFileError} `corruptFile` when: the storage key file is not a key of this suite
     */
    static async open(options: RecordEnvelopesOptions): Promise<RecordEnvelopes> {
        await mkdir(options.dir, { recursive: true });
        const key = await loadOrCreateServiceKey(join(options.dir, STORAGE_KEY_FILE), options.suite);
        const storage = await hpkeRecipientFromScalar(options.suite, key.privateKey);
        const path = join(options.dir, ENVELOPE_INDEX_FILE);
        const index = await open(path, options.readOnly === true ? 'r' : 'a+');
        const envelopes = new RecordEnvelopes(options, storage, index);
        envelopes.#readOnly = options.readOnly === true;
        const bytes = await readFile(path);
        const whole = bytes.length - (bytes.length % ENTRY_BYTES);
        for (let at = 0; at < whole; at += ENTRY_BYTES) {
            const record = formatContentAddress(bytes.subarray(at, at + CID_BYTES));
            envelopes.#byRecord.set(record, formatContentAddress(bytes.subarray(at + CID_BYTES, at + ENTRY_BYTES)));
        }
        if (whole !== bytes.length && !envelopes.#readOnly) await index.truncate(whole);
        return envelopes;
    }

    /** The CSP's storage public key (SEC1 compressed), a reader of every sealed payload. */
    get storagePublicKey(): Uint8Array {
        return encodePoint(this.suite, this.suite.Point.fromBytes(this.#storage.publicKey));
    }

    /** Sealed payloads indexed. */
    get size(): number {
        return this.#byRecord.size;
    }

    /**
     * Seals the clear payload of a journaled record for the storage key and (when known) the
     * device's Q_i; resolves with the sealed payload's CID once it and its index entry are durable.
     * @throws {DecodeError} when: the device key is not a point; {ProtocolError} `notConfigured` when: closed or read-only
     */
    async seal(
        record: CommunicationRecord,
        recordBytes: Uint8Array,
        plaintext: Uint8Array,
        devicePublicKey?: Uint8Array,
    ): Promise<string> {
        if (this.#closed || this.#readOnly) {
            throw new ProtocolError(ErrorCode.NotConfigured, 'record envelopes closed or opened read-only');
        }
        const readers = [this.#storage.publicKey, ...(devicePublicKey !== undefined ? [devicePublicKey] : [])];
        const sealed = encodeSealedPayload(await sealRecordPayload(this.#signer, recordBytes, plaintext, readers));
        const recordCid = parseContentAddress(contentAddressOfDigest(record.digest));
        return new Promise<string>((resolve, reject) => {
            this.#pending.push({ recordCid, sealed, resolve, reject });
            this.#timer ??= setTimeout(() => {
                this.#timer = undefined;
                void this.#flush();
            }, this.#syncDelayMs);
        });
    }

    #flush(): Promise<void> {
        const group = this.#pending;
        this.#pending = [];
        if (group.length === 0) return this.#chain;
        const stored = this.#store.putMany(group.map((p) => p.sealed));
        this.#chain = this.#chain.then(async () => {
            try {
                const cids = await stored;
                const entries = Buffer.alloc(group.length * ENTRY_BYTES);
                group.forEach((p, i) => {
                    entries.set(p.recordCid, i * ENTRY_BYTES);
                    entries.set(parseContentAddress(cids[i]!), i * ENTRY_BYTES + CID_BYTES);
                });
                await this.#index.write(entries);
                await this.#index.datasync();
                group.forEach((p, i) => {
                    this.#byRecord.set(formatContentAddress(p.recordCid), cids[i]!);
                    p.resolve(cids[i]!);
                });
            } catch (err) {
                for (const p of group) p.reject(err);
            }
        });
        return this.#chain;
    }

    /**
     * The CID of the sealed payload of a record, given the record's CID (its frame's address).
     * @throws {ProtocolError} `unknownRecord` when: no record with that CID was sealed here
     */
    sealedCid(recordCid: string): string {
        const cid = this.#byRecord.get(recordCid);
        if (cid === undefined)
            throw new ProtocolError(ErrorCode.UnknownRecord, `no sealed payload for record ${recordCid}`);
        return cid;
    }

    /**
     * The stored sealed payload of a record, checked against its CID by the store.
     * @throws {ProtocolError} `unknownRecord` when: no such record
     */
    async sealed(recordCid: string): Promise<Uint8Array> {
        return this.#store.get(this.sealedCid(recordCid));
    }

    /**
     * The clear payload of a record, read with the storage key (the CSP's own read).
     * @throws {ProtocolError} `unknownRecord` / `decryptionFailed`
     */
    async read(recordCid: string): Promise<Uint8Array> {
        return openSealedPayload(decodeSealedPayload(await this.sealed(recordCid)), this.#storage);
    }

    /**
     * Shares one record with an auditor: its data key wrapped for `auditorPublicKey`, beside the
     * unchanged stored object. Nothing is written.
     * @throws {ProtocolError} `unknownRecord` when: the CSP sealed no record with that CID;
     *   {DecodeError} when: the auditor key is not a point of the curve
     */
    async share(recordCid: string, auditorPublicKey: Uint8Array): Promise<RecordShare> {
        return shareSealedPayload(await this.sealed(recordCid), this.#storage, auditorPublicKey);
    }

    /** Commits what is pending and closes the index. */
    async close(): Promise<void> {
        if (this.#closed) return;
        this.#closed = true;
        if (this.#timer !== undefined) clearTimeout(this.#timer);
        this.#timer = undefined;
        await this.#flush();
        await this.#index.close();
    }
}

/** The suite of a storage key file (for tools that open the directory without a configured suite). */
export async function storageKeySuite(dir: string): Promise<Suite> {
    const parsed = JSON.parse(await readFile(join(dir, STORAGE_KEY_FILE), 'utf8')) as { suite: string };
    return getSuite(parsed.suite);
}
