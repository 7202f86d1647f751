/**
 * Receipts: everything a third party needs to check, offline and against nothing but the
 * channel's MSP root certificates, that one communication record was anchored on the ledger:
 *
 *  - the record (its signature by the sender's key);
 *  - its RFC 9162 inclusion proof in the writer's log at the anchored tree size, and the root;
 *  - the anchoring transaction's block: header (number, previous hash, data hash), the ordering
 *    service's SIGNATURES metadata, every envelope of the block (Fabric's data hash is the
 *    SHA-256 of their concatenation), the transaction's index and its validation code.
 *
 * One implementation for the SDK (`verifyReceipt`, `m2m records verify`), the console and the
 * device agent's step 9 of the record query (record-query.ts): Fabric's messages are read with the
 * protocol's own wire-format reader (fabric-messages.ts), not fabric-protos, and certificates are
 * checked with node:crypto's X509Certificate.
 *
 * Verification, in order (each failure is a ReceiptError naming the check):
 *  1. encoding — the receipt's canonical binary form;
 *  2. dataHash — SHA-256 of the envelopes equals the header's data hash;
 *  3. ordererSignature — a signature over value || signature header || BlockHeaderBytes by an
 *     identity issued by an orderer organisation's root;
 *  4. transaction — the envelope at the index is an endorser transaction of the channel with the
 *     receipt's transaction id (= SHA-256(nonce || creator)), signed by its creator, a member;
 *  5. endorsement / policy — each endorsement's signature over proposal response payload ||
 *     endorser by an identity of its organisation's root, and the endorsing organisations
 *     satisfy the channel's policy (MAJORITY / ANY / ALL Endorsement);
 *  6. writeSet — the chaincode's write set holds anchor/<writer>/<sequence> whose value carries
 *     the receipt's tree size and root;
 *  7. validationCode — VALID. Fabric's validation flags are written by each committing peer and
 *     signed by nobody, so this is the flag of the peer the block was fetched from; see
 *     docs/records.md for what that leaves open;
 *  8. record / inclusion — the record verifies and its leaf hash is at the index of the tree.
 */
import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

import { anchorKey, decodeAnchorValue } from './anchor.js';
import { blockHeaderBytes } from './block-header.js';
import { ByteReader, ByteWriter } from './encoding.js';
import { ErrorCode, ProtocolError } from './errors.js';
import { verifyLowS } from './fabric-ecdsa.js';
import {
    BlockMetadataIndex,
    ENDORSER_TRANSACTION,
    decodeFabricBlock,
    decodeFabricChaincodeAction,
    decodeFabricChaincodeActionPayload,
    decodeFabricChannelHeader,
    decodeFabricEnvelope,
    decodeFabricKvWrites,
    decodeFabricMetadata,
    decodeFabricPayload,
    decodeFabricProposalResponsePayload,
    decodeFabricSerializedIdentity,
    decodeFabricSignatureHeader,
    decodeFabricTransaction,
    decodeFabricTxReadWriteSet,
} from './fabric-messages.js';
import { MERKLE_HASH_BYTES, merkleLeafHash, verifyInclusion } from './merkle.js';
import { openRecord, type CommunicationRecord } from './record.js';

const SIGNATURES_SLOT = BlockMetadataIndex.Signatures;
const TRANSACTIONS_FILTER_SLOT = BlockMetadataIndex.TransactionsFilter;
const VALID = 0;
const MAGIC = 'M2M-RECEIPT';
export const RECEIPT_VERSION = 1;
/** A Merkle path of a 2^64-leaf tree has at most 64 hashes. */
const MAX_PATH = 64;

/** Which check a receipt failed. */
export type ReceiptCheck =
    | 'encoding'
    | 'dataHash'
    | 'ordererSignature'
    | 'transaction'
    | 'endorsement'
    | 'policy'
    | 'writeSet'
    | 'validationCode'
    | 'record'
    | 'inclusion';

/** A receipt that does not verify; `check` names the step, `code` is receiptInvalid. */
export class ReceiptError extends ProtocolError {
    readonly check: ReceiptCheck;
    constructor(check: ReceiptCheck, message: string, options?: ErrorOptions) {
        super(ErrorCode.ReceiptInvalid, `${check}: ${message}`, options);
        this.name = 'ReceiptError';
        this.check = check;
    }
}

