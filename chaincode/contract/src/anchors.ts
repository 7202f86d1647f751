/**
 * Anchors contract: one Merkle root per batch of communication records (papers 000 §4.3, 003).
 * A writer — the CSP, or an approved fog for the records it relays — anchors the root of its
 * RFC 9162 record log after each batch. The contract checks, before writing anything:
 *
 *  - the caller's role (csp or fog; a manufacturer or device identity gets unauthorisedMsp) and,
 *    for a fog, that the fog is registered by the caller's organisation and approved;
 *  - the writer's Schnorr signature over the batch head by its registered key, Q_c or Q_f
 *    (failedSignatureVerification), so the head is attributable off-chain as well;
 *  - the sequence: exactly one more than the writer's last (a replayed or repeated sequence is
 *    duplicateBatch, a gap batchOutOfOrder), the tree growing, and the transaction time not
 *    before the last anchor's;
 *  - an RFC 9162 consistency proof from the previous anchored root to the new one
 *    (merkleProofInvalid): a writer cannot rewrite the history it anchored.
 *
 * Each batch writes 57 value bytes under its own key plus the writer's head; keys are per writer
 * (no key every writer touches). Endorsement follows the channel's MAJORITY policy like every
 * other function, so no organisation anchors alone.
 */
import fca from 'fabric-contract-api';
import { Context } from 'fabric-contract-api';

import {
    ANCHOR_HEAD_PREFIX,
    CSP_WRITER,
    MAX_CONSISTENCY_PROOF_HASHES,
    anchorHeadKey,
    anchorKey,
    anchorRange,
    batchHeadMessage,
    decodeAnchorValue,
    encodeAnchorValue,
    parseWriter,
} from '@m2m-fabric/protocol';
import type { AnchorValue } from '@m2m-fabric/protocol';
import { decodePoint, fromHex, toHex } from '@m2m-fabric/protocol';
import { MERKLE_HASH_BYTES, verifyConsistency } from '@m2m-fabric/protocol';
import { SchnorrContext, decodeSchnorrSignature, schnorrVerify } from '@m2m-fabric/protocol';
import { Role, requireRole } from './access.js';
import type { AccessPolicy } from './access.js';
import { M2MContract } from './base.js';
import { canonicalJson } from './canonical-json.js';
import type { JsonValue } from './canonical-json.js';
import { ErrorCode, reject } from './errors.js';
import { EventName, emitEvent } from './events.js';
import { FogStatus, readCspConfig, readFog, readState } from './state.js';
import { requireHexBytes, requireInteger, requireString } from './validate.js';

const { Info, Returns, Transaction } = fca;

const WRITER_PATTERN = /^(csp|fog:[A-Za-z0-9][A-Za-z0-9._:@-]{0,127})$/;
/** Largest page of a listing. */
export const MAX_ANCHOR_PAGE = 100;
const MAX_TIME = 8_640_000_000_000_000;

function anchorJson(writer: string, value: AnchorValue): JsonValue {
    return {
        writer,
        sequence: value.sequence,
        treeSize: value.treeSize,
        anchoredAt: new Date(value.anchoredAt).toISOString(),
        root: toHex(value.root),
    };
}

function txMillis(ctx: Context): number {
    return ctx.stub.getDateTimestamp().getTime();
}

@Info({ title: 'Anchors', description: 'Merkle roots of communication-record batches, one per writer batch' })
export class AnchorContract extends M2MContract {
    constructor(policy?: AccessPolicy) {
        super('anchors', policy);
    }

