/**
 * Checkpoints contract: cross-channel anchoring (paper 003's cross-chain anchoring; docs/records.md).
 *
 * On the source channel, `recordCheckpoint` writes every writer's batch head (read under MVCC, so a
 * VALID checkpoint transaction proves the heads current at its block) under `checkpoint/<tx ms>`.
 * The SDK exports that transaction's block as a checkpoint proof (protocol checkpoint.ts).
 *
 * On the target channel (a second channel, or another consortium's ledger running this chaincode),
 * the CSP organisation — the administrator role of this chaincode — first registers the source
 * channel's trust (orderer MSP ids and root certificates, the source chaincode name) with
 * `registerCheckpointSource`; then a CSP or fog identity submits `importCheckpoint`, which verifies
 * the proof inside the chaincode (checkpoint-proof.ts: data hash, orderer signature against the
 * registered roots, the transaction and its write set), refuses a proof from a block not after the
 * last one imported from that source (`checkpointNotNewer`: a replay or an older checkpoint) and
 * stores the checkpoint with the source block's number and hash. Every failure leaves state unchanged.
 */
import fca from 'fabric-contract-api';
import { Context } from 'fabric-contract-api';

import {
    ANCHOR_HEAD_PREFIX,
    CHECKPOINT_KEY_PREFIX,
    DecodeError,
    MAX_CHECKPOINT_PROOF_BYTES,
    checkpointKey,
    decodeAnchorValue,
    decodeCheckpointProof,
    fromHex,
    toHex,
} from '@m2m-fabric/protocol';
import { Role, requireRole } from './access.js';
import type { AccessPolicy } from './access.js';
import { M2MContract } from './base.js';
import { canonicalJson } from './canonical-json.js';
import type { JsonValue } from './canonical-json.js';
import { CheckpointProofError, blockHash, verifyCheckpointProof } from './checkpoint-proof.js';
import type { CheckpointSource } from './checkpoint-proof.js';
import { ErrorCode, reject } from './errors.js';
import { EventName, emitEvent } from './events.js';
import { readState } from './state.js';
import { requireString } from './validate.js';

const { Info, Returns, Transaction } = fca;

const CHANNEL_PATTERN = /^[a-z][a-z0-9.-]{0,248}$/;
const CHAINCODE_PATTERN = /^[A-Za-z0-9_.+-]{1,128}$/;
const SOURCE_PREFIX = 'checkpoint-source/';
const IMPORTED_PREFIX = 'checkpoint-imported/';
const MAX_ROOTS = 16;

function parseSource(channel: string, chaincode: string, orderersJson: unknown): CheckpointSource {
    if (typeof orderersJson !== 'string') return reject(ErrorCode.MalformedInput, 'orderers must be a JSON string');
    let parsed: unknown;
    try {
        parsed = JSON.parse(orderersJson);
    } catch {
        return reject(ErrorCode.MalformedInput, 'orderers is not JSON');
    }
    const ok =
        Array.isArray(parsed) &&
        parsed.length > 0 &&
        parsed.length <= MAX_ROOTS &&
        parsed.every(
            (o: unknown) =>
                typeof o === 'object' &&
                o !== null &&
                typeof (o as { mspId?: unknown }).mspId === 'string' &&
                Array.isArray((o as { rootCertificates?: unknown }).rootCertificates) &&
                ((o as { rootCertificates: unknown[] }).rootCertificates.length ?? 0) > 0 &&
                (o as { rootCertificates: unknown[] }).rootCertificates.every((c) => typeof c === 'string'),
        );
    if (!ok) return reject(ErrorCode.MalformedInput, 'orderers must be [{ mspId, rootCertificates: [PEM] }]');
    return {
        channel,
        chaincode,
        orderers: (parsed as { mspId: string; rootCertificates: string[] }[]).map((o) => ({
            mspId: o.mspId,
            rootCertificates: [...o.rootCertificates],
        })),
    };
}

@Info({ title: 'Checkpoints', description: 'checkpoints of every writer head, exported and imported across channels' })
export class CheckpointContract extends M2MContract {
    constructor(policy?: AccessPolicy) {
        super('checkpoints', policy);
    }

