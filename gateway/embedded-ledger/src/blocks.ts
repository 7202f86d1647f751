/**
 * Blocks as Fabric builds and chains them: `common.Block` with
 *  - data hash = SHA-256 of the concatenated envelopes (protoutil.ComputeBlockDataHash),
 *  - header hash = SHA-256 of the DER encoding of SEQUENCE { number INTEGER, previousHash OCTET
 *    STRING, dataHash OCTET STRING } (protoutil.BlockHeaderHash), which the next header carries
 *    as its previous hash,
 *  - the validation code of each transaction in metadata slot TRANSACTIONS_FILTER (one byte per
 *    transaction), which is outside the hashed header exactly as in Fabric.
 */
import { createHash, randomBytes } from 'node:crypto';

import { blockHeaderBytes } from '@m2m-fabric/protocol';

import { BlockMetadataIndex, common, HeaderType, peer } from './protos.js';

export function sha256(...parts: Uint8Array[]): Uint8Array {
    const hash = createHash('sha256');
    for (const part of parts) hash.update(part);
    return new Uint8Array(hash.digest());
}

/** Fabric's block header hash. */
export function blockHeaderHash(number: number, previousHash: Uint8Array, dataHash: Uint8Array): Uint8Array {
    return sha256(blockHeaderBytes(number, previousHash, dataHash));
}

/**
 * The ordering service's block signature (Fabric 2.x orderer/common/multichannel/blockwriter.go):
 * metadata slot SIGNATURES holds `Metadata { value: OrdererBlockMetadata { last_config }, signatures:
 * [MetadataSignature { signature_header: SignatureHeader { creator, nonce }, signature }] }`, the
 * signature over value || signature_header || BlockHeaderBytes. Peers and offline verifiers check
 * it against the orderer organisation's MSP.
 */
export interface BlockSigner {
    /** The orderer's serialized identity (msp.SerializedIdentity). */
    readonly identity: Uint8Array;
    sign(message: Uint8Array): Promise<Uint8Array>;
}

/** A protobuf length-delimited field (wire type 2). */
function protoBytes(field: number, value: Uint8Array): Buffer {
    const varint = (n: number): number[] => {
        const out: number[] = [];
        while (n >= 0x80) {
            out.push((n & 0x7f) | 0x80);
            n = Math.floor(n / 128);
        }
        out.push(n);
        return out;
    };
    return Buffer.concat([Buffer.from([...varint((field << 3) | 2), ...varint(value.length)]), value]);
}

/**
 * The SIGNATURES metadata, encoded by hand: the process may also load fabric-gateway's newer
 * fabric-protos, whose classes replace these messages in google-protobuf's global namespace (its
 * MetadataSignature has a field ours lacks), so serialising them through the classes breaks.
 * Fields: Metadata { 1 value, 2 signatures }, MetadataSignature { 1 signature_header, 2 signature },
 * SignatureHeader { 1 creator, 2 nonce }, OrdererBlockMetadata { 1 last_config = LastConfig { 1 index = 0 } }.
 */
async function ordererSignature(
    signer: BlockSigner,
    number: number,
    previousHash: Uint8Array,
    dataHash: Uint8Array,
): Promise<Uint8Array> {
    const value = protoBytes(1, new Uint8Array());
    const headerBytes = Buffer.concat([protoBytes(1, signer.identity), protoBytes(2, randomBytes(24))]);
    const signature = await signer.sign(
        Buffer.concat([value, headerBytes, blockHeaderBytes(number, previousHash, dataHash)]),
    );
    const metadataSignature = Buffer.concat([protoBytes(1, headerBytes), protoBytes(2, signature)]);
    return new Uint8Array(Buffer.concat([protoBytes(1, value), protoBytes(2, metadataSignature)]));
}

/** Fabric's block data hash. */
export function blockDataHash(data: readonly Uint8Array[]): Uint8Array {
    return sha256(...data);
}

/**
 * Builds a block of envelopes with their validation codes, signed by the orderer when `signer` is
 * given; returns its bytes and header hash.
 */
