/**
 * Each peer's chaincode in its own thread (`chaincodeExecution: 'worker-per-peer'`): the same
 * fixture transactions give the same results as in process — reads, writes, ranges, composite
 * keys, history, transient data, events, identities, errors that write nothing, MVCC, refused
 * shim calls — endorsers in different threads that disagree are caught, and a chaincode that
 * cannot load or whose thread dies fails clearly.
 */
import './fixtures/quiet-shim.js';

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';

import { CommitError, EndorseError, EndorsementPolicyError } from '@m2m-fabric/sdk';
import { EmbeddedLedger, type ChaincodeExecution } from '@m2m-fabric/embedded-ledger';

import { CHAINCODE, FIXTURE_MODULE, openTestNetwork, utf8, type TestNetwork } from './fixtures/network.js';
import { contracts } from './fixtures/fixture-contract.js';

const ORGS = ['Org1MSP', 'Org2MSP', 'Org3MSP'];

async function withNetwork(execution: ChaincodeExecution, body: (net: TestNetwork) => Promise<void>): Promise<void> {
    const net = await openTestNetwork({ organisations: ORGS, chaincodeExecution: execution });
    try {
        await body(net);
    } finally {
        await net.dispose();
    }
}

/** A scripted run of the fixture; its observable outputs, which must not depend on where chaincode runs. */
async function script(net: TestNetwork): Promise<unknown[]> {
    const { contract } = net;
    const out: unknown[] = [];
    await contract.submit('Put', { arguments: ['a', '1'] });
    await contract.submit('PutMany', { arguments: ['r', '150'] });
    out.push(utf8(await contract.evaluate('Get', { arguments: ['a'] })));
    out.push(utf8(await contract.submit('Increment', { arguments: ['a'] })));
    out.push(utf8(await contract.submit('RangeThenWrite', { arguments: ['r', 'r~', '1000', 'seen'] })));
    out.push(utf8(await contract.evaluate('Get', { arguments: ['seen'] })));
    await contract.submit('PutComposite', { arguments: ['cert', 'fogA', 'x1', 'v1'] });
    await contract.submit('PutComposite', { arguments: ['cert', 'fogB', 'x2', 'v2'] });
    out.push(utf8(await contract.evaluate('QueryComposite', { arguments: ['cert', 'fogA', ''] })));
    await contract.submit('Delete', { arguments: ['a'] });
    const history = JSON.parse(utf8(await contract.evaluate('History', { arguments: ['a'] }))) as {
        value: string;
        isDelete: boolean;
    }[];
    out.push(history.map((h) => [h.value, h.isDelete]));
    out.push(
        utf8(
            await contract.submit('PutTransientHash', {
                arguments: ['t'],
                transientData: { secret: Buffer.from('s3cret') },
            }),
        ),
    );
    const who = JSON.parse(utf8(await contract.evaluate('WhoAmI'))) as Record<string, string>;
    out.push([who.mspId, who.role, who.channel]);
    return out;
}

void describe('embedded ledger: chaincode in a thread per peer', () => {
    void it('gives the same results as in process (state, ranges, composite keys, history, transient, identity)', async () => {
        let inProcess: unknown[] = [];
        let threaded: unknown[] = [];
        await withNetwork('in-process', async (net) => {
            inProcess = await script(net);
        });
        await withNetwork('worker-per-peer', async (net) => {
            threaded = await script(net);
        });
        assert.deepEqual(threaded, inProcess);
        // The range saw all 150 keys (two batches of 100 across the thread boundary).
        assert.equal(threaded[3], '150');
    });

    void it('a failing chaincode writes nothing and keeps its error code; events arrive after commit', async () => {
        await withNetwork('worker-per-peer', async ({ contract, ledger, connection }) => {
            await assert.rejects(
                contract.submit('Fail', { arguments: ['f', 'failedDoubleSpendingCheck-1'] }),
                (err: unknown) => err instanceof EndorseError && err.errorCode === 'failedDoubleSpendingCheck-1',
            );
            assert.equal(utf8(await contract.evaluate('Get', { arguments: ['f'] })), '');
            const height = ledger.height;
            const stream = await connection.getChaincodeEvents(CHAINCODE, { startBlock: height });
            await contract.submit('Emit', { arguments: ['e', 'Tick', 'payload-1'] });
            for await (const event of stream) {
                assert.equal(event.eventName, 'Tick');
                assert.equal(utf8(event.payload), 'payload-1');
                break;
            }
            stream.close();
        });
    });

    void it('refused shim calls fail inside the chaincode with the peer message; MVCC still decides conflicts', async () => {
        await withNetwork('worker-per-peer', async ({ contract }) => {
            await assert.rejects(contract.evaluate('RichQuery'), /rich \(CouchDB\) queries is not supported/);
            const results = await Promise.allSettled([
                contract.submit('Increment', { arguments: ['k'] }),
                contract.submit('Increment', { arguments: ['k'] }),
            ]);
            const failures = results.filter((r) => r.status === 'rejected');
            // Either both committed in different blocks or one lost a conflict in the same block.
            for (const f of failures) assert.ok(f.reason instanceof CommitError);
            assert.equal(utf8(await contract.evaluate('Get', { arguments: ['k'] })), String(2 - failures.length));
        });
    });

    void it('endorsers in different threads that disagree raise EndorsementPolicyError', async () => {
        await withNetwork('worker-per-peer', async ({ contract }) => {
            await assert.rejects(contract.submit('NonDeterministic', { arguments: ['nd'] }), EndorsementPolicyError);
            assert.equal(utf8(await contract.evaluate('Get', { arguments: ['nd'] })), '');
        });
    });

    void it('a chaincode thread that dies fails its transaction clearly and is relaunched for the next one', async () => {
        await withNetwork('worker-per-peer', async ({ contract }) => {
            await assert.rejects(
                contract.submit('Crash', { arguments: [] }),
                (err: unknown) => err instanceof EndorseError && /thread exited with code 3/.test(err.message),
            );
            await contract.submit('Put', { arguments: ['after', 'crash'] });
            assert.equal(utf8(await contract.evaluate('Get', { arguments: ['after'] })), 'crash');
        });
    });

    void it('refuses to open without a module, or with a module that exports no contracts', async () => {
        const dir = await mkdtemp(join(tmpdir(), 'ledger-worker-'));
        try {
            await assert.rejects(
                EmbeddedLedger.open({
                    dataDir: join(dir, 'a'),
                    organisations: ['Org1MSP'],
                    chaincodes: [{ name: CHAINCODE, contracts }],
                    chaincodeExecution: 'worker-per-peer',
                    sync: false,
                }),
                /needs a module to run in its own thread/,
            );
            const empty = join(dir, 'empty.mjs');
            await writeFile(empty, 'export const nothing = 1;\n');
            await assert.rejects(
                EmbeddedLedger.open({
                    dataDir: join(dir, 'b'),
                    organisations: ['Org1MSP'],
                    chaincodes: [{ name: CHAINCODE, contracts, module: pathToFileURL(empty).href }],
                    chaincodeExecution: 'worker-per-peer',
                    sync: false,
                }),
                /exports no contracts array/,
            );
            // The fixture module itself loads (sanity check of the specifier the other tests use).
            const ledger = await EmbeddedLedger.open({
                dataDir: join(dir, 'c'),
                organisations: ['Org1MSP'],
                chaincodes: [{ name: CHAINCODE, contracts, module: FIXTURE_MODULE }],
                chaincodeExecution: 'worker-per-peer',
                sync: false,
            });
            await ledger.close();
        } finally {
            await rm(dir, { recursive: true, force: true });
        }
    });
});
