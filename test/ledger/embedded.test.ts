/**
 * Integration tests of the embedded ledger through the ledger client interface, with the fixture
 * contract run by the real fabric-shim: MVCC and phantom conflicts, block cutting, events,
 * history, composite keys, transient data, policies, identities, errors, deadlines and retries.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import {
    CommitError,
    DeadlineError,
    EndorseError,
    EndorsementPolicyError,
    fileCheckpointer,
    newPrivateKeySigner,
    submitWithRetry,
    SubmitError,
    ValidationCodes,
    type ChaincodeEvent,
    type ChaincodeEventStream,
    type CommitStatus,
} from '@m2m-fabric/sdk';
import { EmbeddedLedger } from '@m2m-fabric/embedded-ledger';

import { envelopeSize, readBlock } from './fixtures/blocks.js';
import { CHAINCODE, openTestNetwork, utf8, type TestNetwork } from './fixtures/network.js';

async function withNetwork(
    options: Parameters<typeof openTestNetwork>[0],
    body: (net: TestNetwork) => Promise<void>,
): Promise<void> {
    const net = await openTestNetwork(options);
    try {
        await body(net);
    } finally {
        await net.dispose();
    }
}

/** Takes `count` events from a stream. */
async function take(
    stream: ChaincodeEventStream,
    count: number,
    onEach?: (e: ChaincodeEvent) => Promise<void>,
): Promise<ChaincodeEvent[]> {
    const events: ChaincodeEvent[] = [];
    if (count === 0) return events;
    for await (const event of stream) {
        await onEach?.(event);
        events.push(event);
        if (events.length >= count) break;
    }
    return events;
}

/**
 * Blocks of exactly two transactions: a writer submitted first and a reader endorsed after it land
 * in one block regardless of machine speed, so the reader cannot have seen the writer's commit.
 */
const PAIRS = { batchTimeoutMs: 60_000, maxMessageCount: 2 };

/** Submits two transactions as one block (setup steps). */
async function submitPair(
    contract: TestNetwork['contract'],
    a: [string, string[]],
    b: [string, string[]],
): Promise<void> {
    await Promise.all([contract.submit(a[0], { arguments: a[1] }), contract.submit(b[0], { arguments: b[1] })]);
}

async function filesUnder(dir: string): Promise<string[]> {
    const entries = await readdir(dir, { withFileTypes: true });
    const nested = await Promise.all(
        entries.map(async (e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)])),
    );
    return nested.flat();
}

