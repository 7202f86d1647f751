import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, webcrypto, hkdfSync } from 'node:crypto';
import { DecodeError, ErrorCode, FrameType, SessionChannel, REPLAY_WINDOW, type Suite } from '@m2m-fabric/protocol';
import { rejectsDecode, rejectsWithCode, SUITES } from './protocol-helpers.js';

const HEADER = 10;
const TAG = 16;

async function pair(
    suite: Suite,
    symKey = new Uint8Array(randomBytes(suite.hashBytes)),
    sessionId = new Uint8Array(randomBytes(16)),
): Promise<{ device: SessionChannel; csp: SessionChannel; symKey: Uint8Array; sessionId: Uint8Array }> {
    const device = await SessionChannel.create(suite, symKey, 'device', sessionId);
    const csp = await SessionChannel.create(suite, symKey, 'csp', sessionId);
    return { device, csp, symKey, sessionId };
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

for (const suite of SUITES) {
    void describe(`session channel ${suite.id}`, () => {
        void it('round trips in both directions with per-direction sequence numbers', async () => {
            const { device, csp } = await pair(suite);
            const confirm = await csp.seal(FrameType.Confirm, text('session established'));
            assert.deepEqual(await device.open(confirm), {
                type: FrameType.Confirm,
                seq: 0n,
                payload: text('session established'),
            });
            for (let k = 0; k < 3; k++) {
                const up = await device.seal(FrameType.Upload, text(`telemetry ${k}`));
                const opened = await csp.open(up);
                assert.equal(opened.type, FrameType.Upload);
                assert.equal(opened.seq, BigInt(k));
                assert.deepEqual(opened.payload, text(`telemetry ${k}`));
            }
            const down = await csp.seal(FrameType.Download, text('set rate 5'));
            assert.equal((await device.open(down)).seq, 1n);
            const ack = await device.seal(FrameType.Ack, new Uint8Array(0));
            assert.deepEqual((await csp.open(ack)).payload, new Uint8Array(0));
            assert.equal(down.length, HEADER + 'set rate 5'.length + TAG);
        });

        void it('each direction has its own key: a frame cannot be reflected back to its sender', async () => {
            const { device } = await pair(suite);
            const up = await device.seal(FrameType.Upload, text('x'));
            // The device never accepts an Upload (a device does not receive them) ...
            await rejectsDecode(() => device.open(up), 'unknownType');
            // ... and an Ack it sent does not authenticate under its receive key.
            const ack = await device.seal(FrameType.Ack, text('x'));
            await rejectsWithCode(() => device.open(ack), ErrorCode.DecryptionFailed);
        });

        void it('AES-256-GCM frames match WebCrypto under the same HKDF-derived key', async () => {
            const { device, csp, symKey, sessionId } = await pair(suite);
            const payload = text('cross-check payload');
            const frame = await device.seal(FrameType.Upload, payload);
            // Re-derive the device->csp key independently and decrypt with WebCrypto.
            const info = Buffer.concat([Buffer.from(`M2M-V1-SESSION-CHANNEL|${suite.id}|device-to-csp|`), sessionId]);
            const keyBytes = hkdfSync(suite.hashBytes === 32 ? 'sha256' : 'sha384', symKey, sessionId, info, 32);
            const key = await webcrypto.subtle.importKey('raw', keyBytes, 'AES-GCM', false, ['encrypt', 'decrypt']);
            const iv = new Uint8Array(12);
            iv.set(frame.subarray(2, HEADER), 4);
            const pt = await webcrypto.subtle.decrypt(
                { name: 'AES-GCM', iv, additionalData: frame.subarray(0, HEADER), tagLength: 128 },
                key,
                frame.subarray(HEADER),
            );
            assert.deepEqual(new Uint8Array(pt), payload);
            // And a frame built by WebCrypto (seq 1) opens in the channel.
            const header = new Uint8Array([1, FrameType.Upload, 0, 0, 0, 0, 0, 0, 0, 1]);
            const iv1 = new Uint8Array(12);
            iv1[11] = 1;
            const body = await webcrypto.subtle.encrypt(
                { name: 'AES-GCM', iv: iv1, additionalData: header, tagLength: 128 },
                key,
                text('from webcrypto'),
            );
            await csp.open(frame);
            const opened = await csp.open(new Uint8Array([...header, ...new Uint8Array(body)]));
            assert.deepEqual(opened.payload, text('from webcrypto'));
            assert.equal(opened.seq, 1n);
        });

        void it('any flipped byte (header, ciphertext, tag) is rejected and changes no state', async () => {
            const { device, csp } = await pair(suite);
            const frame = await device.seal(FrameType.Upload, text('sixteen byte msg'));
            const before = csp.exportState();
            for (let pos = 0; pos < frame.length; pos++) {
                const bad = frame.slice();
                bad[pos]! ^= 0x01;
                await assert.rejects(
                    () => csp.open(bad),
                    (e: unknown) => {
                        if (pos === 0) return e instanceof DecodeError && e.reason === 'unknownVersion';
                        if (pos === 1) return e instanceof DecodeError && e.reason === 'unknownType';
                        // seq bytes, ciphertext and tag: authentication fails.
                        return e instanceof Error && 'code' in e && e.code === ErrorCode.DecryptionFailed;
                    },
                    `flip at byte ${pos}`,
                );
                assert.deepEqual(csp.exportState(), before, `state unchanged after flip at ${pos}`);
            }
            // A truncated frame (shorter than header + tag) and one with bytes cut from the tag.
            await rejectsDecode(() => csp.open(frame.subarray(0, HEADER + TAG - 1)), 'truncated');
            await rejectsWithCode(() => csp.open(frame.subarray(0, frame.length - 1)), ErrorCode.DecryptionFailed);
            await rejectsWithCode(() => csp.open(new Uint8Array([...frame, 0])), ErrorCode.DecryptionFailed);
            assert.deepEqual(csp.exportState(), before);
            assert.deepEqual((await csp.open(frame)).payload, text('sixteen byte msg'));
        });

        void it('unknown version or type is a DecodeError before any decryption', async () => {
            const { csp } = await pair(suite);
            await rejectsDecode(() => csp.open(new Uint8Array([2, 2, ...new Uint8Array(8 + TAG)])), 'unknownVersion');
            await rejectsDecode(() => csp.open(new Uint8Array([1, 9, ...new Uint8Array(8 + TAG)])), 'unknownType');
            await rejectsDecode(() => csp.open(new Uint8Array([1, 0, ...new Uint8Array(8 + TAG)])), 'unknownType');
            // A device never sends Confirm/Download: the CSP refuses those types outright.
            await rejectsDecode(
                () => csp.open(new Uint8Array([1, FrameType.Download, ...new Uint8Array(8 + TAG)])),
                'unknownType',
            );
            await assert.rejects(() => csp.seal(FrameType.Upload, text('x')), TypeError);
        });

        void it('accepts reordering within the window once; rejects replays and too-old frames', async () => {
            const { device, csp } = await pair(suite);
            const frames: Uint8Array[] = [];
            for (let k = 0; k < REPLAY_WINDOW + 10; k++)
                frames.push(await device.seal(FrameType.Upload, text(`f${k}`)));
            const at = (k: number): Uint8Array => frames[k]!;
            // Deliver 5 first, then 3, 4, 0 (out of order, within the window).
            for (const k of [5, 3, 4, 0]) assert.equal((await csp.open(at(k))).seq, BigInt(k));
            for (const k of [5, 3, 0]) await rejectsWithCode(() => csp.open(at(k)), ErrorCode.ReplayDetected);
            assert.equal((await csp.open(at(1))).seq, 1n);
            // Jump ahead: frame 5 + 64 = 69 makes frames <= 5 too old.
            const far = 5 + REPLAY_WINDOW;
            await csp.open(at(far));
            const before = csp.exportState();
            await rejectsWithCode(() => csp.open(at(2)), ErrorCode.ReplayDetected);
            await rejectsWithCode(() => csp.open(at(5)), ErrorCode.ReplayDetected);
            assert.deepEqual(csp.exportState(), before);
            // Frame 6 is exactly at the window's far edge (age 63): still accepted once.
            assert.equal((await csp.open(at(6))).seq, 6n);
            await rejectsWithCode(() => csp.open(at(6)), ErrorCode.ReplayDetected);
            await rejectsWithCode(() => csp.open(at(far)), ErrorCode.ReplayDetected);
            assert.equal((await csp.open(at(far + 1))).seq, BigInt(far + 1));
        });

        void it('a forged frame with a fresh sequence number does not advance the window', async () => {
            const { device, csp } = await pair(suite);
            const f0 = await device.seal(FrameType.Upload, text('a'));
            const f1 = await device.seal(FrameType.Upload, text('b'));
            const forged = f1.slice();
            forged.set([0, 0, 0, 0, 0, 0, 1, 0], 2); // seq 256, tag no longer valid
            await rejectsWithCode(() => csp.open(forged), ErrorCode.DecryptionFailed);
            assert.equal(csp.exportState().recvHighest, '-1');
            await csp.open(f1);
            await csp.open(f0);
        });

        void it('wrong key or wrong session id: DecryptionFailed', async () => {
            const { device, symKey, sessionId } = await pair(suite);
            const frame = await device.seal(FrameType.Upload, text('x'));
            const wrongKey = symKey.slice();
            wrongKey[0]! ^= 1;
            const otherKey = await SessionChannel.create(suite, wrongKey, 'csp', sessionId);
            await rejectsWithCode(() => otherKey.open(frame), ErrorCode.DecryptionFailed);
            const otherSession = await SessionChannel.create(suite, symKey, 'csp', new Uint8Array([...sessionId, 0]));
            await rejectsWithCode(() => otherSession.open(frame), ErrorCode.DecryptionFailed);
        });

        void it('exportState/restore resumes sequence numbers and the replay window', async () => {
            const { device, csp, symKey, sessionId } = await pair(suite);
            const frames: Uint8Array[] = [];
            for (let k = 0; k < 4; k++) frames.push(await device.seal(FrameType.Upload, text(`f${k}`)));
            await csp.open(frames[0]!);
            await csp.open(frames[2]!);
            const state = JSON.parse(JSON.stringify(csp.exportState())) as ReturnType<SessionChannel['exportState']>;
            assert.deepEqual(state, { sendSeq: '0', recvHighest: '2', recvWindow: '0000000000000005' });
            const restored = await SessionChannel.restore(suite, symKey, 'csp', sessionId, state);
            await rejectsWithCode(() => restored.open(frames[0]!), ErrorCode.ReplayDetected);
            await rejectsWithCode(() => restored.open(frames[2]!), ErrorCode.ReplayDetected);
            assert.equal((await restored.open(frames[1]!)).seq, 1n);
            assert.equal((await restored.open(frames[3]!)).seq, 3n);

            // A restored sender continues its sequence; nonces are never reused.
            const deviceState = device.exportState();
            assert.equal(deviceState.sendSeq, '4');
            const device2 = await SessionChannel.restore(suite, symKey, 'device', sessionId, deviceState);
            assert.equal((await restored.open(await device2.seal(FrameType.Upload, text('after restart')))).seq, 4n);

            // The state never contains key material.
            assert.ok(!JSON.stringify(csp).includes(Buffer.from(symKey).toString('hex')));
        });

        void it('restore rejects malformed state', async () => {
            const symKey = new Uint8Array(randomBytes(suite.hashBytes));
            const sid = new Uint8Array([1]);
            const good = { sendSeq: '3', recvHighest: '2', recvWindow: '0000000000000007' };
            const bad = [
                { ...good, sendSeq: '-1' },
                { ...good, sendSeq: '01' },
                { ...good, sendSeq: 'abc' },
                { ...good, sendSeq: (1n << 65n).toString() },
                { ...good, recvHighest: '-2' },
                { ...good, recvWindow: '7' },
                { ...good, recvWindow: '000000000000000G' },
                { ...good, recvWindow: '0000000000000006' }, // bit 0 must be set
                { ...good, recvWindow: '000000000000000f' }, // bit 3 would be seq -1
                { ...good, recvHighest: '-1', recvWindow: '0000000000000001' },
            ];
            await SessionChannel.restore(suite, symKey, 'csp', sid, good);
            for (const state of bad) {
                await rejectsDecode(() => SessionChannel.restore(suite, symKey, 'csp', sid, state), 'invalidValue');
            }
        });

        void it('create validates its inputs', async () => {
            await assert.rejects(
                () => SessionChannel.create(suite, new Uint8Array(5), 'csp', new Uint8Array([1])),
                RangeError,
            );
            await assert.rejects(
                () => SessionChannel.create(suite, new Uint8Array(suite.hashBytes), 'csp', new Uint8Array(0)),
                RangeError,
            );
        });
    });
}
