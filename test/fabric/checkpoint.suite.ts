/**
 * Checkpoint export and import through the Fabric client path. The real network of `.ci/run` has one
 * channel, so source and target are the same channel here: a checkpoint recorded by the CSP is
 * exported from its block (qscc), the channel's own orderer roots are registered as the source, and
 * the import is verified by the chaincode on the peers; a replay is `checkpointNotNewer`, a flipped
 * bit `checkpointInvalid`. The orderer roots come from the target (embedded: the ledger's; Fabric:
 * the channel trust file named by M2M_CHANNEL_TRUST — skipped without it). After each commit the
 * next call goes through the Gateway of the organisation that acts next, which waits for its own
 * peer's commit status (submit) before answering: no sleeps.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { toHex } from '@m2m-fabric/protocol';
import {
    CHECKPOINTS_CONTRACT,
    EndorseError,
    anchorBatch,
    exportCheckpoint,
    importCheckpoint,
    recordCheckpoint,
} from '@m2m-fabric/sdk';
import { CSP_WRITER, MerkleTree } from '@m2m-fabric/protocol';

import { openSuite, registeredCsp, skip, type OpenSuite } from './suite-setup.js';

function code(err: unknown): string | undefined {
    return err instanceof EndorseError ? err.errorCode : undefined;
}

void describe('checkpoint export and import (same channel as source and target)', () => {
    let suite: OpenSuite;
    before(async () => {
        if (skip === false) suite = await openSuite();
    });
    after(async () => {
        if (skip === false) await suite.close();
    });

    void it('exports, registers, imports; refuses a replay and a flipped bit', { skip }, async () => {
        // M2M_CHANNEL_TRUST if set, else the orderer MSP's root certificates of the network's own
        // crypto material (the same roots records.suite.ts verifies receipts against).
        const roots = suite.target.ordererRoots ?? (await suite.target.channelTrust()).orderers;
        const csp = await registeredCsp(suite);
        const channel = suite.connections.get('csp')!.channelName;
        // One anchored batch so the checkpoint has a head (a fresh writer per run: the head may exist).
        const tree = new MerkleTree();
        tree.append(new TextEncoder().encode(`checkpoint suite ${Date.now()}`));
        const anchors = suite.contract('csp', 'anchors');
        const head = JSON.parse(Buffer.from(await anchors.evaluate('getCheckpoint')).toString('utf8')) as {
            heads: { writer: string; sequence: number }[];
        };
        if (!head.heads.some((h) => h.writer === CSP_WRITER)) {
            await anchorBatch(anchors, { suite: csp.suite, writer: CSP_WRITER, secretKey: csp.d }, tree, 1, 0);
        }
        const recorded = await recordCheckpoint(suite.contract('csp', CHECKPOINTS_CONTRACT));
        const proof = await exportCheckpoint(suite.connections.get('foga')!, recorded.transactionId);

        const target = suite.contract('csp', CHECKPOINTS_CONTRACT);
        try {
            await target.submit('registerCheckpointSource', {
                arguments: [channel, suite.target.chaincodeName, JSON.stringify(roots)],
            });
        } catch (err) {
            // A network kept from an earlier run has it already.
            assert.equal(code(err), 'duplicateCheckpointSource', String(err));
        }
        const imported = JSON.parse(
            await importCheckpoint(suite.contract('foga', CHECKPOINTS_CONTRACT), channel, proof),
        ) as { blockNumber: string };
        assert.equal(imported.blockNumber, recorded.blockNumber.toString());
        await assert.rejects(
            importCheckpoint(suite.contract('csp', CHECKPOINTS_CONTRACT), channel, proof),
            (err: unknown) => code(err) === 'checkpointNotNewer',
        );
        const flipped = new Uint8Array(proof);
        flipped[Math.floor(flipped.length / 2)]! ^= 0x10;
        await assert.rejects(
            suite
                .contract('csp', CHECKPOINTS_CONTRACT)
                .submit('importCheckpoint', { arguments: [channel, toHex(flipped)] }),
            (err: unknown) => code(err) === 'checkpointInvalid',
        );
    });
});
