import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
    EmbeddedObjectStore,
    KuboObjectStore,
    openObjectStore,
    storageConfigFromEnv,
    StorageUnavailableError,
} from '@m2m-fabric/sdk';
import { tempDir } from './helpers.js';

void describe('storage configuration', () => {
    void it('defaults to the embedded store under the data directory', async (t) => {
        const data = await tempDir(t);
        const config = storageConfigFromEnv({}, data);
        assert.deepEqual(config, { backend: 'embedded', directory: join(data, 'objects') });
        const store = await openObjectStore(config);
        assert.ok(store instanceof EmbeddedObjectStore);
        assert.equal(storageConfigFromEnv({ M2M_STORE_DIR: '/srv/objects' }, data).backend, 'embedded');
        assert.deepEqual(storageConfigFromEnv({ M2M_STORE_DIR: '/srv/objects' }, data), {
            backend: 'embedded',
            directory: '/srv/objects',
        });
    });

    void it('switches to Kubo when IPFS_API_URL is set', async () => {
        const config = storageConfigFromEnv(
            { IPFS_API_URL: 'http://127.0.0.1:5001', IPFS_TIMEOUT_MS: '2500', IPFS_RETRIES: '0', IPFS_OFFLINE: 'true' },
            '/unused',
        );
        assert.deepEqual(config, {
            backend: 'kubo',
            apiUrl: 'http://127.0.0.1:5001',
            timeoutMs: 2500,
            retries: 0,
            offline: true,
        });
        const store = await openObjectStore(config);
        assert.ok(store instanceof KuboObjectStore);
        assert.equal(store.timeoutMs, 2500);
    });

    void it('rejects malformed numbers', () => {
        for (const bad of ['-1', '1.5', 'ten']) {
            assert.throws(
                () => storageConfigFromEnv({ IPFS_API_URL: 'http://127.0.0.1:5001', IPFS_TIMEOUT_MS: bad }, '/d'),
                StorageUnavailableError,
            );
        }
    });
});
