/**
 * KuboObjectStore against a misbehaving IPFS daemon double on 127.0.0.1 (fake-ipfs-daemon.ts): the
 * client code — kubo-rpc-client, timeouts, retries, error mapping, verification — is the real one.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { contentAddress, MAX_OBJECT_BYTES } from '@m2m-fabric/protocol';
import {
    IntegrityError,
    InvalidAddressError,
    KuboObjectStore,
    type KuboStoreOptions,
    NotFoundError,
    ObjectTooLargeError,
    ReplyTooLargeError,
    StorageTimeoutError,
    StorageUnavailableError,
} from '@m2m-fabric/sdk';
import { closedPortUrl, FakeIpfsDaemon } from './fake-ipfs-daemon.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

async function daemonAndStore(
    t: TestContext,
    options: Partial<KuboStoreOptions> = {},
): Promise<{ daemon: FakeIpfsDaemon; store: KuboObjectStore }> {
    const daemon = await FakeIpfsDaemon.start();
    t.after(() => daemon.stop());
    const store = new KuboObjectStore({ apiUrl: daemon.url, timeoutMs: 2_000, retryBaseDelayMs: 5, ...options });
    return { daemon, store };
}

void describe('Kubo object store (daemon double)', () => {
    void it('puts raw CIDv1 blocks, pins them, and gets them back verified', async (t) => {
        const { daemon, store } = await daemonAndStore(t);
        const bytes = utf8('certificate object');
        const cid = await store.put(bytes);
        assert.equal(cid, contentAddress(bytes));
        assert.deepEqual(daemon.requests, ['block/put', 'pin/add']);
        assert.ok(daemon.pins.has(cid));
        assert.deepEqual(await store.get(cid), bytes);
        assert.equal(await store.has(cid), true);
        assert.equal(await store.isPinned(cid), true);
        await store.unpin(cid);
        await store.unpin(cid); // idempotent: "not pinned" is the wanted state
        assert.equal(await store.isPinned(cid), false);
        await store.pin(cid);
        assert.equal(await store.isPinned(cid), true);
        const unpinned = await store.put(utf8('no pin'), { pin: false });
        assert.equal(daemon.pins.has(unpinned), false);
    });

    void it('putMany stores a batch in order and checks every size first', async (t) => {
        const { daemon, store } = await daemonAndStore(t);
        const objects = Array.from({ length: 12 }, (_, i) => utf8(`object ${i}`));
        assert.deepEqual(
            await store.putMany(objects),
            objects.map((o) => contentAddress(o)),
        );
        daemon.requests.length = 0;
        await assert.rejects(store.putMany([utf8('fine'), new Uint8Array(MAX_OBJECT_BYTES + 1)]), ObjectTooLargeError);
        assert.deepEqual(daemon.requests, [], 'nothing is sent for a batch with an oversized object');
    });

    void it('refuses oversized objects and malformed addresses without a request', async (t) => {
        const { daemon, store } = await daemonAndStore(t);
        await assert.rejects(store.put(new Uint8Array(MAX_OBJECT_BYTES + 1)), ObjectTooLargeError);
        for (const bad of ['', 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG', 'bafy-not-a-cid']) {
            await assert.rejects(store.get(bad), InvalidAddressError);
            await assert.rejects(store.has(bad), InvalidAddressError);
        }
        assert.deepEqual(daemon.requests, []);
    });

    void it('turns wrong bytes from the daemon into IntegrityError', async (t) => {
        const { daemon, store } = await daemonAndStore(t);
        const bytes = utf8('certificate object');
        const cid = await store.put(bytes);
        daemon.behaviour.corruptGet = true;
        await assert.rejects(
            store.get(cid),
            (err: unknown) => err instanceof IntegrityError && err.expected === cid && err.actual !== cid,
        );
        // Also for an empty object (the double then returns one byte).
        daemon.behaviour.corruptGet = false;
        const empty = await store.put(new Uint8Array(0));
        daemon.behaviour.corruptGet = true;
        await assert.rejects(store.get(empty), IntegrityError);
    });

    void it('refuses a daemon that addresses blocks differently (CIDv0)', async (t) => {
        const { daemon, store } = await daemonAndStore(t);
        daemon.behaviour.wrongPutCid = true;
        await assert.rejects(store.put(utf8('x')), (err: unknown) => {
            return (
                err instanceof IntegrityError &&
                err.expected === contentAddress(utf8('x')) &&
                err.actual?.startsWith('Qm') === true
            );
        });
        assert.deepEqual(daemon.requests, ['block/put'], 'not pinned after a refused put');
    });

    void it('reports a daemon that is down as StorageUnavailableError after retrying', async () => {
        const store = new KuboObjectStore({ apiUrl: await closedPortUrl(), retries: 2, retryBaseDelayMs: 5 });
        await assert.rejects(store.put(utf8('x')), (err: unknown) => {
            return (
                err instanceof StorageUnavailableError &&
                err.message.includes('ECONNREFUSED') &&
                err.message.includes('after 3 attempts')
            );
        });
        await assert.rejects(store.get(contentAddress(utf8('x'))), StorageUnavailableError);
        const health = await store.health();
        assert.equal(health.ok, false);
        assert.equal(health.error?.kind, 'unavailable');
    });

    void it('retries dropped connections with backoff and then succeeds', async (t) => {
        const { daemon, store } = await daemonAndStore(t, { retries: 3 });
        daemon.behaviour.dropNext = 2;
        const started = performance.now();
        const cid = await store.put(utf8('after two resets'), { pin: false });
        assert.equal(cid, contentAddress(utf8('after two resets')));
        assert.deepEqual(daemon.requests, ['block/put', 'block/put', 'block/put']);
        // Backoff 5 ms then 10 ms: at least 15 ms passed.
        assert.ok(performance.now() - started >= 14);
    });

    void it('gives up after the configured retries on persistent resets', async (t) => {
        const { daemon, store } = await daemonAndStore(t, { retries: 1 });
        daemon.behaviour.dropNext = 10;
        await assert.rejects(store.get(contentAddress(utf8('x'))), StorageUnavailableError);
        assert.equal(daemon.requests.length, 2);
    });

    void it('times out on a slow daemon without retrying', async (t) => {
        const { daemon, store } = await daemonAndStore(t, { timeoutMs: 150, retries: 3 });
        const cid = await store.put(utf8('slow'));
        daemon.requests.length = 0;
        daemon.behaviour.delayMs = 1_000;
        await assert.rejects(
            store.get(cid),
            (err: unknown) => err instanceof StorageTimeoutError && err.timeoutMs === 150,
        );
        assert.deepEqual(daemon.requests, ['block/get']);
        const health = await store.health();
        assert.equal(health.ok, false);
        assert.equal(health.error?.kind, 'timeout');
    });

    void it('a missing object times out online and is NotFoundError offline', async (t) => {
        const missing = contentAddress(utf8('nobody has this'));
        const online = await daemonAndStore(t, { timeoutMs: 150 });
        await assert.rejects(online.store.get(missing), StorageTimeoutError);
        assert.equal(await online.store.has(missing), false);
        await assert.rejects(online.store.pin(missing), NotFoundError);

        const offline = await daemonAndStore(t, { offline: true });
        await assert.rejects(
            offline.store.get(missing),
            (err: unknown) => err instanceof NotFoundError && err.cid === missing,
        );
    });

    void it('maps daemon errors and wrong endpoints to StorageUnavailableError with the reason', async (t) => {
        const { daemon, store } = await daemonAndStore(t);
        daemon.behaviour.failWith = 'repo is locked';
        await assert.rejects(
            store.put(utf8('x')),
            (err: unknown) => err instanceof StorageUnavailableError && err.message.includes('repo is locked'),
        );
        assert.equal(daemon.requests.length, 1, 'an error reply is not retried');

        const wrongPath = new KuboObjectStore({ apiUrl: `${daemon.url}/not-the-api`, retries: 0 });
        daemon.behaviour.failWith = undefined;
        await assert.rejects(
            wrongPath.put(utf8('x')),
            (err: unknown) => err instanceof StorageUnavailableError && err.message.includes('HTTP 404'),
        );
    });

    void it('passes a caller abort through and stops retrying', async (t) => {
        const { daemon, store } = await daemonAndStore(t, { retryBaseDelayMs: 200 });
        daemon.behaviour.dropNext = 10;
        const controller = new AbortController();
        setTimeout(() => controller.abort(new Error('caller gave up')), 50);
        await assert.rejects(store.get(contentAddress(utf8('x')), { signal: controller.signal }), /caller gave up/);
        assert.equal(daemon.requests.length, 1);
    });

    void it('reports health with the daemon version', async (t) => {
        const { store } = await daemonAndStore(t);
        const health = await store.health();
        assert.equal(health.ok, true);
        assert.match(health.detail, /0\.0\.0-fake/);
    });

    void it('rejects a malformed API URL at construction', () => {
        assert.throws(() => new KuboObjectStore({ apiUrl: 'not a url' }), StorageUnavailableError);
        assert.throws(() => new KuboObjectStore({ apiUrl: 'ftp://127.0.0.1:5001' }), StorageUnavailableError);
    });
    void it('aborts a get reply past maxObjectBytes before the integrity check (ReplyTooLargeError)', async (t) => {
        const { daemon, store } = await daemonAndStore(t, { maxObjectBytes: 4096 });
        const small = utf8('small object');
        const cid = await store.put(small);
        // Exactly the limit is read (and then fails the CID check, as any wrong bytes do).
        daemon.behaviour = { oversizeGet: 4096 };
        await assert.rejects(store.get(cid), IntegrityError);
        // Announced too long: refused from the header; sent chunked without a length: cut at the limit.
        for (const behaviour of [{ oversizeGet: 4097 }, { oversizeGet: 1 << 20, hideLength: true }]) {
            daemon.behaviour = behaviour;
            await assert.rejects(
                store.get(cid),
                (err: unknown) => err instanceof ReplyTooLargeError && err.kind === 'tooLarge' && err.limit === 4096,
            );
        }
        // An endless body: the read stops just past the limit, and the connection is closed.
        daemon.behaviour = { endlessGet: true };
        await assert.rejects(
            store.get(cid),
            (err: unknown) =>
                err instanceof ReplyTooLargeError && err.received > 4096 && err.received <= 4096 + 65536 * 2,
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
        const sent = daemon.endlessBytesSent;
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.equal(daemon.endlessBytesSent, sent, 'the daemon kept sending after the abort');
        assert.ok(sent < 64 * 1024 * 1024, `${sent} bytes sent`);
        // Behaving again, the same store reads the object.
        daemon.behaviour = {};
        assert.deepEqual(await store.get(cid), small);
    });

    void it('defaults maxObjectBytes to the largest object the project stores and refuses more', async (t) => {
        const { daemon, store } = await daemonAndStore(t);
        assert.equal(store.maxObjectBytes, MAX_OBJECT_BYTES);
        const cid = await store.put(utf8('x'));
        daemon.behaviour = { oversizeGet: MAX_OBJECT_BYTES + 1 };
        await assert.rejects(store.get(cid), ReplyTooLargeError);
        assert.throws(
            () => new KuboObjectStore({ apiUrl: daemon.url, maxObjectBytes: MAX_OBJECT_BYTES + 1 }),
            StorageUnavailableError,
        );
    });
});