export async function buildBlock(
    number: number,
    previousHash: Uint8Array,
    envelopes: readonly Uint8Array[],
    validationCodes: readonly number[],
    signer?: BlockSigner,
): Promise<{ bytes: Uint8Array; headerHash: Uint8Array }> {
    const dataHash = blockDataHash(envelopes);
    const header = new common.BlockHeader();
    header.setNumber(number);
    header.setPreviousHash(previousHash);
    header.setDataHash(dataHash);
    const data = new common.BlockData();
    data.setDataList([...envelopes]);
    const metadata = new common.BlockMetadata();
    const slots: Uint8Array[] = [
        new Uint8Array(),
        new Uint8Array(),
        new Uint8Array(),
        new Uint8Array(),
        new Uint8Array(),
    ];
    if (signer !== undefined) {
        slots[BlockMetadataIndex.SIGNATURES] = await ordererSignature(signer, number, previousHash, dataHash);
    }
    slots[BlockMetadataIndex.TRANSACTIONS_FILTER] = Uint8Array.from(validationCodes);
    metadata.setMetadataList(slots);
    const block = new common.Block();
    block.setHeader(header);
    block.setData(data);
    block.setMetadata(metadata);
    return { bytes: block.serializeBinary(), headerHash: blockHeaderHash(number, previousHash, dataHash) };
}

/** The parts of a stored block that the chain check and the event service read. */
export interface DecodedBlock {
    readonly number: number;
    readonly previousHash: Uint8Array;
    readonly dataHash: Uint8Array;
    readonly envelopes: Uint8Array[];
    readonly validationCodes: Uint8Array;
}

/**
 * @throws {Error} when: block has no header
 */
export function decodeBlock(bytes: Uint8Array): DecodedBlock {
    const block = common.Block.deserializeBinary(bytes);
    const header = block.getHeader();
    if (header === undefined) throw new Error('block has no header');
    return {
        number: header.getNumber(),
        previousHash: header.getPreviousHash_asU8(),
        dataHash: header.getDataHash_asU8(),
        envelopes: block.getData()?.getDataList_asU8() ?? [],
        validationCodes:
            block.getMetadata()?.getMetadataList_asU8()[BlockMetadataIndex.TRANSACTIONS_FILTER] ?? new Uint8Array(),
    };
}

/** What the event service needs of one transaction in a block. */
export interface TransactionSummary {
    readonly txId: string;
    readonly code: number;
    readonly event?: { chaincodeName: string; eventName: string; payload: Uint8Array };
}

/** Transaction ids, codes and chaincode events of a block's endorser transactions. */
export function summariseBlock(block: DecodedBlock): TransactionSummary[] {
    const summaries: TransactionSummary[] = [];
    block.envelopes.forEach((envelopeBytes, index) => {
        const code = block.validationCodes[index] ?? 255;
        try {
            const payload = common.Payload.deserializeBinary(
                common.Envelope.deserializeBinary(envelopeBytes).getPayload_asU8(),
            );
            const channelHeader = common.ChannelHeader.deserializeBinary(
                payload.getHeader()?.getChannelHeader_asU8() ?? new Uint8Array(),
            );
            if (channelHeader.getType() !== HeaderType.ENDORSER_TRANSACTION) return;
            const txId = channelHeader.getTxId();
            const transaction = peer.Transaction.deserializeBinary(payload.getData_asU8());
            const action = transaction.getActionsList()[0];
            let event: TransactionSummary['event'];
            if (action !== undefined) {
                const actionPayload = peer.ChaincodeActionPayload.deserializeBinary(action.getPayload_asU8());
                const responsePayload = peer.ProposalResponsePayload.deserializeBinary(
                    actionPayload.getAction()?.getProposalResponsePayload_asU8() ?? new Uint8Array(),
                );
                const chaincodeAction = peer.ChaincodeAction.deserializeBinary(responsePayload.getExtension_asU8());
                const eventBytes = chaincodeAction.getEvents_asU8();
                if (eventBytes.length > 0) {
                    const chaincodeEvent = peer.ChaincodeEvent.deserializeBinary(eventBytes);
                    event = {
                        chaincodeName: chaincodeEvent.getChaincodeId(),
                        eventName: chaincodeEvent.getEventName(),
                        payload: chaincodeEvent.getPayload_asU8(),
                    };
                }
            }
            summaries.push(event === undefined ? { txId, code } : { txId, code, event });
        } catch {
            // A malformed envelope was already marked invalid by the validator; it has no events.
        }
    });
    return summaries;
}
