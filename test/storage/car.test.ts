import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { CarReader } from '@ipld/car/reader';
import { CarWriter } from '@ipld/car/writer';
import * as dagCbor from '@ipld/dag-cbor';
import { CID } from 'multiformats/cid';
import { contentAddress } from '@m2m-fabric/protocol';
import {
    EmbeddedObjectStore,
    exportCar,
    exportStoreToCar,
    importCar,
    importCarToStore,
    IntegrityError,
} from '@m2m-fabric/sdk';
import { randomObject, tempDir } from './helpers.js';

/** The CID type @ipld/car was built against (the test project resolves another multiformats copy). */
type CarCid = Parameters<typeof CarWriter.create>[0] extends (infer C)[] | undefined ? C : never;
const carCid = (cid: string): CarCid => CID.parse(cid) as unknown as CarCid;

interface IndexNode {
    type: string;
    objects?: CID[];
    children?: CID[];
    count?: number;
}

/** Walks the export index from the root and returns every object CID it links. */
function indexedObjects(reader: Map<string, Uint8Array>, root: CID): string[] {
    const node = dagCbor.decode<IndexNode>(reader.get(root.toString()) as Uint8Array);
    assert.equal(node.type, 'm2m-fabric/object-index');
    const here = (node.objects ?? []).map((c) => c.toString());
    return here.concat(...(node.children ?? []).map((child) => indexedObjects(reader, child)));
}

async function readCar(path: string): Promise<{ roots: CID[]; blocks: Map<string, Uint8Array> }> {
    const reader = await CarReader.fromBytes(new Uint8Array(await readFile(path)));
    const blocks = new Map<string, Uint8Array>();
    for await (const { cid, bytes } of reader.blocks()) blocks.set(cid.toString(), bytes);
    return { roots: await reader.getRoots(), blocks };
}

void describe('CAR export and import', () => {
    void it('round-trips a store through a CAR file into a fresh store', async (t) => {
        const dir = await tempDir(t);
        const source = await EmbeddedObjectStore.open(join(dir, 'source'));
        const objects = Array.from({ length: 60 }, (_, i) => randomObject(50 + i * 13));
        const cids = await source.putMany(objects);
        const loose = await source.put(randomObject(99), { pin: false });
        const result = await exportCar(source, join(dir, 'store.car'));
        assert.equal(result.objects, 61);
        assert.equal(result.pinned, 60);
        assert.equal(result.indexBlocks, 2); // one leaf, one root

        // Standard CARv1 with a single dag-cbor root whose index links every object.
        const car = await readCar(join(dir, 'store.car'));
        assert.equal(car.roots.length, 1);
        assert.equal(car.roots[0]?.toString(), result.root);
        assert.equal(car.roots[0]?.code, dagCbor.code);
        assert.deepEqual(indexedObjects(car.blocks, car.roots[0]).sort(), [...cids, loose].sort());
        for (const [i, cid] of cids.entries()) assert.deepEqual(car.blocks.get(cid), objects[i]);

        const target = await EmbeddedObjectStore.open(join(dir, 'target'));
        const imported = await importCar(target, join(dir, 'store.car'));
        assert.deepEqual(imported, { roots: [result.root], imported: 61, skipped: 2 });
        const listed: string[] = [];
        for await (const cid of target.objects()) listed.push(cid);
        assert.deepEqual(listed.sort(), [...cids, loose].sort());
        for (const [i, cid] of cids.entries()) {
            assert.deepEqual(await target.get(cid), objects[i]);
            assert.equal(contentAddress(await target.get(cid)), cid);
        }
    });

    void it('builds a multi-level index that reaches every object', async (t) => {
        const dir = await tempDir(t);
        const store = await EmbeddedObjectStore.open(join(dir, 'store'));
        const cids = await store.putMany(Array.from({ length: 50 }, () => randomObject(40)));
        const result = await exportCar(store, join(dir, 'tree.car'), { indexFanout: 4 });
        // 13 leaves → 4 inner nodes → root.
        assert.equal(result.indexBlocks, 13 + 4 + 1);
        const car = await readCar(join(dir, 'tree.car'));
        assert.deepEqual(indexedObjects(car.blocks, car.roots[0] as CID).sort(), [...cids].sort());
    });

    void it('exports only pinned objects on request, and an empty store', async (t) => {
        const dir = await tempDir(t);
        const store = await EmbeddedObjectStore.open(join(dir, 'store'));
        const empty = await exportCar(store, join(dir, 'empty.car'));
        assert.equal(empty.objects, 0);
        assert.equal((await readCar(join(dir, 'empty.car'))).roots.length, 1);
        const pinned = await store.put(randomObject(10));
        await store.put(randomObject(10), { pin: false });
        const result = await exportStoreToCar({
            storeDir: join(dir, 'store'),
            out: join(dir, 'pinned.car'),
            pinnedOnly: true,
        });
        assert.equal(result.objects, 1);
        const car = await readCar(join(dir, 'pinned.car'));
        assert.deepEqual(indexedObjects(car.blocks, car.roots[0] as CID), [pinned]);
        const imported = await importCarToStore({ storeDir: join(dir, 'copy'), car: join(dir, 'pinned.car') });
        assert.equal(imported.imported, 1);
    });

    void it('fails the export of a damaged store and leaves no partial CAR', async (t) => {
        const dir = await tempDir(t);
        const store = await EmbeddedObjectStore.open(join(dir, 'store'));
        const objects = Array.from({ length: 5 }, () => randomObject(64));
        await store.putMany(objects);
        // Flip one bit of the third object's bytes in its segment file.
        const segment = join(dir, 'store', 'segments', (await readdir(join(dir, 'store', 'segments')))[0] as string);
        const content = await readFile(segment);
        content[content.indexOf(Buffer.from(objects[2] as Uint8Array)) + 10]! ^= 1;
        await writeFile(segment, content);
        await assert.rejects(exportCar(store, join(dir, 'bad.car')), IntegrityError);
        assert.deepEqual(
            (await readdir(dir)).filter((n) => n.includes('car')),
            [],
        );
    });

    void it('refuses a CAR holding a block that does not match its CID', async (t) => {
        const dir = await tempDir(t);
        const good = randomObject(32);
        const bad = randomObject(32);
        const { writer, out } = CarWriter.create([carCid(contentAddress(good))]);
        const written = pipeline(Readable.from(out), createWriteStream(join(dir, 'tampered.car')));
        await writer.put({ cid: carCid(contentAddress(good)), bytes: good });
        await writer.put({ cid: carCid(contentAddress(bad)), bytes: good }); // bytes under another CID
        await writer.close();
        await written;
        const store = await EmbeddedObjectStore.open(join(dir, 'store'));
        await assert.rejects(importCar(store, join(dir, 'tampered.car')), IntegrityError);
        assert.equal(await store.has(contentAddress(bad)), false);
    });
});
