/**
 * Anchors contract on the embedded ledger: batches of communication records anchored per writer
 * with sequence, signature and consistency checks; every bad input is a typed rejection that
 * changes nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import {
    ANCHOR_VALUE_BYTES,
    CSP_WRITER,
    ErrorCode,
    MerkleTree,
    P256_SHA256,
    SchnorrContext,
    batchHeadMessage,
    encodeSchnorrSignature,
    fogWriter,
    merkleLeafHash,
    schnorrSign,
    toHex,
} from '@m2m-fabric/protocol';

import { startNetwork } from './network.js';
import type { Party, TestNetwork } from './network.js';
import { assertRejected, assertRejectedUnchanged, bootstrap, evaluate, registerFog, submit } from './scenario.js';
import { cspFogAddress, newFog } from './actors.js';

const suite = P256_SHA256;

/** One writer's log and the arguments of its next anchorBatch. */
class WriterLog {
    readonly tree = new MerkleTree();
    anchoredSize = 0;
    sequence = 0;
    constructor(
        readonly writer: string,
        readonly secret: bigint,
    ) {}

    add(count: number): void {
        for (let i = 0; i < count; i++) this.tree.appendLeafHash(merkleLeafHash(randomBytes(40)));
    }

    args(overrides: { sequence?: number; size?: number; secret?: bigint; proof?: Uint8Array[] } = {}): string[] {
        const sequence = overrides.sequence ?? this.sequence + 1;
        const size = overrides.size ?? this.tree.size;
        const root = this.tree.root(size);
        const proof =
            overrides.proof ?? (this.anchoredSize === 0 ? [] : this.tree.consistencyProof(this.anchoredSize, size));
        const signature = schnorrSign(
            suite,
            SchnorrContext.BatchHead,
            overrides.secret ?? this.secret,
            batchHeadMessage(this.writer, sequence, size, root),
        );
        return [
            this.writer,
            String(sequence),
            String(size),
            toHex(root),
            proof.map(toHex).join(''),
            toHex(encodeSchnorrSignature(suite, signature)),
        ];
    }

    anchored(): void {
        this.sequence += 1;
        this.anchoredSize = this.tree.size;
    }
}