void describe('embedded ledger: MVCC', () => {
    void it('two concurrent transactions on one key in one block: exactly one is valid', async () => {
        await withNetwork({ batch: PAIRS }, async ({ contract, ledger }) => {
            const [a, b] = await Promise.all([
                contract.submitAsync('Increment', { arguments: ['counter'] }),
                contract.submitAsync('Increment', { arguments: ['counter'] }),
            ]);
            const statuses = await Promise.all([a.getStatus(), b.getStatus()]);
            assert.deepEqual(statuses.map((s) => s.code).sort(), ['MVCC_READ_CONFLICT', 'VALID']);
            assert.equal(statuses[0]?.blockNumber, statuses[1]?.blockNumber);
            assert.equal(utf8(await contract.evaluate('Get', { arguments: ['counter'] })), '1');
            // The invalid transaction stays in the block with its code.
            const block = await readBlock(ledger, statuses[0]?.blockNumber ?? 0n);
            assert.deepEqual([...block.validationCodes].sort(), [
                ValidationCodes.VALID,
                ValidationCodes.MVCC_READ_CONFLICT,
            ]);
        });
    });

    void it('submit throws CommitError with code, transaction id and block for the loser', async () => {
        await withNetwork({ batch: PAIRS }, async ({ contract }) => {
            const results = await Promise.allSettled([
                contract.submit('Increment', { arguments: ['k'] }),
                contract.submit('Increment', { arguments: ['k'] }),
            ]);
            const rejected = results.filter((r) => r.status === 'rejected');
            assert.equal(rejected.length, 1);
            const error = (rejected[0] as PromiseRejectedResult).reason as unknown;
            assert.ok(error instanceof CommitError);
            assert.equal(error.code, 'MVCC_READ_CONFLICT');
            assert.match(error.transactionId, /^[0-9a-f]{64}$/);
            assert.ok(error.blockNumber >= 1n);
        });
    });

    void it('conflict across consecutive blocks: the later block loses', async () => {
        // Measure one Increment envelope, then size blocks to hold exactly one.
        const first = await openTestNetwork({});
        await first.contract.submit('Increment', { arguments: ['x'] });
        const size = envelopeSize((await readBlock(first.ledger, 1n)).envelopes[0] ?? new Uint8Array());
        await first.ledger.close();
        const net = await openTestNetwork({
            dir: first.dir,
            batch: { batchTimeoutMs: 300, preferredMaxBytes: Math.floor(size * 1.5) },
        });
        try {
            const a = await net.contract.submitAsync('Increment', { arguments: ['x'] });
            const b = await net.contract.submitAsync('Increment', { arguments: ['x'] });
            const [sa, sb] = await Promise.all([a.getStatus(), b.getStatus()]);
            assert.equal(sa.code, 'VALID');
            assert.equal(sb.code, 'MVCC_READ_CONFLICT');
            assert.equal(sb.blockNumber, sa.blockNumber + 1n);
            assert.equal(utf8(await net.contract.evaluate('Get', { arguments: ['x'] })), '2');
        } finally {
            await net.dispose();
            await first.dispose();
        }
    });

    void it('a transaction does not read its own writes', async () => {
        await withNetwork({}, async ({ contract }) => {
            await contract.submit('Put', { arguments: ['own', 'old'] });
            assert.equal(utf8(await contract.submit('ReadOwnWrite', { arguments: ['own', 'new'] })), 'old');
            assert.equal(utf8(await contract.evaluate('Get', { arguments: ['own'] })), 'new');
        });
    });

    void it('submitWithRetry re-endorses after MVCC_READ_CONFLICT until every increment lands', async () => {
        await withNetwork({ batch: { batchTimeoutMs: 300 } }, async ({ contract }) => {
            const retried: string[] = [];
            const n = 6;
            await Promise.all(
                Array.from({ length: n }, () =>
                    submitWithRetry(
                        contract,
                        'Increment',
                        { arguments: ['shared'] },
                        { attempts: 20, backoffMs: 5, onRetry: (e) => retried.push(e.transactionId) },
                    ),
                ),
            );
            assert.equal(utf8(await contract.evaluate('Get', { arguments: ['shared'] })), String(n));
            assert.ok(retried.length > 0, 'concurrent increments must have conflicted at least once');
            assert.equal(new Set(retried).size, retried.length, 'each retry is a new transaction');
        });
    });
});

