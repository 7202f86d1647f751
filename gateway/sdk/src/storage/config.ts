/**
 * Choosing and opening the object store. The embedded store is the default (nothing to run); setting
 * IPFS_API_URL switches the fog and CSP services to a Kubo daemon.
 *
 * Environment:
 *   IPFS_API_URL      RPC API of a Kubo daemon, e.g. http://127.0.0.1:5001 (unset: embedded store)
 *   IPFS_TIMEOUT_MS   per-request time limit (default 10000)
 *   IPFS_RETRIES      extra attempts after a connection failure (default 3)
 *   IPFS_OFFLINE      "1"/"true": get never searches the network (missing object → NotFoundError)
 *   IPFS_MAX_OBJECT_BYTES  largest reply a get reads before aborting it (default 1048576)
 *   M2M_STORE_DIR     directory of the embedded store (default <data dir>/objects)
 */
import { join } from 'node:path';
import { EmbeddedObjectStore } from './embedded-store.js';
import { StorageUnavailableError } from './errors.js';
import { KuboObjectStore, type KuboStoreOptions } from './kubo-store.js';
import type { ObjectStore } from './object-store.js';

/**
 * `create` (embedded only): make a new store when the directory holds none. The library default is
 * true; the services pass false unless started with `--init-store`.
 */
export type StorageConfig =
    { backend: 'embedded'; directory: string; create?: boolean } | ({ backend: 'kubo' } & KuboStoreOptions);

function nonNegativeInteger(env: NodeJS.ProcessEnv, name: string): number | undefined {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0) {
        throw new StorageUnavailableError(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    }
    return value;
}

/** Reads the storage configuration from the environment; `dataDirectory` hosts the embedded store. */
export function storageConfigFromEnv(env: NodeJS.ProcessEnv, dataDirectory: string): StorageConfig {
    const apiUrl = env.IPFS_API_URL;
    if (apiUrl !== undefined && apiUrl !== '') {
        const config: StorageConfig = { backend: 'kubo', apiUrl };
        const timeoutMs = nonNegativeInteger(env, 'IPFS_TIMEOUT_MS');
        const retries = nonNegativeInteger(env, 'IPFS_RETRIES');
        if (timeoutMs !== undefined) config.timeoutMs = timeoutMs;
        if (retries !== undefined) config.retries = retries;
        const maxObjectBytes = nonNegativeInteger(env, 'IPFS_MAX_OBJECT_BYTES');
        if (maxObjectBytes !== undefined) config.maxObjectBytes = maxObjectBytes;
        if (env.IPFS_OFFLINE !== undefined) config.offline = env.IPFS_OFFLINE === '1' || env.IPFS_OFFLINE === 'true';
        return config;
    }
    const directory = env.M2M_STORE_DIR;
    return {
        backend: 'embedded',
        directory: directory !== undefined && directory !== '' ? directory : join(dataDirectory, 'objects'),
    };
}

/**
 * Opens the configured store. Kubo is not contacted here; call health() to check the daemon.
 *
 * @throws StoreNotInitialisedError when an embedded store is missing and `create` is false.
 */
export async function openObjectStore(config: StorageConfig): Promise<ObjectStore> {
    if (config.backend === 'embedded')
        return EmbeddedObjectStore.open(config.directory, { create: config.create ?? true });
    const { backend: _backend, ...options } = config;
    return new KuboObjectStore(options);
}
