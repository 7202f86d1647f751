import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EmbeddedBroker } from '@m2m-fabric/services';
import { MqttConnection } from '@m2m-fabric/common';
import { TopicLayout, type Principal } from '@m2m-fabric/common';
import { RequestClient } from '@m2m-fabric/common';
import {
    decodeEnvelope,
    decodeErrorBody,
    encodeEnvelope,
    encodeErrorBody,
    EnvelopeKind,
    errorCodeOf,
    peekCorrelationId,
    ServiceError,
} from '@m2m-fabric/common';
import { DecodeError, ProtocolError, ErrorCode, formatErrorMessage } from '@m2m-fabric/protocol';
import { ConnectionError, DeadlineError } from '@m2m-fabric/sdk';
import { MosquittoBroker, mosquittoSkipReason } from './helpers/mosquitto.js';

const layout = new TopicLayout('m2m/v1');
const FOG = 'fog-1';
const SERVICE_PASSWORD = 'fog-1-test-password';

async function startAedes(): Promise<EmbeddedBroker> {
    return EmbeddedBroker.start({
        layout,
        auth: {
            allowAnonymous: true,
            verifyService: async (username, password, clientId): Promise<Principal | undefined> =>
                username === FOG && password?.toString() === SERVICE_PASSWORD
                    ? { kind: 'fog', fogId: FOG, clientId }
                    : undefined,
        },
    });
}

void test('envelope: round trip, strict decoding, typed error bodies', () => {
    const env = { kind: EnvelopeKind.M1, correlationId: new Uint8Array(16).fill(7), body: new Uint8Array([1, 2, 3]) };
    const bytes = encodeEnvelope(env);
    assert.deepEqual(decodeEnvelope(bytes), env);
    assert.throws(() => decodeEnvelope(bytes.slice(0, bytes.length - 1)), DecodeError);
    assert.throws(() => decodeEnvelope(new Uint8Array([...bytes, 0])), DecodeError);
    const badVersion = bytes.slice();
    badVersion[0] = 9;
    assert.throws(() => decodeEnvelope(badVersion), /unknownVersion/);
    const badKind = bytes.slice();
    badKind[1] = 0x55;
    assert.throws(() => decodeEnvelope(badKind), /unknownType/);
    assert.deepEqual(peekCorrelationId(bytes), env.correlationId);
    assert.equal(peekCorrelationId(new Uint8Array(3)), undefined);
    const err = decodeErrorBody(encodeErrorBody(ErrorCode.FailedChallenge, 'bad proof'));
    assert.equal(err.code, 'failedChallenge');
    assert.throws(() => decodeErrorBody(encodeErrorBody('nope' as never, 'x')), DecodeError);
    assert.equal(errorCodeOf(new ProtocolError(ErrorCode.ReplayDetected, 'r')), 'replayDetected');
    assert.equal(
        errorCodeOf(new Error(`chaincode said ${formatErrorMessage(ErrorCode.UnknownFog, 'x')}`)),
        'unknownFog',
    );
    assert.equal(errorCodeOf(new ServiceError('rateLimited', 'slow down')), 'rateLimited');
    assert.equal(errorCodeOf(new Error('boom')), 'internal');
    // A peer that was down or too slow (the SDK's ConnectionError / DeadlineError) is retryable
    // `ledgerUnavailable`, not `internal` (the fault matrix's peer cells answered devices `internal`).
    assert.equal(
        errorCodeOf(new ConnectionError('evaluate failed: UNAVAILABLE: 14 UNAVAILABLE: read ECONNRESET')),
        'ledgerUnavailable',
    );
    assert.equal(
        errorCodeOf(new DeadlineError({ stage: 'commit', deadlineMs: 30_000, transactionId: 'tx1' })),
        'ledgerUnavailable',
    );
});

interface BrokerUnderTest {
    url: string;
    close(): Promise<void>;
}