void describe('embedded ledger: phantom reads', () => {
    void it('an insert into a scanned range earlier in the block invalidates the range reader', async () => {
        await withNetwork({ batch: PAIRS }, async ({ contract }) => {
            await submitPair(contract, ['Put', ['r/0001', 'a']], ['Put', ['setup', 'x']]);
            const insert = await contract.submitAsync('Put', { arguments: ['r/0005', 'b'] });
            const scan = await contract.submitAsync('RangeThenWrite', { arguments: ['r/', 'r0', '1000', 'marker'] });
            const insert2 = await contract.submitAsync('Put', { arguments: ['r/0006', 'c'] });
            const outside = await contract.submitAsync('RangeThenWrite', {
                arguments: ['s/', 's0', '1000', 'marker2'],
            });
            assert.equal((await insert2.getStatus()).code, 'VALID');
            assert.equal((await insert.getStatus()).code, 'VALID');
            assert.equal((await scan.getStatus()).code, 'PHANTOM_READ_CONFLICT');
            assert.equal((await outside.getStatus()).code, 'VALID');
            assert.equal(utf8(await contract.evaluate('Get', { arguments: ['marker'] })), '');
        });
    });

    void it('an update or delete of a key in the range is a phantom too; a key outside is not', async () => {
        await withNetwork({ batch: PAIRS }, async ({ contract }) => {
            await submitPair(contract, ['PutMany', ['q/', '3']], ['Put', ['setup', 'x']]);
            const update = await contract.submitAsync('Put', { arguments: ['q/0001', 'changed'] });
            const scan1 = await contract.submitAsync('RangeThenWrite', { arguments: ['q/', 'q0', '1000', 'm1'] });
            assert.equal((await update.getStatus()).code, 'VALID');
            assert.equal((await scan1.getStatus()).code, 'PHANTOM_READ_CONFLICT');
            const del = await contract.submitAsync('Delete', { arguments: ['q/0002'] });
            const scan2 = await contract.submitAsync('RangeThenWrite', { arguments: ['q/', 'q0', '1000', 'm2'] });
            assert.equal((await del.getStatus()).code, 'VALID');
            assert.equal((await scan2.getStatus()).code, 'PHANTOM_READ_CONFLICT');
            const elsewhere = await contract.submitAsync('Put', { arguments: ['q0', 'end key is exclusive'] });
            const scan3 = await contract.submitAsync('RangeThenWrite', { arguments: ['q/', 'q0', '1000', 'm3'] });
            assert.equal((await elsewhere.getStatus()).code, 'VALID');
            assert.equal((await scan3.getStatus()).code, 'VALID');
            // q/0000 and q/0001 remain (q/0002 was deleted).
            assert.equal(utf8(await contract.evaluate('Get', { arguments: ['m3'] })), '2');
        });
    });

    void it('a range not read to the end is checked only up to the last key fetched (batches of 100)', async () => {
        await withNetwork({ batch: PAIRS }, async ({ contract }) => {
            await submitPair(contract, ['PutMany', ['p/', '150']], ['Put', ['setup', 'x']]);
            // The chaincode stops after one key, but the peer fetched p/0000..p/0099.
            const after = await contract.submitAsync('Put', { arguments: ['p/0120a', 'x'] });
            const scanA = await contract.submitAsync('RangeThenWrite', { arguments: ['p/', 'p0', '1', 'ma'] });
            assert.equal((await after.getStatus()).code, 'VALID');
            assert.equal((await scanA.getStatus()).code, 'VALID');
            const within = await contract.submitAsync('Put', { arguments: ['p/0050a', 'x'] });
            const scanB = await contract.submitAsync('RangeThenWrite', { arguments: ['p/', 'p0', '1', 'mb'] });
            assert.equal((await within.getStatus()).code, 'VALID');
            assert.equal((await scanB.getStatus()).code, 'PHANTOM_READ_CONFLICT');
        });
    });

    void it('partial composite key queries are protected the same way', async () => {
        await withNetwork({ batch: PAIRS }, async ({ contract }) => {
            await submitPair(contract, ['PutComposite', ['asset', 'owner1', 'a', '1']], ['Put', ['setup', 'x']]);
            const sameOwner = await contract.submitAsync('PutComposite', { arguments: ['asset', 'owner1', 'b', '2'] });
            const query1 = await contract.submitAsync('QueryComposite', { arguments: ['asset', 'owner1', 'c1'] });
            assert.equal((await sameOwner.getStatus()).code, 'VALID');
            assert.equal((await query1.getStatus()).code, 'PHANTOM_READ_CONFLICT');
            const otherOwner = await contract.submitAsync('PutComposite', { arguments: ['asset', 'owner2', 'c', '3'] });
            const query2 = await contract.submitAsync('QueryComposite', { arguments: ['asset', 'owner1', 'c2'] });
            assert.equal((await otherOwner.getStatus()).code, 'VALID');
            assert.equal((await query2.getStatus()).code, 'VALID');
        });
    });
});

