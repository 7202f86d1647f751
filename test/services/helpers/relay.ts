/**
 * A broker the device talks to, relaying each of its client's topics to the real fog broker of a
 * test bed (one upstream connection per device client id) and back: a fog, or anyone on the
 * device's network, in the attacker's (or the unreliable network's) seat. It records every
 * envelope; `tamper` may replace a reply to the device, or turn it into several envelopes sent in
 * order (a push before the reply, a duplicate).
 */
import { toHex } from '@m2m-fabric/protocol';
import { decodeEnvelope, encodeEnvelope, MqttConnection, TopicLayout, type Envelope } from '@m2m-fabric/common';
import { EmbeddedBroker } from '@m2m-fabric/services';
import type { TestBed } from './setup.js';

export interface Recorded {
    direction: 'up' | 'down';
    env: Envelope;
}

export interface Relay {
    url: string;
    log: Recorded[];
    close(): Promise<void>;
}

const layout = new TopicLayout();

export async function startRelay(
    bed: TestBed,
    tamper: (reply: Envelope, request: Envelope | undefined) => Envelope | Envelope[] | undefined,
    /** A device request this returns true for is recorded but not passed on to the fog (a lost uplink). */
    dropUp: (request: Envelope) => boolean = () => false,
): Promise<Relay> {
    const broker = await EmbeddedBroker.start({
        layout,
        port: 0,
        auth: {
            allowAnonymous: true,
            verifyService: (username, _password, clientId) =>
                Promise.resolve(username === 'relay' ? { kind: 'fog', fogId: 'fog-1', clientId } : undefined),
        },
    });
    const log: Recorded[] = [];
    const requests = new Map<string, Envelope>();
    const upstream = new Map<string, Promise<MqttConnection>>();
    const down = await MqttConnection.connect(broker.url, { clientId: 'relay-down', username: 'relay', password: 'x' });
    const upFor = (clientId: string): Promise<MqttConnection> => {
        let c = upstream.get(clientId);
        if (c === undefined) {
            c = (async () => {
                const conn = await MqttConnection.connect(bed.net.fogs[0]!.deviceBrokerUrl, { clientId });
                // One envelope after the other: a tampered list reaches the device in its order.
                let sending = Promise.resolve();
                await conn.subscribe(layout.fogReply('fog-1', clientId), (_topic, payload) => {
                    const env = decodeEnvelope(new Uint8Array(payload));
                    log.push({ direction: 'down', env });
                    const out = tamper(env, requests.get(toHex(env.correlationId))) ?? env;
                    for (const e of Array.isArray(out) ? out : [out])
                        sending = sending.then(() =>
                            down.publish(layout.fogReply('fog-1', clientId), encodeEnvelope(e)),
                        );
                });
                return conn;
            })();
            upstream.set(clientId, c);
        }
        return c;
    };
    await down.subscribe(layout.fogRequestFilter('fog-1'), (topic, payload) => {
        const clientId = topic.split('/').at(-1)!;
        const bytes = new Uint8Array(payload);
        const env = decodeEnvelope(bytes);
        log.push({ direction: 'up', env });
        requests.set(toHex(env.correlationId), env);
        if (dropUp(env)) return;
        void upFor(clientId).then((c) => c.publish(layout.fogRequest('fog-1', clientId), bytes));
    });
    return {
        url: broker.url,
        log,
        async close() {
            await down.close();
            for (const c of upstream.values()) await (await c).close();
            await broker.close();
        },
    };
}
