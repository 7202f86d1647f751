/**
 * Communication records of the session channel (docs/records.md): with records on, every frame a
 * device sends carries its record signed with d_i, the CSP journals it (and its own record of each
 * frame it sends, signed with d_c) before answering, payloads land in the object store under the
 * records' CIDs, and the batches are anchored. A frame without its record, with a record of another
 * frame, or with a record signed by another key is refused with a typed error and journals nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
    ErrorCode,
    FrameType,
    PartyRole,
    RecordSigner,
    SessionChannel,
    encodeFrameRecord,
    encodeRecordedFrame,
    fromHex,
    openRecord,
    partyKeyId,
    partyKeyIdOf,
    randomScalar,
    recordPayloadAddress,
    formatContentAddress,
    decodePoint,
    RecordType,
} from '@m2m-fabric/protocol';
import {
    EnvelopeKind,
    MqttConnection,
    RequestClient,
    ServiceError,
    TopicLayout,
    encodeTagged,
    decodeTagged,
} from '@m2m-fabric/common';
import { readDeviceState } from '@m2m-fabric/device';

import { startTestBed } from '../services/helpers/setup.js';

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
    await assert.rejects(p, (err: unknown) => {
        assert.ok(err instanceof ServiceError, `expected a ServiceError, got ${String(err)}`);
        assert.equal(err.code, code);
        return true;
    });
}

void test('every session-channel frame is recorded, journaled before its answer and anchored', async (t) => {
    const bed = await startTestBed({ records: { batchSize: 1000, maxDelayMs: 200 } });
    t.after(() => bed.close());
    await bed.provision('rec-0001', 2);
    const agent = await bed.agent('rec-0001');
    await agent.connect();
    const got = new Promise<Uint8Array>((resolve) => agent.onInstruction(resolve));
    const session = await agent.establishSession();
    await agent.upload({ temperature: 21 });
    await bed.net.csp.sendInstruction({ routeId: session.routeId }, new TextEncoder().encode('{"setpoint":20}'));
    await got;
    const batcher = bed.net.recordBatcher!;
    const counts = bed.net.csp.records!;
    // At least: Confirm, Ack of the upload, Download by the CSP; the upload and the Ack of the Download by the device.
    for (let i = 0; i < 100 && counts.received < 2; i++) await new Promise((r) => setTimeout(r, 50));
    await batcher.drain();
    const total = batcher.durableSize;
    assert.equal(total, counts.received + counts.sent, 'every record journaled is one the CSP counted');
    assert.ok(counts.received >= 2 && counts.sent >= 3, `${counts.received} device and ${counts.sent} CSP records`);
    assert.equal(batcher.anchoredSize, total, 'every journaled record is anchored');

    const state = (await readDeviceState(bed.statePath('rec-0001')))!;
    const suite = bed.net.suite;
    const device = new RecordSigner(suite, BigInt(`0x${state.session!.recordKey!}`));
    const cspKeyId = partyKeyId(suite, decodePoint(suite, fromHex(state.cspPublicKey)));
    const types: Record<string, number[]> = { device: [], csp: [] };
    for (let leaf = 0; leaf < total; leaf++) {
        const record = openRecord(await batcher.readRecord(leaf));
        const fromDevice = record.sender.role === PartyRole.Device;
        // Device records name H(Q_i) of the session, never the equipment; CSP records name H(Q_c).
        assert.deepEqual(record.sender.keyId, fromDevice ? device.keyId : cspKeyId);
        assert.deepEqual(record.receiver.keyId, fromDevice ? cspKeyId : device.keyId);
        assert.deepEqual(partyKeyIdOf(suite, record.signerKey), record.sender.keyId);
        types[fromDevice ? 'device' : 'csp']!.push(record.type);
        // The stripped payload (the frame) is in the object store under the record's CID.
        const payload = await bed.net.store.get(cidOfDigest(record.digest));
        assert.equal(recordPayloadAddress(payload), cidOfDigest(record.digest));
        assert.equal(payload.length, record.size);
    }
    for (const type of [RecordType.Upload, RecordType.Acknowledgement]) assert.ok(types.device!.includes(type));
    for (const type of [RecordType.Download, RecordType.Acknowledgement]) assert.ok(types.csp!.includes(type));
    await agent.close();

    // Bad input on the same session, straight to the fog: nothing is journaled, each a typed error.
    const layout = new TopicLayout();
    const conn = await MqttConnection.connect(bed.net.fogs[0]!.deviceBrokerUrl, { clientId: 'rec-raw0001' });
    t.after(() => conn.close());
    const rc = await RequestClient.create(
        conn,
        layout.fogRequest('fog-1', 'rec-raw0001'),
        layout.fogReply('fog-1', 'rec-raw0001'),
    );
    const s = state.session!;
    const routeId = fromHex(s.routeId);
    const channel = await SessionChannel.restore(suite, fromHex(s.trafficKey!), 'device', routeId, s.channel!);
    const csp = { role: PartyRole.Csp, keyId: cspKeyId } as const;
    const upload = (): Promise<Uint8Array> => channel.seal(FrameType.Upload, new TextEncoder().encode('{"t":9}'));
    const before = batcher.durableSize;

    // A plain frame: records are required.
    await rejectsWith(
        rc.request(EnvelopeKind.Frame, encodeTagged(routeId, await upload()), 5_000),
        ErrorCode.RecordMismatch,
    );
    // A record of another frame.
    const other = await upload();
    const frame = await upload();
    const wrongFrame = encodeFrameRecord(device, PartyRole.Device, csp, other);
    await rejectsWith(
        rc.request(
            EnvelopeKind.RecordedFrame,
            encodeTagged(routeId, encodeRecordedFrame({ frame, record: wrongFrame })),
            5_000,
        ),
        ErrorCode.RecordMismatch,
    );
    // A record signed by another key (claiming to be some other device).
    const stranger = new RecordSigner(suite, randomScalar(suite));
    const frame2 = await upload();
    const forged = encodeFrameRecord(stranger, PartyRole.Device, csp, frame2);
    await rejectsWith(
        rc.request(
            EnvelopeKind.RecordedFrame,
            encodeTagged(routeId, encodeRecordedFrame({ frame: frame2, record: forged })),
            5_000,
        ),
        ErrorCode.RecordSenderMismatch,
    );
    // A record with its signature damaged.
    const frame3 = await upload();
    const damaged = encodeFrameRecord(device, PartyRole.Device, csp, frame3).slice();
    damaged[damaged.length - 1]! ^= 1;
    await assert.rejects(
        rc.request(
            EnvelopeKind.RecordedFrame,
            encodeTagged(routeId, encodeRecordedFrame({ frame: frame3, record: damaged })),
            5_000,
        ),
        (err: unknown) =>
            err instanceof ServiceError && [ErrorCode.RecordSignatureInvalid, 'malformedInput'].includes(err.code),
    );
    assert.equal(batcher.durableSize, before, 'nothing was journaled');
    assert.equal(counts.received, 2);

    // The correct record is accepted and journaled with the device's and the CSP's records.
    const good = await upload();
    const reply = await rc.request(
        EnvelopeKind.RecordedFrame,
        encodeTagged(
            routeId,
            encodeRecordedFrame({ frame: good, record: encodeFrameRecord(device, PartyRole.Device, csp, good) }),
        ),
        5_000,
    );
    const ack = await channel.open(decodeTagged(reply.body).payload);
    assert.equal(ack.type, FrameType.Ack);
    assert.equal(batcher.durableSize, before + 2, 'the upload record and the Ack record were durable before the Ack');
});

/** The CID a record names: CIDv1 raw sha2-256 of its digest (what recordPayloadAddress gives for the payload). */
function cidOfDigest(digest: Uint8Array): string {
    return formatContentAddress(new Uint8Array([0x01, 0x55, 0x12, 0x20, ...digest]));
}
