import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEnvelope, encodeEnvelope, EnvelopeKind, ServiceError } from '@m2m-fabric/common';
import { EmbeddedBroker } from '@m2m-fabric/services';
import { MqttConnection } from '@m2m-fabric/common';
import { DeviceAgent } from '@m2m-fabric/device';
import { ByteWriter, encodePoint, randomScalar, toHex } from '@m2m-fabric/protocol';
import { TopicLayout } from '@m2m-fabric/common';
import { readDeviceState } from '@m2m-fabric/device';
import { stat } from 'node:fs/promises';
import { MosquittoBroker, mosquittoSkipReason } from './helpers/mosquitto.js';
import { startTestBed, type TestBed } from './helpers/setup.js';

async function fullRun(bed: TestBed, id: string): Promise<void> {
    await bed.provision(id, 2);
    const agent = await bed.agent(id);
    const instructions: string[] = [];
    agent.onInstruction((p) => instructions.push(new TextDecoder().decode(p)));
    await agent.connect();
    const s1 = await agent.establishSession();
    assert.equal(s1.counter, 1n);
    const ackSeq = await agent.upload({ temperature: 21.5 });
    assert.equal(ackSeq, 0n);
    const telemetry = bed.net.csp.readTelemetry({ equipmentId: id });
    assert.equal(telemetry.length, 1);
    assert.match(telemetry[0]!.payload, /"temperature":21.5/);
    assert.equal(
        await bed.net.csp.sendInstruction({ equipmentId: id }, new TextEncoder().encode('{"setpoint":20}')),
        'sent',
    );
    for (let i = 0; i < 50 && instructions.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(instructions, ['{"setpoint":20}']);
    // The second session uses the next counter and a new key; the ledger records both.
    const s2 = await agent.establishSession();
    assert.equal(s2.counter, 2n);
    assert.notEqual(s2.routeId, s1.routeId);
    await agent.upload({ temperature: 22 });
    await assert.rejects(
        agent.establishSession(),
        (err: unknown) => err instanceof ServiceError && err.code === 'noSessionsLeft',
    );
    const state = await readDeviceState(bed.statePath(id));
    assert.equal(state?.nextCounter, '3');
    assert.equal((await stat(bed.statePath(id))).mode & 0o777, 0o600);
    const sessions = bed.net.csp.listSessions().filter((s) => s.equipmentId === id);
    assert.equal(sessions.length, 2);
    for (const s of sessions) {
        assert.equal(s.state, 'established');
        const onLedger = await bed.net.csp['options'].ledger.getSession(s.primaryHash);
        assert.equal(onLedger.status, 'synchronised');
    }
}

void test('end to end on the embedded broker: purchase, two sessions, telemetry and instructions', async (t) => {
    const bed = await startTestBed();
    t.after(() => bed.close());
    await fullRun(bed, 'e2e-0001');
    // Fog and CSP metrics saw the sessions.
    assert.match(bed.net.fogs[0]!.metrics.render(), /m2m_fog_sessions_total\{code="",outcome="established"\} 2/);
    assert.match(bed.net.csp.metrics.render(), /m2m_csp_sessions_total\{code="",outcome="established"\} 2/);

    // The manufacturer's equipment records: list, replace (the new unit gets a fresh key), history,
    // decommission.
    const m = bed.net.manufacturer;
    assert.deepEqual(
        (await m.listEquipment()).map((e) => e.equipmentId),
        ['e2e-0001'],
    );
    const suite = bed.net.suite;
    const newKey = toHex(encodePoint(suite, suite.Point.BASE.multiply(randomScalar(suite))));
    await m.replaceEquipment('e2e-0001', {
        equipmentId: 'e2e-0002',
        kind: 'sensor',
        model: 'rpi-5',
        fogGroup: 'fog-1',
        privilegeLevel: 1,
        serviceType: 'upload-download',
        accessTime: 'always',
        publicKey: newKey,
    });
    await m.decommission('e2e-0002');
    const byId = new Map((await m.listEquipment()).map((e) => [e.equipmentId, e.status]));
    assert.equal(byId.get('e2e-0001'), 'replaced');
    assert.equal(byId.get('e2e-0002'), 'decommissioned');
    assert.match(JSON.stringify(await m.history('e2e-0001')), /replaced/);
});

void test('end to end on mosquitto (external broker, generated ACL)', { skip: mosquittoSkipReason }, async (t) => {
    const passwords = { 'fog-1': 'fog-1-pw', csp: 'csp-pw' };
    const broker = await MosquittoBroker.start(
        new TopicLayout(),
        ['fog-1'],
        Object.entries(passwords).map(([username, password]) => ({ username, password })),
    );
    t.after(() => broker.close());
    const bed = await startTestBed({ externalBroker: { url: broker.url, passwords } });
    t.after(() => bed.close());
    await fullRun(bed, 'mosq-0001');
});

void test(
    'mosquitto restart mid-session: the session ends established or with a clear error, the next succeeds',
    { skip: mosquittoSkipReason },
    async (t) => {
        const passwords = { 'fog-1': 'fog-1-pw', csp: 'csp-pw' };
        const broker = await MosquittoBroker.start(
            new TopicLayout(),
            ['fog-1'],
            Object.entries(passwords).map(([username, password]) => ({ username, password })),
        );
        t.after(() => broker.close());
        const bed = await startTestBed({ externalBroker: { url: broker.url, passwords } });
        t.after(() => bed.close());
        await bed.provision('brk-0001', 3);
        const agent = await bed.agent('brk-0001');
        await agent.connect();
        const during = agent.establishSession().then(
            (s) => `established:${s.counter}`,
            (err: unknown) => (err instanceof ServiceError ? `failed:${err.code}` : `untyped:${String(err)}`),
        );
        await new Promise((r) => setTimeout(r, 30));
        await broker.restart();
        const outcome = await during;
        assert.match(outcome, /^(established:1|failed:[A-Za-z-]+)$/);
        // Services and device reconnect and resubscribe on their own; the next counter works.
        let next;
        for (let i = 0; i < 20 && next === undefined; i++) {
            next = await agent.establishSession().catch(async (err: unknown) => {
                assert.ok(err instanceof ServiceError);
                await new Promise((r) => setTimeout(r, 250));
                return undefined;
            });
        }
        assert.ok(next !== undefined, 'a session succeeded after the broker restart');
        await agent.upload({ after: 'broker restart' });
    },
);

void test('a device refuses a fog whose key is not the registered one', async (t) => {
    const bed = await startTestBed();
    t.after(() => bed.close());
    await bed.provision('wrongfog-1', 1, 0);
    // An impostor broker + "fog-1" that announces a key other than the one on the ledger.
    const layout = new TopicLayout();
    const impostor = await EmbeddedBroker.start({
        layout,
        auth: {
            allowAnonymous: true,
            verifyService: async (u, _p, clientId) =>
                u === 'fog-1' ? { kind: 'fog', fogId: 'fog-1', clientId } : undefined,
        },
    });
    t.after(() => impostor.close());
    const fake = await MqttConnection.connect(impostor.url, { clientId: 'fake-fog', username: 'fog-1', password: 'x' });
    t.after(() => fake.close());
    const suite = bed.net.suite;
    const otherKey = encodePoint(suite, suite.Point.BASE.multiply(randomScalar(suite)));
    await fake.subscribe(layout.fogRequestFilter('fog-1'), (topic, payload) => {
        const env = decodeEnvelope(payload);
        const info = new ByteWriter().string('fog-1').u8(suite.tag).bytes16(otherKey).finish();
        const clientId = layout.parseFogRequest(topic)!.clientId;
        void fake.publish(
            layout.fogReply('fog-1', clientId),
            encodeEnvelope({ kind: EnvelopeKind.HelloReply, correlationId: env.correlationId, body: info }),
        );
    });
    const agent = await DeviceAgent.open({ statePath: bed.statePath('wrongfog-1'), brokerUrl: impostor.url });
    await assert.rejects(
        agent.connect(),
        (err: unknown) => err instanceof ServiceError && err.code === 'fogKeyMismatch',
    );
    const state = await readDeviceState(bed.statePath('wrongfog-1'));
    assert.equal(state?.nextCounter, '1', 'no counter spent');
});
