/**
 * Issue 17 #6 and #7: the fog's limits hold under client-ID rotation and shed load before ledger
 * or signature work; M1's proof of possession is checked before the ledger, so an M1 with a
 * broken signature learns nothing about its certificate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createM1, decodePoint, decodeScalar, encodeM1, fromHex } from '@m2m-fabric/protocol';
import {
    encodeTagged,
    EnvelopeKind,
    MqttConnection,
    RequestClient,
    ServiceError,
    TopicLayout,
} from '@m2m-fabric/common';
import { readDeviceState } from '@m2m-fabric/device';
import { startTestBed, type TestBed } from './helpers/setup.js';

const layout = new TopicLayout();

async function client(bed: TestBed, id: string): Promise<{ rc: RequestClient; close: () => Promise<void> }> {
    const conn = await MqttConnection.connect(bed.net.fogs[0]!.deviceBrokerUrl, { clientId: id });
    const rc = await RequestClient.create(conn, layout.fogRequest('fog-1', id), layout.fogReply('fog-1', id));
    return { rc, close: () => conn.close() };
}

const codeOf = (p: Promise<unknown>): Promise<string> =>
    p.then(
        () => 'ok',
        (e: unknown) => (e instanceof ServiceError ? e.code : `untyped:${String(e)}`),
    );

void test('M1: the proof of possession is checked before the ledger; per-certificate limit holds under client-ID rotation', async (t) => {
    const bed = await startTestBed();
    t.after(() => bed.close());
    await bed.provision('lim-0001', 2);
    const state = (await readDeviceState(bed.statePath('lim-0001')))!;
    const suite = bed.net.suite;
    const secrets = { w: decodeScalar(suite, fromHex(state.w)), equipmentId: state.equipmentId };
    const Qf = decodePoint(suite, fromHex(state.fog.publicKey));
    const Qc = decodePoint(suite, fromHex(state.cspPublicKey));
    const { m1 } = await createM1(suite, secrets, 1n, 'fog-1', Qf, Qc);
    const good = encodeM1(m1);
    // The proof of possession is the last field: flip a bit in its last byte.
    const broken = good.slice();
    broken[broken.length - 1]! ^= 1;
    const first = await client(bed, 'dev-lim-first');
    t.after(() => first.close());
    assert.equal(await codeOf(first.rc.request(EnvelopeKind.M1, broken, 5_000)), 'invalidProofOfPossession');

    // Rotating client ids: each new id has a full per-client bucket, the certificate's does not.
    const codes: string[] = [];
    for (let i = 0; i < 8; i++) {
        const c = await client(bed, `dev-lim-${i}`);
        codes.push(await codeOf(c.rc.request(EnvelopeKind.M1, good, 5_000)));
        await c.close();
    }
    assert.deepEqual(codes.slice(0, 3), ['ok', 'ok', 'ok'], codes.join(','));
    assert.ok(
        codes.slice(3).every((c) => c === 'rateLimited'),
        codes.join(','),
    );
});

void test('session-channel frames are limited per route whatever the client id, before the fog signs them', async (t) => {
    const bed = await startTestBed({ fogOptions: { perRouteFrameLimit: { ratePerSecond: 1, burst: 5 } } });
    t.after(() => bed.close());
    const route = new Uint8Array(16).fill(9);
    const codes: string[] = [];
    for (let i = 0; i < 12; i++) {
        const c = await client(bed, `dev-frm-${i}`);
        codes.push(await codeOf(c.rc.request(EnvelopeKind.Frame, encodeTagged(route, new Uint8Array(40)), 5_000)));
        await c.close();
    }
    assert.ok(
        codes.slice(0, 5).every((c) => c === 'unknownSession'),
        codes.join(','),
    );
    assert.ok(
        codes.slice(5).every((c) => c === 'rateLimited'),
        codes.join(','),
    );
    assert.match(bed.net.fogs[0]!.metrics.render(), /m2m_fog_relayed_frames_total\{direction="up"\} 5\b/);
});
