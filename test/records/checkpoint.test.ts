/**
 * Checkpoint export and import between two embedded ledgers (two channels, two sets of orderer
 * roots): the source records a checkpoint of every writer's head, the target registers the source's
 * orderer roots and imports the proof, verified inside the target's chaincode. Replays, older
 * checkpoints, flipped bits, a proof from an unregistered or other channel, wrong roles: typed errors
 * and the target's state unchanged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
    CSP_WRITER,
    DecodeError,
    MerkleTree,
    P256_SHA256,
    decodeCheckpointProof,
    encodeCheckpointProof,
    toHex,
} from '@m2m-fabric/protocol';
import { CheckpointProofError, verifyCheckpointProof, type CheckpointSource } from '@m2m-fabric/chaincode/internal';
import type { LedgerConnection } from '@m2m-fabric/sdk';
import {
    anchorBatch,
    exportCheckpoint,
    importCheckpoint,
    recordCheckpoint,
    registerCheckpointSource,
    type ChannelTrust,
} from '@m2m-fabric/sdk';

import { CHAINCODE, startNetwork } from '../chaincode/network.js';
import type { TestNetwork } from '../chaincode/network.js';
import { bootstrap } from '../chaincode/scenario.js';

const suite = P256_SHA256;

function rejectsWith(code: string): (err: unknown) => boolean {
    return (err: unknown) =>
        err instanceof Error &&
        JSON.stringify({ m: err.message, d: (err as { details?: unknown }).details }).includes(code);
}

void describe('checkpoints across two channels', () => {
    let source: TestNetwork;
    let target: TestNetwork;
    let sourceTrust: ChannelTrust;
    let sourceConnection: LedgerConnection;
    const proofs: Uint8Array[] = [];

    before(async () => {
        source = await startNetwork(suite, { channelName: 'records-a' });
        target = await startNetwork(suite, { channelName: 'audit-b' });
        await bootstrap(source, 0);
        sourceTrust = source.ledger.channelTrust(CHAINCODE);
        const enrolment = await source.ledger.enrol('CSPMSP', 'exporter', { attributes: { 'm2m.role': 'csp' } });
        sourceConnection = await source.ledger.connect({ identity: enrolment.identity, signer: enrolment.signer });
        const tree = new MerkleTree();
        for (let i = 0; i < 9; i++) tree.append(new TextEncoder().encode(`record ${i}`));
        const writer = { suite, writer: CSP_WRITER, secretKey: source.csp.d };
        const anchors = source.parties.csp.contract('anchors');
        await anchorBatch(anchors, writer, tree, 1, 0, 4);
        const first = await recordCheckpoint(source.parties.csp.contract('checkpoints'));
        proofs.push(await exportCheckpoint(sourceConnection, first.transactionId));
        await anchorBatch(anchors, writer, tree, 2, 4, 9);
        const second = await recordCheckpoint(source.parties.fogA.contract('checkpoints'));
        assert.ok(second.blockNumber > first.blockNumber);
        assert.match(second.checkpoint, /"treeSize":9/);
        proofs.push(await exportCheckpoint(sourceConnection, second.transactionId));
    });

    after(async () => {
        await source?.close();
        await target?.close();
    });

    void it('refuses an import before the source is registered, and registration by a non-admin', async () => {
        const before = await target.stateFingerprint();
        await assert.rejects(
            importCheckpoint(target.parties.csp.contract('checkpoints'), 'records-a', proofs[0]!),
            rejectsWith('unknownCheckpointSource'),
        );
        for (const party of [target.parties.fogA, target.parties.manufacturer, target.parties.outsider]) {
            await assert.rejects(
                registerCheckpointSource(party.contract('checkpoints'), sourceTrust),
                rejectsWith('unauthorisedMsp'),
                party.label,
            );
        }
        assert.equal(await target.stateFingerprint(), before);
    });

    void it('imports a verified checkpoint, then refuses a replay and an older one', async () => {
        const contract = target.parties.csp.contract('checkpoints');
        await registerCheckpointSource(contract, sourceTrust);
        await assert.rejects(registerCheckpointSource(contract, sourceTrust), rejectsWith('duplicateCheckpointSource'));
        const first = JSON.parse(await importCheckpoint(contract, 'records-a', proofs[0]!)) as {
            blockNumber: string;
            blockHash: string;
            checkpoint: { heads: { writer: string; treeSize: number; root: string }[] };
        };
        assert.equal(first.checkpoint.heads[0]?.treeSize, 4);
        assert.equal(first.blockHash.length, 64);
        // The second (newer) checkpoint, by a fog identity of the target.
        const second = JSON.parse(
            await importCheckpoint(target.parties.fogA.contract('checkpoints'), 'records-a', proofs[1]!),
        ) as { blockNumber: string; checkpoint: { heads: { treeSize: number }[] } };
        assert.equal(second.checkpoint.heads[0]?.treeSize, 9);
        assert.ok(BigInt(second.blockNumber) > BigInt(first.blockNumber));
        const state = await target.stateFingerprint();
        for (const proof of proofs) {
            await assert.rejects(importCheckpoint(contract, 'records-a', proof), rejectsWith('checkpointNotNewer'));
        }
        await assert.rejects(
            importCheckpoint(target.parties.manufacturer.contract('checkpoints'), 'records-a', proofs[1]!),
            rejectsWith('unauthorisedMsp'),
        );
        assert.equal(await target.stateFingerprint(), state);
        const stored = await contract.evaluate('getImportedCheckpoint', { arguments: ['records-a'] });
        assert.equal(
            (JSON.parse(Buffer.from(stored).toString('utf8')) as { blockNumber: string }).blockNumber,
            second.blockNumber,
        );
    });

    void it('a flipped bit anywhere in a proof is refused (verifier on every byte, chaincode on a sample)', async () => {
        const orderers = sourceTrust.orderers.map((o) => ({
            mspId: o.mspId,
            rootCertificates: [...o.rootCertificates],
        }));
        const trust: CheckpointSource = { channel: 'records-a', chaincode: CHAINCODE, orderers };
        const proof = proofs[1]!;
        verifyCheckpointProof(trust, decodeCheckpointProof(proof)); // the unflipped proof verifies
        let accepted = 0;
        for (let at = 0; at < proof.length; at++) {
            const flipped = new Uint8Array(proof);
            flipped[at]! ^= 1 << (at % 8);
            try {
                verifyCheckpointProof(trust, decodeCheckpointProof(flipped));
                accepted++;
            } catch (err) {
                assert.ok(err instanceof DecodeError || err instanceof CheckpointProofError, String(err));
            }
        }
        assert.equal(accepted, 0, `${accepted} of ${proof.length} flipped proofs accepted`);
        // Through the target chaincode: state unchanged for each.
        const contract = target.parties.csp.contract('checkpoints');
        const state = await target.stateFingerprint();
        for (const at of [20, 60, Math.floor(proof.length / 2), proof.length - 40, proof.length - 1]) {
            const flipped = new Uint8Array(proof);
            flipped[at]! ^= 0x04;
            await assert.rejects(
                contract.submit('importCheckpoint', { arguments: ['records-a', toHex(flipped)] }),
                (err: unknown) => rejectsWith('checkpointInvalid')(err) || rejectsWith('malformedInput')(err),
                `byte ${at}`,
            );
        }
        assert.equal(await target.stateFingerprint(), state);
    });

    void it("refuses a proof checked against another channel's roots or naming another channel", async () => {
        const otherTrust = target.ledger.channelTrust(CHAINCODE);
        const proof = decodeCheckpointProof(proofs[1]!);
        assert.throws(
            () =>
                verifyCheckpointProof(
                    { channel: 'records-a', chaincode: CHAINCODE, orderers: otherTrust.orderers },
                    proof,
                ),
            CheckpointProofError,
        );
        // Relabelled as the target's own channel: the transaction's channel header says otherwise.
        const relabelled = encodeCheckpointProof({ ...proof, channel: 'audit-b' });
        assert.throws(
            () =>
                verifyCheckpointProof(
                    { channel: 'audit-b', chaincode: CHAINCODE, orderers: sourceTrust.orderers },
                    decodeCheckpointProof(relabelled),
                ),
            CheckpointProofError,
        );
    });
});