void describe('embedded ledger: state, history, composite keys', () => {
    void it('history lists every committed modification newest first, with deletes', async () => {
        await withNetwork({}, async ({ contract }) => {
            const ids: string[] = [];
            for (const [fn, args] of [
                ['Put', ['h', 'v1']],
                ['Put', ['h', 'v2']],
                ['Delete', ['h']],
                ['Put', ['h', 'v3']],
            ] as const) {
                const tx = await contract.submitAsync(fn, { arguments: [...args] });
                assert.equal((await tx.getStatus()).code, 'VALID');
                ids.push(tx.transactionId);
            }
            // An invalidated write is not history.
            await contract.submit('Fail', { arguments: ['h', 'malformedInput'] }).catch(() => undefined);
            const history = JSON.parse(utf8(await contract.evaluate('History', { arguments: ['h'] }))) as {
                txId: string;
                value: string;
                isDelete: boolean;
            }[];
            assert.deepEqual(
                history.map((h) => [h.txId, h.value, h.isDelete]),
                [
                    [ids[3], 'v3', false],
                    [ids[2], '', true],
                    [ids[1], 'v2', false],
                    [ids[0], 'v1', false],
                ],
            );
            assert.equal(utf8(await contract.evaluate('History', { arguments: ['never-written'] })), '[]');
        });
    });

    void it('composite keys: partial queries return matching entries in key order', async () => {
        await withNetwork({}, async ({ contract }) => {
            await contract.submit('PutComposite', { arguments: ['cert', 'fogB', 'x2', 'v3'] });
            await contract.submit('PutComposite', { arguments: ['cert', 'fogA', 'x9', 'v2'] });
            await contract.submit('PutComposite', { arguments: ['cert', 'fogA', 'x1', 'v1'] });
            await contract.submit('PutComposite', { arguments: ['other', 'fogA', 'x1', 'no'] });
            await contract.submit('Put', { arguments: ['certfogA', 'simple key, not composite'] });
            const fogA = JSON.parse(
                utf8(await contract.evaluate('QueryComposite', { arguments: ['cert', 'fogA', ''] })),
            ) as unknown;
            assert.deepEqual(fogA, [
                { attributes: ['fogA', 'x1'], value: 'v1' },
                { attributes: ['fogA', 'x9'], value: 'v2' },
            ]);
            const all = JSON.parse(
                utf8(await contract.evaluate('QueryComposite', { arguments: ['cert', '', ''] })),
            ) as unknown[];
            assert.equal(all.length, 3);
            // Composite keys stay out of simple-key ranges.
            const simple = JSON.parse(
                utf8(await contract.evaluate('RangeThenWrite', { arguments: ['', '', '1000', 'mm'] })),
            ) as string[];
            assert.deepEqual(simple, ['certfogA']);
        });
    });

    void it('transient data reaches the chaincode and is persisted nowhere', async () => {
        await withNetwork({}, async ({ contract, ledger, dir }) => {
            const secret = 'transient-secret-0f5c2a9e-must-not-persist';
            const result = utf8(
                await contract.submit('PutTransientHash', {
                    arguments: ['t'],
                    transientData: { secret: Buffer.from(secret) },
                }),
            );
            assert.match(result, /^[0-9a-f]{64}$/);
            const needle = Buffer.from(secret);
            for (let n = 0n; n < ledger.height; n++) {
                assert.equal(
                    Buffer.from((await ledger.getBlock(n)) ?? new Uint8Array()).includes(needle),
                    false,
                    `block ${n}`,
                );
            }
            await ledger.close();
            for (const file of await filesUnder(dir)) {
                if ((await stat(file)).size > 0) assert.equal((await readFile(file)).includes(needle), false, file);
            }
        });
    });

    void it('a failed chaincode response writes nothing and carries the protocol error code', async () => {
        await withNetwork({}, async ({ contract, ledger }) => {
            const height = ledger.height;
            await assert.rejects(
                contract.submit('Fail', { arguments: ['f', 'failedDoubleSpendingCheck-1'] }),
                (err: unknown) => {
                    assert.ok(err instanceof EndorseError);
                    assert.equal(err.status, 500);
                    assert.equal(err.errorCode, 'failedDoubleSpendingCheck-1');
                    assert.match(err.transactionId ?? '', /^[0-9a-f]{64}$/);
                    return true;
                },
            );
            await assert.rejects(contract.evaluate('NoSuchFunction'), EndorseError);
            await assert.rejects(
                contract.submit('PutTransientHash', { arguments: ['t'] }),
                (err: unknown) => err instanceof EndorseError && err.errorCode === 'malformedInput',
            );
            assert.equal(utf8(await contract.evaluate('Get', { arguments: ['f'] })), '');
            assert.equal(ledger.height, height, 'nothing was ordered');
        });
    });
});

