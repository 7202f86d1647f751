/**
 * `m2m storage export|import`: moves the embedded IPFS store (docs/storage.md) to and from a CAR
 * file, e.g. to hand it to Kubo with `ipfs dag import`. The store directory is `--store DIR`, else
 * `M2M_STORE_DIR`, else `<--data-dir>/objects` (the services' layout; `npm start` uses
 * .data/demo/objects). Objects are immutable and every write is atomic, so exporting while the
 * services run is safe: the CAR holds what was stored when the export listed the store.
 */
import { access } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '@m2m-fabric/common';
import { exportStoreToCar, importCarToStore } from '@m2m-fabric/sdk';
import { settingsHelp } from './settings.js';

/** The store directory variable, as the SDK's storage settings name it. */
const STORE_DIR_ENV = 'M2M_STORE_DIR';

export const STORAGE_USAGE = `usage: m2m storage <export|import> [options]

  m2m storage export --out FILE [--store DIR | --data-dir DIR] [--pinned-only]
      writes every object of the embedded store (or only pinned ones) to a CARv1 file with one
      root (an index linking every object); prints the root CID and counts as JSON.
      Then on a Kubo node: ipfs dag import FILE
  m2m storage import --car FILE [--store DIR | --data-dir DIR] [--no-pin]
      reads a CAR (from "m2m storage export" or "ipfs dag export") into the embedded store,
      verifying every block against its CID; objects are pinned unless --no-pin.

  store directory: --store DIR, else M2M_STORE_DIR, else <data dir>/objects with --data-dir DIR
  (default .data/demo, where "npm start" keeps its store).`;

async function exists(path: string): Promise<boolean> {
    try {
        await access(path);
        return true;
    } catch {
        return false;
    }
}

function storeDirectory(values: { store?: string; 'data-dir'?: string }): string {
    if (values.store !== undefined && values['data-dir'] !== undefined)
        throw new ConfigError(['give --store or --data-dir, not both']);
    if (values.store !== undefined) return values.store;
    const env = process.env[STORE_DIR_ENV];
    if (values['data-dir'] === undefined && env !== undefined && env !== '') return env;
    return join(values['data-dir'] ?? '.data/demo', 'objects');
}

export async function runStorage(argv: string[]): Promise<void> {
    let parsed;
    try {
        parsed = parseArgs({
            args: argv,
            options: {
                out: { type: 'string' },
                car: { type: 'string' },
                store: { type: 'string' },
                'data-dir': { type: 'string' },
                'pinned-only': { type: 'boolean', default: false },
                'no-pin': { type: 'boolean', default: false },
                help: { type: 'boolean', default: false },
            },
            allowPositionals: true,
            strict: true,
        });
    } catch (err) {
        throw new ConfigError([`${(err as Error).message}\n\n${STORAGE_USAGE}`]);
    }
    const { values, positionals } = parsed;
    const [action, ...extra] = positionals;
    if (values.help || action === undefined) {
        console.log(`${STORAGE_USAGE}\n${settingsHelp('storage')}`);
        return;
    }
    if (extra.length > 0) throw new ConfigError([`unexpected argument ${extra[0]}\n\n${STORAGE_USAGE}`]);
    const storeDir = storeDirectory(values);
    // Opening a missing directory would create an empty store and export nothing: refuse instead.
    const storeExists = await exists(join(storeDir, 'store.json'));
    switch (action) {
        case 'export': {
            if (values.out === undefined) throw new ConfigError([`export needs --out FILE\n\n${STORAGE_USAGE}`]);
            if (values.car !== undefined || values['no-pin'])
                throw new ConfigError(['--car and --no-pin are for import']);
            if (!storeExists)
                throw new ConfigError([
                    `no embedded object store at ${resolve(storeDir)} (no store.json); pass --store DIR or --data-dir DIR`,
                ]);
            if (!(await exists(dirname(resolve(values.out)))))
                throw new ConfigError([`the directory of --out ${values.out} does not exist`]);
            const result = await exportStoreToCar({ storeDir, out: values.out, pinnedOnly: values['pinned-only'] });
            console.log(JSON.stringify({ ...result, store: storeDir }));
            return;
        }
        case 'import': {
            if (values.car === undefined) throw new ConfigError([`import needs --car FILE\n\n${STORAGE_USAGE}`]);
            if (values.out !== undefined || values['pinned-only'])
                throw new ConfigError(['--out and --pinned-only are for export']);
            if (!(await exists(values.car))) throw new ConfigError([`no such CAR file: ${values.car}`]);
            const result = await importCarToStore({ storeDir, car: values.car, pin: !values['no-pin'] });
            console.log(JSON.stringify({ ...result, store: storeDir, created: !storeExists }));
            return;
        }
        default:
            throw new ConfigError([`unknown storage action ${action}\n\n${STORAGE_USAGE}`]);
    }
}
