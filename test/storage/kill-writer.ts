/**
 * Child process for the crash test: puts random objects into the embedded store in argv[2] and
 * prints each CID once its put has resolved (= acknowledged), until the parent kills it.
 */
import { randomBytes } from 'node:crypto';
import { EmbeddedObjectStore } from '@m2m-fabric/sdk';

const store = await EmbeddedObjectStore.open(process.argv[2] ?? '');
// Bounded in case the parent is gone.
for (let i = 0; i < 10_000; i++) {
    const cid = await store.put(new Uint8Array(randomBytes(200 + (i % 300))));
    process.stdout.write(`${cid}\n`);
}
