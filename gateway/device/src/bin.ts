#!/usr/bin/env node
/** `m2m-device`: the device agent's own command, for an install of @m2m-fabric/device alone. */
import { runDevice } from './cli.js';

runDevice(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
});
