/**
 * The client (gateway) side of a transaction, in Fabric's messages: a signed proposal, and the
 * signed transaction envelope assembled from matching endorsements (protoutil.CreateSignedTx).
 * The transaction id is hex(SHA-256(nonce ‖ creator)), as Fabric computes and checks it.
 */
import { randomBytes } from 'node:crypto';

import type { LedgerSigner } from '@m2m-fabric/sdk';
import { sha256 } from './blocks.js';
import { common, HeaderType, newTimestamp, peer } from './protos.js';

/** Node chaincode type in `ChaincodeSpec`. */
const CHAINCODE_TYPE_NODE = 3;

export interface ProposalInput {
    readonly channelId: string;
    readonly chaincodeName: string;
    /** Function name as the contract router expects it (`contract:function` or `function`). */
    readonly functionName: string;
    readonly args: readonly (string | Uint8Array)[];
    readonly transient: Readonly<Record<string, string | Uint8Array>>;
    /** Serialized `msp.SerializedIdentity` of the client. */
    readonly creator: Uint8Array;
    readonly timestampMillis?: number;
}

export interface SignedProposalBundle {
    readonly txId: string;
    readonly signedProposal: Uint8Array;
    /** Proposal parts reused to assemble the transaction. */
    readonly headerBytes: Uint8Array;
    readonly signatureHeaderBytes: Uint8Array;
    /** ChaincodeProposalPayload without the transient map: what the transaction carries. */
    readonly payloadWithoutTransient: Uint8Array;
}

export function computeTxId(nonce: Uint8Array, creator: Uint8Array): string {
    return Buffer.from(sha256(nonce, creator)).toString('hex');
}

