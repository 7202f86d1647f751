/**
 * Offline verification of a checkpoint proof (protocol checkpoint.ts) inside the chaincode: the
 * source block's data hash, the orderer's signature over its header by an identity issued by a
 * registered orderer root of the source channel, the `recordCheckpoint` transaction in it (an
 * endorser transaction of the source channel, its validation code VALID) and the checkpoint value in
 * its write set. Deterministic: protobuf fields are read by a small wire-format reader (the chaincode
 * has no Fabric protobuf classes of its own), X.509 and ECDSA by OpenSSL through node:crypto; the
 * certificates' validity periods are not checked (there is no clock but the transaction's).
 *
 * Not checked, and why: the endorsements of the source transaction (the orderer orders only what
 * the source channel's peers validated; the validation code is the source peer's flag, signed by
 * nobody, as for receipts).
 */
import { X509Certificate, createHash, verify } from 'node:crypto';

import type { CheckpointProof } from '@m2m-fabric/protocol';
import { blockHeaderBytes, CHECKPOINT_KEY_PREFIX } from '@m2m-fabric/protocol';

/** The trust of a source channel as registered on the target. */
export interface CheckpointSource {
    readonly channel: string;
    /** The chaincode name on the source channel (the namespace of its write set). */
    readonly chaincode: string;
    readonly orderers: readonly { mspId: string; rootCertificates: readonly string[] }[];
}

/** Why a proof failed; the contract turns it into a checkpointInvalid rejection. */
export class CheckpointProofError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'CheckpointProofError';
    }
}

function fail(message: string): never {
    throw new CheckpointProofError(message);
}

type Field = Uint8Array | bigint;

/** Protobuf wire format: field number → values (varints as bigint, length-delimited as bytes). */
function fields(buf: Uint8Array): Map<number, Field[]> {
    const out = new Map<number, Field[]>();
    let at = 0;
    const varint = (): bigint => {
        let result = 0n;
        for (let shift = 0n; ; shift += 7n) {
            if (at >= buf.length || shift > 63n) fail('malformed protobuf varint');
            const byte = buf[at++] as number;
            result |= BigInt(byte & 0x7f) << shift;
            if ((byte & 0x80) === 0) return result;
        }
    };
    while (at < buf.length) {
        const key = varint();
        const number = Number(key >> 3n);
        const wire = Number(key & 7n);
        let value: Field;
        if (wire === 0) value = varint();
        else if (wire === 2) {
            const length = Number(varint());
            if (at + length > buf.length) fail('malformed protobuf length');
            value = buf.subarray(at, at + length);
            at += length;
        } else if (wire === 1 || wire === 5) {
            const size = wire === 1 ? 8 : 4;
            if (at + size > buf.length) fail('malformed protobuf fixed field');
            value = buf.subarray(at, at + size);
            at += size;
        } else fail(`unsupported protobuf wire type ${wire}`);
        if (number === 0) fail('protobuf field 0');
        const list = out.get(number);
        if (list === undefined) out.set(number, [value]);
        else list.push(value);
    }
    return out;
}

function bytesField(map: Map<number, Field[]>, number: number, what: string): Uint8Array {
    const value = map.get(number)?.at(-1);
    if (value === undefined) return new Uint8Array(0);
    if (typeof value === 'bigint') fail(`${what}: not a bytes field`);
    return value;
}

function bytesList(map: Map<number, Field[]>, number: number, what: string): Uint8Array[] {
    return (map.get(number) ?? []).map((v) => (typeof v === 'bigint' ? fail(`${what}: not a bytes field`) : v));
}

function varintField(map: Map<number, Field[]>, number: number): bigint {
    const value = map.get(number)?.at(-1);
    if (value === undefined) return 0n;
    if (typeof value !== 'bigint') fail('not a varint field');
    return value;
}

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

function sha256(...parts: Uint8Array[]): Buffer {
    const hash = createHash('sha256');
    for (const part of parts) hash.update(part);
    return hash.digest();
}

/** The hash that names a block in Fabric (SHA-256 of its header bytes). */
export function blockHash(proof: CheckpointProof): Buffer {
    return sha256(blockHeaderBytes(proof.blockNumber, proof.previousHash, proof.dataHash));
}

