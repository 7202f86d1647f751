/**
 * Block validation as a Fabric committing peer does it, in block order:
 *
 *  1. per transaction (Fabric's txvalidator + VSCC): well-formed envelope for this channel,
 *     creator valid in its MSP and envelope signature correct (BAD_CREATOR_SIGNATURE), transaction
 *     id derived from nonce and creator (BAD_PROPOSAL_TXID), not already on the ledger or earlier
 *     in the block (DUPLICATE_TXID), a known chaincode (INVALID_CHAINCODE), a decodable read-write
 *     set for that chaincode only (BAD_RWSET / ILLEGAL_WRITESET), and endorsements whose
 *     signatures verify and satisfy the chaincode's endorsement policy (ENDORSEMENT_POLICY_FAILURE);
 *  2. then MVCC (Fabric's txmgr validator), in order, against committed state plus the writes of
 *     the valid transactions before it in the same block:
 *      - a read whose key a preceding valid transaction of the block wrote, or whose committed
 *        version differs from the one read (including "absent" vs "present"), is MVCC_READ_CONFLICT;
 *      - a range query is re-executed over committed state merged with those in-block writes, up
 *        to the last key it fetched if it was not exhausted (end key included) or over the whole
 *        range if it was; any difference in keys or versions is PHANTOM_READ_CONFLICT.
 * Only valid transactions contribute state updates and history; invalid ones stay in the block
 * with their code.
 */
import { verifyLowS } from '@m2m-fabric/sdk';
import { ValidationCodes } from '@m2m-fabric/sdk';
import type { ChannelContext } from './endorser.js';
import { evaluatePolicy, type Policy, type PolicySigner } from './policy.js';
import { common, HeaderType, peer, type TimestampMessage } from './protos.js';
import {
    compareKeys,
    decodeTxReadWriteSet,
    versionsEqual,
    type NsReadWriteSet,
    type RangeQueryInfo,
    type Version,
} from './rwset.js';
import type { HistoryEntry, StateUpdate } from './store.js';
import { computeTxId } from './transaction.js';
import type { TransactionSummary } from './blocks.js';

interface ParsedTransaction {
    readonly txId: string;
    readonly seconds: number;
    readonly nanos: number;
    readonly rwsets: NsReadWriteSet[];
    readonly event: TransactionSummary['event'];
}

export interface ValidatedBlock {
    readonly codes: number[];
    readonly summaries: TransactionSummary[];
    readonly updates: StateUpdate[];
    readonly history: { namespace: string; key: string; entry: HistoryEntry }[];
    readonly transactions: { txId: string; location: { blockNum: number; txNum: number; code: number } }[];
}

type Outcome = { code: number; txId?: string } | { code: 0; parsed: ParsedTransaction };

export class BlockValidator {
    readonly #channel: ChannelContext;
    readonly #policies: ReadonlyMap<string, Policy>;

    constructor(channel: ChannelContext, policies: ReadonlyMap<string, Policy>) {
        this.#channel = channel;
        this.#policies = policies;
    }