function fail(check: ReceiptCheck, message: string, cause?: unknown): never {
    throw new ReceiptError(check, message, cause === undefined ? undefined : { cause });
}

/** The channel's MSP roots an offline verifier trusts (what EmbeddedLedger.channelTrust exports). */
export interface ChannelTrust {
    readonly channel: string;
    readonly chaincode: string;
    readonly orderers: readonly { mspId: string; rootCertificates: readonly string[] }[];
    readonly organisations: readonly { mspId: string; rootCertificates: readonly string[] }[];
    /** `MAJORITY Endorsement` (Fabric's default), `ANY Endorsement` or `ALL Endorsement`. */
    readonly endorsementPolicy: string;
}

/** A self-contained receipt: the record's placement in its batch plus the anchoring block. */
export interface Receipt extends RecordPlacement {
    block: {
        number: number;
        previousHash: Uint8Array;
        dataHash: Uint8Array;
        /** Metadata slot SIGNATURES (common.Metadata bytes). */
        signatures: Uint8Array;
        envelopes: Uint8Array[];
        transactionIndex: number;
        validationCode: number;
    };
}

// ---- encoding ---------------------------------------------------------------------------------

/** Canonical binary form: MAGIC, version, then every field in order, lengths prefixed. */
export function encodeReceipt(receipt: Receipt): Uint8Array {
    const w = new ByteWriter().string(MAGIC).u8(RECEIPT_VERSION);
    w.bytes16(receipt.record).string(receipt.writer).u64(BigInt(receipt.sequence));
    w.u64(BigInt(receipt.leafIndex)).u64(BigInt(receipt.treeSize)).u8(receipt.inclusionProof.length);
    for (const hash of receipt.inclusionProof) w.raw(hash);
    w.raw(receipt.root).string(receipt.transactionId);
    const b = receipt.block;
    w.u64(BigInt(b.number)).bytes16(b.previousHash).bytes16(b.dataHash).bytes32(b.signatures);
    w.u32(b.envelopes.length);
    for (const envelope of b.envelopes) w.bytes32(envelope);
    w.u32(b.transactionIndex).u8(b.validationCode);
    return w.finish();
}

function safeNumber(value: bigint, what: string): number {
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail('encoding', `${what} out of range`);
    return Number(value);
}

/** @throws ReceiptError('encoding') */
export function decodeReceipt(bytes: Uint8Array): Receipt {
    try {
        const r = new ByteReader(bytes);
        if (r.string() !== MAGIC) fail('encoding', 'not a receipt');
        const version = r.u8();
        if (version !== RECEIPT_VERSION) fail('encoding', `receipt version ${version}`);
        const record = r.bytes16();
        const writer = r.string();
        const sequence = safeNumber(r.u64(), 'sequence');
        const leafIndex = safeNumber(r.u64(), 'leaf index');
        const treeSize = safeNumber(r.u64(), 'tree size');
        const pathLength = r.u8();
        if (pathLength > MAX_PATH) fail('encoding', `inclusion proof of ${pathLength} hashes`);
        const inclusionProof: Uint8Array[] = [];
        for (let i = 0; i < pathLength; i++) inclusionProof.push(r.raw(MERKLE_HASH_BYTES));
        const root = r.raw(MERKLE_HASH_BYTES);
        const transactionId = r.string();
        const number = safeNumber(r.u64(), 'block number');
        const previousHash = r.bytes16();
        const dataHash = r.bytes16();
        const signatures = r.bytes32();
        const count = r.u32();
        if (count > r.remaining() / 4) fail('encoding', `${count} envelopes cannot fit`);
        const envelopes: Uint8Array[] = [];
        for (let i = 0; i < count; i++) envelopes.push(r.bytes32());
        const transactionIndex = r.u32();
        const validationCode = r.u8();
        r.end();
        return {
            record,
            writer,
            sequence,
            leafIndex,
            treeSize,
            inclusionProof,
            root,
            transactionId,
            block: { number, previousHash, dataHash, signatures, envelopes, transactionIndex, validationCode },
        };
    } catch (error) {
        if (error instanceof ReceiptError) throw error;
        return fail('encoding', error instanceof Error ? error.message : String(error), error);
    }
}

