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
import { contentAddress } from '@m2m-fabric/chaincode/protocol';
import { EmbeddedObjectStore, exportCar, KuboObjectStore } from '@m2m-fabric/gateway/storage/index';
import { OBJECT_SIZES, randomObject, tempDir } from './helpers.js';

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
});
