import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, readdir, readFile, rename, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { contentAddress, MAX_OBJECT_BYTES } from '@m2m-fabric/protocol';
import { EmbeddedObjectStore } from '@m2m-fabric/sdk';
import { DigestIndex } from '@m2m-fabric/sdk/internal';
import { randomObject, tempDir } from './helpers.js';

/** Byte offsets of the index format (gateway/sdk/src/storage/segment-index.ts). */
const FIXED_BYTES = 26;
const RECORD_BYTES = 41;

async function files(dir: string, ext: string): Promise<string[]> {
    return (await readdir(join(dir, 'segments')))
        .filter((n) => n.endsWith(ext))
        .sort()
        .map((n) => join(dir, 'segments', n));
}

/** Rewrites an index file through `mutate` and recomputes its checksum (a well-formed lie). */
async function forgeIndex(file: string, mutate: (buf: Buffer, recordsAt: number) => void): Promise<void> {
    const buf = await readFile(file);
    mutate(buf, FIXED_BYTES + buf.readUInt16BE(24));
    createHash('sha256')
        .update(buf.subarray(0, buf.length - 32))
        .digest()
        .copy(buf, buf.length - 32);
    await writeFile(file, buf);
}

/** A closed store of `n` objects in one segment (sealed at close), with every tenth unpinned. */
async function sealedStore(dir: string, n: number): Promise<{ cids: string[]; objects: Uint8Array[] }> {
    const store = await EmbeddedObjectStore.open(dir);
    const objects = Array.from({ length: n }, () => randomObject(200));
    const cids: string[] = [];
    for (const [i, bytes] of objects.entries()) cids.push(await store.put(bytes, { pin: i % 10 !== 0 }));
    await store.close();
    return { cids, objects };
}

/** Everything a reader can observe, to compare an open from indexes with one from a scan. */
async function observe(
    store: EmbeddedObjectStore,
    cids: string[],
    objects: Uint8Array[],
): Promise<{ stats: unknown; listed: string[]; pinned: string[] }> {
    for (const [i, cid] of cids.entries()) {
        assert.deepEqual(await store.get(cid), objects[i]);
        assert.equal(await store.isPinned(cid), i % 10 !== 0);
    }
    const listed: string[] = [];
    for await (const cid of store.objects()) listed.push(cid);
    const pinned: string[] = [];
    for await (const cid of store.pinned()) pinned.push(cid);
    return { stats: await store.stats(), listed, pinned };
}

