/**
 * The `npm run test:fabric` integration suite: the m2m chaincode driven through the ledger client
 * interface, on a real Fabric network (FABRIC_CONNECTION) or on the embedded ledger (--embedded).
 * Not part of `npm test` (its file name has no `.test.`); without a target every test is reported
 * as skipped with the reason.
 *
 * State on a real network outlives a run, so the tests work with deltas and fresh identifiers and
 * keep the CSP's key between runs in a 0600 state file (M2M_FABRIC_TEST_STATE).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
    DEFAULT_SUITE,
    bigIntToBytes,
    decodePoint,
    encodePoint,
    fromHex,
    randomScalar,
    toHex,
} from '@m2m-fabric/chaincode/protocol';
import {
    EndorseError,
    fileCheckpointer,
    type ChaincodeEvent,
    type ChaincodeEventStream,
    type LedgerConnection,
    type LedgerContract,
} from '@m2m-fabric/gateway/ledger/index';

import {
    chooseTarget,
    MSP,
    openEmbeddedTarget,
    openFabricTarget,
    ORGS,
    type Org,
    type SuiteTarget,
} from './targets.js';

const choice = chooseTarget(process.argv.slice(2), process.env);
const skip = typeof choice === 'object' ? choice.skip : false;
const utf8 = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const json = (bytes: Uint8Array): Record<string, unknown> => JSON.parse(utf8(bytes)) as Record<string, unknown>;

/** Asserts that `call` is refused by the chaincode with protocol error `code`. */
async function assertRefused(call: Promise<unknown>, code: string, what: string): Promise<void> {
    await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof EndorseError, `${what}: expected EndorseError, got ${String(err)}`);
        assert.equal(err.errorCode, code, `${what}: ${err.chaincodeMessage}`);
        return true;
    });
}

/** The CSP-CA key of the network under test, kept across runs (a Fabric ledger keeps Q_c forever). */
async function cspKey(stateDir: string): Promise<bigint> {
    const file = join(stateDir, 'csp-ca.key');
    if (existsSync(file)) return BigInt(`0x${(await readFile(file, 'utf8')).trim()}`);
    const d = randomScalar(DEFAULT_SUITE);
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    await writeFile(file, toHex(bigIntToBytes(d, DEFAULT_SUITE.scalarBytes)), { mode: 0o600 });
    return d;
}

// Each test carries the skip reason (not only the describe), so the runner counts them as skipped.
const options = { skip };