void describe('embedded ledger: ordering', () => {
    void it('cuts blocks by MaxMessageCount and by BatchTimeout', async () => {
        await withNetwork({ batch: { maxMessageCount: 3, batchTimeoutMs: 2000 } }, async ({ contract }) => {
            const txs = [];
            for (let i = 0; i < 7; i++) txs.push(await contract.submitAsync('Put', { arguments: [`m${i}`, 'v'] }));
            const blocks = (await Promise.all(txs.map((t) => t.getStatus()))).map((s) => s.blockNumber);
            const base = blocks[0] ?? 0n;
            assert.deepEqual(
                blocks.map((b) => b - base),
                [0n, 0n, 0n, 1n, 1n, 1n, 2n],
            );
        });
    });

    void it('cuts blocks by PreferredMaxBytes and refuses envelopes above AbsoluteMaxBytes', async () => {
        const value = 'v'.repeat(2000);
        const probe = await openTestNetwork({});
        await probe.contract.submit('Put', { arguments: ['probe', value] });
        const size = envelopeSize((await readBlock(probe.ledger, 1n)).envelopes[0] ?? new Uint8Array());
        await probe.ledger.close();
        // Room for two such envelopes but not three.
        const net = await openTestNetwork({
            dir: probe.dir,
            batch: { batchTimeoutMs: 2000, preferredMaxBytes: Math.floor(size * 2.5), absoluteMaxBytes: size * 4 },
        });
        try {
            const txs = [];
            for (let i = 0; i < 5; i++)
                txs.push(await net.contract.submitAsync('Put', { arguments: [`b${i}`, value] }));
            const blocks = (await Promise.all(txs.map((t) => t.getStatus()))).map((s) => s.blockNumber);
            const base = blocks[0] ?? 0n;
            assert.deepEqual(
                blocks.map((b) => b - base),
                [0n, 0n, 1n, 1n, 2n],
            );
            await assert.rejects(
                net.contract.submit('Put', { arguments: ['huge', 'v'.repeat(size * 4)] }),
                SubmitError,
            );
        } finally {
            await net.dispose();
            await probe.dispose();
        }
    });

    void it('per-call deadlines: DeadlineError while waiting for commit; the transaction still commits', async () => {
        // Blocks are cut only by count (2), so a lone transaction waits until a second arrives.
        await withNetwork({ batch: { batchTimeoutMs: 60_000, maxMessageCount: 2 } }, async ({ contract, ledger }) => {
            let txId = '';
            await assert.rejects(
                contract.submit('Put', { arguments: ['slow', 'v'], deadlineMs: 1500 }),
                (err: unknown) => {
                    assert.ok(err instanceof DeadlineError);
                    assert.equal(err.stage, 'commit');
                    txId = err.transactionId ?? '';
                    return true;
                },
            );
            assert.equal(await ledger.getTransactionStatus(txId), undefined);
            await contract.submit('Put', { arguments: ['cut', 'v'] });
            assert.equal((await ledger.getTransactionStatus(txId))?.code, 'VALID');

            const pending = await contract.submitAsync('Put', { arguments: ['slow2', 'v'] });
            await assert.rejects(pending.getStatus({ deadlineMs: 20 }), DeadlineError);
            await contract.submit('Put', { arguments: ['cut2', 'v'] });
            assert.equal((await pending.getStatus()).code, 'VALID');
            await assert.rejects(contract.evaluate('Get', { arguments: ['x'], deadlineMs: -1 }), RangeError);
        });
    });
});

