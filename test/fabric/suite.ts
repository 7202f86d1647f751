/**
 * The `npm run test:fabric` integration suite: the m2m chaincode and the services driven through the
 * ledger client interface, on a real Fabric network (FABRIC_CONNECTION), on the embedded ledger behind
 * its Fabric Gateway endpoints through the same Fabric client code (--embedded), or in process
 * (--in-process); see targets.ts. Not part of `npm test` (its file name has no `.test.`); without a
 * target every test is reported as skipped with the reason.
 *
 * State on a real network outlives a run, so the tests work with deltas and fresh identifiers and
 * keep the CSP's key between runs in a 0600 state file (M2M_FABRIC_TEST_STATE).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
    DEFAULT_SUITE,
    ErrorCode,
    decodeCertificateObject,
    decodePoint,
    encodePoint,
    fromHex,
    hpkeRecipientFromScalar,
    randomScalar,
    toHex,
} from '@m2m-fabric/protocol';
import {
    CommitError,
    EndorseError,
    fileCheckpointer,
    submitCommittedWithRetry,
    submitVisibleTo,
    waitForCommit,
    type ChaincodeEvent,
    type ChaincodeEventStream,
    type LedgerConnection,
    type LedgerContract,
} from '@m2m-fabric/sdk';

import { ChaincodeClient } from '@m2m-fabric/sdk';
import { loadOrCreateServiceKey, type ServiceKey } from '@m2m-fabric/services';
import { CspBackend } from '@m2m-fabric/services';
import { DeviceAgent } from '@m2m-fabric/device';
import { FogGateway } from '@m2m-fabric/services';
import { ManufacturerClient } from '@m2m-fabric/services';
import { openObjectStore } from '@m2m-fabric/sdk';
import { silentLogger } from '@m2m-fabric/common';

// The protocol's off-chain actors (CSP, fogs, devices) shared with the chaincode tests.
import {
    buildRequest,
    cspFogAddress,
    issuanceTransient,
    issueObjects,
    newDevice,
    newFog,
    prepareActivation,
    prepareSynchronisation,
    type CspActor,
    type FogActor,
    type PreparedActivation,
} from '../chaincode/actors.js';
import {
    chooseTarget,
    MSP,
    openEmbeddedGatewayTarget,
    openFabricTarget,
    openInProcessTarget,
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

/**
 * The CSP-CA key of the network under test, kept across runs (a Fabric ledger keeps Q_c forever) in
 * the CSP backend's own key file format, so the protocol actors and the real CspBackend share it.
 */