function toBytes(value: string | Uint8Array): Uint8Array {
    return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

/** Builds and signs a proposal. */
export async function createSignedProposal(input: ProposalInput, signer: LedgerSigner): Promise<SignedProposalBundle> {
    const nonce = randomBytes(24);
    const txId = computeTxId(nonce, input.creator);

    const chaincodeId = new peer.ChaincodeID();
    chaincodeId.setName(input.chaincodeName);
    const extension = new peer.ChaincodeHeaderExtension();
    extension.setChaincodeId(chaincodeId);

    const channelHeader = new common.ChannelHeader();
    channelHeader.setType(HeaderType.ENDORSER_TRANSACTION);
    channelHeader.setTimestamp(newTimestamp(input.timestampMillis ?? Date.now()));
    channelHeader.setChannelId(input.channelId);
    channelHeader.setTxId(txId);
    channelHeader.setEpoch(0);
    channelHeader.setExtension$(extension.serializeBinary());

    const signatureHeader = new common.SignatureHeader();
    signatureHeader.setCreator(input.creator);
    signatureHeader.setNonce(nonce);
    const signatureHeaderBytes = signatureHeader.serializeBinary();

    const header = new common.Header();
    header.setChannelHeader(channelHeader.serializeBinary());
    header.setSignatureHeader(signatureHeaderBytes);
    const headerBytes = header.serializeBinary();

    const chaincodeInput = new peer.ChaincodeInput();
    chaincodeInput.setArgsList([Buffer.from(input.functionName, 'utf8'), ...input.args.map(toBytes)]);
    const spec = new peer.ChaincodeSpec();
    spec.setType(CHAINCODE_TYPE_NODE);
    spec.setChaincodeId(chaincodeId);
    spec.setInput(chaincodeInput);
    const invocation = new peer.ChaincodeInvocationSpec();
    invocation.setChaincodeSpec(spec);
    const invocationBytes = invocation.serializeBinary();

    const payload = new peer.ChaincodeProposalPayload();
    payload.setInput(invocationBytes);
    const payloadWithoutTransient = payload.serializeBinary();
    // google-protobuf's jspb.Map (its typings are not installed).
    const transientMap = payload.getTransientmapMap() as unknown as { set(key: string, value: Uint8Array): void };
    for (const [key, value] of Object.entries(input.transient)) transientMap.set(key, toBytes(value));

    const proposal = new peer.Proposal();
    proposal.setHeader(headerBytes);
    proposal.setPayload(payload.serializeBinary());
    const proposalBytes = proposal.serializeBinary();

    const signed = new peer.SignedProposal();
    signed.setProposalBytes(proposalBytes);
    signed.setSignature(await signer(proposalBytes));
    return {
        txId,
        signedProposal: signed.serializeBinary(),
        headerBytes,
        signatureHeaderBytes,
        payloadWithoutTransient,
    };
}

/** One endorser's successful answer. */
export interface Endorsed {
    readonly responsePayload: Uint8Array;
    readonly endorser: Uint8Array;
    readonly signature: Uint8Array;
}

/** A transaction envelope ready for ordering, and the size Fabric's block cutter counts. */
export interface SignedEnvelope {
    readonly bytes: Uint8Array;
    readonly size: number;
}

/** Assembles and signs the transaction from endorsements that all carry the same response payload. */
export async function createSignedTransaction(
    proposal: SignedProposalBundle,
    endorsements: readonly Endorsed[],
    signer: LedgerSigner,
): Promise<SignedEnvelope> {
    const payloadBytes = prepareTransaction(proposal, endorsements);
    const signature = await signer(payloadBytes);
    return signEnvelope(payloadBytes, signature);
}

/** The envelope of a transaction payload and the client's signature over it. */
export function signEnvelope(payloadBytes: Uint8Array, signature: Uint8Array): SignedEnvelope {
    const envelope = new common.Envelope();
    envelope.setPayload(payloadBytes);
    envelope.setSignature(signature);
    return { bytes: envelope.serializeBinary(), size: payloadBytes.length + signature.length };
}

/**
 * The unsigned transaction payload (`common.Payload` bytes) built from a proposal and its matching
 * endorsements — what Fabric's Gateway returns from Endorse for the client to sign.
 */
export function prepareTransaction(proposal: SignedProposalBundle, endorsements: readonly Endorsed[]): Uint8Array {
    const first = endorsements[0];
    if (first === undefined) throw new Error('no endorsements');
    const endorsedAction = new peer.ChaincodeEndorsedAction();
    endorsedAction.setProposalResponsePayload(first.responsePayload);
    endorsedAction.setEndorsementsList(
        endorsements.map((e) => {
            const endorsement = new peer.Endorsement();
            endorsement.setEndorser(e.endorser);
            endorsement.setSignature(e.signature);
            return endorsement;
        }),
    );
    const actionPayload = new peer.ChaincodeActionPayload();
    actionPayload.setChaincodeProposalPayload(proposal.payloadWithoutTransient);
    actionPayload.setAction(endorsedAction);

    const action = new peer.TransactionAction();
    action.setHeader(proposal.signatureHeaderBytes);
    action.setPayload(actionPayload.serializeBinary());
    const transaction = new peer.Transaction();
    transaction.setActionsList([action]);

    const payload = new common.Payload();
    payload.setHeader(common.Header.deserializeBinary(proposal.headerBytes));
    payload.setData(transaction.serializeBinary());
    return payload.serializeBinary();
}

/** What a gateway needs to know of a signed proposal it received, and the parts to build its transaction. */
export interface ReceivedProposal extends SignedProposalBundle {
    readonly channelId: string;
    readonly chaincodeName: string;
    readonly hasTransientData: boolean;
}

/**
 * Unpacks a signed proposal as Fabric's Gateway does before routing it (channel, chaincode,
 * whether it carries transient data). Throws a TypeError saying what is malformed.
 */
export function receiveSignedProposal(signedProposalBytes: Uint8Array): ReceivedProposal {
    let proposal: InstanceType<typeof peer.Proposal>;
    let header: InstanceType<typeof common.Header>;
    let channelHeader: InstanceType<typeof common.ChannelHeader>;
    let payload: InstanceType<typeof peer.ChaincodeProposalPayload>;
    let chaincodeName: string;
    try {
        const signed = peer.SignedProposal.deserializeBinary(signedProposalBytes);
        if (signed.getProposalBytes_asU8().length === 0) throw new TypeError('a signed proposal is required');
        proposal = peer.Proposal.deserializeBinary(signed.getProposalBytes_asU8());
        header = common.Header.deserializeBinary(proposal.getHeader_asU8());
        channelHeader = common.ChannelHeader.deserializeBinary(header.getChannelHeader_asU8());
        payload = peer.ChaincodeProposalPayload.deserializeBinary(proposal.getPayload_asU8());
        const spec = peer.ChaincodeInvocationSpec.deserializeBinary(payload.getInput_asU8()).getChaincodeSpec();
        chaincodeName = spec?.getChaincodeId()?.getName() ?? '';
    } catch (err) {
        if (err instanceof TypeError) throw err;
        throw new TypeError(`malformed proposal: ${(err as Error).message}`);
    }
    if (channelHeader.getChannelId() === '') throw new TypeError('no channel id provided');
    if (chaincodeName === '') throw new TypeError('no chaincode name is provided');
    const withoutTransient = new peer.ChaincodeProposalPayload();
    withoutTransient.setInput(payload.getInput_asU8());
    const transientMap = payload.getTransientmapMap() as unknown as { getLength(): number };
    return {
        txId: channelHeader.getTxId(),
        signedProposal: signedProposalBytes,
        headerBytes: proposal.getHeader_asU8(),
        signatureHeaderBytes: header.getSignatureHeader_asU8(),
        payloadWithoutTransient: withoutTransient.serializeBinary(),
        channelId: channelHeader.getChannelId(),
        chaincodeName,
        hasTransientData: transientMap.getLength() > 0,
    };
}