void describe('embedded ledger: events', () => {
    void it('delivers events of valid transactions only after commit, in order, and resumes from a checkpoint after restart', async () => {
        const net = await openTestNetwork({ batch: { batchTimeoutMs: 1000 } });
        try {
            const stream = await net.connection.getChaincodeEvents(CHAINCODE);
            const submitted: string[] = [];
            for (let i = 1; i <= 3; i++)
                submitted.push(
                    (await net.contract.submitAsync('Emit', { arguments: [`e${i}`, 'Created', `payload-${i}`] }))
                        .transactionId,
                );
            // Two racing emitters on one key: only the valid one's event may appear.
            const race = await Promise.all([
                net.contract.submitAsync('Emit', { arguments: ['race', 'Raced', 'r1'] }),
                net.contract.submitAsync('Emit', { arguments: ['race', 'Raced', 'r2'] }),
            ]);
            const raceStatuses = await Promise.all(race.map((t) => t.getStatus()));
            const winner = race[raceStatuses.findIndex((s) => s.successful)];
            assert.ok(winner !== undefined && raceStatuses.some((s) => !s.successful));
            for (let i = 4; i <= 5; i++)
                submitted.push(
                    (await net.contract.submitAsync('Emit', { arguments: [`e${i}`, 'Created', `payload-${i}`] }))
                        .transactionId,
                );

            const seen: CommitStatus[] = [];
            const events = await take(stream, 6, async (event) => {
                const status = await net.ledger.getTransactionStatus(event.transactionId);
                assert.ok(status !== undefined, 'event delivered before its block was committed');
                seen.push(status);
            });
            stream.close();
            assert.deepEqual(
                events.map((e) => e.transactionId),
                [...submitted.slice(0, 3), winner.transactionId, ...submitted.slice(3)],
            );
            assert.ok(seen.every((s) => s.successful));
            for (let i = 1; i < events.length; i++)
                assert.ok((events[i]?.blockNumber ?? 0n) >= (events[i - 1]?.blockNumber ?? 0n));
            assert.equal(events[0]?.eventName, 'Created');
            assert.equal(utf8(events[0]?.payload ?? new Uint8Array()), 'payload-1');
            assert.equal(events[0]?.chaincodeName, CHAINCODE);

            // Checkpoint after the second event, restart the ledger, resume.
            const checkpointer = await fileCheckpointer(join(net.dir, 'events.checkpoint'));
            const replay = await net.connection.getChaincodeEvents(CHAINCODE, { startBlock: 0n });
            const firstTwo = await take(replay, 2, (e) => checkpointer.checkpointChaincodeEvent(e));
            replay.close();
            assert.deepEqual(
                firstTwo.map((e) => e.transactionId),
                submitted.slice(0, 2),
            );
            await net.ledger.close();
            const reopened = await openTestNetwork({ dir: net.dir, batch: { batchTimeoutMs: 100 } });
            try {
                const resumedCheckpointer = await fileCheckpointer(join(net.dir, 'events.checkpoint'));
                const resumed = await reopened.connection.getChaincodeEvents(CHAINCODE, {
                    checkpoint: resumedCheckpointer,
                });
                const after = await reopened.contract.submitAsync('Emit', {
                    arguments: ['e6', 'Created', 'payload-6'],
                });
                const rest = await take(resumed, 5);
                resumed.close();
                assert.deepEqual(
                    rest.map((e) => e.transactionId),
                    [submitted[2], winner.transactionId, submitted[3], submitted[4], after.transactionId],
                );
            } finally {
                await reopened.ledger.close();
            }
        } finally {
            await net.dispose();
        }
    });

    void it('a stream without start position sees only later commits; close ends iteration', async () => {
        await withNetwork({}, async ({ connection, contract }) => {
            await contract.submit('Emit', { arguments: ['old', 'Old', 'x'] });
            const stream = await connection.getChaincodeEvents(CHAINCODE);
            await contract.submit('Emit', { arguments: ['new', 'New', 'y'] });
            const [event] = await take(stream, 1);
            assert.equal(event?.eventName, 'New');
            const other = await connection.getChaincodeEvents('other-chaincode');
            const pending = take(other, 1);
            other.close();
            assert.deepEqual(await pending, []);
        });
    });
});

