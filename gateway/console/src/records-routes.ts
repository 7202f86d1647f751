/**
 * The records view's API (docs/records.md): the writers and their anchored batches (the anchors
 * contract, paginated), a batch's records read from the writer's own journal and checked against
 * the anchored root, and receipt verification with the same SDK verifier `m2m records verify`
 * uses. Batches are channel data every member may read; a batch's records are the writer's
 * off-chain log, shown only to the writer's organisation (docs/console.md).
 */
import type { Context, Hono } from 'hono';
import {
    EncryptionType,
    MerkleTree,
    PartyRole,
    RecordType,
    decodeRecord,
    toHex,
    type CommunicationRecord,
} from '@m2m-fabric/protocol';
import { ReceiptError, ReceiptVerifier, decodeReceipt, type ChannelTrust, type LedgerContract } from '@m2m-fabric/sdk';
import { errorCodeOf } from '@m2m-fabric/common';
import { readJournalRecords } from '@m2m-fabric/services';
import type { ConsoleEnv, ConsoleIdentity } from './identity.js';

/** A writer's journal the console may read (the batcher's `dir`), and the organisation that owns it. */
export interface RecordLog {
    /** `csp` or `fog:<fog id>`. */
    readonly writer: string;
    readonly dir: string;
    /** The writer's organisation: only its identities see the records. */
    readonly mspId: string;
}

export interface RecordsOptions {
    readonly chaincodeName: string;
    /** The channel's MSP roots; receipt verification answers 503 without them. */
    readonly trust?: ChannelTrust;
    readonly logs?: readonly RecordLog[];
}

/** Batches per page of a writer's listing (the anchors contract caps a page at 100). */
export const BATCH_PAGE = 25;
/** Records per page of a batch; `bookmark` is the leaf index the next page starts at. */
export const RECORD_PAGE = 50;
const decoder = new TextDecoder();

/** The lower-camel name of a code in one of the protocol's code tables. */
function nameOf(table: Record<string, number>, code: number): string {
    const key = Object.keys(table).find((k) => table[k] === code);
    return key === undefined ? String(code) : key.charAt(0).toLowerCase() + key.slice(1);
}

/** What the page shows of a record (the fields `m2m records verify` prints). */
export function recordView(record: CommunicationRecord): Record<string, unknown> {
    return {
        suite: record.suite.id,
        type: nameOf(RecordType, record.type),
        encryption: nameOf(EncryptionType, record.encryption),
        sender: { role: nameOf(PartyRole, record.sender.role), keyId: toHex(record.sender.keyId) },
        receiver: { role: nameOf(PartyRole, record.receiver.role), keyId: toHex(record.receiver.keyId) },
        sequence: record.sequence.toString(),
        timestamp: new Date(Number(record.timestamp)).toISOString(),
        size: record.size,
        digest: toHex(record.digest),
    };
}

type Fail = (c: Context, err: unknown) => Response;

