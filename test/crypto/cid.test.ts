import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';
import * as raw from 'multiformats/codecs/raw';
import {
    MAX_OBJECT_BYTES,
    contentAddress,
    contentAddressBytes,
    formatContentAddress,
    matchesContentAddress,
    parseContentAddress,
} from '@m2m-fabric/protocol';
import { assertDecodeError, flipBit, utf8 } from './helpers.js';

void describe('content addresses (CIDv1 raw sha2-256)', () => {
    void it('matches the well-known CID of the empty raw block', () => {
        assert.equal(contentAddress(new Uint8Array(0)), 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku');
    });

    void it("agrees with multiformats' own (async) sha2-256 hasher", async () => {
        for (const bytes of [utf8('hello world'), new Uint8Array(1000).fill(7), new Uint8Array(MAX_OBJECT_BYTES)]) {
            const expected = CID.create(1, raw.code, await sha256.digest(bytes));
            assert.equal(contentAddress(bytes), expected.toString());
            assert.deepEqual(contentAddressBytes(bytes), expected.bytes);
            assert.ok(contentAddress(bytes).startsWith('bafkrei'));
        }
    });

    void it('binary and string forms convert both ways', () => {
        const bytes = utf8('certificate object');
        const bin = contentAddressBytes(bytes);
        assert.equal(bin.length, 36);
        assert.equal(formatContentAddress(bin), contentAddress(bytes));
        assert.deepEqual(parseContentAddress(contentAddress(bytes)), bin);
    });

    void it('matches only the exact bytes', () => {
        const bytes = utf8('certificate object');
        const cid = contentAddress(bytes);
        assert.ok(matchesContentAddress(cid, bytes));
        assert.ok(!matchesContentAddress(cid, flipBit(bytes, 0)));
        assert.ok(!matchesContentAddress(cid, bytes.subarray(1)));
        assert.ok(!matchesContentAddress(cid.toUpperCase(), bytes));
        assert.ok(!matchesContentAddress('not a cid', bytes));
    });

    void it('rejects objects over the size limit', () => {
        const big = new Uint8Array(MAX_OBJECT_BYTES + 1);
        assert.throws(() => contentAddress(big), RangeError);
        assert.throws(() => contentAddressBytes(big), RangeError);
        assert.equal(matchesContentAddress(contentAddress(big.subarray(1)), big), false);
    });

    void it('parse rejects other CID kinds and non-canonical spellings', async () => {
        const bytes = utf8('x');
        const digest = await sha256.digest(bytes);
        const v0 = CID.createV0(digest).toString(); // Qm..., dag-pb
        const dagPb = CID.createV1(0x70, digest).toString();
        const base58v1 = CID.createV1(raw.code, digest).toString((await import('multiformats/bases/base58')).base58btc);
        for (const bad of [
            v0,
            dagPb,
            base58v1,
            '',
            'bafkrei',
            contentAddress(bytes).toUpperCase(),
            contentAddress(bytes) + 'a',
        ]) {
            assertDecodeError(() => parseContentAddress(bad));
        }
        const bin = contentAddressBytes(bytes);
        assertDecodeError(() => formatContentAddress(bin.subarray(1)), 'wrongLength');
        assertDecodeError(() => formatContentAddress(CID.createV1(0x70, digest).bytes));
        assertDecodeError(() => formatContentAddress(flipBit(bin, 0, 1)));
    });
});

/** Heap in use after a full GC (the gc function, exposed for this test only). */
function heapAfterGc(): number {
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
    return process.memoryUsage().heapUsed;
}

void describe('content address strings', () => {
    void it('are flat strings, not ropes of ~1.5 KB (10⁶ held addresses once took 1.5 GB of heap)', () => {
        // Measured through the heap: V8 has no API that says whether a string is a rope. A rope of a
        // 59-character address takes ~1.5 KB, a flat one ~100 bytes; the bound sits between.
        const held: string[] = [];
        const before = heapAfterGc();
        for (let i = 0; i < 20_000; i++) held.push(contentAddress(utf8(`object ${i}`)));
        const perAddress = (heapAfterGc() - before) / held.length;
        assert.equal(held[7], contentAddress(utf8('object 7')));
        assert.ok(perAddress < 400, `${perAddress.toFixed(0)} bytes of heap per held address`);
    });
});