    async validate(blockNum: number, envelopes: readonly Uint8Array[]): Promise<ValidatedBlock> {
        const outcomes = envelopes.map((envelope) => this.#checkTransaction(envelope));
        const result: ValidatedBlock = { codes: [], summaries: [], updates: [], history: [], transactions: [] };
        // Writes of the valid transactions so far in this block, by namespace then key.
        const blockUpdates = new Map<string, Map<string, StateUpdate>>();
        const seenTxIds = new Set<string>();

        for (let txNum = 0; txNum < outcomes.length; txNum++) {
            const outcome = outcomes[txNum];
            if (outcome === undefined) continue;
            let code = outcome.code;
            const txId = 'parsed' in outcome ? outcome.parsed.txId : outcome.txId;
            if (txId !== undefined && code === ValidationCodes.VALID) {
                if (seenTxIds.has(txId) || (await this.#channel.store.getTransaction(txId)) !== undefined) {
                    code = ValidationCodes.DUPLICATE_TXID;
                }
            }
            if (code === ValidationCodes.VALID && 'parsed' in outcome) {
                code = await this.#mvcc(outcome.parsed.rwsets, blockUpdates);
            }
            result.codes.push(code);
            if (txId === undefined) continue;
            const summary: TransactionSummary =
                'parsed' in outcome && outcome.parsed.event !== undefined
                    ? { txId, code, event: outcome.parsed.event }
                    : { txId, code };
            result.summaries.push(summary);
            // The first occurrence of a transaction id is the one the index keeps.
            if (!seenTxIds.has(txId)) {
                seenTxIds.add(txId);
                result.transactions.push({ txId, location: { blockNum, txNum, code } });
            }
            if (code !== ValidationCodes.VALID || !('parsed' in outcome)) continue;
            const version: Version = { blockNum, txNum };
            for (const set of outcome.parsed.rwsets) {
                let nsUpdates = blockUpdates.get(set.namespace);
                if (nsUpdates === undefined)
                    blockUpdates.set(set.namespace, (nsUpdates = new Map<string, StateUpdate>()));
                for (const write of set.writes) {
                    const update: StateUpdate = {
                        namespace: set.namespace,
                        key: write.key,
                        isDelete: write.isDelete,
                        value: write.value,
                        version,
                    };
                    nsUpdates.set(write.key, update);
                    result.updates.push(update);
                    result.history.push({
                        namespace: set.namespace,
                        key: write.key,
                        entry: {
                            txId,
                            isDelete: write.isDelete,
                            value: write.isDelete ? new Uint8Array() : write.value,
                            seconds: outcome.parsed.seconds,
                            nanos: outcome.parsed.nanos,
                            version,
                        },
                    });
                }
            }
        }
        return result;
    }

    /** Stage 1: everything that does not depend on other transactions. */
    #checkTransaction(envelopeBytes: Uint8Array): Outcome {
        let payloadBytes: Uint8Array;
        let signature: Uint8Array;
        let channelHeader: InstanceType<typeof common.ChannelHeader>;
        let signatureHeaderBytes: Uint8Array;
        let signatureHeader: InstanceType<typeof common.SignatureHeader>;
        let data: Uint8Array;
        try {
            const envelope = common.Envelope.deserializeBinary(envelopeBytes);
            payloadBytes = envelope.getPayload_asU8();
            signature = envelope.getSignature_asU8();
            const payload = common.Payload.deserializeBinary(payloadBytes);
            const header = payload.getHeader();
            if (header === undefined) return { code: ValidationCodes.BAD_COMMON_HEADER };
            channelHeader = common.ChannelHeader.deserializeBinary(header.getChannelHeader_asU8());
            signatureHeaderBytes = header.getSignatureHeader_asU8();
            signatureHeader = common.SignatureHeader.deserializeBinary(signatureHeaderBytes);
            data = payload.getData_asU8();
        } catch {
            return { code: ValidationCodes.BAD_PAYLOAD };
        }
        const txId = channelHeader.getTxId();
        if (channelHeader.getType() !== HeaderType.ENDORSER_TRANSACTION)
            return { code: ValidationCodes.UNKNOWN_TX_TYPE, txId };
        if (channelHeader.getChannelId() !== this.#channel.channelId)
            return { code: ValidationCodes.TARGET_CHAIN_NOT_FOUND, txId };
        const creatorBytes = signatureHeader.getCreator_asU8();
        const creator = this.#channel.msps.deserialize(creatorBytes);
        if (typeof creator === 'string' || !verifyLowS(creator.publicKey, payloadBytes, signature)) {
            return { code: ValidationCodes.BAD_CREATOR_SIGNATURE, txId };
        }
        if (computeTxId(signatureHeader.getNonce_asU8(), creatorBytes) !== txId)
            return { code: ValidationCodes.BAD_PROPOSAL_TXID, txId };

        let chaincodeName: string;
        let responsePayloadBytes: Uint8Array;
        let endorsements: InstanceType<typeof peer.Endorsement>[];
        let chaincodeAction: InstanceType<typeof peer.ChaincodeAction>;
        try {
            const actions = peer.Transaction.deserializeBinary(data).getActionsList();
            const action = actions[0];
            if (actions.length !== 1 || action === undefined) return { code: ValidationCodes.BAD_PAYLOAD, txId };
            const actionPayload = peer.ChaincodeActionPayload.deserializeBinary(action.getPayload_asU8());
            const endorsed = actionPayload.getAction();
            if (endorsed === undefined) return { code: ValidationCodes.NIL_TXACTION, txId };
            responsePayloadBytes = endorsed.getProposalResponsePayload_asU8();
            endorsements = endorsed.getEndorsementsList();
            const responsePayload = peer.ProposalResponsePayload.deserializeBinary(responsePayloadBytes);
            chaincodeAction = peer.ChaincodeAction.deserializeBinary(responsePayload.getExtension_asU8());
            chaincodeName = chaincodeAction.getChaincodeId()?.getName() ?? '';
        } catch {
            return { code: ValidationCodes.BAD_PAYLOAD, txId };
        }
        const policy = this.#policies.get(chaincodeName);
        if (policy === undefined || !this.#channel.chaincodes.has(chaincodeName))
            return { code: ValidationCodes.INVALID_CHAINCODE, txId };

        let rwsets: NsReadWriteSet[];
        try {
            rwsets = decodeTxReadWriteSet(chaincodeAction.getResults_asU8());
        } catch {
            return { code: ValidationCodes.BAD_RWSET, txId };
        }
        if (rwsets.some((set) => set.namespace !== chaincodeName))
            return { code: ValidationCodes.ILLEGAL_WRITESET, txId };

        const signers: PolicySigner[] = [];
        for (const endorsement of endorsements) {
            const endorserBytes = endorsement.getEndorser_asU8();
            const endorser = this.#channel.msps.deserialize(endorserBytes);
            if (typeof endorser === 'string') continue;
            if (
                !verifyLowS(
                    endorser.publicKey,
                    Buffer.concat([responsePayloadBytes, endorserBytes]),
                    endorsement.getSignature_asU8(),
                )
            )
                continue;
            signers.push({
                mspId: endorser.mspId,
                role: endorser.role,
                id: Buffer.from(endorserBytes).toString('base64'),
            });
        }
        if (!evaluatePolicy(policy, signers)) return { code: ValidationCodes.ENDORSEMENT_POLICY_FAILURE, txId };

        let event: TransactionSummary['event'];
        const eventBytes = chaincodeAction.getEvents_asU8();
        if (eventBytes.length > 0) {
            try {
                const chaincodeEvent = peer.ChaincodeEvent.deserializeBinary(eventBytes);
                event = {
                    chaincodeName: chaincodeEvent.getChaincodeId(),
                    eventName: chaincodeEvent.getEventName(),
                    payload: chaincodeEvent.getPayload_asU8(),
                };
            } catch {
                return { code: ValidationCodes.BAD_PAYLOAD, txId };
            }
        }
        const timestamp = channelHeader.getTimestamp() as unknown as TimestampMessage | undefined;
        return {
            code: ValidationCodes.VALID,
            parsed: { txId, seconds: timestamp?.getSeconds() ?? 0, nanos: timestamp?.getNanos() ?? 0, rwsets, event },
        };
    }

    /** Stage 2: MVCC and phantom checks against committed state plus earlier in-block writes. */
    async #mvcc(
        rwsets: readonly NsReadWriteSet[],
        blockUpdates: ReadonlyMap<string, ReadonlyMap<string, StateUpdate>>,
    ): Promise<number> {
        for (const set of rwsets) {
            const nsUpdates = blockUpdates.get(set.namespace);
            for (const read of set.reads) {
                if (nsUpdates?.has(read.key) === true) return ValidationCodes.MVCC_READ_CONFLICT;
                const committed = await this.#channel.store.getState(set.namespace, read.key);
                if (!versionsEqual(committed?.version, read.version)) return ValidationCodes.MVCC_READ_CONFLICT;
            }
            for (const query of set.rangeQueries) {
                if (!(await this.#rangeQueryStillValid(set.namespace, query, nsUpdates)))
                    return ValidationCodes.PHANTOM_READ_CONFLICT;
            }
        }
        return ValidationCodes.VALID;
    }

    async #rangeQueryStillValid(
        namespace: string,
        query: RangeQueryInfo,
        nsUpdates: ReadonlyMap<string, StateUpdate> | undefined,
    ): Promise<boolean> {
        const lastRead = query.reads[query.reads.length - 1];
        // Not exhausted: only the keys up to the last one fetched were seen, that one included.
        const includeEnd = !query.itrExhausted && lastRead !== undefined;
        const endKey = includeEnd ? lastRead.key : query.endKey;
        const inRange = (key: string): boolean => {
            if (compareKeys(key, query.startKey) < 0) return false;
            if (endKey === '') return true;
            const order = compareKeys(key, endKey);
            return includeEnd ? order <= 0 : order < 0;
        };
        const current = new Map<string, Version>();
        for (const kv of await this.#channel.store.getStateRange(namespace, query.startKey, endKey, includeEnd))
            current.set(kv.key, kv.version);
        if (nsUpdates !== undefined) {
            for (const update of nsUpdates.values()) {
                if (!inRange(update.key)) continue;
                if (update.isDelete) current.delete(update.key);
                else current.set(update.key, update.version);
            }
        }
        const keys = [...current.keys()].sort(compareKeys);
        if (keys.length !== query.reads.length) return false;
        return query.reads.every(
            (read, i) => read.key === keys[i] && versionsEqual(read.version, current.get(read.key)),
        );
    }
}