async function cspKey(stateDir: string): Promise<ServiceKey> {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    return await loadOrCreateServiceKey(join(stateDir, 'keys', 'csp.json'), DEFAULT_SUITE);
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
    let csp: CspActor;
    const fogs = new Map<'foga' | 'fogb', FogActor>();
    const contract = (org: Org, name: string): LedgerContract => {
        const connection = connections.get(org);
        assert.ok(connection, `no connection for ${org}`);
        return connection.getContract(target.chaincodeName, name);
    };
    const call = (
        args: string[],
        transientData: Record<string, Uint8Array> = {},
    ): { arguments: string[]; transientData: Record<string, Uint8Array> } => ({ arguments: args, transientData });
    /** Alg. 1: the manufacturer requests n sessions of a device, the CSP-CA issues them. */
    const purchase = async (device: ReturnType<typeof newDevice>, n: number): Promise<Uint8Array[]> => {
        const request = buildRequest(DEFAULT_SUITE, device, 1n, n);
        const submitted = await contract('manufacturer', 'certificates').submitAsync(
            'requestSessions',
            call([String(n), request.cid], { request: request.bytes }),
        );
        const status = await submitted.getStatus();
        assert.equal(status.code, 'VALID');
        // The CSP acts on the manufacturer's commit on its own peer: only once that peer has it.
        await waitForCommit(connections.get('csp') as LedgerConnection, target.chaincodeName, status);
        const objects = issueObjects(csp, request);
        // Every fog organisation reads or activates the certificates next, on its own peer.
        await submitVisibleTo(
            contract('csp', 'certificates'),
            'issueCertificates',
            call([request.cid], issuanceTransient(request, objects)),
            { visibleOn: [...connections.values()] },
            { attempts: 1 },
        );
        return objects;
    };
    const idCertOf = (object: Uint8Array): string =>
        toHex(encodePoint(DEFAULT_SUITE, decodeCertificateObject(object).idCert));

    before(async () => {
        if (skip !== false) return;
        target =
            choice === 'embedded'
                ? await openEmbeddedGatewayTarget()
                : choice === 'in-process'
                  ? await openInProcessTarget()
                  : await openFabricTarget(process.env);
        stateDir =
            target.name !== 'fabric'
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
        const cspServiceKey = await cspKey(stateDir);
        const d = cspServiceKey.privateKey;
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
        csp = {
            suite: DEFAULT_SUITE,
            d,
            Q: qc,
            recipient: await hpkeRecipientFromScalar(DEFAULT_SUITE, d),
            publicKeyHex: toHex(encodePoint(DEFAULT_SUITE, qc)),
        };
        // One fresh fog per fog organisation (a Fabric ledger keeps earlier runs' fogs), approved by the CSP.
        const run = randomBytes(4).toString('hex');
        for (const org of ['foga', 'fogb'] as const) {
            const fog = await newFog(csp, `${org}-${run}`, MSP[org]);
            // The CSP's approval is endorsed on peers that must know the fog already.
            await submitVisibleTo(
                registry(org),
                'registerFog',
                { arguments: [fog.id, fog.publicKeyHex, fog.addressHex] },
                { visibleOn: [...connections.values()] },
                { attempts: 1 },
            );
            await registry('csp').submit('approveFog', { arguments: [fog.id, cspFogAddress(csp, fog)] });
            fogs.set(org, fog);
        }
        // Every peer must have the grant before the manufacturer's purchases are endorsed.
        const granted = await (
            await registry('csp').submitAsync('grantCredit', { arguments: [MSP.manufacturer, '20'] })
        ).getStatus();
        for (const connection of connections.values()) await waitForCommit(connection, target.chaincodeName, granted);
    });

    after(async () => {
        if (skip !== false) return;
        for (const connection of connections.values()) connection.close();
        await target?.close();
        if (target !== undefined && target.name !== 'fabric') await rm(stateDir, { recursive: true, force: true });
    });

    void it('full session flow: several devices, sessions through both fogs, two commits each', options, async () => {
        const credit = async (): Promise<number> =>
            Number(
                json(await registry('manufacturer').evaluate('getCredit', { arguments: [MSP.manufacturer] })).balance,
            );
        const before = await credit();
        const devices = ['welder', 'press', 'robot'].map((kind) =>
            newDevice(`${kind}-${randomBytes(4).toString('hex')}`, DEFAULT_SUITE),
        );
        for (const device of devices) {
            const objects = await purchase(device, 2);
            assert.equal(objects.length, 2);
            for (const [index, org] of (['foga', 'fogb'] as const).entries()) {
                const fog = fogs.get(org) as FogActor;
                const object = objects[index] as Uint8Array;
                const counter = BigInt(index + 1);
                const certificate = json(
                    await contract(org, 'certificates').evaluate('getCertificate', call([idCertOf(object)])),
                );
                assert.equal(certificate.status, 'unused');
                // Commit 1 (Alg. 2): the fog activates with the device's proof of possession, its DLEQ proof and M3.
                const prepared = await prepareActivation(csp, fog, device, counter, object);
                // The CSP's synchronisation is endorsed by its own peer and two others (MAJORITY),
                // any of which may not have the activation's block yet when the fog's submit
                // returns (invalidPrimaryHash, 1 of ~20 CI runs): wait for it on every peer.
                const activated = json(
                    (
                        await submitVisibleTo(
                            contract(org, 'sessions'),
                            'activateSession',
                            call([fog.id], { activation: prepared.bytes }),
                            { visibleOn: [...connections.values()] },
                            { attempts: 1 },
                        )
                    ).result,
                );
                const primaryHash = String(activated.primaryHash);
                // Commit 2 (Alg. 3): the CSP opens M4 and records secondaryHash and H(symKey_i).
                const sync = await prepareSynchronisation(csp, fog, prepared, fromHex(primaryHash));
                // Read back on the fog's peer, so wait for the synchronisation there.
                await submitVisibleTo(
                    contract('csp', 'sessions'),
                    'synchroniseSession',
                    call([], { synchronisation: sync.bytes }),
                    { visibleOn: [connections.get(org) as LedgerConnection] },
                    { attempts: 1 },
                );
                const session = json(await contract(org, 'sessions').evaluate('getSession', call([primaryHash])));
                assert.equal(session.status, 'synchronised');
                const used = json(
                    await contract('csp', 'certificates').evaluate('getCertificate', call([idCertOf(object)])),
                );
                assert.equal(used.status, 'used');
            }
        }
        assert.equal(await credit(), before - devices.length * 2, 'each issued certificate debits one credit');
    });

    void it(
        'full session flow through the services: manufacturer, CSP backend, both fog gateways, devices over MQTT',
        options,
        async () => {
            // The deployed services, each on its own organisation's ledger connection (on Fabric: its own
            // peer's Gateway), with embedded MQTT brokers and one embedded object store standing in for IPFS.
            const run = randomBytes(4).toString('hex');
            const dir = await mkdtemp(join(tmpdir(), 'm2m-fabric-services-'));
            const opened: LedgerConnection[] = [];
            const client = async (org: Org): Promise<ChaincodeClient> => {
                const connection = await target.connect(org);
                opened.push(connection);
                return new ChaincodeClient(connection, target.chaincodeName, 60_000);
            };
            const store = await openObjectStore({ backend: 'embedded', directory: join(dir, 'objects') });
            const cspBackend = new CspBackend({
                key: await cspKey(stateDir),
                ledger: await client('csp'),
                store,
                dataDir: join(dir, 'csp'),
                brokerPort: 0,
                logger: silentLogger,
            });
            const gateways: FogGateway[] = [];
            const agents: DeviceAgent[] = [];
            try {
                await cspBackend.start();
                for (const org of ['foga', 'fogb'] as const) {
                    // start() registers the fog and returns once the CSP backend has approved it.
                    const gateway = new FogGateway({
                        fogId: `${org}-svc-${run}`,
                        key: await loadOrCreateServiceKey(join(dir, 'keys', `${org}.json`), DEFAULT_SUITE),
                        ledger: await client(org),
                        store,
                        dataDir: join(dir, org),
                        cspBrokerUrl: cspBackend.brokerUrl,
                        deviceBrokerPort: 0,
                        logger: silentLogger,
                    });
                    await gateway.start();
                    gateways.push(gateway);
                }
                const manufacturer = new ManufacturerClient({
                    suite: DEFAULT_SUITE,
                    ledger: await client('manufacturer'),
                    store,
                    dataDir: join(dir, 'manufacturer'),
                });
                const devices = [0, 1, 2, 3].map((k) => ({
                    id: `svc-${run}-${k}`,
                    gateway: gateways[k % 2] as FogGateway,
                }));
                const credit = await cspBackend.grantCredit(MSP.manufacturer, devices.length);
                // The manufacturer buys on its own peer: once that peer shows the grant.
                await manufacturer.waitForCredit(credit);
                for (const device of devices) {
                    await manufacturer.registerEquipment({
                        equipmentId: device.id,
                        kind: 'sensor',
                        model: 'rpi-4b',
                        fogGroup: device.gateway.fogId,
                        privilegeLevel: 1,
                        serviceType: 'upload-download',
                        accessTime: 'always',
                    });
                    await manufacturer.buySessions(device.id, 1);
                    await manufacturer.provisionDevice(device.id, join(dir, 'devices', `${device.id}.json`), {
                        id: device.gateway.fogId,
                    });
                }
                // All devices at once: M1 → fog (commit 1) → M2/M3 → M4 → CSP (commit 2) → confirmation.
                await Promise.all(
                    devices.map(async (device) => {
                        const agent = await DeviceAgent.open({
                            statePath: join(dir, 'devices', `${device.id}.json`),
                            brokerUrl: device.gateway.deviceBrokerUrl,
                            sessionTimeoutMs: 60_000,
                        });
                        agents.push(agent);
                        await agent.connect();
                        const session = await agent.establishSession();
                        assert.equal(session.counter, 1n);
                        assert.equal(await agent.upload({ device: device.id, temperature: 21.5 }), 0n);
                    }),
                );
                for (const device of devices) {
                    const sessions = cspBackend.listSessions().filter((s) => s.equipmentId === device.id);
                    assert.equal(sessions.length, 1, device.id);
                    const [session] = sessions;
                    assert.equal(session?.state, 'established');
                    assert.equal(session?.fogId, device.gateway.fogId, "the session went through the device's fog");
                    const primaryHash = session?.primaryHash ?? '';
                    const onLedger = json(
                        await contract('csp', 'sessions').evaluate('getSession', call([primaryHash])),
                    );
                    assert.equal(onLedger.status, 'synchronised');
                    // The other fog organisation may not read a session it did not activate.
                    const otherFog = device.gateway === gateways[0] ? 'fogb' : 'foga';
                    await assertRefused(
                        contract(otherFog, 'sessions').evaluate('getSession', call([primaryHash])),
                        'unauthorisedMsp',
                        `${otherFog} reads another fog's session`,
                    );
                    const telemetry = cspBackend.readTelemetry({ equipmentId: device.id });
                    assert.equal(telemetry.length, 1);
                    assert.match(telemetry[0]?.payload ?? '', /"temperature":21.5/);
                }
                for (const gateway of gateways) {
                    assert.match(
                        gateway.metrics.render(),
                        /m2m_fog_sessions_total\{code="",outcome="established"\} 2/,
                        gateway.fogId,
                    );
                }
            } finally {
                await Promise.allSettled(agents.map((a) => a.close()));
                await Promise.allSettled(gateways.map((g) => g.close()));
                await cspBackend.close().catch(() => undefined);
                for (const connection of opened) connection.close();
                await store.close();
                await rm(dir, { recursive: true, force: true });
            }
        },
    );

    void it(
        '50 concurrent activations of one certificate through both fogs: exactly one session',
        options,
        async () => {
            const device = newDevice(`racer-${randomBytes(4).toString('hex')}`, DEFAULT_SUITE);
            const [object] = await purchase(device, 1);
            assert.ok(object !== undefined);
            const racers: { org: 'foga' | 'fogb'; prepared: PreparedActivation }[] = [];
            for (let k = 0; k < 50; k++) {
                const org = k % 2 === 0 ? 'foga' : 'fogb';
                racers.push({
                    org,
                    prepared: await prepareActivation(csp, fogs.get(org) as FogActor, device, 1n, object),
                });
            }
            const outcomes = await Promise.allSettled(
                racers.map(({ org, prepared }) =>
                    submitCommittedWithRetry(
                        contract(org, 'sessions'),
                        'activateSession',
                        call([(fogs.get(org) as FogActor).id], { activation: prepared.bytes }),
                        { attempts: 1 },
                    ),
                ),
            );
            let mvcc = 0;
            let refused = 0;
            for (const outcome of outcomes) {
                if (outcome.status === 'fulfilled') continue;
                const error: unknown = outcome.reason;
                if (error instanceof CommitError) {
                    assert.equal(error.code, 'MVCC_READ_CONFLICT');
                    mvcc++;
                } else {
                    assert.ok(error instanceof EndorseError, `unexpected ${String(error)}`);
                    assert.ok(
                        error.errorCode === ErrorCode.FailedDoubleSpendingCheck1 ||
                            error.errorCode === ErrorCode.FailedDoubleSpendingCheck2,
                        error.chaincodeMessage,
                    );
                    refused++;
                }
            }
            const committed = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
            assert.equal(committed.length, 1, 'exactly one activation commits');
            assert.equal(mvcc + refused, 49);
            // Read on the CSP's peer: once it has the winning fog's block.
            await waitForCommit(connections.get('csp') as LedgerConnection, target.chaincodeName, committed[0]!.status);
            const certificate = json(
                await contract('csp', 'certificates').evaluate('getCertificate', call([idCertOf(object)])),
            );
            assert.equal(certificate.status, 'used');
            console.log(
                `# race on ${target.name}: 1 committed, ${mvcc} MVCC_READ_CONFLICT, ${refused} refused at endorsement`,
            );
        },
    );

    void it('access: every organisation may do what its role allows and nothing else', options, async () => {
        const account = MSP.manufacturer;
        const balance = async (): Promise<number> =>
            Number(json(await registry('manufacturer').evaluate('getCredit', { arguments: [account] })).balance);
        const start = await balance();

        // CSP: grants credit; reads any account.
        // A grant adds lots (one per credit for small grants); the balance is their sum.
        const submitted = await registry('csp').submitAsync('grantCredit', { arguments: [account, '3'] });
        const granted = json(submitted.getResult());
        assert.equal(granted.amount, 3);
        assert.equal((granted.lots as unknown[]).length, 3);
        // The manufacturer reads its own peer: once that peer has the grant.
        const status = await submitted.getStatus();
        assert.equal(status.code, 'VALID');
        await waitForCommit(connections.get('manufacturer') as LedgerConnection, target.chaincodeName, status);
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
        const fog = json(
            (
                await submitVisibleTo(
                    registry('foga'),
                    'registerFog',
                    { arguments: [fogId, fogKey, address] },
                    { visibleOn: [connections.get('fogb') as LedgerConnection] },
                    { attempts: 1 },
                )
            ).result,
        );
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
        const open = async (): Promise<ChaincodeEventStream> =>
            // With a saved position the checkpoint wins; before the first event, startBlock applies.
            await (connections.get('manufacturer') as LedgerConnection).getChaincodeEvents(target.chaincodeName, {
                startBlock: marker.blockNumber + 1n,
                checkpoint: checkpointer,
            });
        const reconnectAll = async (): Promise<void> => {
            for (const org of ORGS) {
                connections.get(org)?.close();
                connections.set(org, await target.connect(org));
            }
        };
        let stream = await open();
        let events = stream[Symbol.asyncIterator]();
        /** Opens new clients and a new stream, which resumes from the file checkpoint. */
        const reopen = async (): Promise<void> => {
            stream.close();
            await reconnectAll();
            stream = await open();
            events = stream[Symbol.asyncIterator]();
        };
        const complete = (): boolean => expected.every((id) => received.some((e) => e.transactionId === id));
        /** Reads the one stream until every expected event arrived. */
        const readUntilComplete = async (): Promise<void> => {
            const deadline = Date.now() + 60_000;
            while (!complete()) {
                const remaining = deadline - Date.now();
                assert.ok(remaining > 0, 'events did not arrive within 60 s');
                let next: IteratorResult<ChaincodeEvent> | 'timeout';
                try {
                    next = await Promise.race([
                        events.next(),
                        new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), remaining).unref()),
                    ]);
                } catch (err) {
                    // A gRPC client (Fabric, embedded endpoints) must ride out the restart by itself.
                    if (target.clientsSurviveRestart) throw err;
                    await reopen();
                    continue;
                }
                if (next === 'timeout') continue;
                if (next.done === true) {
                    assert.ok(!target.clientsSurviveRestart, 'the event stream ended instead of resuming');
                    await reopen();
                    continue;
                }
                if (next.value.eventName === 'CreditGranted') received.push(next.value);
                await checkpointer.checkpointChaincodeEvent(next.value);
            }
        };

        for (let i = 0; i < 3; i++) expected.push((await grant()).transactionId);
        await readUntilComplete();
        await restartPeer('manufacturer');
        // An in-process ledger is a new instance after its restart: clients connect again and the new
        // stream resumes from the checkpoint. Over gRPC (Fabric, embedded endpoints) the clients and the
        // open stream are kept: the channel reconnects and the stream resumes by itself.
        if (!target.clientsSurviveRestart) await reopen();
        for (let i = 0; i < 3; i++) expected.push((await retryWhileRestarting(grant)).transactionId);
        await readUntilComplete();
        stream.close();

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
