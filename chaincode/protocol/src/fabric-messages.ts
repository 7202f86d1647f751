/**
 * The Fabric messages an offline receipt check reads, decoded with protobuf-wire.ts. Field numbers
 * are those of hyperledger/fabric-protos (common/common.proto, peer/transaction.proto,
 * peer/proposal.proto, peer/proposal_response.proto, ledger/rwset/rwset.proto,
 * ledger/rwset/kvrwset/kv_rwset.proto, msp/identities.proto); test/records/fabric-wire.test.ts
 * decodes the same blocks with fabric-protos and compares field by field. Byte fields are views
 * into the input, so signatures are checked over exactly the bytes that were signed.
 */
import { WireMessage } from './protobuf-wire.js';

/** common.HeaderType ENDORSER_TRANSACTION. */
export const ENDORSER_TRANSACTION = 3;
/** common.BlockMetadataIndex SIGNATURES and TRANSACTIONS_FILTER. */
export const BlockMetadataIndex = { Signatures: 0, TransactionsFilter: 2 } as const;

export interface FabricBlock {
    header: { number: number; previousHash: Uint8Array; dataHash: Uint8Array } | undefined;
    /** BlockData.data: the envelopes. */
    data: Uint8Array[];
    /** BlockMetadata.metadata, by BlockMetadataIndex. */
    metadata: Uint8Array[];
}

/** common.Block. @throws {DecodeError} */
export function decodeFabricBlock(bytes: Uint8Array): FabricBlock {
    const block = new WireMessage(bytes);
    let header: FabricBlock['header'];
    if (block.has(1)) {
        const h = new WireMessage(block.bytes(1));
        header = { number: h.safeUint(1), previousHash: h.bytes(2), dataHash: h.bytes(3) };
    }
    return {
        header,
        data: new WireMessage(block.bytes(2)).repeated(1),
        metadata: new WireMessage(block.bytes(3)).repeated(1),
    };
}

/** common.Envelope. @throws {DecodeError} */
export function decodeFabricEnvelope(bytes: Uint8Array): { payload: Uint8Array; signature: Uint8Array } {
    const m = new WireMessage(bytes);
    return { payload: m.bytes(1), signature: m.bytes(2) };
}

/** common.Payload with its common.Header (channel_header, signature_header bytes). @throws {DecodeError} */
export function decodeFabricPayload(bytes: Uint8Array): {
    header: { channelHeader: Uint8Array; signatureHeader: Uint8Array } | undefined;
    data: Uint8Array;
} {
    const m = new WireMessage(bytes);
    let header;
    if (m.has(1)) {
        const h = new WireMessage(m.bytes(1));
        header = { channelHeader: h.bytes(1), signatureHeader: h.bytes(2) };
    }
    return { header, data: m.bytes(2) };
}

/** common.ChannelHeader (the fields a receipt checks). @throws {DecodeError} */
export function decodeFabricChannelHeader(bytes: Uint8Array): { type: number; channelId: string; txId: string } {
    const m = new WireMessage(bytes);
    return { type: m.int32(1), channelId: m.string(4), txId: m.string(5) };
}

/** common.SignatureHeader. @throws {DecodeError} */
export function decodeFabricSignatureHeader(bytes: Uint8Array): { creator: Uint8Array; nonce: Uint8Array } {
    const m = new WireMessage(bytes);
    return { creator: m.bytes(1), nonce: m.bytes(2) };
}

/** common.Metadata with its MetadataSignatures. @throws {DecodeError} */
export function decodeFabricMetadata(bytes: Uint8Array): {
    value: Uint8Array;
    signatures: { signatureHeader: Uint8Array; signature: Uint8Array }[];
} {
    const m = new WireMessage(bytes);
    return {
        value: m.bytes(1),
        signatures: m.repeated(2).map((s) => {
            const sig = new WireMessage(s);
            return { signatureHeader: sig.bytes(1), signature: sig.bytes(2) };
        }),
    };
}

/** peer.Transaction: its TransactionActions (header, payload). @throws {DecodeError} */
export function decodeFabricTransaction(bytes: Uint8Array): { header: Uint8Array; payload: Uint8Array }[] {
    return new WireMessage(bytes).repeated(1).map((a) => {
        const action = new WireMessage(a);
        return { header: action.bytes(1), payload: action.bytes(2) };
    });
}

/**
 * peer.ChaincodeActionPayload and its peer.ChaincodeEndorsedAction (undefined when absent).
 * @throws {DecodeError}
 */
export function decodeFabricChaincodeActionPayload(bytes: Uint8Array):
    | {
          proposalResponsePayload: Uint8Array;
          endorsements: { endorser: Uint8Array; signature: Uint8Array }[];
      }
    | undefined {
    const m = new WireMessage(bytes);
    if (!m.has(2)) return undefined;
    const action = new WireMessage(m.bytes(2));
    return {
        proposalResponsePayload: action.bytes(1),
        endorsements: action.repeated(2).map((e) => {
            const endorsement = new WireMessage(e);
            return { endorser: endorsement.bytes(1), signature: endorsement.bytes(2) };
        }),
    };
}

/** peer.ProposalResponsePayload. @throws {DecodeError} */
export function decodeFabricProposalResponsePayload(bytes: Uint8Array): {
    proposalHash: Uint8Array;
    extension: Uint8Array;
} {
    const m = new WireMessage(bytes);
    return { proposalHash: m.bytes(1), extension: m.bytes(2) };
}

/** peer.ChaincodeAction: the read-write set bytes and the chaincode's name. @throws {DecodeError} */
export function decodeFabricChaincodeAction(bytes: Uint8Array): { results: Uint8Array; chaincodeName: string } {
    const m = new WireMessage(bytes);
    return { results: m.bytes(1), chaincodeName: new WireMessage(m.bytes(4)).string(2) };
}

/** rwset.TxReadWriteSet: per namespace, its (KVRWSet) bytes. @throws {DecodeError} */
export function decodeFabricTxReadWriteSet(bytes: Uint8Array): { namespace: string; rwset: Uint8Array }[] {
    return new WireMessage(bytes).repeated(2).map((n) => {
        const ns = new WireMessage(n);
        return { namespace: ns.string(1), rwset: ns.bytes(2) };
    });
}

/** kvrwset.KVRWSet: its writes. @throws {DecodeError} */
export function decodeFabricKvWrites(bytes: Uint8Array): { key: string; isDelete: boolean; value: Uint8Array }[] {
    return new WireMessage(bytes).repeated(3).map((w) => {
        const write = new WireMessage(w);
        return { key: write.string(1), isDelete: write.bool(2), value: write.bytes(3) };
    });
}

/** msp.SerializedIdentity. @throws {DecodeError} */
export function decodeFabricSerializedIdentity(bytes: Uint8Array): { mspId: string; idBytes: Uint8Array } {
    const m = new WireMessage(bytes);
    return { mspId: m.string(1), idBytes: m.bytes(2) };
}
