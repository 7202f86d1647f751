/**
 * Issue 17 #3: a mistyped store path must not become a new empty store. A service opens only a
 * store that exists, unless started with --init-store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EmbeddedObjectStore, StoreNotInitialisedError, openObjectStore } from '@m2m-fabric/sdk';
import { serviceStorageConfig } from '@m2m-fabric/cli';
import { runCli } from './helpers/process.js';
import { tempDir } from './helpers/temp-dir.js';

void test('embedded store: create: false refuses a directory without a store and creates nothing', async () => {
    const dir = await tempDir('m2m-store-path-');
    const typo = join(dir, 'objcets');
    await assert.rejects(EmbeddedObjectStore.open(typo, { create: false }), (err: unknown) => {
        assert.ok(err instanceof StoreNotInitialisedError);
        assert.equal(err.kind, 'notInitialised');
        assert.ok(err.message.includes(typo));
        return true;
    });
    assert.equal(existsSync(typo), false, 'nothing created');
    const made = await EmbeddedObjectStore.open(join(dir, 'objects'));
    await made.close();
    const reopened = await EmbeddedObjectStore.open(join(dir, 'objects'), { create: false });
    await reopened.close();
});

void test('services open a store only with --init-store or when it exists', async () => {
    const dir = await tempDir('m2m-store-path-');
    const env = { M2M_STORE_DIR: join(dir, 'typo') };
    assert.deepEqual(serviceStorageConfig({}, dir, env), {
        backend: 'embedded',
        directory: join(dir, 'typo'),
        create: false,
    });
    assert.equal((serviceStorageConfig({ 'init-store': true }, dir, env) as { create: boolean }).create, true);
    assert.equal((serviceStorageConfig({}, dir, { ...env, M2M_INIT_STORE: '1' }) as { create: boolean }).create, true);
    await assert.rejects(openObjectStore(serviceStorageConfig({}, dir, env)), StoreNotInitialisedError);
});

void test('m2m fog and m2m csp refuse to start on a store they did not create; nothing is written', async () => {
    const dir = await tempDir('m2m-store-path-');
    const store = join(dir, 'objetcs');
    const env = { M2M_STORE_DIR: store, FABRIC_CONNECTION: '', FABRIC_PEER_ENDPOINT: '' };
    for (const args of [
        ['fog', '--fog.id', 'fog-1', '--data.dir', join(dir, 'fog'), '--csp.url', 'mqtt://127.0.0.1:1'],
        ['csp', '--data.dir', join(dir, 'csp')],
    ]) {
        const r = await runCli(args, 30_000, env);
        assert.equal(r.code, 1, r.out);
        assert.match(r.out, /no object store in .*objetcs.*--init-store/);
        assert.doesNotMatch(r.out, /\n\s+at /, 'no stack trace');
        assert.equal(existsSync(store), false, 'no store created');
        assert.equal(existsSync(join(dir, args[0] === 'fog' ? 'fog' : 'csp', 'keys')), false, 'no key created');
    }
    // With --init-store the store is created; the run then stops at the missing ledger settings.
    const init = await runCli(['csp', '--data.dir', join(dir, 'csp'), '--init-store'], 30_000, env);
    assert.equal(init.code, 1);
    assert.match(init.out, /FABRIC_PEER_ENDPOINT/);
    assert.equal(existsSync(join(store, 'store.json')), true);
});
