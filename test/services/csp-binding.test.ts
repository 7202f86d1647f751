/**
 * Issue 17 #2: the CSP trusts nothing a fog could forge. Holding the fog's signing key, a re-sent
 * M4 under a fresh route ID is refused (routeMismatch) and stores nothing; a known route with a
 * garbage M4 is examined and refused, not answered `established`. With forward secrecy, a re-sent
 * M4 carrying the session's E_D gets the same E_C ‖ Confirm; one carrying another E_D (a retry that
 * drew a fresh x_D) is refused with ephemeralShareMismatch, never given a second key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
    computePrimaryHash,
    createM1,
    createM4,
    decodeFsConfirm,
    decodeM2,
    decodePoint,
    decodeScalar,
    encodeM1,
    encodeM3,
    encodeM4,
    encodePoint,
    fromHex,
    prepareActivation,
    processM2,
} from '@m2m-fabric/protocol';
import {
    decodeTagged,
    encodeTagged,
    EnvelopeKind,
    MqttConnection,
    newCorrelationId,
    RequestClient,
    routeIdFor,
    TopicLayout,
} from '@m2m-fabric/common';
import { readDeviceState } from '@m2m-fabric/device';
import {
    decodeDeviceBound,
    encodeForward,
    encodeLinkMessage,
    LinkKind,
    loadOrCreateServiceKey,
    loginToken,
    parseLinkMessage,
    type DeviceBoundBody,
} from '@m2m-fabric/services';
import { startTestBed } from './helpers/setup.js';
import { waitFor } from './helpers/process.js';

const layout = new TopicLayout();

void test('a fog cannot re-file a session under a fresh route ID, nor get a Confirm for a garbage M4', async (t) => {
    const bed = await startTestBed();
    t.after(() => bed.close());
    await bed.provision('bind-0001', 2);
    const state = (await readDeviceState(bed.statePath('bind-0001')))!;
    const suite = bed.net.suite;
    const secrets = { w: decodeScalar(suite, fromHex(state.w)), equipmentId: state.equipmentId };
    const Qf = decodePoint(suite, fromHex(state.fog.publicKey));
    const Qc = decodePoint(suite, fromHex(state.cspPublicKey));
    const conn = await MqttConnection.connect(bed.net.fogs[0]!.deviceBrokerUrl, { clientId: 'dev-bind0001' });
    t.after(() => conn.close());
    const rc = await RequestClient.create(
        conn,
        layout.fogRequest('fog-1', 'dev-bind0001'),
        layout.fogReply('fog-1', 'dev-bind0001'),
    );
    // One real session.
    const { m1, session } = await createM1(suite, secrets, 1n, 'fog-1', Qf, Qc);
    const m2 = decodeTagged((await rc.request(EnvelopeKind.M1, encodeM1(m1), 10_000)).body);
    const certificateObject = decodeM2(suite, m2.payload).certificateObject;
    const p = processM2(session, certificateObject, Qc, 'fog-1');
    const established = await rc.request(EnvelopeKind.M3, encodeTagged(m2.tag, encodeM3(p.m3)), 20_000);
    const firstShare = decodeFsConfirm(suite, decodeTagged(established.body).payload).cspShare;
    const routeId = routeIdFor(suite, session.idCert);
    assert.equal(bed.net.csp.listSessions().length, 1);

    // The attacker holds fog-1's key: it makes a valid M4 for the same session and forwards it.
    const fogKey = await loadOrCreateServiceKey(join(bed.dataDir, 'keys', 'fog-1.json'), suite);
    const activation = prepareActivation(suite, fogKey.privateKey, certificateObject);
    const m4 = encodeM4(
        await createM4(
            suite,
            'fog-1',
            fogKey.privateKey,
            m1,
            computePrimaryHash(suite, activation.P),
            Qc,
            session.idCert,
        ),
    );
    const probe = await MqttConnection.connect(bed.net.csp.brokerUrl, {
        clientId: 'fog-1-probe',
        username: 'fog-1',
        password: () => loginToken(fogKey, 'fog-1', 'fog-1-probe'),
    });
    t.after(() => probe.close());
    const results: DeviceBoundBody[] = [];
    await probe.subscribe(layout.cspOutbound('fog-1'), (_topic, payload) => {
        const msg = parseLinkMessage(new Uint8Array(payload)).message;
        if (msg.kind === LinkKind.Result) results.push(decodeDeviceBound(msg.body));
    });
    const forward = async (route: Uint8Array, m4Bytes: Uint8Array): Promise<DeviceBoundBody> => {
        const correlationId = newCorrelationId();
        const body = encodeForward({
            correlationId,
            clientId: 'dev-attacker',
            routeId: route,
            m4: m4Bytes,
            devicePublicKey: encodePoint(suite, p.m3.publicKey),
        });
        await probe.publish(layout.cspInbound('fog-1'), encodeLinkMessage(fogKey, LinkKind.Forward, 'fog-1', body));
        let r: DeviceBoundBody | undefined;
        await waitFor(
            () => (r = results.find((x) => x.correlationId.every((b, i) => b === correlationId[i]))) !== undefined,
            10_000,
        );
        return r!;
    };
    const fresh = await forward(new Uint8Array(16).fill(7), m4);
    assert.equal(fresh.outcome.ok, false);
    assert.equal(!fresh.outcome.ok && fresh.outcome.code, 'routeMismatch');
    assert.equal(bed.net.csp.listSessions().length, 1, 'no second record for the same primaryHash');

    const garbage = await forward(routeId, new Uint8Array(m4.length).fill(1));
    assert.equal(garbage.outcome.ok, false, 'a garbage M4 on a known route is examined and refused');

    // The genuine re-send (same route, a valid M4 of this session) is answered with the Confirm again.
    const again = await forward(routeId, m4);
    assert.equal(again.outcome.ok, true);
    assert.equal(bed.net.csp.listSessions().length, 1);
    // ... with the same E_C: the same K_i, so the device's x_D on disk opens it.
    assert.ok(again.outcome.ok && decodeFsConfirm(suite, again.outcome.frame).cspShare.equals(firstShare));
    const storedBefore = JSON.stringify(bed.net.csp.listSessions());

    // A valid M4 of the same certificate whose C2 carries another E_D (a fresh x_D): refused, typed,
    // and the stored session (K_i, E_C, E_D) is unchanged.
    const { m1: other } = await createM1(suite, secrets, 1n, 'fog-1', Qf, Qc);
    const m4Other = encodeM4(
        await createM4(
            suite,
            'fog-1',
            fogKey.privateKey,
            other,
            computePrimaryHash(suite, activation.P),
            Qc,
            session.idCert,
        ),
    );
    const mismatch = await forward(routeId, m4Other);
    assert.equal(mismatch.outcome.ok, false);
    assert.equal(!mismatch.outcome.ok && mismatch.outcome.code, 'ephemeralShareMismatch');
    assert.equal(JSON.stringify(bed.net.csp.listSessions()), storedBefore, 'no second key, nothing stored');
    // The session's own M4 is still answered with the first E_C.
    const still = await forward(routeId, m4);
    assert.ok(still.outcome.ok && decodeFsConfirm(suite, still.outcome.frame).cspShare.equals(firstShare));
});