void describe(`m2m chaincode through the ledger client (${typeof choice === 'string' ? choice : 'no target'})`, () => {
    let target: SuiteTarget;
    const connections = new Map<Org, LedgerConnection>();
    const registry = (org: Org): LedgerContract => {
        const connection = connections.get(org);
        assert.ok(connection, `no connection for ${org}`);
        return connection.getContract(target.chaincodeName, 'registry');
    };
    let stateDir: string;

    before(async () => {
        if (skip !== false) return;
        target = choice === 'embedded' ? await openEmbeddedTarget() : await openFabricTarget(process.env);
        stateDir =
            target.name === 'embedded'
                ? join(tmpdir(), `m2m-suite-${randomBytes(6).toString('hex')}`)
                : (process.env.M2M_FABRIC_TEST_STATE ??
                  join(
                      tmpdir(),
                      `m2m-fabric-suite-${createHash('sha256')
                          .update(process.env.FABRIC_CONNECTION ?? '')
                          .digest('hex')
                          .slice(0, 12)}`,
                  ));
        for (const org of ORGS) connections.set(org, await target.connect(org));

        // The CSP registers Q_c once per network; later runs find it and reuse the stored d_c.
        const d = await cspKey(stateDir);
        const qc = DEFAULT_SUITE.Point.BASE.multiply(d);
        try {
            await registry('csp').submit('registerCsp', {
                arguments: [DEFAULT_SUITE.id, toHex(encodePoint(DEFAULT_SUITE, qc))],
            });
        } catch (err) {
            if (!(err instanceof EndorseError && err.errorCode === 'alreadyExists')) throw err;
        }
        const registered = json(await registry('csp').evaluate('getCsp'));
        assert.ok(
            decodePoint(DEFAULT_SUITE, fromHex(String(registered.caPublicKey))).equals(qc),
            `the network's Q_c is not the key in ${stateDir}: point M2M_FABRIC_TEST_STATE at the state of the run that registered it`,
        );
    });

    after(async () => {
        if (skip !== false) return;
        for (const connection of connections.values()) connection.close();
        await target?.close();
        if (target?.name === 'embedded') await rm(stateDir, { recursive: true, force: true });
    });

    void it('access: every organisation may do what its role allows and nothing else', options, async () => {
        const account = MSP.manufacturer;
        const balance = async (): Promise<number> =>
            Number(json(await registry('manufacturer').evaluate('getCredit', { arguments: [account] })).balance);
        const start = await balance();

        // CSP: grants credit; reads any account.
        const granted = json(await registry('csp').submit('grantCredit', { arguments: [account, '3'] }));
        assert.equal(granted.balance, start + 3);
        assert.equal(json(await registry('csp').evaluate('getCredit', { arguments: [account] })).balance, start + 3);
        // Manufacturer: reads its own account, cannot grant itself credit.
        assert.equal(await balance(), start + 3);
        await assertRefused(
            registry('manufacturer').submit('grantCredit', { arguments: [account, '1000'] }),
            'unauthorisedMsp',
            'manufacturer grants credit',
        );
        // Fogs: neither grant nor read manufacturer accounts.
        for (const fog of ['foga', 'fogb'] as const) {
            await assertRefused(
                registry(fog).submit('grantCredit', { arguments: [account, '1'] }),
                'unauthorisedMsp',
                `${fog} grants credit`,
            );
            await assertRefused(
                registry(fog).evaluate('getCredit', { arguments: [account] }),
                'unauthorisedMsp',
                `${fog} reads credit`,
            );
        }
        // Only fogs register fogs; only the CSP approves them.
        const fogId = `fog-${randomBytes(6).toString('hex')}`;
        const fogKey = toHex(
            encodePoint(DEFAULT_SUITE, DEFAULT_SUITE.Point.BASE.multiply(randomScalar(DEFAULT_SUITE))),
        );
        const address = toHex(randomBytes(DEFAULT_SUITE.hashBytes));
        for (const org of ['csp', 'manufacturer'] as const) {
            await assertRefused(
                registry(org).submit('registerFog', { arguments: [fogId, fogKey, address] }),
                'unauthorisedMsp',
                `${org} registers a fog`,
            );
        }
        const fog = json(await registry('foga').submit('registerFog', { arguments: [fogId, fogKey, address] }));
        assert.equal(fog.mspId, MSP.foga);
        assert.equal(fog.status, 'pending');
        for (const org of ['foga', 'fogb', 'manufacturer'] as const) {
            await assertRefused(
                registry(org).submit('approveFog', { arguments: [fogId, address] }),
                'unauthorisedMsp',
                `${org} approves a fog`,
            );
        }
        // Refusals changed nothing.
        assert.equal(await balance(), start + 3);
        assert.equal(json(await registry('fogb').evaluate('getFog', { arguments: [fogId] })).status, 'pending');
    });

    void it('chaincode events resume after a peer restart: every event once, in order', options, async (t) => {
        const restartPeer = target.restartPeer;
        if (restartPeer === undefined) {
            t.skip(
                'set M2M_FABRIC_RESTART_PEER_CMD (e.g. "docker restart peer0.{org}.m2m.example.com") to restart a peer',
            );
            return;
        }
        await mkdir(stateDir, { recursive: true, mode: 0o700 });
        const checkpointer = await fileCheckpointer(join(stateDir, `events-${randomBytes(4).toString('hex')}.json`));
        const account = MSP.manufacturer;
        const grant = async (): Promise<{ transactionId: string; blockNumber: bigint }> => {
            const submitted = await registry('csp').submitAsync('grantCredit', { arguments: [account, '1'] });
            const status = await submitted.getStatus();
            assert.equal(status.code, 'VALID');
            return { transactionId: submitted.transactionId, blockNumber: status.blockNumber };
        };
        // Listen from the block after a marker transaction, so no earlier event is expected.
        const marker = await grant();
        const expected: string[] = [];
        const received: ChaincodeEvent[] = [];
        let stream: ChaincodeEventStream | undefined;
        const open = async (): Promise<ChaincodeEventStream> =>
            // With a saved position the checkpoint wins; before the first event, startBlock applies.
            await (connections.get('manufacturer') as LedgerConnection).getChaincodeEvents(target.chaincodeName, {
                startBlock: marker.blockNumber + 1n,
                checkpoint: checkpointer,
            });
        const complete = (): boolean => expected.every((id) => received.some((e) => e.transactionId === id));
        /** Reads until every expected event arrived; if the ledger closed the stream, reconnects and resumes from the checkpoint. */
        const readUntilComplete = async (): Promise<void> => {
            const deadline = Date.now() + 60_000;
            while (!complete()) {
                assert.ok(Date.now() < deadline, 'events did not arrive within 60 s');
                stream ??= await open();
                try {
                    for await (const event of stream) {
                        if (event.eventName === 'CreditGranted') received.push(event);
                        await checkpointer.checkpointChaincodeEvent(event);
                        if (complete()) return;
                    }
                } catch {
                    // The stream's ledger went away (embedded restart); reconnect below.
                }
                stream.close();
                stream = undefined;
                await reconnectAll();
            }
        };
        const reconnectAll = async (): Promise<void> => {
            for (const org of ORGS) {
                connections.get(org)?.close();
                connections.set(org, await target.connect(org));
            }
        };

        stream = await open();
        for (let i = 0; i < 3; i++) expected.push((await grant()).transactionId);
        await readUntilComplete();
        await restartPeer('manufacturer');
        // The embedded ledger is a new process after its restart: clients connect again. A Fabric
        // client keeps its connections; the gRPC channel and the event stream reconnect by themselves.
        if (target.name === 'embedded') {
            stream.close();
            stream = undefined;
            await reconnectAll();
        }
        for (let i = 0; i < 3; i++) expected.push((await retryWhileRestarting(grant)).transactionId);
        await readUntilComplete();
        stream?.close();

        const ids = received.map((e) => e.transactionId);
        assert.deepEqual(ids, expected, 'every event once, in submission order');
        const blocks = received.map((e) => e.blockNumber);
        assert.deepEqual(
            blocks,
            [...blocks].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)),
            'events in block order',
        );
    });
});

/** A peer that is restarting refuses connections for a while: retry the call for up to 60 s. */
async function retryWhileRestarting<T>(call: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + 60_000;
    for (;;) {
        try {
            return await call();
        } catch (err) {
            if (Date.now() > deadline) throw err;
            await new Promise((resolve) => setTimeout(resolve, 1000));
        }
    }
}