// ---- building -----------------------------------------------------------------------------------

/** What the writer knows of a record's place in its log and batch. */
export interface RecordPlacement {
    /** The encoded communication record. */
    record: Uint8Array;
    writer: string;
    /** The batch (anchor) sequence. */
    sequence: number;
    leafIndex: number;
    treeSize: number;
    inclusionProof: Uint8Array[];
    root: Uint8Array;
    transactionId: string;
}

/**
 * A transaction's place in a `common.Block` as a receipt (and a checkpoint proof) carries it: the
 * header fields, the orderer's SIGNATURES metadata, every envelope, the transaction's index and its
 * validation code.
 * @throws {DecodeError} when: the bytes are not a common.Block
 * @throws {TypeError} when: the block has no header
 * @throws {RangeError} when: transaction … is not in the block
 */
export function transactionInBlock(blockBytes: Uint8Array, transactionId: string): Receipt['block'] {
    const block = decodeFabricBlock(blockBytes);
    const header = block.header;
    if (header === undefined) throw new TypeError('the block has no header');
    const envelopes = block.data;
    const metadata = block.metadata;
    const transactionIndex = envelopes.findIndex((envelope) => transactionIdOf(envelope) === transactionId);
    if (transactionIndex < 0) throw new RangeError(`transaction ${transactionId} is not in the block`);
    return {
        number: header.number,
        previousHash: header.previousHash,
        dataHash: header.dataHash,
        signatures: metadata[SIGNATURES_SLOT] ?? new Uint8Array(),
        envelopes,
        transactionIndex,
        validationCode: metadata[TRANSACTIONS_FILTER_SLOT]?.[transactionIndex] ?? 255,
    };
}

/**
 * Assembles a receipt from a record's placement and the `common.Block` bytes of its anchor.
 * @throws {TypeError} when: the block has no header
 * @throws {RangeError} when: transaction … is not in the block
 */
export function buildReceipt(placement: RecordPlacement, blockBytes: Uint8Array): Receipt {
    return { ...placement, block: transactionInBlock(blockBytes, placement.transactionId) };
}

/** The channel header transaction id of an envelope (undefined when malformed). */
export function transactionIdOf(envelopeBytes: Uint8Array): string | undefined {
    try {
        const payload = decodeFabricPayload(decodeFabricEnvelope(envelopeBytes).payload);
        return decodeFabricChannelHeader(payload.header?.channelHeader ?? new Uint8Array()).txId;
    } catch {
        return undefined;
    }
}

// ---- verification -------------------------------------------------------------------------------

const sha256 = (...parts: Uint8Array[]): Buffer => {
    const hash = createHash('sha256');
    for (const part of parts) hash.update(part);
    return hash.digest();
};

interface Identity {
    mspId: string;
    publicKey: KeyObject;
}

/** Which organisations' endorsements the policy needs, out of `total`. */
function requiredEndorsers(policy: string, total: number): number {
    switch (policy.trim()) {
        case 'MAJORITY Endorsement':
            return Math.floor(total / 2) + 1;
        case 'ANY Endorsement':
            return 1;
        case 'ALL Endorsement':
            return total;
        default:
            throw new RangeError(`unsupported endorsement policy ${JSON.stringify(policy)}`);
    }
}

/** What step 4-6 established about one anchoring transaction, cached by its envelope's hash. */
interface VerifiedAnchor {
    transactionId: string;
    writes: Map<string, Uint8Array>;
}

/**
 * Verifies receipts against a channel's trust roots. Certificates, block signatures and
 * anchoring transactions already checked are remembered (by their exact bytes), so an auditor
 * checking many records of one batch pays for the block once; every receipt still has its own
 * data hash, record signature and Merkle path checked.
 */
export class ReceiptVerifier {
    readonly #trust: ChannelTrust;
    readonly #roots = new Map<string, { orderer: boolean; roots: X509Certificate[] }>();
    readonly #identities = new Map<string, Identity | string>();
    readonly #blocks = new Set<string>();
    readonly #anchors = new Map<string, VerifiedAnchor>();
    readonly #required: number;

