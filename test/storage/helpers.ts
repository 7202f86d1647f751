import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** A fresh temp directory removed after the test. */
export async function tempDir(t: TestContext, prefix = 'm2m-storage-'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    t.after(() => rm(dir, { recursive: true, force: true }));
    return dir;
}

export function randomObject(size: number): Uint8Array {
    return new Uint8Array(randomBytes(size));
}

/** Sizes around every boundary that matters: empty, varint/base32 edges, sha256 blocks, 1 MiB. */
export const OBJECT_SIZES = [
    0,
    1,
    2,
    3,
    31,
    32,
    33,
    55,
    56,
    63,
    64,
    65,
    127,
    128,
    255,
    256,
    300,
    511,
    512,
    1000,
    1023,
    1024,
    4095,
    4096,
    4097,
    65535,
    65536,
    262144,
    1024 * 1024 - 1,
    1024 * 1024,
];