void describe('packed store: persisted segment indexes', () => {
    void it('close seals the segment; a reopen reads the index and sees what a scan sees', async (t) => {
        const dir = await tempDir(t);
        const { cids, objects } = await sealedStore(dir, 60);
        const [index] = await files(dir, '.idx');
        assert.ok(index !== undefined);
        const name = (await files(dir, '.seg'))[0]!.split('/').pop()!;
        assert.equal((await stat(index)).size, FIXED_BYTES + name.length + 60 * RECORD_BYTES + 32);

        const fromIndex = await EmbeddedObjectStore.open(dir);
        assert.deepEqual(fromIndex.recovery.indexes, { loaded: 1, written: 0, rejected: [] });
        const seen = await observe(fromIndex, cids, objects);
        assert.deepEqual(seen.listed, cids);
        await fromIndex.close();

        // The same store opened by a scan (index moved away) shows exactly the same.
        await rename(index, `${index}.away`);
        const fromScan = await EmbeddedObjectStore.open(dir);
        assert.deepEqual(fromScan.recovery.indexes.rejected, [
            { segment: fromScan.recovery.indexes.rejected[0]?.segment, reason: 'missing' },
        ]);
        assert.deepEqual(await observe(fromScan, cids, objects), seen);
        await fromScan.close();
    });

    void it('a missing index is rebuilt from its segment and written again', async (t) => {
        const dir = await tempDir(t);
        const { cids, objects } = await sealedStore(dir, 20);
        const [index] = await files(dir, '.idx');
        const original = await readFile(index!);
        await truncate(index!, 0).then(() => rename(index!, `${index!}.gone`));
        const store = await EmbeddedObjectStore.open(dir);
        assert.equal(store.recovery.indexes.loaded, 0);
        assert.equal(store.recovery.indexes.rejected[0]?.reason, 'missing');
        await observe(store, cids, objects);
        await store.close();
        assert.equal(store.recovery.indexes.written, 1);
        // Written from the scan: the same bytes as the index the writer sealed.
        assert.deepEqual(await readFile(index!), original);
        const again = await EmbeddedObjectStore.open(dir);
        assert.deepEqual(again.recovery.indexes, { loaded: 1, written: 0, rejected: [] });
        await again.close();
    });

    void it('a torn or corrupt index is ignored, the segment scanned and the index rewritten', async (t) => {
        const dir = await tempDir(t);
        const { cids, objects } = await sealedStore(dir, 20);
        const [index] = await files(dir, '.idx');
        const original = await readFile(index!);
        const damaged: [string, Buffer][] = [
            ['truncated', original.subarray(0, 10)],
            ['checksum mismatch', original.subarray(0, original.length - 100)],
            ['checksum mismatch', Buffer.alloc(0, 0)],
        ];
        for (let bit = 0; bit < original.length * 8; bit += 97) {
            const flipped = Buffer.from(original);
            flipped[bit >> 3]! ^= 1 << (bit & 7);
            damaged.push(['checksum mismatch', flipped]);
        }
        for (const [reason, bytes] of damaged) {
            await writeFile(index!, bytes);
            const store = await EmbeddedObjectStore.open(dir);
            assert.deepEqual(
                store.recovery.indexes.rejected.map((r) => r.reason),
                [bytes.length === 0 ? 'truncated' : reason],
            );
            await observe(store, cids, objects);
            await store.close();
            assert.deepEqual(await readFile(index!), original, 'rewritten from the segment');
        }
    });

    void it('an index that disagrees with its segment is rejected at open', async (t) => {
        const dir = await tempDir(t);
        const { cids, objects } = await sealedStore(dir, 20);
        const [index] = await files(dir, '.idx');
        const [segment] = await files(dir, '.seg');
        const original = await readFile(index!);
        const segmentBytes = (await stat(segment!)).size;
        const lies: [string, (buf: Buffer, recordsAt: number) => void][] = [
            // Claims more bytes than the segment holds (a segment cut after sealing).
            ['covers', (buf) => buf.writeBigUInt64BE(BigInt(segmentBytes + 244), 8)],
            // The last entry names another digest (a spot-checked entry).
            ['disagrees with the segment', (buf, at) => (buf[at + 19 * RECORD_BYTES + 9]! ^= 1)],
            // An entry's length changed: the entries no longer tile the segment.
            ['does not follow', (buf, at) => buf.writeUInt32BE(201, at + 3 * RECORD_BYTES + 5)],
            // The index of another segment, renamed.
            ['names another segment', (buf) => (buf[FIXED_BYTES]! ^= 1)],
            // Entry 1 (a pinned object) recorded as unpinned (a spot-checked entry).
            ['disagrees with the segment', (buf, at) => (buf[at + RECORD_BYTES] = 1)],
        ];
        for (const [reason, lie] of lies) {
            await writeFile(index!, original);
            await forgeIndex(index!, lie);
            const store = await EmbeddedObjectStore.open(dir);
            const rejected = store.recovery.indexes.rejected;
            assert.equal(rejected.length, 1, reason);
            assert.match(rejected[0]!.reason, new RegExp(reason));
            await observe(store, cids, objects);
            await store.close();
            assert.deepEqual(await readFile(index!), original);
        }
    });

    void it('a well-formed index that passes the spot checks but lies is caught by the verifying get', async (t) => {
        const dir = await tempDir(t);
        const { cids, objects } = await sealedStore(dir, 100);
        const [index] = await files(dir, '.idx');
        // Entries 0, 7, 13, 20, 26, 33, 40, 46, … are read back at open; 37 and 38 are not. Swap their
        // digests: the index now sends a get of object 37 to object 38's entry.
        await forgeIndex(index!, (buf, at) => {
            const a = at + 37 * RECORD_BYTES + 9;
            const b = at + 38 * RECORD_BYTES + 9;
            const digest = Buffer.from(buf.subarray(a, a + 32));
            buf.copy(buf, a, b, b + 32);
            digest.copy(buf, b);
        });
        const store = await EmbeddedObjectStore.open(dir);
        const indexes = (): EmbeddedObjectStore['recovery']['indexes'] => store.recovery.indexes;
        assert.deepEqual(indexes(), { loaded: 1, written: 0, rejected: [] });
        assert.deepEqual(await store.get(cids[37]!), objects[37]);
        assert.equal(indexes().rejected.length, 1);
        assert.match(indexes().rejected[0]!.reason, /disagrees with the segment/);
        // The lying index is gone; the in-memory index was rebuilt from the segment.
        assert.equal(existsSync(index!), false);
        await observe(store, cids, objects);
        await store.close();
        const again = await EmbeddedObjectStore.open(dir);
        assert.equal(again.recovery.indexes.rejected[0]?.reason, 'missing');
        await again.close();
        const third = await EmbeddedObjectStore.open(dir);
        assert.deepEqual(third.recovery.indexes, { loaded: 1, written: 0, rejected: [] });
        await observe(third, cids, objects);
        await third.close();
    });

    void it('after SIGKILL the torn tail is cut first, then the segment sealed', async (t) => {
        const dir = await tempDir(t);
        const writer = fileURLToPath(new URL('./kill-writer.js', import.meta.url));
        const child = spawn(process.execPath, [writer, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
        const acknowledged: string[] = [];
        const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
        for await (const line of createInterface({ input: child.stdout })) {
            acknowledged.push(line);
            if (acknowledged.length === 80) {
                child.kill('SIGKILL');
                break;
            }
        }
        await exited;
        assert.deepEqual(await files(dir, '.idx'), [], 'a running writer never seals its current segment');
        const store = await EmbeddedObjectStore.open(dir);
        assert.equal(store.recovery.indexes.rejected[0]?.reason, 'missing');
        for (const cid of acknowledged) assert.equal(contentAddress(await store.get(cid)), cid);
        await store.close();
        const [segment] = await files(dir, '.seg');
        const again = await EmbeddedObjectStore.open(dir);
        assert.deepEqual(again.recovery, {
            cut: [],
            damaged: [],
            indexes: { loaded: 1, written: 0, rejected: [] },
        });
        for (const cid of acknowledged) assert.equal(contentAddress(await again.get(cid)), cid);
        assert.ok((await stat(segment!)).size > 0);
        await again.close();
    });

    void it('a segment is sealed when its writer moves to the next file, while the writer runs', async (t) => {
        const dir = await tempDir(t);
        const writer = await EmbeddedObjectStore.open(dir);
        const cids: string[] = [];
        // 65 objects of 1 MiB fill the first 64 MiB segment; the next group opens a second one.
        for (let i = 0; i < 65; i++) cids.push(await writer.put(randomObject(MAX_OBJECT_BYTES)));
        assert.equal((await files(dir, '.seg')).length, 2);
        const [first] = await files(dir, '.seg');
        const index = first!.replace(/\.seg$/, '.idx');
        // Sealing runs in the background; wait for its file (bounded).
        for (let waited = 0; !existsSync(index) && waited < 30_000; waited += 20) await sleep(20);
        const reader = await EmbeddedObjectStore.open(dir);
        // The writer's current segment has no index (it is still appended to) and is not reported.
        assert.deepEqual(reader.recovery.indexes, { loaded: 1, written: 0, rejected: [] });
        assert.equal((await reader.stats()).objects, 65);
        assert.equal(contentAddress(await reader.get(cids[0]!)), cids[0]);
        assert.equal(contentAddress(await reader.get(cids[64]!)), cids[64]);
        await reader.close();
        await writer.close();
        assert.equal((await files(dir, '.idx')).length, 2);
    });

    void it('gc removes the indexes of the segments it deletes', async (t) => {
        const dir = await tempDir(t);
        const { cids, objects } = await sealedStore(dir, 30);
        const store = await EmbeddedObjectStore.open(dir);
        const old = await files(dir, '.idx');
        assert.equal(await store.gc(), 3);
        const now = await files(dir, '.idx');
        assert.equal(now.length, 1);
        assert.notDeepEqual(now, old);
        assert.deepEqual(
            await files(dir, '.seg'),
            now.map((f) => f.replace(/\.idx$/, '.seg')),
        );
        await store.close();
        const again = await EmbeddedObjectStore.open(dir);
        assert.deepEqual(again.recovery.indexes, { loaded: 1, written: 0, rejected: [] });
        for (const [i, cid] of cids.entries()) if (i % 10 !== 0) assert.deepEqual(await again.get(cid), objects[i]);
        await again.close();
    });

    void it('a copied index of another segment is rejected', async (t) => {
        const dir = await tempDir(t);
        await sealedStore(dir, 10);
        await sealedStore(dir, 10);
        const [a, b] = await files(dir, '.idx');
        await copyFile(a!, b!);
        const store = await EmbeddedObjectStore.open(dir);
        assert.deepEqual(
            store.recovery.indexes.rejected.map((r) => r.reason),
            ['names another segment'],
        );
        assert.equal((await store.stats()).objects, 20);
        await store.close();
    });
});

void describe('digest index (typed-array hash table)', () => {
    const digest = (seed: number, prefix?: number): Uint8Array => {
        const d = new Uint8Array(createHash('sha256').update(String(seed)).digest());
        // A shared first four bytes forces every such digest into one probe chain.
        if (prefix !== undefined) new DataView(d.buffer).setUint32(0, prefix);
        return d;
    };

    void it('keeps values per digest through growth and collisions, in insertion order', () => {
        const index = new DigestIndex();
        const n = 5000;
        for (let i = 0; i < n; i++) index.set(digest(i, i % 3 === 0 ? 0xdeadbeef : undefined), 0, i * 2);
        assert.equal(index.size, n);
        for (let i = 0; i < n; i++) {
            assert.equal(index.get(digest(i, i % 3 === 0 ? 0xdeadbeef : undefined)), i * 2);
        }
        assert.equal(index.get(digest(n)), undefined);
        assert.equal(index.get(digest(n, 0xdeadbeef)), undefined);
        // An update keeps the entry's position.
        index.set(digest(7), 0, 1);
        assert.equal(index.size, n);
        assert.equal(index.valueAt(7), 1);
        assert.deepEqual(index.digestAt(7), digest(7));
        // A digest read in place from a larger buffer.
        const framed = new Uint8Array(40);
        framed.set(digest(11), 5);
        assert.equal(index.get(framed, 5), 22);
        const { digests, values } = index.snapshot();
        assert.equal(values.length, n);
        assert.deepEqual(digests.subarray(32 * 11, 32 * 12), digest(11));
        index.clear();
        assert.equal(index.size, 0);
        assert.equal(index.get(digest(11)), undefined);
    });
});