    /**
     * Source side: writes every writer's head under checkpoint/<tx time>; returns the checkpoint.
     * @throws `checkpointNotNewer` when: a checkpoint was already recorded at this tx time
     */
    @Transaction()
    @Returns('string')
    async recordCheckpoint(ctx: Context): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog);
        const heads: JsonValue[] = [];
        const iterator = await ctx.stub.getStateByRange(ANCHOR_HEAD_PREFIX, `${ANCHOR_HEAD_PREFIX.slice(0, -1)}0`);
        try {
            for (let item = await iterator.next(); !item.done; item = await iterator.next()) {
                const value = decodeAnchorValue(item.value.value);
                heads.push({
                    writer: item.value.key.slice(ANCHOR_HEAD_PREFIX.length),
                    sequence: value.sequence,
                    treeSize: value.treeSize,
                    anchoredAt: new Date(value.anchoredAt).toISOString(),
                    root: toHex(value.root),
                });
            }
        } finally {
            await iterator.close();
        }
        const at = ctx.stub.getDateTimestamp().getTime();
        const key = checkpointKey(at);
        if ((await readState(ctx, key)) !== undefined)
            return reject(ErrorCode.CheckpointNotNewer, `a checkpoint was already recorded at ${at}`);
        const checkpoint = canonicalJson({ recordedAt: new Date(at).toISOString(), heads, count: heads.length });
        await ctx.stub.putState(key, Buffer.from(checkpoint));
        emitEvent(ctx, EventName.CheckpointRecorded, { recordedAt: new Date(at).toISOString(), count: heads.length });
        return checkpoint;
    }

    /**
     * Target side: registers a source channel's orderer trust roots (CSP, the administrator role).
     * `orderers` is JSON [{ mspId, rootCertificates: [PEM] }] (a channel trust file's `orderers`).
     * @throws duplicateCheckpointSource when the source is registered already (state unchanged)
     */
    @Transaction()
    async registerCheckpointSource(ctx: Context, channel: string, chaincode: string, orderers: string): Promise<void> {
        requireRole(ctx, this.policy, Role.Csp);
        const name = requireString('channel', channel, CHANNEL_PATTERN);
        const cc = requireString('chaincode', chaincode, CHAINCODE_PATTERN);
        const source = parseSource(name, cc, orderers);
        if ((await readState(ctx, SOURCE_PREFIX + name)) !== undefined)
            return reject(ErrorCode.DuplicateCheckpointSource, `checkpoint source ${name} is registered already`);
        await ctx.stub.putState(
            SOURCE_PREFIX + name,
            Buffer.from(
                canonicalJson({ channel: name, chaincode: cc, orderers: source.orderers as unknown as JsonValue }),
            ),
        );
        emitEvent(ctx, EventName.CheckpointSourceRegistered, { channel: name, chaincode: cc });
    }

    /**
     * Target side: verifies a checkpoint proof (hex) from `channel` and stores it.
     * @throws unknownCheckpointSource, malformedInput, checkpointInvalid, checkpointNotNewer (state unchanged)
     */
    @Transaction()
    @Returns('string')
    async importCheckpoint(ctx: Context, channel: string, proofHex: string): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog);
        const name = requireString('channel', channel, CHANNEL_PATTERN);
        if (
            typeof proofHex !== 'string' ||
            proofHex.length > 2 * MAX_CHECKPOINT_PROOF_BYTES ||
            !/^([0-9a-f]{2})*$/.test(proofHex)
        )
            return reject(ErrorCode.MalformedInput, 'proof must be lowercase hex');
        const stored = await readState(ctx, SOURCE_PREFIX + name);
        if (stored === undefined) return reject(ErrorCode.UnknownCheckpointSource, `no checkpoint source ${name}`);
        const source = JSON.parse(Buffer.from(stored).toString('utf8')) as CheckpointSource;
        let proof;
        try {
            proof = decodeCheckpointProof(fromHex(proofHex));
        } catch (err) {
            if (err instanceof DecodeError)
                return reject(ErrorCode.CheckpointInvalid, `malformed proof: ${err.message}`);
            throw err;
        }
        let written;
        try {
            written = verifyCheckpointProof(source, proof);
        } catch (err) {
            if (err instanceof CheckpointProofError) return reject(ErrorCode.CheckpointInvalid, err.message);
            throw err;
        }
        let checkpoint: JsonValue;
        try {
            checkpoint = JSON.parse(Buffer.from(written.value).toString('utf8')) as JsonValue;
        } catch {
            return reject(ErrorCode.CheckpointInvalid, 'the checkpoint value is not JSON');
        }
        const lastBytes = await readState(ctx, IMPORTED_PREFIX + name);
        if (lastBytes !== undefined) {
            const last = JSON.parse(Buffer.from(lastBytes).toString('utf8')) as { blockNumber: string };
            if (proof.blockNumber <= BigInt(last.blockNumber)) {
                return reject(
                    ErrorCode.CheckpointNotNewer,
                    `block ${proof.blockNumber} of ${name} is not after the imported block ${last.blockNumber}`,
                );
            }
        }
        const imported = canonicalJson({
            channel: name,
            blockNumber: proof.blockNumber.toString(),
            blockHash: blockHash(proof).toString('hex'),
            transactionId: proof.transactionId,
            key: written.key.slice(CHECKPOINT_KEY_PREFIX.length),
            checkpoint,
            importedAt: ctx.stub.getDateTimestamp().toISOString(),
        });
        await ctx.stub.putState(IMPORTED_PREFIX + name, Buffer.from(imported));
        emitEvent(ctx, EventName.CheckpointImported, { channel: name, blockNumber: proof.blockNumber.toString() });
        return imported;
    }

    /**
     * The last checkpoint imported from `channel`.
     * @throws `unknownCheckpointSource` when: nothing was imported from that channel
     */
    @Transaction(false)
    @Returns('string')
    async getImportedCheckpoint(ctx: Context, channel: string): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        const name = requireString('channel', channel, CHANNEL_PATTERN);
        const value = await readState(ctx, IMPORTED_PREFIX + name);
        if (value === undefined)
            return reject(ErrorCode.UnknownCheckpointSource, `no checkpoint imported from ${name}`);
        return Buffer.from(value).toString('utf8');
    }
}