    /**
     * @throws {RangeError} when: MSP … listed twice
     */
    constructor(trust: ChannelTrust) {
        this.#trust = trust;
        for (const [orderer, list] of [
            [true, trust.orderers],
            [false, trust.organisations],
        ] as const) {
            for (const org of list) {
                if (this.#roots.has(org.mspId)) throw new RangeError(`MSP ${org.mspId} listed twice`);
                this.#roots.set(org.mspId, {
                    orderer,
                    roots: org.rootCertificates.map((pem) => new X509Certificate(pem)),
                });
            }
        }
        this.#required = requiredEndorsers(trust.endorsementPolicy, trust.organisations.length);
    }

    /** An identity issued directly by one of its MSP's roots; a string saying why not otherwise. */
    #identity(serialized: Uint8Array, orderer: boolean): Identity | string {
        const key = `${orderer ? 'o' : 'a'}${Buffer.from(serialized).toString('base64')}`;
        const cached = this.#identities.get(key);
        if (cached !== undefined) return cached;
        let result: Identity | string;
        try {
            const identity = decodeFabricSerializedIdentity(serialized);
            const mspId = identity.mspId;
            const entry = this.#roots.get(mspId);
            if (entry === undefined || entry.orderer !== orderer) {
                result = `${mspId} is not ${orderer ? 'an ordering' : 'an application'} organisation of the channel`;
            } else {
                const pem = Buffer.from(identity.idBytes).toString('utf8');
                const certificate = new X509Certificate(pem);
                const issued = entry.roots.some(
                    (root) => certificate.checkIssued(root) && certificate.verify(root.publicKey),
                );
                result = certificate.ca
                    ? 'a CA certificate is not an identity'
                    : issued
                      ? { mspId, publicKey: createPublicKey(pem) }
                      : `not issued by a ${mspId} root`;
            }
        } catch {
            result = 'malformed identity';
        }
        if (this.#identities.size > 10_000) this.#identities.clear();
        this.#identities.set(key, result);
        return result;
    }

    /** Verifies an encoded receipt; returns the record it proves. @throws ReceiptError */
    verifyBytes(bytes: Uint8Array): CommunicationRecord {
        return this.verify(decodeReceipt(bytes));
    }

    /** Verifies a decoded receipt; returns the record it proves. @throws ReceiptError */
    verify(receipt: Receipt): CommunicationRecord {
        const block = receipt.block;
        // 2. data hash
        if (!sha256(...block.envelopes).equals(block.dataHash))
            fail('dataHash', 'the envelopes do not hash to the header');
        // 3. orderer signature over the header
        const headerBytes = blockHeaderBytes(block.number, block.previousHash, block.dataHash);
        const blockKey = sha256(headerBytes, block.signatures).toString('base64');
        if (!this.#blocks.has(blockKey)) {
            this.#verifyOrdererSignature(block.signatures, headerBytes);
            if (this.#blocks.size > 10_000) this.#blocks.clear();
            this.#blocks.add(blockKey);
        }
        // 4-6. the anchoring transaction
        const envelope = block.envelopes[block.transactionIndex];
        if (envelope === undefined) fail('transaction', `no envelope ${block.transactionIndex} in the block`);
        const envelopeKey = sha256(envelope).toString('base64');
        let anchor = this.#anchors.get(envelopeKey);
        if (anchor === undefined) {
            anchor = this.#verifyTransaction(envelope);
            if (this.#anchors.size > 10_000) this.#anchors.clear();
            this.#anchors.set(envelopeKey, anchor);
        }
        if (anchor.transactionId !== receipt.transactionId) fail('transaction', 'the envelope is another transaction');
        let anchorValue;
        try {
            const written = anchor.writes.get(anchorKey(receipt.writer, receipt.sequence));
            if (written === undefined)
                fail('writeSet', `the transaction anchors no batch ${receipt.sequence} of ${receipt.writer}`);
            anchorValue = decodeAnchorValue(written);
        } catch (error) {
            if (error instanceof ReceiptError) throw error;
            return fail('writeSet', 'the anchor is malformed', error);
        }
        if (anchorValue.sequence !== receipt.sequence || anchorValue.treeSize !== receipt.treeSize) {
            fail('writeSet', 'the anchored tree size differs from the receipt');
        }
        if (!Buffer.from(anchorValue.root).equals(receipt.root))
            fail('writeSet', 'the anchored root differs from the receipt');
        // 7. validation flag
        if (block.validationCode !== VALID)
            fail('validationCode', `the transaction was invalidated (code ${block.validationCode})`);
        // 8. record and path
        let record: CommunicationRecord;
        try {
            record = openRecord(receipt.record);
        } catch (error) {
            return fail('record', error instanceof Error ? error.message : String(error), error);
        }
        try {
            verifyInclusion(
                merkleLeafHash(receipt.record),
                receipt.leafIndex,
                receipt.treeSize,
                receipt.inclusionProof,
                receipt.root,
            );
        } catch (error) {
            return fail('inclusion', error instanceof Error ? error.message : String(error), error);
        }
        return record;
    }

    #verifyOrdererSignature(signaturesBytes: Uint8Array, headerBytes: Uint8Array): void {
        let metadata;
        try {
            metadata = decodeFabricMetadata(signaturesBytes);
        } catch (error) {
            return fail('ordererSignature', 'malformed signature metadata', error);
        }
        const value = metadata.value;
        const signatures = metadata.signatures;
        if (signatures.length === 0) fail('ordererSignature', 'the block is not signed');
        for (const signature of signatures) {
            const headerOfSignature = signature.signatureHeader;
            let creator: Uint8Array;
            try {
                creator = decodeFabricSignatureHeader(headerOfSignature).creator;
            } catch (error) {
                return fail('ordererSignature', 'malformed signature header', error);
            }
            const identity = this.#identity(creator, true);
            if (typeof identity === 'string') fail('ordererSignature', identity);
            const message = Buffer.concat([value, headerOfSignature, headerBytes]);
            if (!verifyLowS(identity.publicKey, message, signature.signature)) {
                fail('ordererSignature', `the signature by ${identity.mspId} does not verify`);
            }
        }
    }

    #verifyTransaction(envelopeBytes: Uint8Array): VerifiedAnchor {
        let envelope, payload, channelHeader, signatureHeader, transaction;
        try {
            envelope = decodeFabricEnvelope(envelopeBytes);
            payload = decodeFabricPayload(envelope.payload);
            const header = payload.header;
            if (header === undefined) fail('transaction', 'the envelope has no header');
            channelHeader = decodeFabricChannelHeader(header.channelHeader);
            signatureHeader = decodeFabricSignatureHeader(header.signatureHeader);
            transaction = decodeFabricTransaction(payload.data);
        } catch (error) {
            if (error instanceof ReceiptError) throw error;
            return fail('transaction', 'malformed envelope', error);
        }
        if (channelHeader.type !== ENDORSER_TRANSACTION) fail('transaction', 'not an endorser transaction');
        if (channelHeader.channelId !== this.#trust.channel) fail('transaction', `channel ${channelHeader.channelId}`);
        const transactionId = channelHeader.txId;
        const creatorBytes = signatureHeader.creator;
        if (sha256(signatureHeader.nonce, creatorBytes).toString('hex') !== transactionId) {
            fail('transaction', 'the transaction id is not SHA-256(nonce || creator)');
        }
        const creator = this.#identity(creatorBytes, false);
        if (typeof creator === 'string') fail('transaction', `creator: ${creator}`);
        if (!verifyLowS(creator.publicKey, envelope.payload, envelope.signature)) {
            fail('transaction', 'the creator signature does not verify');
        }
        const actions = transaction;
        if (actions.length !== 1) fail('transaction', `${actions.length} actions`);
        let endorsed, responsePayloadBytes, chaincodeAction;
        try {
            endorsed = decodeFabricChaincodeActionPayload(actions[0]!.payload);
            if (endorsed === undefined) fail('transaction', 'no endorsed action');
            responsePayloadBytes = endorsed.proposalResponsePayload;
            const responsePayload = decodeFabricProposalResponsePayload(responsePayloadBytes);
            chaincodeAction = decodeFabricChaincodeAction(responsePayload.extension);
        } catch (error) {
            if (error instanceof ReceiptError) throw error;
            return fail('transaction', 'malformed transaction action', error);
        }
        // 5. endorsements and policy
        const endorsers = new Set<string>();
        for (const endorsement of endorsed.endorsements) {
            const endorserBytes = endorsement.endorser;
            const identity = this.#identity(endorserBytes, false);
            if (typeof identity === 'string') fail('endorsement', identity);
            const message = Buffer.concat([responsePayloadBytes, endorserBytes]);
            if (!verifyLowS(identity.publicKey, message, endorsement.signature)) {
                fail('endorsement', `the endorsement by ${identity.mspId} does not verify`);
            }
            endorsers.add(identity.mspId);
        }
        if (endorsers.size < this.#required) {
            fail(
                'policy',
                `${endorsers.size} organisations endorsed; ${this.#trust.endorsementPolicy} needs ${this.#required}`,
            );
        }
        // 6. the chaincode's writes
        const writes = new Map<string, Uint8Array>();
        try {
            if (chaincodeAction.chaincodeName !== this.#trust.chaincode) {
                fail('writeSet', `the transaction ran chaincode ${chaincodeAction.chaincodeName}`);
            }
            for (const ns of decodeFabricTxReadWriteSet(chaincodeAction.results)) {
                if (ns.namespace !== this.#trust.chaincode) continue;
                for (const write of decodeFabricKvWrites(ns.rwset)) {
                    if (!write.isDelete) writes.set(write.key, write.value);
                }
            }
        } catch (error) {
            if (error instanceof ReceiptError) throw error;
            return fail('writeSet', 'malformed read-write set', error);
        }
        return { transactionId, writes };
    }
}

/** Verifies one encoded receipt against `trust`. @throws ReceiptError */
export function verifyReceipt(trust: ChannelTrust, bytes: Uint8Array): CommunicationRecord {
    return new ReceiptVerifier(trust).verifyBytes(bytes);
}

/** Parses a trust file (JSON of ChannelTrust). @throws TypeError */
export function parseChannelTrust(json: string): ChannelTrust {
    const value = JSON.parse(json) as Partial<ChannelTrust>;
    const list = (v: unknown): v is { mspId: string; rootCertificates: string[] }[] =>
        Array.isArray(v) &&
        v.every(
            (o: { mspId?: unknown; rootCertificates?: unknown }) =>
                typeof o.mspId === 'string' &&
                Array.isArray(o.rootCertificates) &&
                o.rootCertificates.every((c) => typeof c === 'string'),
        );
    if (
        typeof value.channel !== 'string' ||
        typeof value.chaincode !== 'string' ||
        typeof value.endorsementPolicy !== 'string' ||
        !list(value.orderers) ||
        !list(value.organisations)
    ) {
        throw new TypeError(
            'not a channel trust file: needs channel, chaincode, endorsementPolicy, orderers, organisations',
        );
    }
    return value as ChannelTrust;
}

// ---- delivery -----------------------------------------------------------------------------------

const NOTICE_MAGIC = 'M2M-RECEIPT-NOTICE';
const NOTICE_VERSION = 1;

/**
 * A receipt notice: the body of the session-channel instruction (a Download frame) by which the
 * CSP hands a device the Merkle receipt of a record the device sent, once its batch is anchored.
 */
export function encodeReceiptNotice(receipt: Uint8Array): Uint8Array {
    return new ByteWriter().string(NOTICE_MAGIC).u8(NOTICE_VERSION).bytes32(receipt).finish();
}

/** The receipt in a receipt notice; undefined when `body` is not one (an ordinary instruction). */
export function decodeReceiptNotice(body: Uint8Array): Uint8Array | undefined {
    try {
        const r = new ByteReader(body);
        if (r.string() !== NOTICE_MAGIC || r.u8() !== NOTICE_VERSION) return undefined;
        const receipt = r.bytes32();
        r.end();
        return receipt;
    } catch {
        return undefined;
    }
}