/** Adds the records routes to the console's app. */
export function addRecordRoutes(app: Hono<ConsoleEnv>, options: RecordsOptions, failure: Fail): void {
    const anchors = (i: ConsoleIdentity): LedgerContract =>
        i.client.connection.getContract(options.chaincodeName, 'anchors');
    const json = async <T>(i: ConsoleIdentity, fn: string, args: string[]): Promise<T> =>
        JSON.parse(
            decoder.decode(await anchors(i).evaluate(fn, { arguments: args, deadlineMs: i.client.deadlineMs })),
        ) as T;
    const verifier = options.trust === undefined ? undefined : new ReceiptVerifier(options.trust);

    app.get('/api/records', async (c) => {
        const i = c.get('identity');
        try {
            const checkpoint = await json<{ heads: { writer: string }[] }>(i, 'getCheckpoint', []);
            const readable = new Set((options.logs ?? []).filter((l) => l.mspId === i.mspId).map((l) => l.writer));
            return c.json({
                writers: checkpoint.heads.map((h) => ({ ...h, recordsVisible: readable.has(h.writer) })),
                verification: verifier !== undefined,
            });
        } catch (err) {
            return failure(c, err);
        }
    });

    app.get('/api/records/:writer', async (c) => {
        const i = c.get('identity');
        try {
            const page = await json<{ anchors: unknown[]; bookmark: string }>(i, 'listAnchors', [
                c.req.param('writer'),
                '0',
                String(8_640_000_000_000_000),
                String(BATCH_PAGE),
                c.req.query('bookmark') ?? '',
            ]);
            return c.json({ writer: c.req.param('writer'), ...page, pageSize: BATCH_PAGE });
        } catch (err) {
            return failure(c, err);
        }
    });

    app.get('/api/records/:writer/:sequence', async (c) => {
        const i = c.get('identity');
        const writer = c.req.param('writer');
        const log = (options.logs ?? []).find((l) => l.writer === writer);
        try {
            const anchor = await json<{ sequence: number; treeSize: number; root: string; anchoredAt: string }>(
                i,
                'getAnchor',
                [writer, c.req.param('sequence')],
            );
            if (log === undefined || log.mspId !== i.mspId)
                return c.json(
                    {
                        error: 'unauthorisedMsp',
                        message: `the records of ${writer} are its organisation's log; ${i.mspId} sees its anchored batches only`,
                        anchor,
                    },
                    403,
                );
            const previous =
                anchor.sequence > 1
                    ? (await json<{ treeSize: number }>(i, 'getAnchor', [writer, String(anchor.sequence - 1)])).treeSize
                    : 0;
            // Bookmark style, as listAnchors and the materials trace: '' for the first page, else the
            // leaf the previous page's bookmark named (a leaf of this batch; checked before any read).
            const bookmark = c.req.query('bookmark') ?? '';
            let from = previous;
            if (bookmark !== '') {
                from = /^[0-9]{1,15}$/.test(bookmark) ? Number(bookmark) : -1;
                if (from < previous || from >= anchor.treeSize)
                    return c.json(
                        {
                            error: 'malformedInput',
                            message: `bookmark ${JSON.stringify(bookmark)} is not a leaf of batch ${anchor.sequence} (${previous}–${anchor.treeSize - 1})`,
                        },
                        400,
                    );
            }
            const records = await readJournalRecords(log.dir);
            if (records.length < anchor.treeSize)
                return c.json(
                    {
                        error: 'journalCorrupt',
                        message: `the journal has ${records.length} records, the batch ends at ${anchor.treeSize}`,
                    },
                    500,
                );
            const tree = new MerkleTree();
            for (const r of records.slice(0, anchor.treeSize)) tree.append(r);
            if (toHex(tree.root(anchor.treeSize)) !== anchor.root)
                return c.json(
                    { error: 'journalCorrupt', message: 'the journal does not reproduce the anchored root' },
                    500,
                );
            const to = Math.min(anchor.treeSize, from + RECORD_PAGE);
            return c.json({
                anchor,
                firstLeaf: previous,
                pageSize: RECORD_PAGE,
                records: records
                    .slice(from, to)
                    .map((r, k) => ({ leafIndex: from + k, ...recordView(decodeRecord(r)) })),
                bookmark: to < anchor.treeSize ? String(to) : '',
            });
        } catch (err) {
            return failure(c, err);
        }
    });

    // Any member may check a receipt it holds: nothing but the channel's MSP roots is used.
    app.post('/api/records/verify', async (c) => {
        if (verifier === undefined)
            return c.json({ error: 'ledgerUnavailable', message: 'no channel trust file configured' }, 503);
        const body = await c.req.json<{ receipt?: unknown }>().catch((): { receipt?: unknown } => ({}));
        if (typeof body.receipt !== 'string')
            return c.json({ error: 'malformedInput', message: 'receipt (base64) required' }, 400);
        const bytes = new Uint8Array(Buffer.from(body.receipt, 'base64'));
        try {
            const record = verifier.verifyBytes(bytes);
            const receipt = decodeReceipt(bytes);
            return c.json({
                valid: true,
                record: recordView(record),
                placement: {
                    writer: receipt.writer,
                    sequence: receipt.sequence,
                    leafIndex: receipt.leafIndex,
                    treeSize: receipt.treeSize,
                    transactionId: receipt.transactionId,
                    blockNumber: receipt.block.number,
                },
            });
        } catch (err) {
            return c.json(
                {
                    valid: false,
                    error: errorCodeOf(err),
                    check: err instanceof ReceiptError ? err.check : undefined,
                    message: err instanceof Error ? err.message : String(err),
                },
                422,
            );
        }
    });
}
