/**
 * KuboObjectStore against a real IPFS RPC daemon. Runs only when IPFS_API_URL names one, e.g.
 *   IPFS_API_URL=http://127.0.0.1:5001 node scripts/run-tests.mjs storage/kubo-daemon
 * (Kubo, or `jsipfs daemon --offline` from the ipfs 0.66 package: see docs/storage.md); reported as
 * skipped otherwise so the default run needs no daemon.
 */
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { create } from 'kubo-rpc-client';
import { contentAddress, MAX_OBJECT_BYTES } from '@m2m-fabric/protocol';
import {
    EmbeddedObjectStore,
    exportCar,
    IntegrityError,
    KuboObjectStore,
    NotFoundError,
    ObjectTooLargeError,
    openObjectStore,
    storageConfigFromEnv,
    StorageTimeoutError,
    StorageUnavailableError,
    type KuboStoreOptions,
} from '@m2m-fabric/sdk';
import { OBJECT_SIZES, randomObject, tempDir } from './helpers.js';
import { IpfsFaultProxy } from './ipfs-fault-proxy.js';

const apiUrl = process.env.IPFS_API_URL;
const skip =
    apiUrl === undefined || apiUrl === '' ? 'IPFS_API_URL is not set (no IPFS RPC daemon to test against)' : false;