void describe('embedded ledger: identities and endorsement policy', () => {
    const ORGS = ['Org1MSP', 'Org2MSP', 'Org3MSP'];

    void it('MAJORITY by default: endorsement by one of three organisations fails validation', async () => {
        await withNetwork({ organisations: ORGS }, async ({ contract }) => {
            assert.equal(utf8(await contract.submit('Increment', { arguments: ['maj'] })), '1');
            await assert.rejects(
                contract.submit('Put', { arguments: ['maj', 'sneaky'], endorsingOrganizations: ['Org1MSP'] }),
                (err: unknown) => err instanceof CommitError && err.code === 'ENDORSEMENT_POLICY_FAILURE',
            );
            assert.equal(utf8(await contract.evaluate('Get', { arguments: ['maj'] })), '1');
            await contract.submit('Put', { arguments: ['maj', 'ok'], endorsingOrganizations: ['Org3MSP', 'Org2MSP'] });
            assert.equal(utf8(await contract.evaluate('Get', { arguments: ['maj'] })), 'ok');
        });
    });

    void it('explicit OR / AND policies are honoured', async () => {
        await withNetwork(
            { organisations: ORGS, endorsementPolicy: "OR('Org2MSP.peer', 'Org3MSP.peer')" },
            async ({ contract }) => {
                await contract.submit('Put', { arguments: ['or', '1'] });
                await contract.submit('Put', { arguments: ['or', '2'], endorsingOrganizations: ['Org3MSP'] });
                await assert.rejects(
                    contract.submit('Put', { arguments: ['or', '3'], endorsingOrganizations: ['Org1MSP'] }),
                    (err: unknown) => err instanceof CommitError && err.code === 'ENDORSEMENT_POLICY_FAILURE',
                );
                assert.equal(utf8(await contract.evaluate('Get', { arguments: ['or'] })), '2');
            },
        );
        await withNetwork(
            { organisations: ORGS, endorsementPolicy: "AND('Org1MSP.peer', 'Org3MSP.peer')" },
            async ({ contract }) => {
                await contract.submit('Put', { arguments: ['and', '1'] });
                await assert.rejects(
                    contract.submit('Put', { arguments: ['and', '2'], endorsingOrganizations: ['Org1MSP', 'Org2MSP'] }),
                    (err: unknown) => err instanceof CommitError && err.code === 'ENDORSEMENT_POLICY_FAILURE',
                );
            },
        );
    });

    void it('endorsers that disagree (non-deterministic chaincode) raise EndorsementPolicyError', async () => {
        await withNetwork({ organisations: ORGS }, async ({ contract, ledger }) => {
            const height = ledger.height;
            await assert.rejects(contract.submit('NonDeterministic', { arguments: ['nd'] }), EndorsementPolicyError);
            assert.equal(ledger.height, height);
        });
    });

    void it('identities from each MSP reach ctx.clientIdentity; foreign or badly signed proposals are refused', async () => {
        await withNetwork({ organisations: ORGS }, async ({ ledger, dir }) => {
            const org2User = await ledger.enrol('Org2MSP', 'operator', { attributes: { role: 'fog' } });
            const connection = await ledger.connect({ identity: org2User.identity, signer: org2User.signer });
            const who = JSON.parse(utf8(await connection.getContract(CHAINCODE).evaluate('WhoAmI'))) as Record<
                string,
                string
            >;
            assert.equal(who.mspId, 'Org2MSP');
            assert.equal(who.role, 'fog');
            assert.equal(who.id, 'x509::/C=US/O=Org2MSP/OU=client/CN=operator::/C=US/O=Org2MSP/CN=ca.org2msp');

            // Claiming another MSP with this certificate.
            const impostor = await ledger.connect({
                identity: { mspId: 'Org1MSP', credentials: org2User.identity.credentials },
                signer: org2User.signer,
            });
            await assert.rejects(
                impostor.getContract(CHAINCODE).submit('Put', { arguments: ['i', 'x'] }),
                EndorseError,
            );
            // A certificate from a CA outside the channel.
            const outsider = await EmbeddedLedger.open({
                dataDir: join(dir, 'outsider'),
                organisations: ['Org1MSP'],
                chaincodes: [],
                sync: false,
            });
            const stranger = await outsider.enrol('Org1MSP', 'stranger');
            await outsider.close();
            const foreign = await ledger.connect({ identity: stranger.identity, signer: stranger.signer });
            await assert.rejects(
                foreign.getContract(CHAINCODE).evaluate('WhoAmI'),
                (err: unknown) => err instanceof EndorseError && /creator/.test(err.chaincodeMessage),
            );
            // Right certificate, wrong key.
            const wrongKey = await ledger.connect({
                identity: org2User.identity,
                signer: newPrivateKeySigner(stranger.privateKeyPem),
            });
            await assert.rejects(
                wrongKey.getContract(CHAINCODE).evaluate('WhoAmI'),
                (err: unknown) => err instanceof EndorseError && /signature/.test(err.chaincodeMessage),
            );
            // Unknown chaincode.
            await assert.rejects(connection.getContract('missing').evaluate('X'), EndorseError);
            connection.close();
            await assert.rejects(connection.getContract(CHAINCODE).evaluate('WhoAmI'), /closed/);
        });
    });
});