void describe('anchors contract', () => {
    let net: TestNetwork;
    let csp: WriterLog;
    let fog: WriterLog;

    before(async () => {
        net = await startNetwork(suite);
        await bootstrap(net, 0);
        csp = new WriterLog(CSP_WRITER, net.csp.d);
        fog = new WriterLog(fogWriter(net.fogA.id), net.fogA.d);
    });
    after(async () => net.close());

    async function anchor(party: Party, log: WriterLog): Promise<Record<string, unknown>> {
        const result = await submit(party, 'anchors', 'anchorBatch', { args: log.args() });
        log.anchored();
        return result;
    }

    void it('anchors successive batches of the CSP and a fog, each under its own sequence', async () => {
        csp.add(5);
        const first = await anchor(net.parties.csp, csp);
        assert.equal(first.sequence, 1);
        assert.equal(first.treeSize, 5);
        assert.equal(first.root, toHex(csp.tree.root()));
        csp.add(1000);
        await anchor(net.parties.csp, csp);
        fog.add(3);
        await anchor(net.parties.fogA, fog);
        const head = await evaluate(net.parties.manufacturer, 'anchors', 'getWriterHead', { args: [CSP_WRITER] });
        assert.equal(head.sequence, 2);
        assert.equal(head.treeSize, 1005);
        const one = await evaluate(net.parties.fogB, 'anchors', 'getAnchor', { args: [CSP_WRITER, '1'] });
        assert.equal(one.root, first.root);
    });

    void it('stores one 57-byte value per batch (plus the writer head), nothing per record', async () => {
        const state = await net.dumpState();
        const anchors = state.filter((e) => e.key.startsWith('anchor'));
        assert.equal(anchors.length, 2 + 1 + 2);
        for (const entry of anchors)
            assert.equal(Buffer.from(entry.value, 'base64').length, ANCHOR_VALUE_BYTES, entry.key);
        assert.equal(ANCHOR_VALUE_BYTES, 57);
    });

    void it('refuses a replayed batch (duplicateBatch) and a gap (batchOutOfOrder), changing nothing', async () => {
        csp.add(10);
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.csp, 'anchors', 'anchorBatch', { args: csp.args({ sequence: 2 }) }),
            ErrorCode.DuplicateBatch,
        );
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.csp, 'anchors', 'anchorBatch', { args: csp.args({ sequence: 1 }) }),
            ErrorCode.DuplicateBatch,
        );
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.csp, 'anchors', 'anchorBatch', { args: csp.args({ sequence: 4 }) }),
            ErrorCode.BatchOutOfOrder,
        );
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.csp, 'anchors', 'anchorBatch', { args: csp.args({ size: csp.anchoredSize }) }),
            ErrorCode.BatchOutOfOrder,
        );
    });

    void it('refuses a root that rewrites anchored history (merkleProofInvalid)', async () => {
        // A tree that differs in an already anchored leaf: its root has no consistency proof.
        const forked = new WriterLog(CSP_WRITER, net.csp.d);
        forked.add(csp.tree.size);
        forked.sequence = csp.sequence;
        const args = forked.args({ proof: csp.tree.consistencyProof(csp.anchoredSize) });
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.csp, 'anchors', 'anchorBatch', { args }),
            ErrorCode.MerkleProofInvalid,
        );
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.csp, 'anchors', 'anchorBatch', { args: csp.args({ proof: [] }) }),
            ErrorCode.MerkleProofInvalid,
        );
    });

    void it('refuses a batch head not signed by the writer key (failedSignatureVerification)', async () => {
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.csp, 'anchors', 'anchorBatch', { args: csp.args({ secret: net.fogA.d }) }),
            ErrorCode.FailedSignatureVerification,
        );
        const args = csp.args();
        args[3] = toHex(fog.tree.root());
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.csp, 'anchors', 'anchorBatch', { args }),
            ErrorCode.FailedSignatureVerification,
        );
    });

    void it('lets no identity write as another writer or anchor from a device or manufacturer identity', async () => {
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.fogA, 'anchors', 'anchorBatch', { args: csp.args() }),
            ErrorCode.UnauthorisedMsp,
        );
        fog.add(2);
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.fogB, 'anchors', 'anchorBatch', { args: fog.args() }),
            ErrorCode.UnauthorisedMsp,
        );
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.csp, 'anchors', 'anchorBatch', { args: fog.args() }),
            ErrorCode.UnauthorisedMsp,
        );
        for (const party of [net.parties.manufacturer, net.parties.outsider, net.parties.cspWithoutRole]) {
            await assertRejectedUnchanged(
                net,
                () => submit(party, 'anchors', 'anchorBatch', { args: csp.args() }),
                ErrorCode.UnauthorisedMsp,
            );
        }
        const unknown = new WriterLog(fogWriter('fog-nobody'), net.fogA.d);
        unknown.add(1);
        await assertRejected(
            submit(net.parties.fogA, 'anchors', 'anchorBatch', { args: unknown.args() }),
            ErrorCode.UnknownFog,
        );
    });

    void it("refuses a fog anchoring under another fog's writer id, even of its own organisation, and a fog's replayed batch", async () => {
        // A second fog of FogAMSP: the organisation check passes, so the batch-head signature by
        // the named fog's registered Q_f is what keeps fog-a from writing fog-a2's log.
        const fogA2 = await newFog(net.csp, 'fog-a2', 'FogAMSP');
        await registerFog(net.parties.fogA, fogA2);
        await submit(net.parties.csp, 'registry', 'approveFog', { args: [fogA2.id, cspFogAddress(net.csp, fogA2)] });
        const impostor = new WriterLog(fogWriter(fogA2.id), net.fogA.d);
        impostor.add(4);
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.fogA, 'anchors', 'anchorBatch', { args: impostor.args() }),
            ErrorCode.FailedSignatureVerification,
        );
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.fogB, 'anchors', 'anchorBatch', { args: impostor.args({ secret: fogA2.d }) }),
            ErrorCode.UnauthorisedMsp,
        );
        // The fog's own batch is accepted once; the same batch again is a replay.
        const own = new WriterLog(fogWriter(fogA2.id), fogA2.d);
        own.add(4);
        const replay = own.args();
        await submit(net.parties.fogA, 'anchors', 'anchorBatch', { args: replay });
        own.anchored();
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.fogA, 'anchors', 'anchorBatch', { args: replay }),
            ErrorCode.DuplicateBatch,
        );
        own.add(1);
        await assertRejectedUnchanged(
            net,
            () => submit(net.parties.fogA, 'anchors', 'anchorBatch', { args: own.args({ sequence: 1 }) }),
            ErrorCode.DuplicateBatch,
        );
    });

    void it('rejects malformed arguments', async () => {
        const good = csp.args();
        const cases: [number, string][] = [
            [0, 'device-7'],
            [1, '0'],
            [1, '-1'],
            [2, '0'],
            [3, 'zz'],
            [3, toHex(randomBytes(31))],
            [4, 'abc'],
            [5, '00'],
        ];
        for (const [index, value] of cases) {
            const args = [...good];
            args[index] = value;
            await assertRejectedUnchanged(
                net,
                () => submit(net.parties.csp, 'anchors', 'anchorBatch', { args }),
                ErrorCode.MalformedInput,
            );
        }
    });

    void it("lists a writer's anchors by time range, paginated, and exports a checkpoint of every head", async () => {
        for (let i = 0; i < 4; i++) {
            csp.add(3);
            await anchor(net.parties.csp, csp);
        }
        const all = await evaluate(net.parties.manufacturer, 'anchors', 'listAnchors', {
            args: [CSP_WRITER, '0', String(Date.now() + 60_000), '4', ''],
        });
        assert.equal(all.count, 4);
        assert.notEqual(all.bookmark, '');
        const rest = await evaluate(net.parties.manufacturer, 'anchors', 'listAnchors', {
            args: [CSP_WRITER, '0', String(Date.now() + 60_000), '4', all.bookmark as string],
        });
        assert.equal(rest.count, 2);
        assert.equal(rest.bookmark, '');
        const sequences = [...(all.anchors as { sequence: number }[]), ...(rest.anchors as { sequence: number }[])].map(
            (a) => a.sequence,
        );
        assert.deepEqual(sequences, [1, 2, 3, 4, 5, 6]);
        // Pages are bounded: above MAX_ANCHOR_PAGE (100), zero, or a malformed bookmark is refused.
        for (const [pageSize, bookmark] of [
            ['101', ''],
            ['0', ''],
            ['4', 'x'],
            ['4', '0'],
        ]) {
            await assertRejected(
                evaluate(net.parties.manufacturer, 'anchors', 'listAnchors', {
                    args: [CSP_WRITER, '0', String(Date.now() + 60_000), pageSize!, bookmark!],
                }),
                ErrorCode.MalformedInput,
            );
        }
        const third = (all.anchors as { anchoredAt: string }[])[2]!;
        const from = Date.parse(third.anchoredAt);
        const later = await evaluate(net.parties.fogA, 'anchors', 'listAnchors', {
            args: [CSP_WRITER, String(from), String(Date.now() + 60_000), '100', ''],
        });
        assert.ok((later.anchors as { sequence: number }[]).every((a) => a.sequence >= 3));
        const none = await evaluate(net.parties.fogA, 'anchors', 'listAnchors', {
            args: [CSP_WRITER, String(Date.now() + 60_000), String(Date.now() + 120_000), '100', ''],
        });
        assert.equal(none.count, 0);
        const checkpoint = await evaluate(net.parties.manufacturer, 'anchors', 'getCheckpoint');
        const heads = checkpoint.heads as { writer: string; sequence: number }[];
        assert.deepEqual(
            heads.map((h) => [h.writer, h.sequence]),
            [
                [CSP_WRITER, 6],
                [fog.writer, 1],
                [fogWriter('fog-a2'), 1],
            ],
        );
        await assertRejected(
            evaluate(net.parties.csp, 'anchors', 'getAnchor', { args: [CSP_WRITER, '99'] }),
            ErrorCode.UnknownBatch,
        );
    });
});