function ordererCertificate(source: CheckpointSource, serialized: Uint8Array): X509Certificate {
    const identity = fields(serialized);
    const mspId = text(bytesField(identity, 1, 'identity'));
    const org = source.orderers.find((o) => o.mspId === mspId);
    if (org === undefined) fail(`${mspId} is not an ordering organisation of ${source.channel}`);
    let certificate: X509Certificate;
    try {
        certificate = new X509Certificate(Buffer.from(bytesField(identity, 2, 'identity')));
    } catch {
        return fail('malformed orderer certificate');
    }
    if (certificate.ca) fail('a CA certificate is not an orderer identity');
    const issued = org.rootCertificates.some((pem) => {
        try {
            const root = new X509Certificate(pem);
            return certificate.checkIssued(root) && certificate.verify(root.publicKey);
        } catch {
            return false;
        }
    });
    if (!issued) fail(`the orderer certificate is not issued by a ${mspId} root`);
    return certificate;
}

/**
 * Verifies `proof` against `source` and returns the checkpoint value the transaction wrote.
 * @throws CheckpointProofError naming the failed step
 */
export function verifyCheckpointProof(
    source: CheckpointSource,
    proof: CheckpointProof,
): { key: string; value: Uint8Array } {
    if (proof.channel !== source.channel) fail(`the proof is from channel ${proof.channel}, not ${source.channel}`);
    if (proof.validationCode !== 0) fail(`the transaction is not VALID (code ${proof.validationCode})`);
    // Data hash: SHA-256 over every envelope of the block.
    if (!sha256(...proof.envelopes).equals(Buffer.from(proof.dataHash)))
        fail('the envelopes do not hash to the header');
    // Orderer signature: over metadata value ‖ signature header ‖ BlockHeaderBytes.
    const header = blockHeaderBytes(proof.blockNumber, proof.previousHash, proof.dataHash);
    const metadata = fields(proof.signatures);
    const value = bytesField(metadata, 1, 'metadata');
    const signatures = bytesList(metadata, 2, 'metadata');
    if (signatures.length === 0) fail('the block is not signed');
    let signed = false;
    for (const entry of signatures) {
        const signature = fields(entry);
        const signatureHeader = bytesField(signature, 1, 'signature');
        const creator = bytesField(fields(signatureHeader), 1, 'signature header');
        const certificate = ordererCertificate(source, creator);
        const ok = verify(
            'sha256',
            Buffer.concat([value, signatureHeader, header]),
            certificate.publicKey,
            Buffer.from(bytesField(signature, 2, 'signature')),
        );
        if (!ok) fail('an orderer signature does not verify');
        signed = true;
    }
    if (!signed) fail('the block is not signed');
    // The transaction.
    const envelope = proof.envelopes[proof.transactionIndex];
    if (envelope === undefined) fail(`no envelope ${proof.transactionIndex} in the block`);
    const payload = fields(bytesField(fields(envelope), 1, 'envelope'));
    const channelHeader = fields(bytesField(fields(bytesField(payload, 1, 'payload')), 1, 'header'));
    if (varintField(channelHeader, 1) !== 3n) fail('not an endorser transaction');
    if (text(bytesField(channelHeader, 4, 'channel header')) !== source.channel)
        fail('the transaction is of another channel');
    if (text(bytesField(channelHeader, 5, 'channel header')) !== proof.transactionId)
        fail('the envelope is another transaction');
    // Its write set: Transaction → action → ChaincodeActionPayload → endorsed action →
    // ProposalResponsePayload → ChaincodeAction → TxReadWriteSet → the chaincode's KVRWSet.
    const actions = bytesList(fields(bytesField(payload, 2, 'payload')), 1, 'transaction');
    if (actions.length !== 1) fail('the transaction has not exactly one action');
    const actionPayload = fields(bytesField(fields(actions[0] as Uint8Array), 2, 'action'));
    const endorsed = fields(bytesField(actionPayload, 2, 'action payload'));
    const responsePayload = fields(bytesField(endorsed, 1, 'endorsed action'));
    const chaincodeAction = fields(bytesField(responsePayload, 2, 'proposal response payload'));
    const rwset = fields(bytesField(chaincodeAction, 1, 'chaincode action'));
    let found: { key: string; value: Uint8Array } | undefined;
    for (const ns of bytesList(rwset, 2, 'read-write set')) {
        const nsFields = fields(ns);
        if (text(bytesField(nsFields, 1, 'namespace')) !== source.chaincode) continue;
        for (const write of bytesList(fields(bytesField(nsFields, 2, 'namespace')), 3, 'kv set')) {
            const kv = fields(write);
            const key = text(bytesField(kv, 1, 'write'));
            if (!key.startsWith(CHECKPOINT_KEY_PREFIX) || varintField(kv, 2) !== 0n) continue;
            if (found !== undefined) fail('two checkpoints in one transaction');
            found = { key, value: bytesField(kv, 3, 'write') };
        }
    }
    if (found === undefined) fail(`the transaction writes no checkpoint of ${source.chaincode}`);
    return found;
}
