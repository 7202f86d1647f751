/**
 * Checkpoint export and import through the Fabric client path. The real network of `.ci/run` has one
 * channel, so source and target are the same channel here: a checkpoint recorded by the CSP is
 * exported from its block (qscc), the channel's own orderer roots are registered as the source, and
 * the import is verified by the chaincode on the peers; a replay is `checkpointNotNewer`, a flipped
 * bit `checkpointInvalid`. The orderer roots come from the target (embedded: the ledger's; Fabric:
 * the channel trust file named by M2M_CHANNEL_TRUST, else the network's own crypto material). After each commit the
 * next call goes through the Gateway of the organisation that acts next, which waits for its own
 * peer's commit status (submit) before answering: no sleeps.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { join } from 'node:path';

import {
    CSP_WRITER,
    EncryptionType,
    PartyRole,
    RecordSigner,
    RecordType,
    encodeRecord,
    payloadDigest,
    randomScalar,
    toHex,
} from '@m2m-fabric/protocol';
import {
    CHECKPOINTS_CONTRACT,
    EndorseError,
    exportCheckpoint,
    importCheckpoint,
    recordCheckpoint,
    registerCheckpointSource,
} from '@m2m-fabric/sdk';
import { RecordBatcher } from '@m2m-fabric/services';

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
        const trust = await suite.target.channelTrust();
        const roots = suite.target.ordererRoots ?? trust.orderers;
        const csp = await registeredCsp(suite);
        const channel = suite.connections.get('csp')!.channelName;
        // One anchored batch so the checkpoint has a head. It goes through the CSP's record batcher
        // and its journal (the one records.suite.ts uses in this state directory), as the CSP's
        // records do: the ledger's head of writer `csp` and that journal must stay one log.
        const anchors = suite.contract('csp', 'anchors');
        const head = JSON.parse(Buffer.from(await anchors.evaluate('getCheckpoint')).toString('utf8')) as {
            heads: { writer: string; sequence: number }[];
        };
        if (!head.heads.some((h) => h.writer === CSP_WRITER)) {
            const batcher = await RecordBatcher.open({
                dir: join(suite.stateDir, 'records', 'csp'),
                writer: { suite: csp.suite, writer: CSP_WRITER, secretKey: csp.d },
                anchors,
                batchSize: 1,
            });
            try {
                const device = new RecordSigner(csp.suite, randomScalar(csp.suite));
                const payload = new TextEncoder().encode(`checkpoint suite ${Date.now()}`);
                const record = device.sign({
                    suite: csp.suite,
                    type: RecordType.Upload,
                    encryption: EncryptionType.SessionChannel,
                    sender: device.party(PartyRole.Device),
                    receiver: new RecordSigner(csp.suite, csp.d).party(PartyRole.Csp),
                    sequence: 0n,
                    timestamp: BigInt(Date.now()),
                    size: payload.length,
                    digest: payloadDigest(payload),
                });
                await batcher.ingest(encodeRecord(record), payload);
                await batcher.drain();
            } finally {
                await batcher.close();
            }
        }
        const recorded = await recordCheckpoint(suite.contract('csp', CHECKPOINTS_CONTRACT));
        // Exported from the CSP's own peer, which has committed the checkpoint (another
        // organisation's peer may not have the block yet). Each change below names the peer of the
        // organisation that acts on it next (`visibleOn`), since a submit returns once the
        // submitter's own peer has committed and Fabric promises nothing of the others.
        const cspSide = suite.connections.get('csp')!;
        const fogSide = suite.connections.get('foga')!;
        const proof = await exportCheckpoint(cspSide, recorded.transactionId);

        try {
            await registerCheckpointSource(
                suite.contract('csp', CHECKPOINTS_CONTRACT),
                { ...trust, channel, chaincode: suite.target.chaincodeName, orderers: roots },
                { visibleOn: [fogSide] },
            );
        } catch (err) {
            // A network kept from an earlier run has it already.
            assert.equal(code(err), 'duplicateCheckpointSource', String(err));
        }
        const imported = JSON.parse(
            await importCheckpoint(suite.contract('foga', CHECKPOINTS_CONTRACT), channel, proof, {
                visibleOn: [cspSide],
            }),
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