    /**
     * Anchors batch `sequence` of `writer`: the log has `treeSize` records and root `root` (hex).
     * `consistencyProof` is the RFC 9162 proof from the previous anchor's tree to this one, as
     * concatenated 32-byte hashes in hex ('' for the first batch). `signature` is the writer's
     * Schnorr signature over batchHeadMessage(writer, sequence, treeSize, root).
     * @throws {ContractError} `malformedInput` when: writer … is neither csp nor fog:<id>; the first batch has no consistency proof
     * @throws {ContractError} `unauthorisedMsp` when: only the CSP writes as csp; only a fog writes as a fog; fog … belongs to another organisation
     * @throws {ContractError} `fogNotApproved` when: fog … is …
     * @throws {ContractError} `failedSignatureVerification` when: the batch head is not signed by …'s key
     * @throws {ContractError} `duplicateBatch` when: batch … of … is already anchored
     * @throws {ContractError} `batchOutOfOrder` when: batch … of … follows …: expected …; tree size … does not grow past …; the transaction time is before the pr…
     */
    @Transaction()
    @Returns('string')
    async anchorBatch(
        ctx: Context,
        writer: string,
        sequence: string,
        treeSize: string,
        root: string,
        consistencyProof: string,
        signature: string,
    ): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Csp, Role.Fog);
        const name = requireString('writer', writer, WRITER_PATTERN);
        const parsed = parseWriter(name);
        const seq = requireInteger('sequence', sequence, 1, Number.MAX_SAFE_INTEGER);
        const size = requireInteger('treeSize', treeSize, 1, Number.MAX_SAFE_INTEGER);
        const newRoot = requireHexBytes('root', root, MERKLE_HASH_BYTES);
        const proof = parseProof(consistencyProof);

        // Who may write as this writer, and with which key.
        const { suite, caPublicKey } = await readCspConfig(ctx);
        let writerKey = caPublicKey;
        if (parsed === undefined) {
            return reject(ErrorCode.MalformedInput, `writer ${name} is neither csp nor fog:<id>`);
        }
        if (parsed.kind === 'csp') {
            if (caller.role !== Role.Csp) return reject(ErrorCode.UnauthorisedMsp, 'only the CSP writes as csp');
        } else {
            if (caller.role !== Role.Fog) return reject(ErrorCode.UnauthorisedMsp, 'only a fog writes as a fog');
            const fog = await readFog(ctx, parsed.fogId);
            if (fog.mspId !== caller.mspId) {
                return reject(ErrorCode.UnauthorisedMsp, `fog ${parsed.fogId} belongs to another organisation`);
            }
            if (fog.status !== FogStatus.Approved) {
                return reject(ErrorCode.FogNotApproved, `fog ${parsed.fogId} is ${fog.status}`);
            }
            writerKey = decodePoint(suite, fromHex(fog.publicKey));
        }
        const sig = decodeSchnorrSignature(suite, requireHexBytes('signature', signature, 2 * suite.scalarBytes));
        if (
            !schnorrVerify(suite, SchnorrContext.BatchHead, writerKey, batchHeadMessage(name, seq, size, newRoot), sig)
        ) {
            return reject(ErrorCode.FailedSignatureVerification, `the batch head is not signed by ${name}'s key`);
        }

        // Sequence and history.
        const headKey = anchorHeadKey(name);
        const storedHead = await readState(ctx, headKey);
        const head = storedHead === undefined ? undefined : decodeAnchorValue(storedHead);
        const last = head?.sequence ?? 0;
        if (seq <= last) return reject(ErrorCode.DuplicateBatch, `batch ${seq} of ${name} is already anchored`);
        if (seq !== last + 1) {
            return reject(ErrorCode.BatchOutOfOrder, `batch ${seq} of ${name} follows ${last}: expected ${last + 1}`);
        }
        const now = txMillis(ctx);
        if (head === undefined) {
            if (proof.length !== 0) return reject(ErrorCode.MalformedInput, 'the first batch has no consistency proof');
        } else {
            if (size <= head.treeSize) {
                return reject(ErrorCode.BatchOutOfOrder, `tree size ${size} does not grow past ${head.treeSize}`);
            }
            if (now < head.anchoredAt) {
                return reject(ErrorCode.BatchOutOfOrder, 'the transaction time is before the previous anchor');
            }
            verifyConsistency(head.treeSize, size, head.root, newRoot, proof);
        }

        const value: AnchorValue = { sequence: seq, treeSize: size, anchoredAt: now, root: newRoot };
        const encoded = encodeAnchorValue(value);
        await ctx.stub.putState(anchorKey(name, seq), encoded);
        await ctx.stub.putState(headKey, encoded);
        emitEvent(ctx, EventName.BatchAnchored, { writer: name, sequence: seq, treeSize: size, root: toHex(newRoot) });
        return canonicalJson(anchorJson(name, value));
    }

    /**
     * One anchor: writer and sequence. Any member role may read.
     * @throws {ContractError} `unknownBatch` when: no batch … of …
     */
    @Transaction(false)
    @Returns('string')
    async getAnchor(ctx: Context, writer: string, sequence: string): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        const name = requireString('writer', writer, WRITER_PATTERN);
        const seq = requireInteger('sequence', sequence, 1, Number.MAX_SAFE_INTEGER);
        const stored = await readState(ctx, anchorKey(name, seq));
        if (stored === undefined) return reject(ErrorCode.UnknownBatch, `no batch ${seq} of ${name}`);
        return canonicalJson(anchorJson(name, decodeAnchorValue(stored)));
    }

    /**
     * A writer's latest anchor (its head).
     * @throws {ContractError} `unknownBatch` when: … has anchored nothing
     */
    @Transaction(false)
    @Returns('string')
    async getWriterHead(ctx: Context, writer: string): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        const name = requireString('writer', writer, WRITER_PATTERN);
        const stored = await readState(ctx, anchorHeadKey(name));
        if (stored === undefined) return reject(ErrorCode.UnknownBatch, `${name} has anchored nothing`);
        return canonicalJson(anchorJson(name, decodeAnchorValue(stored)));
    }

    /**
     * A writer's anchors whose transaction time lies in [from, to] (ms since the epoch), oldest
     * first, `pageSize` at a time. `bookmark` is '' or the sequence a previous page returned. The
     * first anchor at or after `from` is found by binary search over the sequence (anchor times
     * never decrease), so a page costs O(log n + pageSize) reads.
     */
    @Transaction(false)
    @Returns('string')
    async listAnchors(
        ctx: Context,
        writer: string,
        from: string,
        to: string,
        pageSize: string,
        bookmark: string,
    ): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        const name = requireString('writer', writer, WRITER_PATTERN);
        const fromMs = requireInteger('from', from, 0, MAX_TIME);
        const toMs = requireInteger('to', to, 0, MAX_TIME);
        const size = requireInteger('pageSize', pageSize, 1, MAX_ANCHOR_PAGE);
        const after = bookmark === '' ? 0 : requireInteger('bookmark', bookmark, 1, Number.MAX_SAFE_INTEGER);
        const headBytes = await readState(ctx, anchorHeadKey(name));
        if (headBytes === undefined || fromMs > toMs) {
            return canonicalJson({ anchors: [], count: 0, bookmark: '' });
        }
        const head = decodeAnchorValue(headBytes);
        // Smallest sequence whose anchoredAt >= fromMs.
        let lo = 1;
        let hi = head.sequence + 1;
        while (lo < hi) {
            const mid = Math.floor((lo + hi) / 2);
            const stored = await readState(ctx, anchorKey(name, mid));
            if (stored !== undefined && decodeAnchorValue(stored).anchoredAt >= fromMs) hi = mid;
            else lo = mid + 1;
        }
        const start = Math.max(lo, after + 1);
        const anchors: JsonValue[] = [];
        let next = '';
        if (start <= head.sequence) {
            const range = anchorRange(name, start);
            const iterator = await ctx.stub.getStateByRange(range.start, range.end);
            try {
                for (let item = await iterator.next(); !item.done; item = await iterator.next()) {
                    const value = decodeAnchorValue(item.value.value);
                    if (value.anchoredAt > toMs) break;
                    if (anchors.length === size) {
                        next = String(value.sequence - 1);
                        break;
                    }
                    anchors.push(anchorJson(name, value));
                }
            } finally {
                await iterator.close();
            }
        }
        return canonicalJson({ anchors, count: anchors.length, bookmark: next });
    }

    /**
     * A checkpoint of every writer's head, for export to a second channel or another consortium's
     * ledger (docs/records.md): the heads sorted by writer. The SDK adds the block height and hash.
     */
    @Transaction(false)
    @Returns('string')
    async getCheckpoint(ctx: Context): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp, Role.Fog, Role.Manufacturer);
        const heads: JsonValue[] = [];
        // '0' is the character after '/', so the range is exactly the head keys.
        const iterator = await ctx.stub.getStateByRange(ANCHOR_HEAD_PREFIX, `${ANCHOR_HEAD_PREFIX.slice(0, -1)}0`);
        try {
            for (let item = await iterator.next(); !item.done; item = await iterator.next()) {
                heads.push(
                    anchorJson(item.value.key.slice(ANCHOR_HEAD_PREFIX.length), decodeAnchorValue(item.value.value)),
                );
            }
        } finally {
            await iterator.close();
        }
        return canonicalJson({ heads, count: heads.length, csp: CSP_WRITER });
    }
}

/** Concatenated 32-byte hashes in lowercase hex; '' is the empty proof. */
function parseProof(value: unknown): Uint8Array[] {
    if (typeof value !== 'string' || value.length % (2 * MERKLE_HASH_BYTES) !== 0) {
        return reject(ErrorCode.MalformedInput, 'consistencyProof must be concatenated 32-byte hashes in hex');
    }
    const count = value.length / (2 * MERKLE_HASH_BYTES);
    if (count > MAX_CONSISTENCY_PROOF_HASHES) {
        return reject(
            ErrorCode.MalformedInput,
            `consistencyProof has more than ${MAX_CONSISTENCY_PROOF_HASHES} hashes`,
        );
    }
    const proof: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
        const part = value.slice(i * 2 * MERKLE_HASH_BYTES, (i + 1) * 2 * MERKLE_HASH_BYTES);
        proof.push(requireHexBytes('consistencyProof', part, MERKLE_HASH_BYTES));
    }
    return proof;
}