void describe('Kubo object store (real daemon at IPFS_API_URL)', () => {
    const store = (): KuboObjectStore => new KuboObjectStore({ apiUrl: apiUrl ?? '', timeoutMs: 20_000 });

    void it('answers a health check', { skip }, async () => {
        const health = await store().health();
        assert.equal(health.ok, true, JSON.stringify(health));
    });

    void it('gives the same CID as the embedded store and the chaincode on every size', { skip }, async (t) => {
        const kubo = store();
        const embedded = await EmbeddedObjectStore.open(await tempDir(t));
        for (const size of OBJECT_SIZES) {
            const bytes = randomObject(size);
            const cid = await kubo.put(bytes);
            assert.equal(cid, contentAddress(bytes), `${size} bytes`);
            assert.equal(await embedded.put(bytes), cid);
            assert.deepEqual(await kubo.get(cid), bytes);
            assert.equal(await kubo.has(cid), true);
        }
    });

    void it('pins and unpins', { skip }, async () => {
        const kubo = store();
        const cid = await kubo.put(randomObject(100));
        assert.equal(await kubo.isPinned(cid), true);
        await kubo.unpin(cid);
        assert.equal(await kubo.isPinned(cid), false);
        await kubo.pin(cid);
        assert.equal(await kubo.isPinned(cid), true);
    });

    void it('imports a CAR exported from the embedded store (ipfs dag import)', { skip }, async (t) => {
        const dir = await tempDir(t);
        const embedded = await EmbeddedObjectStore.open(join(dir, 'store'));
        const cids = await embedded.putMany(Array.from({ length: 20 }, () => randomObject(300)));
        const exported = await exportCar(embedded, join(dir, 'store.car'));
        const client = create({ url: apiUrl ?? '' });
        const roots: string[] = [];
        for await (const result of client.dag.import([createReadStream(join(dir, 'store.car'))], { pinRoots: true })) {
            if (result.root !== undefined) roots.push(result.root.cid.toString());
        }
        assert.deepEqual(roots, [exported.root]);
        const kubo = store();
        for (const cid of cids) assert.equal(contentAddress(await kubo.get(cid)), cid);
    });

    void it('pins every object of a batch, as the CSP stores what it issues', { skip }, async () => {
        const kubo = store();
        const batch = Array.from({ length: 12 }, (_, i) => randomObject(200 + i));
        const cids = await kubo.putMany(batch);
        assert.deepEqual(
            cids,
            batch.map((b) => contentAddress(b)),
        );
        for (const cid of cids) assert.equal(await kubo.isPinned(cid), true, cid);
    });

    void it('is what IPFS_API_URL selects', { skip }, async (t) => {
        const configured = await openObjectStore(
            storageConfigFromEnv({ IPFS_API_URL: apiUrl, IPFS_TIMEOUT_MS: '20000' }, await tempDir(t)),
        );
        assert.equal(configured.backend, 'kubo');
        const bytes = randomObject(321);
        const cid = await configured.put(bytes);
        assert.deepEqual(await store().get(cid), bytes);
        await configured.close();
    });

    void it('never sends an object over 1 MiB', { skip }, async (t) => {
        const proxy = await IpfsFaultProxy.start(apiUrl ?? '');
        t.after(() => proxy.stop());
        const kubo = new KuboObjectStore({ apiUrl: proxy.url });
        await assert.rejects(kubo.put(new Uint8Array(MAX_OBJECT_BYTES + 1)), ObjectTooLargeError);
        await assert.rejects(
            kubo.putMany([randomObject(10), new Uint8Array(MAX_OBJECT_BYTES + 1)]),
            ObjectTooLargeError,
        );
        assert.deepEqual(proxy.requests, []);
    });

    void it('a missing object is a typed error, never data', { skip }, async () => {
        const missing = contentAddress(randomObject(64));
        // Kubo answers offline requests from its repository (NotFoundError at once); js-ipfs ignores
        // `offline` and waits for the network until the timeout.
        const kubo = new KuboObjectStore({ apiUrl: apiUrl ?? '', timeoutMs: 1_500, offline: true });
        await assert.rejects(
            kubo.get(missing),
            (err: unknown) => err instanceof NotFoundError || err instanceof StorageTimeoutError,
        );
    });

    void describe('through a faulty link to the real daemon', () => {
        const linked = async (
            t: { after: (fn: () => Promise<void>) => void },
            options: Partial<KuboStoreOptions> = {},
        ): Promise<{ proxy: IpfsFaultProxy; kubo: KuboObjectStore }> => {
            const proxy = await IpfsFaultProxy.start(apiUrl ?? '');
            t.after(() => proxy.stop());
            return { proxy, kubo: new KuboObjectStore({ apiUrl: proxy.url, timeoutMs: 20_000, ...options }) };
        };

        void it('turns changed bytes from the daemon into IntegrityError', { skip }, async (t) => {
            const { proxy, kubo } = await linked(t);
            const bytes = randomObject(500);
            const cid = await kubo.put(bytes);
            assert.deepEqual(await kubo.get(cid), bytes);
            proxy.faults.corruptBlockGet = true;
            await assert.rejects(
                kubo.get(cid),
                (err: unknown) => err instanceof IntegrityError && err.expected === cid && err.actual !== cid,
            );
        });

        void it('times out on a slow daemon without asking again', { skip }, async (t) => {
            const { proxy, kubo } = await linked(t, { timeoutMs: 200, retries: 3 });
            const cid = await kubo.put(randomObject(100));
            proxy.requests.length = 0;
            proxy.faults.delayMs = 1_000;
            await assert.rejects(kubo.get(cid), (err: unknown) => err instanceof StorageTimeoutError);
            assert.deepEqual(proxy.requests, ['block/get']);
            const health = await kubo.health();
            assert.equal(health.ok, false);
            assert.equal(health.error?.kind, 'timeout');
        });

        void it('retries dropped connections with backoff, then gets the object', { skip }, async (t) => {
            const { proxy, kubo } = await linked(t, { retries: 3, retryBaseDelayMs: 5 });
            const bytes = randomObject(700);
            const cid = await kubo.put(bytes);
            proxy.requests.length = 0;
            proxy.faults.dropNext = 2;
            assert.deepEqual(await kubo.get(cid), bytes);
            assert.deepEqual(proxy.requests, ['block/get', 'block/get', 'block/get']);
        });

        void it('reports the daemon gone as StorageUnavailableError after the retries', { skip }, async (t) => {
            const { proxy, kubo } = await linked(t, { retries: 2, retryBaseDelayMs: 5 });
            const cid = await kubo.put(randomObject(100));
            await proxy.stop();
            await assert.rejects(
                kubo.get(cid),
                (err: unknown) => err instanceof StorageUnavailableError && /after 3 attempts/.test(err.message),
            );
            const health = await kubo.health();
            assert.equal(health.ok, false);
            assert.equal(health.error?.kind, 'unavailable');
        });
    });
});
