/**
 * What the ledger view shows of a block: its number, hashes and, per transaction, the id, type,
 * creator org, endorsing orgs, chaincode function and validation code. Decoded from Fabric's
 * `common.Block` bytes, so it reads blocks of the embedded ledger and of a real peer (qscc) alike.
 */
import { common, msp, peer } from '@hyperledger/fabric-protos';
import { validationCodeName, type ValidationCode } from '@m2m-fabric/sdk';

/** Fabric's `common.HeaderType` values the console names. */
const HEADER_TYPES: Readonly<Record<number, string>> = { 1: 'CONFIG', 3: 'ENDORSER_TRANSACTION' };
/** `common.BlockMetadataIndex.TRANSACTIONS_FILTER`. */
const TRANSACTIONS_FILTER = 2;

export interface TransactionView {
    readonly txId: string;
    readonly type: string;
    /** ISO time from the channel header. */
    readonly timestamp: string;
    readonly creatorMsp: string;
    /** MSP IDs of the peers that endorsed it, in envelope order. */
    readonly endorsers: string[];
    /** `contract:function` of an endorser transaction (the first argument of the invocation). */
    readonly function?: string;
    readonly code: ValidationCode;
    /** The chaincode event name, if the transaction set one. */
    readonly event?: string;
}

export interface BlockView {
    readonly number: number;
    readonly dataHash: string;
    readonly previousHash: string;
    readonly transactions: TransactionView[];
    /** Transactions by validation code. */
    readonly codes: Partial<Record<ValidationCode, number>>;
    readonly mvccConflicts: number;
    readonly bytes: number;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function mspOf(serializedIdentity: Uint8Array): string {
    try {
        return msp.SerializedIdentity.deserializeBinary(serializedIdentity).getMspid();
    } catch {
        return '?';
    }
}

function decodeTransaction(envelopeBytes: Uint8Array, codeNumber: number): TransactionView {
    const code = validationCodeName(codeNumber);
    const payload = common.Payload.deserializeBinary(
        common.Envelope.deserializeBinary(envelopeBytes).getPayload_asU8(),
    );
    const header = payload.getHeader();
    const channelHeader = common.ChannelHeader.deserializeBinary(header?.getChannelHeader_asU8() ?? new Uint8Array());
    const signatureHeader = common.SignatureHeader.deserializeBinary(
        header?.getSignatureHeader_asU8() ?? new Uint8Array(),
    );
    // google-protobuf's Timestamp type is not resolvable through fabric-protos' declarations.
    const stamp = channelHeader.getTimestamp() as unknown as { getSeconds(): number } | undefined;
    const seconds = stamp?.getSeconds() ?? 0;
    const base = {
        txId: channelHeader.getTxId(),
        type: HEADER_TYPES[channelHeader.getType()] ?? `TYPE_${channelHeader.getType()}`,
        timestamp: new Date(seconds * 1000).toISOString(),
        creatorMsp: mspOf(signatureHeader.getCreator_asU8()),
        code,
    };
    if (channelHeader.getType() !== common.HeaderType.ENDORSER_TRANSACTION) return { ...base, endorsers: [] };
    const transaction = peer.Transaction.deserializeBinary(payload.getData_asU8());
    const action = transaction.getActionsList()[0];
    if (action === undefined) return { ...base, endorsers: [] };
    const actionPayload = peer.ChaincodeActionPayload.deserializeBinary(action.getPayload_asU8());
    const endorsed = actionPayload.getAction();
    const endorsers = (endorsed?.getEndorsementsList() ?? []).map((e) => mspOf(e.getEndorser_asU8()));
    let fn: string | undefined;
    try {
        const proposalPayload = peer.ChaincodeProposalPayload.deserializeBinary(
            actionPayload.getChaincodeProposalPayload_asU8(),
        );
        const spec = peer.ChaincodeInvocationSpec.deserializeBinary(proposalPayload.getInput_asU8()).getChaincodeSpec();
        const first = spec?.getInput()?.getArgsList_asU8()[0];
        if (first !== undefined) fn = Buffer.from(first).toString('utf8');
    } catch {
        // A proposal payload that does not decode leaves the function unnamed.
    }
    let event: string | undefined;
    try {
        const response = peer.ProposalResponsePayload.deserializeBinary(
            endorsed?.getProposalResponsePayload_asU8() ?? new Uint8Array(),
        );
        const eventBytes = peer.ChaincodeAction.deserializeBinary(response.getExtension_asU8()).getEvents_asU8();
        if (eventBytes.length > 0) event = peer.ChaincodeEvent.deserializeBinary(eventBytes).getEventName();
    } catch {
        // No event.
    }
    return {
        ...base,
        endorsers,
        ...(fn !== undefined ? { function: fn } : {}),
        ...(event !== undefined ? { event } : {}),
    };
}

/**
 * Decodes a block for display. An envelope that does not decode (the validator marked it invalid)
 * is shown with its code and an empty id rather than dropped.
 */
export function decodeBlockView(bytes: Uint8Array): BlockView {
    const block = common.Block.deserializeBinary(bytes);
    const header = block.getHeader();
    const envelopes = block.getData()?.getDataList_asU8() ?? [];
    const filter = block.getMetadata()?.getMetadataList_asU8()[TRANSACTIONS_FILTER] ?? new Uint8Array();
    const codes: Partial<Record<ValidationCode, number>> = {};
    const transactions = envelopes.map((envelope, i) => {
        const codeNumber = filter[i] ?? 254;
        let tx: TransactionView;
        try {
            tx = decodeTransaction(envelope, codeNumber);
        } catch {
            tx = {
                txId: '',
                type: 'MALFORMED',
                timestamp: '',
                creatorMsp: '?',
                endorsers: [],
                code: validationCodeName(codeNumber),
            };
        }
        codes[tx.code] = (codes[tx.code] ?? 0) + 1;
        return tx;
    });
    return {
        number: header?.getNumber() ?? 0,
        dataHash: hex(header?.getDataHash_asU8() ?? new Uint8Array()),
        previousHash: hex(header?.getPreviousHash_asU8() ?? new Uint8Array()),
        transactions,
        codes,
        mvccConflicts: (codes.MVCC_READ_CONFLICT ?? 0) + (codes.PHANTOM_READ_CONFLICT ?? 0),
        bytes: bytes.length,
    };
}
