/**
 * One handshake's Confirm delivered twice. Under load the fog re-sends an M4 the CSP has not
 * answered within 5 s (activation-outbox.ts drain); the CSP answers both, and the fog, whose M3
 * waiter took the first answer, pushes the second to the device (csp-result.ts: nobody waits). The
 * push can reach the device before the answer to M3. Whichever delivery is accepted first
 * establishes the session; the other is a second copy of a message that did arrive and must not
 * fail the session. Before the fix the answer to M3 then failed the session although it was
 * established (`unknownSession`, or a RangeError when the push was still being opened, x_D erased
 * by it); before forward secrecy the same race was `replayDetected` (the push had consumed the
 * Confirm's sequence number on the device's channel).
 *
 * A relay broker between device and fog plays the fog: it sends the Confirm as a push first, then
 * the answer to M3 (and, for the other order, the answer first and the push after it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EnvelopeKind, newCorrelationId, type Envelope } from '@m2m-fabric/common';
import { DeviceAgent, readDeviceState } from '@m2m-fabric/device';
import { startTestBed } from './helpers/setup.js';
import { startRelay } from './helpers/relay.js';

void test("a session's Confirm pushed before the answer to M3, or after it, establishes the session once", async (t) => {
    const bed = await startTestBed();
    t.after(() => bed.close());
    let order: 'push-first' | 'reply-first' = 'push-first';
    let duplicated = 0;
    const relay = await startRelay(bed, (reply, request) => {
        if (request?.kind !== EnvelopeKind.M3 || reply.kind !== EnvelopeKind.Established) return undefined;
        duplicated++;
        // What csp-result.ts sends when no M3 request waits: a Frame envelope, new correlation ID.
        const push: Envelope = { kind: EnvelopeKind.Frame, correlationId: newCorrelationId(), body: reply.body };
        return order === 'push-first' ? [push, reply] : [reply, push];
    });
    t.after(() => relay.close());
    await bed.provision('twice-0001', 4);
    const agent = await DeviceAgent.open({
        statePath: bed.statePath('twice-0001'),
        brokerUrl: relay.url,
        sessionTimeoutMs: 15_000,
    });
    t.after(() => agent.close());
    await agent.connect();

    for (const o of ['push-first', 'reply-first', 'push-first'] as const) {
        order = o;
        const before = (await readDeviceState(bed.statePath('twice-0001')))!;
        const s = await agent.establishSession();
        assert.equal(s.counter.toString(), before.nextCounter, `${o}: the next certificate`);
        const after = (await readDeviceState(bed.statePath('twice-0001')))!;
        assert.equal(after.session?.established, true, `${o}: established`);
        assert.equal(after.session.routeId, s.routeId, `${o}: the state file holds this session`);
        assert.equal(after.pendingCounter, undefined, `${o}: nothing pending`);
        assert.equal(after.pendingEphemeral, undefined, `${o}: x_D left the file`);
        assert.equal(after.session.symKey, undefined, `${o}: symKey_i left the file`);
        // The channel works under the K_i both copies agreed on.
        await agent.upload({ order: o });
    }
    assert.equal(duplicated, 3, 'every Confirm was delivered twice');
    assert.equal(
        bed.net.csp.listSessions().filter((x) => x.state === 'established').length,
        3,
        'one CSP session per certificate',
    );
    assert.equal(bed.net.csp.readTelemetry().length, 3, 'each upload stored once');
});
