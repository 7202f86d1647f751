/**
 * Decodes a Fabric block with the protocol package's wire reader (fabric-messages.ts) and with
 * fabric-protos, and asserts they agree field by field on everything a receipt reads: header,
 * envelopes, metadata and its orderer signatures, channel and signature headers, and for each
 * endorser transaction its actions, endorsements, proposal response, chaincode action and writes.
 * Shared by test/records/receipt.test.ts (embedded ledger) and test/fabric/records.suite.ts
 * (real Fabric, blocks written by Go's protobuf encoder).
 */
import assert from 'node:assert/strict';

import { common, ledger as ledgerProtos, msp, peer } from '@hyperledger/fabric-protos';
import {
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
} from '@m2m-fabric/protocol';

/** @returns how many endorser transactions and writes the block held */
export function compareWithFabricProtos(
    blockBytes: Uint8Array,
    n: bigint | number = 0,
): { endorserTransactions: number; writes: number } {
    let endorserTransactions = 0;
    let writes = 0;
    const bytesOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
    const same = (mine: Uint8Array, theirs: Uint8Array, what: string): void =>
        assert.equal(bytesOf(mine), bytesOf(theirs), what);
    const theirs = common.Block.deserializeBinary(blockBytes);
    const mine = decodeFabricBlock(blockBytes);
    assert.equal(mine.header?.number, theirs.getHeader()!.getNumber(), `block ${n} number`);
    same(mine.header.previousHash, theirs.getHeader()!.getPreviousHash_asU8(), 'previous hash');
    same(mine.header.dataHash, theirs.getHeader()!.getDataHash_asU8(), 'data hash');
    assert.deepEqual(mine.data.map(bytesOf), theirs.getData()!.getDataList_asU8().map(bytesOf));
    assert.deepEqual(mine.metadata.map(bytesOf), theirs.getMetadata()!.getMetadataList_asU8().map(bytesOf));
    const metadata = common.Metadata.deserializeBinary(theirs.getMetadata()!.getMetadataList_asU8()[0]!);
    const myMetadata = decodeFabricMetadata(mine.metadata[0]!);
    same(myMetadata.value, metadata.getValue_asU8(), 'metadata value');
    assert.equal(myMetadata.signatures.length, metadata.getSignaturesList().length);
    for (const [k, signature] of metadata.getSignaturesList().entries()) {
        same(myMetadata.signatures[k]!.signature, signature.getSignature_asU8(), 'block signature');
        same(myMetadata.signatures[k]!.signatureHeader, signature.getSignatureHeader_asU8(), 'its header');
        const creator = common.SignatureHeader.deserializeBinary(signature.getSignatureHeader_asU8());
        const myCreator = decodeFabricSignatureHeader(signature.getSignatureHeader_asU8());
        same(myCreator.creator, creator.getCreator_asU8(), 'orderer');
        same(myCreator.nonce, creator.getNonce_asU8(), 'orderer nonce');
        const identity = msp.SerializedIdentity.deserializeBinary(creator.getCreator_asU8());
        const myIdentity = decodeFabricSerializedIdentity(myCreator.creator);
        assert.equal(myIdentity.mspId, identity.getMspid());
        same(myIdentity.idBytes, identity.getIdBytes_asU8(), 'orderer certificate');
    }
    for (const envelopeBytes of mine.data) {
        const envelope = common.Envelope.deserializeBinary(envelopeBytes);
        const myEnvelope = decodeFabricEnvelope(envelopeBytes);
        same(myEnvelope.payload, envelope.getPayload_asU8(), 'payload');
        same(myEnvelope.signature, envelope.getSignature_asU8(), 'envelope signature');
        const payload = common.Payload.deserializeBinary(envelope.getPayload_asU8());
        const myPayload = decodeFabricPayload(myEnvelope.payload);
        same(myPayload.data, payload.getData_asU8(), 'payload data');
        same(myPayload.header!.channelHeader, payload.getHeader()!.getChannelHeader_asU8(), 'channel header');
        const channelHeader = common.ChannelHeader.deserializeBinary(myPayload.header!.channelHeader);
        const myChannelHeader = decodeFabricChannelHeader(myPayload.header!.channelHeader);
        assert.deepEqual(myChannelHeader, {
            type: channelHeader.getType(),
            channelId: channelHeader.getChannelId(),
            txId: channelHeader.getTxId(),
        });
        const signatureHeader = common.SignatureHeader.deserializeBinary(myPayload.header!.signatureHeader);
        const mySignatureHeader = decodeFabricSignatureHeader(myPayload.header!.signatureHeader);
        same(mySignatureHeader.creator, signatureHeader.getCreator_asU8(), 'creator');
        same(mySignatureHeader.nonce, signatureHeader.getNonce_asU8(), 'nonce');
        if (myChannelHeader.type !== ENDORSER_TRANSACTION) continue;
        endorserTransactions++;
        const actions = peer.Transaction.deserializeBinary(myPayload.data).getActionsList();
        const myActions = decodeFabricTransaction(myPayload.data);
        assert.equal(myActions.length, actions.length);
        for (const [k, action] of actions.entries()) {
            same(myActions[k]!.header, action.getHeader_asU8(), 'action header');
            same(myActions[k]!.payload, action.getPayload_asU8(), 'action payload');
            const endorsed = peer.ChaincodeActionPayload.deserializeBinary(action.getPayload_asU8()).getAction()!;
            const myEndorsed = decodeFabricChaincodeActionPayload(myActions[k]!.payload)!;
            same(myEndorsed.proposalResponsePayload, endorsed.getProposalResponsePayload_asU8(), 'response');
            assert.deepEqual(
                myEndorsed.endorsements.map((e) => [bytesOf(e.endorser), bytesOf(e.signature)]),
                endorsed
                    .getEndorsementsList()
                    .map((e) => [bytesOf(e.getEndorser_asU8()), bytesOf(e.getSignature_asU8())]),
            );
            const response = peer.ProposalResponsePayload.deserializeBinary(myEndorsed.proposalResponsePayload);
            const myResponse = decodeFabricProposalResponsePayload(myEndorsed.proposalResponsePayload);
            same(myResponse.proposalHash, response.getProposalHash_asU8(), 'proposal hash');
            same(myResponse.extension, response.getExtension_asU8(), 'extension');
            const chaincodeAction = peer.ChaincodeAction.deserializeBinary(myResponse.extension);
            const myChaincodeAction = decodeFabricChaincodeAction(myResponse.extension);
            same(myChaincodeAction.results, chaincodeAction.getResults_asU8(), 'results');
            assert.equal(myChaincodeAction.chaincodeName, chaincodeAction.getChaincodeId()?.getName());
            const rwset = ledgerProtos.rwset.TxReadWriteSet.deserializeBinary(myChaincodeAction.results);
            const myRwset = decodeFabricTxReadWriteSet(myChaincodeAction.results);
            assert.deepEqual(
                myRwset.map((ns) => [ns.namespace, bytesOf(ns.rwset)]),
                rwset.getNsRwsetList().map((ns) => [ns.getNamespace(), bytesOf(ns.getRwset_asU8())]),
            );
            for (const ns of myRwset) {
                const kv = ledgerProtos.rwset.kvrwset.KVRWSet.deserializeBinary(ns.rwset);
                const myWrites = decodeFabricKvWrites(ns.rwset);
                writes += myWrites.length;
                assert.deepEqual(
                    myWrites.map((w) => [w.key, w.isDelete, bytesOf(w.value)]),
                    kv.getWritesList().map((w) => [w.getKey(), w.getIsDelete(), bytesOf(w.getValue_asU8())]),
                );
            }
        }
    }
    return { endorserTransactions, writes };
}