async function exerciseBroker(t: import('node:test').TestContext, broker: BrokerUnderTest): Promise<void> {
    const fog = await MqttConnection.connect(broker.url, {
        clientId: 'fog-1-svc',
        username: FOG,
        password: SERVICE_PASSWORD,
        persistentSession: true,
    });
    const device = await MqttConnection.connect(broker.url, { clientId: 'dev-0001aaaa' });
    const other = await MqttConnection.connect(broker.url, { clientId: 'dev-0002bbbb' });
    t.after(async () => {
        await Promise.all([fog.close(), device.close(), other.close()]);
    });
    // The fog echoes every request on the requester's reply topic; errors for kind Hello.
    await fog.subscribe(layout.fogRequestFilter(FOG), (topic, payload) => {
        const parsed = layout.parseFogRequest(topic);
        if (parsed === undefined) return;
        const env = decodeEnvelope(payload);
        const reply =
            env.kind === EnvelopeKind.Hello
                ? {
                      kind: EnvelopeKind.Error,
                      correlationId: env.correlationId,
                      body: encodeErrorBody('busy', 'try later'),
                  }
                : { kind: EnvelopeKind.M2, correlationId: env.correlationId, body: env.body };
        void fog.publish(layout.fogReply(FOG, parsed.clientId), encodeEnvelope(reply));
    });
    const rc = await RequestClient.create(
        device,
        layout.fogRequest(FOG, 'dev-0001aaaa'),
        layout.fogReply(FOG, 'dev-0001aaaa'),
    );
    const replies = await Promise.all(
        Array.from({ length: 20 }, (_, i) => rc.request(EnvelopeKind.M1, new Uint8Array([i]), 5_000)),
    );
    replies.forEach((r, i) => assert.deepEqual([...r.body], [i]));
    await assert.rejects(rc.request(EnvelopeKind.Hello, new Uint8Array(), 5_000), (err: unknown) => {
        assert.ok(err instanceof ServiceError);
        assert.equal(err.code, 'busy');
        return true;
    });
    // Another device may not read this device's replies (wildcards or the exact topic): aedes refuses
    // the subscription; mosquitto (3.1.1) grants it but never delivers, so check delivery.
    let leaked = 0;
    for (const filter of [layout.fogReply(FOG, 'dev-0001aaaa'), 'm2m/v1/fog/fog-1/rep/+', 'm2m/v1/#']) {
        await other
            .subscribe(filter, () => leaked++)
            .catch((err: unknown) => {
                assert.ok(err instanceof ServiceError && /refused/.test(err.message));
            });
    }
    await rc.request(EnvelopeKind.M1, new Uint8Array([42]), 5_000);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(leaked, 0, 'another device read a reply that was not its own');
    // A request with no listener times out with a typed error.
    const lonely = await RequestClient.create(
        other,
        layout.fogRequest('fog-none', 'dev-0002bbbb'),
        layout.fogReply('fog-none', 'dev-0002bbbb'),
    );
    await assert.rejects(lonely.request(EnvelopeKind.M1, new Uint8Array(), 200), /timeout/);
    // A service account with a wrong password is refused.
    await assert.rejects(
        MqttConnection.connect(broker.url, {
            clientId: 'intruder',
            username: FOG,
            password: 'wrong',
            reconnectPeriodMs: 0,
        }),
        (err: unknown) => err instanceof ServiceError && err.code === 'unavailable',
    );
}

void test('MQTT on the embedded broker: correlation, typed errors, ACL, auth', async (t) => {
    const broker = await startAedes();
    t.after(() => broker.close());
    await exerciseBroker(t, broker);
    // A device publishing to another device's request topic is cut off by aedes.
    const rogue = await MqttConnection.connect(broker.url, { clientId: 'dev-rogue01', reconnectPeriodMs: 0 });
    t.after(() => rogue.close());
    await rogue.publish(layout.fogRequest(FOG, 'dev-0001aaaa'), new Uint8Array([1]), false, 500).catch(() => undefined);
    assert.ok(broker.stats.refusedPublishes >= 1);
    assert.ok(broker.stats.refusedSubscriptions >= 3);
    // Client ids that would break the topic layout are refused at CONNECT.
    await assert.rejects(MqttConnection.connect(broker.url, { clientId: 'a+b', reconnectPeriodMs: 0 }));
});

void test('MQTT on mosquitto: same behaviour with the generated ACL file', { skip: mosquittoSkipReason }, async (t) => {
    const broker = await MosquittoBroker.start(layout, [FOG], [{ username: FOG, password: SERVICE_PASSWORD }]);
    t.after(() => broker.close());
    await exerciseBroker(t, { url: broker.url, close: () => broker.stop() });
});

void test('a request whose publish hangs (the broker died) fails with timeout, and nothing is left unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
        // A connection to a dead broker: subscribe worked earlier, publish never completes.
        const conn = {
            subscribe: () => Promise.resolve(),
            onConnect: () => undefined,
            publish: () => new Promise<void>(() => undefined),
        } as unknown as MqttConnection;
        const rc = await RequestClient.create(conn, 'req', 'rep');
        await assert.rejects(rc.request(EnvelopeKind.M1, new Uint8Array(4), 50), (err: unknown) => {
            assert.ok(err instanceof ServiceError);
            assert.equal(err.code, 'timeout');
            return true;
        });
        await new Promise((resolve) => setTimeout(resolve, 20));
        assert.deepEqual(unhandled, []);
    } finally {
        process.off('unhandledRejection', onUnhandled);
    }
});
