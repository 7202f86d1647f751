/**
 * The same bytes get the same content address from every backend, from the protocol module (the
 * chaincode's computation) and from an independent computation (node:crypto sha256 + a hand-written
 * RFC 4648 base32), on sizes around every boundary up to the 1 MiB limit.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { contentAddress, matchesContentAddress, MAX_OBJECT_BYTES } from '@m2m-fabric/protocol';
import { EmbeddedObjectStore, KuboObjectStore, ObjectTooLargeError } from '@m2m-fabric/sdk';
import { FakeIpfsDaemon } from './fake-ipfs-daemon.js';
import { OBJECT_SIZES, randomObject, tempDir } from './helpers.js';

/** 'b' + lower-case RFC 4648 base32 without padding of CIDv1 ‖ raw ‖ sha2-256 multihash. */
function independentCid(bytes: Uint8Array): string {
    const digest = createHash('sha256').update(bytes).digest();
    const cid = Buffer.concat([Buffer.from([0x01, 0x55, 0x12, 0x20]), digest]);
    const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
    let out = 'b';
    let buffer = 0;
    let bits = 0;
    for (const byte of cid) {
        buffer = (buffer << 8) | byte;
        bits += 8;
        while (bits >= 5) {
            out += alphabet[(buffer >> (bits - 5)) & 31];
            bits -= 5;
        }
        buffer &= (1 << bits) - 1;
    }
    if (bits > 0) out += alphabet[(buffer << (5 - bits)) & 31];
    return out;
}

void describe('content address agreement', () => {
    void it('the independent computation reproduces the known empty-block CID', () => {
        assert.equal(independentCid(new Uint8Array(0)), 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku');
    });

    void it('embedded store, Kubo backend, chaincode and an independent computation agree on every size', async (t) => {
        const embedded = await EmbeddedObjectStore.open(await tempDir(t));
        const daemon = await FakeIpfsDaemon.start();
        t.after(() => daemon.stop());
        const kubo = new KuboObjectStore({ apiUrl: daemon.url });
        const sizes = [...OBJECT_SIZES, ...Array.from({ length: 40 }, (_, i) => 150 + i * 17)];
        for (const size of sizes) {
            const bytes = randomObject(size);
            const expected = independentCid(bytes);
            assert.equal(contentAddress(bytes), expected, `chaincode, ${size} bytes`);
            assert.equal(await embedded.put(bytes), expected, `embedded, ${size} bytes`);
            assert.equal(await kubo.put(bytes), expected, `kubo, ${size} bytes`);
            assert.ok(matchesContentAddress(expected, await embedded.get(expected)));
            assert.ok(matchesContentAddress(expected, await kubo.get(expected)));
        }
        // The batch path computes the same addresses.
        const batch = sizes.slice(0, 20).map((n) => randomObject(n));
        assert.deepEqual(await embedded.putMany(batch), batch.map(independentCid));
        assert.deepEqual(await kubo.putMany(batch), batch.map(independentCid));
    });

    void it('every backend refuses one byte over the limit', async (t) => {
        const embedded = await EmbeddedObjectStore.open(await tempDir(t));
        const daemon = await FakeIpfsDaemon.start();
        t.after(() => daemon.stop());
        const kubo = new KuboObjectStore({ apiUrl: daemon.url });
        const tooBig = new Uint8Array(MAX_OBJECT_BYTES + 1);
        await assert.rejects(embedded.put(tooBig), ObjectTooLargeError);
        await assert.rejects(kubo.put(tooBig), ObjectTooLargeError);
        assert.throws(() => contentAddress(tooBig));
    });
});
