/** Temporary directories for the services tests, removed when the test file's run ends. */
import { after } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];

after(() => Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true }))));

/** A new directory under the OS temporary directory, named `<prefix>XXXXXX`. */
export async function tempDir(prefix: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    made.push(dir);
    return dir;
}
