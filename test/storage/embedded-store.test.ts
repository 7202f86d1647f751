import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs, { readlinkSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FsBlockstore } from 'blockstore-fs';
import { base32upper } from 'multiformats/bases/base32';
import { base58btc } from 'multiformats/bases/base58';
import { CID } from 'multiformats/cid';
import { contentAddress, MAX_OBJECT_BYTES } from '@m2m-fabric/protocol';
import {
    EmbeddedObjectStore,
    IntegrityError,
    InvalidAddressError,
    NotFoundError,
    ObjectTooLargeError,
    StorageUnavailableError,
} from '@m2m-fabric/sdk';
import { encodeEntry, EntryType } from '@m2m-fabric/sdk/internal';
import { randomObject, tempDir } from './helpers.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

async function segmentFiles(dir: string): Promise<string[]> {
    return (await readdir(join(dir, 'segments')))
        .filter((name) => name.endsWith('.seg'))
        .sort()
        .map((name) => join(dir, 'segments', name));
}

/** Offset of `bytes` (an object's content) in the store's only segment file. */
async function offsetIn(dir: string, bytes: Uint8Array): Promise<{ file: string; offset: number }> {
    const [file] = await segmentFiles(dir);
    assert.ok(file !== undefined);
    const offset = (await readFile(file)).indexOf(Buffer.from(bytes));
    assert.ok(offset > 0);
    return { file, offset };
}

