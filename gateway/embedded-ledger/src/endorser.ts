/**
 * An organisation's endorsing peer (ProcessProposal): checks the signed proposal as a peer does —
 * channel header, creator identity valid in its MSP and a member of the channel, signature,
 * transaction id, no duplicate — then simulates the chaincode against a snapshot of committed
 * state and, if the chaincode succeeded (status < 400), signs the proposal response payload
 * (proposal hash + ChaincodeAction with the read-write set, event and response).
 * A failed chaincode response is returned without endorsement and nothing it wrote survives.
 */
import { verifyLowS } from '@m2m-fabric/sdk';
import type { LedgerSigner } from '@m2m-fabric/sdk';
import { sha256 } from './blocks.js';
import type { ChaincodeHost } from './chaincode.js';
import type { MspRegistry } from './msp.js';
import { common, HeaderType, peer } from './protos.js';
import { encodeTxReadWriteSet } from './rwset.js';
import { SimulationHandler } from './simulator.js';
import type { LedgerStore } from './store.js';
import { computeTxId, type Endorsed } from './transaction.js';

/** Status codes above this are failures (shim.ERRORTHRESHOLD). */
export const ERROR_THRESHOLD = 400;

export interface ChannelContext {
    readonly channelId: string;
    readonly msps: MspRegistry;
    readonly store: LedgerStore;
    readonly chaincodes: ReadonlyMap<string, ChaincodeHost>;
}

export interface ProposalOutcome {
    readonly txId: string;
    readonly status: number;
    readonly message: string;
    readonly payload: Uint8Array;
    /** Present only when the chaincode succeeded. */
    readonly endorsed?: Endorsed;
}

/** A refusal before the chaincode ran, with Fabric's status 500 and a peer-like message. */
function refuse(txId: string, message: string): ProposalOutcome {
    return { txId, status: 500, message, payload: new Uint8Array() };
}

export class Endorser {
    readonly mspId: string;
    readonly #identity: Uint8Array;
    readonly #signer: LedgerSigner;
    readonly #channel: ChannelContext;

    /** `identity` is the peer's serialized identity; `signer` signs with the peer's key. */
    constructor(mspId: string, identity: Uint8Array, signer: LedgerSigner, channel: ChannelContext) {
        this.mspId = mspId;
        this.#identity = identity;
        this.#signer = signer;
        this.#channel = channel;
    }

    async processProposal(signedProposalBytes: Uint8Array): Promise<ProposalOutcome> {
        let signedProposal: InstanceType<typeof peer.SignedProposal>;
        let proposal: InstanceType<typeof peer.Proposal>;
        let header: InstanceType<typeof common.Header>;
        let channelHeader: InstanceType<typeof common.ChannelHeader>;
        let signatureHeader: InstanceType<typeof common.SignatureHeader>;
        let proposalPayload: InstanceType<typeof peer.ChaincodeProposalPayload>;
        let input: InstanceType<typeof peer.ChaincodeInput> | undefined;
        let chaincodeName: string;
        try {
            signedProposal = peer.SignedProposal.deserializeBinary(signedProposalBytes);
            proposal = peer.Proposal.deserializeBinary(signedProposal.getProposalBytes_asU8());
            header = common.Header.deserializeBinary(proposal.getHeader_asU8());
            channelHeader = common.ChannelHeader.deserializeBinary(header.getChannelHeader_asU8());
            signatureHeader = common.SignatureHeader.deserializeBinary(header.getSignatureHeader_asU8());
            proposalPayload = peer.ChaincodeProposalPayload.deserializeBinary(proposal.getPayload_asU8());
            const spec = peer.ChaincodeInvocationSpec.deserializeBinary(
                proposalPayload.getInput_asU8(),
            ).getChaincodeSpec();
            input = spec?.getInput();
            chaincodeName = spec?.getChaincodeId()?.getName() ?? '';
        } catch (err) {
            return refuse('', `error unmarshalling proposal: ${(err as Error).message}`);
        }
        const txId = channelHeader.getTxId();
        if (channelHeader.getType() !== HeaderType.ENDORSER_TRANSACTION) return refuse(txId, 'invalid header type');
        if (channelHeader.getChannelId() !== this.#channel.channelId) {
            return refuse(txId, `channel '${channelHeader.getChannelId()}' not found`);
        }
        const creatorBytes = signatureHeader.getCreator_asU8();
        const creator = this.#channel.msps.deserialize(creatorBytes);
        if (typeof creator === 'string')
            return refuse(txId, `access denied: creator identity is not valid: ${creator}`);
        if (
            !verifyLowS(creator.publicKey, signedProposal.getProposalBytes_asU8(), signedProposal.getSignature_asU8())
        ) {
            return refuse(txId, 'access denied: the creator signature is invalid');
        }
        if (computeTxId(signatureHeader.getNonce_asU8(), creatorBytes) !== txId) {
            return refuse(txId, `incorrectly formed transaction id ${txId}`);
        }
        if ((await this.#channel.store.getTransaction(txId)) !== undefined) {
            return refuse(txId, `duplicate transaction found [${txId}]. Creator [${creator.mspId}]`);
        }
        const chaincode = this.#channel.chaincodes.get(chaincodeName);
        if (chaincode === undefined || input === undefined) {
            return refuse(
                txId,
                `make sure the chaincode ${chaincodeName} has been successfully defined on channel ${this.#channel.channelId}`,
            );
        }

        const snapshot = this.#channel.store.snapshot();
        const handler = new SimulationHandler(snapshot, chaincodeName, (ns, key) =>
            this.#channel.store.getHistory(ns, key),
        );
        let result;
        let rwset;
        try {
            result = await chaincode.invoke(handler, this.#channel.channelId, txId, input, signedProposal);
            if (result.status >= ERROR_THRESHOLD) {
                await handler.abandon();
                return { txId, status: result.status, message: result.message, payload: result.payload };
            }
            rwset = await handler.finish();
        } finally {
            await snapshot.close();
        }

        const response = new peer.Response();
        response.setStatus(result.status);
        response.setMessage(result.message);
        response.setPayload(result.payload);
        const chaincodeId = new peer.ChaincodeID();
        chaincodeId.setName(chaincode.name);
        chaincodeId.setVersion(chaincode.version);
        const action = new peer.ChaincodeAction();
        action.setResults(encodeTxReadWriteSet([rwset]));
        if (result.event !== undefined) action.setEvents(result.event.serializeBinary());
        action.setResponse(response);
        action.setChaincodeId(chaincodeId);

        // Fabric's proposal hash covers the headers and the payload without its transient map.
        const payloadWithoutTransient = new peer.ChaincodeProposalPayload();
        payloadWithoutTransient.setInput(proposalPayload.getInput_asU8());
        const proposalHash = sha256(
            header.getChannelHeader_asU8(),
            header.getSignatureHeader_asU8(),
            payloadWithoutTransient.serializeBinary(),
        );
        const responsePayload = new peer.ProposalResponsePayload();
        responsePayload.setProposalHash(proposalHash);
        responsePayload.setExtension$(action.serializeBinary());
        const responsePayloadBytes = responsePayload.serializeBinary();
        const signature = await this.#signer(Buffer.concat([responsePayloadBytes, this.#identity]));
        return {
            txId,
            status: result.status,
            message: result.message,
            payload: result.payload,
            endorsed: { responsePayload: responsePayloadBytes, endorser: this.#identity, signature },
        };
    }
}
