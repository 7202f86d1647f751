import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { open, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FsBlockstore } from 'blockstore-fs';
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
import { randomObject, tempDir } from './helpers.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

async function blockFiles(dir: string): Promise<string[]> {
    const files: string[] = [];
    for (const shard of await readdir(join(dir, 'blocks'))) {
        for (const name of await readdir(join(dir, 'blocks', shard))) files.push(join(dir, 'blocks', shard, name));
    }
    return files;
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
        assert.equal(await store.put(bytes), cid);
        assert.equal((await blockFiles(store.directory)).length, 1);
    });

    void it('putMany returns addresses in input order and stores duplicates once', async (t) => {
        const store = await EmbeddedObjectStore.open(await tempDir(t));
        const objects = Array.from({ length: 40 }, (_, i) => utf8(`object ${i % 30}`));
        const cids = await store.putMany(objects);
        assert.deepEqual(
            cids,
            objects.map((o) => contentAddress(o)),
        );
        assert.equal((await blockFiles(store.directory)).length, 30);
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
        assert.deepEqual(await blockFiles(store.directory), []);
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
        const [file] = await blockFiles(store.directory);
        assert.ok(file !== undefined);
        for (const tampered of [
            Buffer.concat([Buffer.from([bytes[0]! ^ 1]), Buffer.from(bytes.subarray(1))]), // one bit
            Buffer.from(bytes.subarray(0, -1)), // truncated
            Buffer.concat([Buffer.from(bytes), Buffer.from([0])]), // extended
            Buffer.alloc(0), // emptied
        ]) {
            await writeFile(file, tampered);
            await assert.rejects(
                store.get(cid),
                (err: unknown) =>
                    err instanceof IntegrityError && err.expected === cid && err.actual === contentAddress(tampered),
            );
        }
        // A put of the right bytes repairs the damaged file.
        await store.put(bytes);
        assert.deepEqual(await store.get(cid), bytes);
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
        // The writer's staging files are cleaned up on the next open (its pid is gone).
        assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    });

    void it('fsyncs the object file and its directory before a put resolves', async (t) => {
        const store = await EmbeddedObjectStore.open(await tempDir(t));
        // Count fsyncs and what they were on: a SIGKILL test cannot tell a page-cache write from a
        // durable one, so the syscalls themselves are checked.
        const probe = await open(join(store.directory, 'store.json'), 'r');
        const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
        await probe.close();
        const synced: string[] = [];
        const original = proto.sync;
        t.after(() => {
            proto.sync = original;
        });
        proto.sync = async function (this: { fd: number }): Promise<void> {
            synced.push(await readlink(`/proc/self/fd/${this.fd}`));
            return original.call(this);
        };
        const cid = await store.put(utf8('durable'), { pin: false });
        proto.sync = original;
        const [file] = await blockFiles(store.directory);
        assert.ok(file !== undefined && file.endsWith('.data'));
        // The temp file (later renamed to `file`) and the shard directory holding `file`.
        assert.ok(
            synced.some((p) => p.startsWith(join(store.directory, 'tmp')) && p.endsWith('.tmp')),
            synced.join(', '),
        );
        assert.ok(synced.includes(join(file, '..')), synced.join(', '));
        assert.equal(await store.has(cid), true);
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

    void it('is readable by blockstore-fs, and reads blocks blockstore-fs wrote', async (t) => {
        const dir = await tempDir(t);
        const store = await EmbeddedObjectStore.open(dir);
        const ours = utf8('written by the embedded store');
        const cid = await store.put(ours);
        const fs = new FsBlockstore(join(dir, 'blocks'));
        await fs.open();
        const chunks: Uint8Array[] = [];
        for await (const chunk of fs.get(CID.parse(cid))) chunks.push(chunk);
        assert.deepEqual(new Uint8Array(Buffer.concat(chunks)), ours);

        const theirs = utf8('written by FsBlockstore');
        const theirCid = CID.parse(contentAddress(theirs));
        await fs.put(theirCid, theirs);
        assert.deepEqual(await store.get(theirCid.toString()), theirs);
        await fs.close();
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
        assert.equal(marker.version, 1);
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