void describe('embedded object store', () => {
    void it('puts and gets objects under the protocol content address', async (t) => {
        const store = await EmbeddedObjectStore.open(await tempDir(t));
        const bytes = utf8('certificate object');
        const cid = await store.put(bytes);
        assert.equal(cid, contentAddress(bytes));
        assert.deepEqual(await store.get(cid), bytes);
        assert.equal(await store.has(cid), true);
        assert.equal(await store.isPinned(cid), true);
        // Idempotent: a second put of the same bytes changes nothing.
        const size = (await stat((await segmentFiles(store.directory))[0]!)).size;
        assert.equal(await store.put(bytes), cid);
        assert.equal((await stat((await segmentFiles(store.directory))[0]!)).size, size);
        assert.equal((await store.stats()).objects, 1);
    });

    void it('putMany returns addresses in input order and stores duplicates once', async (t) => {
        const store = await EmbeddedObjectStore.open(await tempDir(t));
        const objects = Array.from({ length: 40 }, (_, i) => utf8(`object ${i % 30}`));
        const cids = await store.putMany(objects);
        assert.deepEqual(
            cids,
            objects.map((o) => contentAddress(o)),
        );
        for (const [i, cid] of cids.entries()) assert.deepEqual(await store.get(cid), objects[i]);
        assert.deepEqual(await store.stats(), {
            objects: 30,
            bytes: objects.slice(0, 30).reduce((n, o) => n + o.length, 0),
            pinned: 30,
        });
    });

    void it('rejects objects over 1 MiB before writing anything', async (t) => {
        const store = await EmbeddedObjectStore.open(await tempDir(t));
        const big = new Uint8Array(MAX_OBJECT_BYTES + 1);
        await assert.rejects(
            store.put(big),
            (err: unknown) => err instanceof ObjectTooLargeError && err.size === MAX_OBJECT_BYTES + 1,
        );
        // One oversized object fails the whole batch, and the valid ones are not written either.
        await assert.rejects(store.putMany([utf8('ok'), big]), ObjectTooLargeError);
        assert.equal(await store.has(contentAddress(utf8('ok'))), false);
        assert.deepEqual(await segmentFiles(store.directory), []);
        // Exactly 1 MiB is accepted.
        const max = randomObject(MAX_OBJECT_BYTES);
        assert.deepEqual(await store.get(await store.put(max)), max);
    });

    void it('refuses malformed and non-raw addresses with InvalidAddressError', async (t) => {
        const store = await EmbeddedObjectStore.open(await tempDir(t));
        const good = contentAddress(utf8('x'));
        const bad = [
            '',
            'not a cid',
            good.toUpperCase(),
            good.slice(0, -1),
            'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG', // CIDv0 (dag-pb)
            'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', // dag-cbor codec
            CID.parse(good).toString(base58btc), // same CID, non-canonical base
        ];
        for (const cid of bad) {
            await assert.rejects(store.get(cid), InvalidAddressError, cid);
            await assert.rejects(store.has(cid), InvalidAddressError, cid);
            await assert.rejects(store.pin(cid), InvalidAddressError, cid);
        }
    });

    void it('reports a missing object as NotFoundError', async (t) => {
        const store = await EmbeddedObjectStore.open(await tempDir(t));
        const cid = contentAddress(utf8('never stored'));
        await assert.rejects(store.get(cid), (err: unknown) => err instanceof NotFoundError && err.cid === cid);
        assert.equal(await store.has(cid), false);
        await assert.rejects(store.pin(cid), NotFoundError);
    });

    void it('detects tampered bytes on get and never returns them', async (t) => {
        const store = await EmbeddedObjectStore.open(await tempDir(t));
        const bytes = utf8('certificate object to tamper with');
        const cid = await store.put(bytes);
        const { file, offset } = await offsetIn(store.directory, bytes);
        const original = await readFile(file);
        for (let bit = 0; bit < bytes.length * 8; bit += 7) {
            const tampered = Buffer.from(original);
            tampered[offset + (bit >> 3)]! ^= 1 << (bit & 7);
            await writeFile(file, tampered);
            const changed = tampered.subarray(offset, offset + bytes.length);
            await assert.rejects(
                store.get(cid),
                (err: unknown) =>
                    err instanceof IntegrityError && err.expected === cid && err.actual === contentAddress(changed),
            );
        }
        // A damaged header (the digest the index expects) is an IntegrityError too.
        const header = Buffer.from(original);
        header[offset - 1]! ^= 0x80;
        await writeFile(file, header);
        await assert.rejects(store.get(cid), IntegrityError);
        // A put of the right bytes stores a good copy, and a reopen skips the damaged entry.
        await store.put(bytes);
        assert.deepEqual(await store.get(cid), bytes);
        await store.close();
        const reopened = await EmbeddedObjectStore.open(store.directory);
        assert.deepEqual(await reopened.get(cid), bytes);
        assert.equal(reopened.recovery.damaged.length, 1);
        assert.deepEqual(reopened.recovery.cut, []);
        await reopened.close();
    });

    void it('keeps objects and pins across close and reopen', async (t) => {
        const dir = await tempDir(t);
        const first = await EmbeddedObjectStore.open(dir);
        const objects = Array.from({ length: 25 }, (_, i) => randomObject(100 + i * 37));
        const cids = await first.putMany(objects);
        const unpinned = await first.put(utf8('unpinned'), { pin: false });
        await first.close();
        await assert.rejects(first.get(cids[0]!), StorageUnavailableError);

        const second = await EmbeddedObjectStore.open(dir);
        for (const [i, cid] of cids.entries()) {
            assert.deepEqual(await second.get(cid), objects[i]);
            assert.equal(await second.isPinned(cid), true);
        }
        assert.equal(await second.isPinned(unpinned), false);
        const listed: string[] = [];
        for await (const cid of second.objects()) listed.push(cid);
        assert.deepEqual(listed.sort(), [...cids, unpinned].sort());
    });

    void it('an acknowledged put survives the writer being killed (SIGKILL)', async (t) => {
        const dir = await tempDir(t);
        const writer = fileURLToPath(new URL('./kill-writer.js', import.meta.url));
        const child = spawn(process.execPath, [writer, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
        const acknowledged: string[] = [];
        const lines = createInterface({ input: child.stdout });
        const exited = new Promise<NodeJS.Signals | null>((resolve) =>
            child.on('exit', (_code, signal) => resolve(signal)),
        );
        for await (const line of lines) {
            acknowledged.push(line);
            if (acknowledged.length === 50) {
                child.kill('SIGKILL');
                break;
            }
        }
        assert.equal(await exited, 'SIGKILL');
        const store = await EmbeddedObjectStore.open(dir);
        for (const cid of acknowledged) {
            const bytes = await store.get(cid); // verified against the CID
            assert.equal(contentAddress(bytes), cid);
        }
        // The dead writer's owner file is removed on the next open (its pid is gone).
        assert.deepEqual(await readdir(join(dir, 'owners')), []);
        await store.close();
    });

    void it('fdatasyncs the segment before a put resolves, one sync for many concurrent puts', async (t) => {
        const store = await EmbeddedObjectStore.open(await tempDir(t));
        // Count the syncs and what they were on: a SIGKILL test cannot tell a page-cache write from a
        // durable one, so the syscalls themselves are checked.
        const synced: string[] = [];
        const original = fs.fdatasync;
        t.after(() => {
            fs.fdatasync = original;
        });
        fs.fdatasync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
            synced.push(readlinkSync(`/proc/self/fd/${fd}`));
            original(fd, cb);
        }) as typeof fs.fdatasync;
        const cid = await store.put(utf8('durable'), { pin: false });
        const [file] = await segmentFiles(store.directory);
        assert.deepEqual(synced, [file]);
        assert.equal(await store.has(cid), true);
        // 200 puts issued at once: the first is synced alone, the rest share the next sync or two.
        synced.length = 0;
        await Promise.all(Array.from({ length: 200 }, (_, i) => store.put(utf8(`concurrent ${i}`))));
        assert.ok(synced.length >= 1 && synced.length <= 3, `${synced.length} syncs for 200 puts`);
        fs.fdatasync = original;
        await store.close();
    });

    void it('cuts a torn tail of a writer that is gone, and keeps everything acknowledged', async (t) => {
        const dir = await tempDir(t);
        const store = await EmbeddedObjectStore.open(dir);
        const objects = Array.from({ length: 20 }, (_, i) => randomObject(150 + i));
        const cids = await store.putMany(objects);
        await store.close();
        const [file] = await segmentFiles(dir);
        const good = (await stat(file!)).size;
        // What an append interrupted by kill -9 or a power cut leaves: part of an entry, or garbage.
        const torn = [
            encodeEntry(EntryType.pinnedObject, new Uint8Array(32).fill(7), randomObject(300)).subarray(0, 150),
            Buffer.alloc(4096),
            randomObject(77),
        ];
        for (const tail of torn) {
            await appendFile(file!, tail);
            const reopened = await EmbeddedObjectStore.open(dir);
            assert.deepEqual(reopened.recovery.cut, [{ segment: basename(file!), offset: good, bytes: tail.length }]);
            assert.equal((await stat(file!)).size, good);
            for (const [i, cid] of cids.entries()) assert.deepEqual(await reopened.get(cid), objects[i]);
            // Writes after the cut go to a new segment and survive the next open.
            const more = await reopened.put(utf8(`after ${tail.length}`));
            await reopened.close();
            const again = await EmbeddedObjectStore.open(dir);
            assert.deepEqual(again.recovery.cut, []);
            assert.equal(await again.has(more), true);
            await again.close();
        }
    });

    void it('never cuts the tail of a writer that is still running', async (t) => {
        const dir = await tempDir(t);
        const writer = await EmbeddedObjectStore.open(dir);
        const cid = await writer.put(utf8('first'));
        const [file] = await segmentFiles(dir);
        // A half-written entry of a live writer (its append is in progress).
        await appendFile(file!, encodeEntry(EntryType.object, new Uint8Array(32), randomObject(100)).subarray(0, 60));
        const size = (await stat(file!)).size;
        const reader = await EmbeddedObjectStore.open(dir);
        assert.deepEqual(reader.recovery.cut, []);
        assert.equal((await stat(file!)).size, size);
        assert.deepEqual(await reader.get(cid), utf8('first'));
        await reader.close();
        await writer.close();
    });

    void it("two open stores (two processes sharing a directory) see each other's objects", async (t) => {
        const dir = await tempDir(t);
        const csp = await EmbeddedObjectStore.open(dir);
        const fog = await EmbeddedObjectStore.open(dir);
        const a = await csp.put(utf8('from the csp'));
        const b = await fog.put(utf8('from the fog'));
        assert.deepEqual(await fog.get(a), utf8('from the csp'));
        assert.deepEqual(await csp.get(b), utf8('from the fog'));
        await csp.unpin(a);
        assert.equal(await fog.isPinned(a), false);
        // gc needs the store to itself.
        await assert.rejects(csp.gc(), StorageUnavailableError);
        assert.equal(await csp.has(a), true);
        await fog.close();
        assert.equal(await csp.gc(), 1);
        assert.equal(await csp.has(a), false);
        assert.deepEqual(await csp.get(b), utf8('from the fog'));
        await csp.close();
    });

    void it('pins, unpins and garbage-collects only unpinned objects', async (t) => {
        const store = await EmbeddedObjectStore.open(await tempDir(t));
        const kept = await store.put(utf8('kept'));
        const dropped = await store.put(utf8('dropped'));
        const neverPinned = await store.put(utf8('never pinned'), { pin: false });
        assert.equal(await store.isPinned(neverPinned), false);
        await store.unpin(dropped);
        await store.unpin(dropped); // idempotent
        assert.equal(await store.isPinned(dropped), false);
        await store.pin(kept); // idempotent
        assert.equal(await store.gc(), 2);
        assert.equal(await store.has(kept), true);
        assert.equal(await store.has(dropped), false);
        await assert.rejects(store.get(neverPinned), NotFoundError);
        const pinned: string[] = [];
        for await (const cid of store.pinned()) pinned.push(cid);
        assert.deepEqual(pinned, [kept]);
    });

    void it('migrates a format-1 store (one file per object, blockstore-fs layout) on open', async (t) => {
        const dir = await tempDir(t);
        await mkdir(join(dir, 'pins'), { recursive: true });
        await writeFile(
            join(dir, 'store.json'),
            JSON.stringify({ format: 'm2m-fabric/embedded-object-store', version: 1 }),
        );
        const fsStore = new FsBlockstore(join(dir, 'blocks'));
        await fsStore.open();
        const objects = Array.from({ length: 30 }, (_, i) => randomObject(100 + i));
        for (const bytes of objects) await fsStore.put(CID.parse(contentAddress(bytes)), bytes);
        await fsStore.close();
        // Pin the first ten the way format 1 did: an empty marker file at the same relative path.
        const blockPaths: string[] = [];
        for (const shard of await readdir(join(dir, 'blocks')))
            for (const name of await readdir(join(dir, 'blocks', shard))) blockPaths.push(join(shard, name));
        const pinnedCids = new Set<string>();
        for (const bytes of objects.slice(0, 10)) {
            const cid = contentAddress(bytes);
            pinnedCids.add(cid);
            const digest = CID.parse(cid).multihash.bytes;
            const rel = blockPaths.find((p) => p.endsWith(`${base32upper.encode(digest).slice(1)}.data`));
            assert.ok(rel !== undefined);
            await mkdir(join(dir, 'pins', dirname(rel)), { recursive: true });
            await writeFile(join(dir, 'pins', rel), '');
        }
        // A damaged format-1 object stops the migration and leaves format 1 as it was.
        const damaged = join(dir, 'blocks', blockPaths[0]!);
        const saved = await readFile(damaged);
        await writeFile(damaged, Buffer.concat([saved, Buffer.from([1])]));
        await assert.rejects(EmbeddedObjectStore.open(dir), StorageUnavailableError);
        assert.equal((JSON.parse(await readFile(join(dir, 'store.json'), 'utf8')) as { version: unknown }).version, 1);
        await writeFile(damaged, saved);

        const store = await EmbeddedObjectStore.open(dir);
        assert.equal(store.recovery.migrated, 30);
        for (const bytes of objects) {
            const cid = contentAddress(bytes);
            assert.deepEqual(await store.get(cid), bytes);
            assert.equal(await store.isPinned(cid), pinnedCids.has(cid));
        }
        assert.equal((JSON.parse(await readFile(join(dir, 'store.json'), 'utf8')) as { version: unknown }).version, 2);
        assert.deepEqual((await readdir(dir)).sort(), ['owners', 'segments', 'store.json', 'tmp']);
        await store.close();
    });

    void it('refuses a directory holding something else, and reports health', async (t) => {
        const dir = await tempDir(t);
        await writeFile(join(dir, 'store.json'), JSON.stringify({ format: 'other', version: 1 }));
        await assert.rejects(EmbeddedObjectStore.open(dir), StorageUnavailableError);

        const store = await EmbeddedObjectStore.open(join(dir, 'good'));
        const health = await store.health();
        assert.equal(health.ok, true);
        assert.equal(health.backend, 'embedded');
        const marker = JSON.parse(await readFile(join(dir, 'good', 'store.json'), 'utf8')) as { version: unknown };
        assert.equal(marker.version, 2);
        await store.close();
        const closed = await store.health();
        assert.equal(closed.ok, false);
        assert.equal(closed.error?.kind, 'unavailable');
    });

    void it('reports an unusable directory as StorageUnavailableError', async (t) => {
        const dir = await tempDir(t);
        await writeFile(join(dir, 'a-file'), 'x');
        await assert.rejects(EmbeddedObjectStore.open(join(dir, 'a-file', 'store')), StorageUnavailableError);
    });
});
