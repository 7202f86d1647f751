/**
 * The CSP's sealed-payload index (records/envelopes.ts): a seal resolves only when its object is
 * in the store and its index entry fsync'd; the index survives a reopen, a torn tail (a write a
 * crash interrupted) is cut (by the writer, never by a read-only opener), a failed store write rejects and indexes nothing, and an unknown
 * record CID is `unknownRecord`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
    ErrorCode,
    P256_SHA256,
    PartyRole,
    ProtocolError,
    RecordSigner,
    contentAddressOfDigest,
    decodeRecord,
    encodeFrameRecord,
    encodePoint,
    randomScalar,
} from '@m2m-fabric/protocol';
import { ENVELOPE_INDEX_FILE, RecordEnvelopes } from '@m2m-fabric/services';
import { EmbeddedObjectStore, type ObjectStore } from '@m2m-fabric/sdk';

const suite = P256_SHA256;

function frame(seq: number): Uint8Array {
    const f = new Uint8Array(40);
    f[0] = 1;
    f[1] = 2;
    new DataView(f.buffer).setBigUint64(2, BigInt(seq));
    f.set(randomBytes(30), 10);
    return f;
}

void test('sealed payloads are durable when a seal resolves, survive a reopen and a torn index tail', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'm2m-envelopes-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const store = await EmbeddedObjectStore.open(join(dir, 'objects'));
    t.after(() => store.close());
    const d = randomScalar(suite);
    const csp = new RecordSigner(suite, d);
    const device = new RecordSigner(suite, randomScalar(suite));
    const open = (s: ObjectStore = store): Promise<RecordEnvelopes> =>
        RecordEnvelopes.open({ dir: join(dir, 'envelopes'), store: s, suite, signerSecretKey: d });
    const envelopes = await open();
    const cids: string[] = [];
    await Promise.all(
        Array.from({ length: 40 }, async (_, i) => {
            const bytes = encodeFrameRecord(device, PartyRole.Device, csp.party(PartyRole.Csp), frame(i));
            const record = decodeRecord(bytes);
            const sealedCid = await envelopes.seal(
                record,
                bytes,
                new TextEncoder().encode(`{"i":${i}}`),
                record.signerKey,
            );
            // Resolved: the object is in the store and the record CID indexed.
            assert.ok(await store.has(sealedCid));
            cids[i] = contentAddressOfDigest(record.digest);
            assert.equal(envelopes.sealedCid(cids[i]), sealedCid);
        }),
    );
    assert.equal(envelopes.size, 40);
    const storageKey = envelopes.storagePublicKey;
    await envelopes.close();

    // A torn entry at the tail (never acknowledged) is cut on reopen; every acknowledged one stays.
    const index = join(dir, 'envelopes', ENVELOPE_INDEX_FILE);
    assert.equal(statSync(index).size, 40 * 72);
    appendFileSync(index, randomBytes(30));
    // A read-only opener (`m2m records share` beside a running CSP) sees the 40 and cuts nothing.
    const reader = await RecordEnvelopes.open({
        dir: join(dir, 'envelopes'),
        store,
        suite,
        signerSecretKey: d,
        readOnly: true,
    });
    assert.equal(reader.size, 40);
    assert.equal(statSync(index).size, 40 * 72 + 30);
    await assert.rejects(
        () =>
            reader.seal(
                decodeRecord(encodeFrameRecord(device, PartyRole.Device, csp.party(PartyRole.Csp), frame(1))),
                new Uint8Array(254),
                new Uint8Array(1),
            ),
        (e: unknown) => e instanceof ProtocolError && e.code === ErrorCode.NotConfigured,
    );
    await reader.close();
    const reopened = await open();
    t.after(() => reopened.close());
    assert.equal(reopened.size, 40);
    assert.equal(statSync(index).size, 40 * 72);
    assert.deepEqual(reopened.storagePublicKey, storageKey, 'the storage key is kept');
    for (const [i, cid] of cids.entries())
        assert.equal(new TextDecoder().decode(await reopened.read(cid)), `{"i":${i}}`);

    // Unknown record CID: typed, nothing changes.
    await assert.rejects(
        () => reopened.share(contentAddressOfDigest(new Uint8Array(32)), encodePoint(suite, device.publicKey)),
        (e: unknown) => e instanceof ProtocolError && e.code === ErrorCode.UnknownRecord,
    );

    // A store that fails: the seal rejects, nothing is indexed.
    const failing: ObjectStore = Object.create(store, {
        putMany: { value: () => Promise.reject(new Error('disk full')) },
    }) as ObjectStore;
    const broken = await RecordEnvelopes.open({ dir: join(dir, 'other'), store: failing, suite, signerSecretKey: d });
    const bytes = encodeFrameRecord(device, PartyRole.Device, csp.party(PartyRole.Csp), frame(99));
    await assert.rejects(() => broken.seal(decodeRecord(bytes), bytes, new Uint8Array([1])), /disk full/);
    assert.equal(broken.size, 0);
    await broken.close();
    assert.equal(statSync(join(dir, 'other', ENVELOPE_INDEX_FILE)).size, 0);
});
