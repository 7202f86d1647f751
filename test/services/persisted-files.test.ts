/**
 * Issue 17 #5: every persisted file (device state, service key, state lock) is validated fully at
 * load; a bad one is refused with a typed error naming the file, before any counter is reserved.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile, stat, utimes, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { bigIntToBytes, encodePoint, getSuite, randomScalar, toHex } from '@m2m-fabric/protocol';
import { readDeviceState, writeDeviceState, type DeviceStateFile } from '@m2m-fabric/device';
import { DeviceStateLock, lockPathFor } from '@m2m-fabric/device';
import { DeviceAgent } from '@m2m-fabric/device';
import { loadOrCreateServiceKey } from '@m2m-fabric/services';
import { PersistedFileError } from '@m2m-fabric/common';
import { ServiceError, encodeErrorBody, decodeErrorBody } from '@m2m-fabric/common';
import { Organisation } from '@m2m-fabric/embedded-ledger';
import { tempDir } from './helpers/temp-dir.js';

const suite = getSuite('P256-SHA256');
const point = (): string => toHex(encodePoint(suite, suite.Point.BASE.multiply(randomScalar(suite))));

function validState(): DeviceStateFile {
    return {
        version: 1,
        suite: suite.id,
        equipmentId: 'pi-0001',
        w: toHex(bigIntToBytes(randomScalar(suite), suite.scalarBytes)),
        fog: { id: 'fog-1', publicKey: point(), brokerUrl: 'mqtt://127.0.0.1:1' },
        cspPublicKey: point(),
        nextCounter: '1',
        endCounter: '5',
    };
}

/** Asserts `p` rejects with a corruptFile/insecureFile PersistedFileError that names `path`. */
async function rejectsNaming(p: Promise<unknown>, path: string, code = 'corruptFile', detail?: RegExp): Promise<void> {
    await assert.rejects(p, (err: unknown) => {
        assert.ok(err instanceof PersistedFileError, `typed error, got ${String(err)}`);
        assert.equal(err.code, code);
        assert.equal(err.path, path);
        assert.ok(err.message.includes(path), err.message);
        if (detail !== undefined) assert.match(err.message, detail);
        return true;
    });
}

void test('device state: empty, truncated, random and non-object files are refused naming the file', async () => {
    const dir = await tempDir('m2m-files-');
    const path = join(dir, 'dev.json');
    const good = `${JSON.stringify(validState())}\n`;
    const bad: [string, string | Buffer][] = [
        ['empty', ''],
        ['truncated', good.slice(0, good.length / 2)],
        ['random', Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 97 + 13) % 256))],
        ['array', '[1,2,3]'],
        ['null', 'null'],
    ];
    for (const [, content] of bad) {
        await writeFile(path, content, { mode: 0o600 });
        await rejectsNaming(readDeviceState(path), path);
    }
});

void test('device state: every invalid field is refused at load (w = 0, short w, numeric counter, wrong suite, ...)', async () => {
    const dir = await tempDir('m2m-files-');
    const path = join(dir, 'dev.json');
    const cases: [string, (s: Record<string, unknown>) => void, RegExp][] = [
        ['w = 0', (s) => (s.w = '00'.repeat(32)), /w:/],
        ['20-byte w', (s) => (s.w = 'ab'.repeat(20)), /w must be 32 bytes/],
        ['w >= n', (s) => (s.w = 'ff'.repeat(32)), /w:/],
        ['counter as JSON number', (s) => (s.nextCounter = 1), /nextCounter must be a decimal string/],
        ['endCounter as number', (s) => (s.endCounter = 5), /endCounter/],
        ['nextCounter 0', (s) => (s.nextCounter = '0'), /at least 1/],
        ['nextCounter past end', (s) => (s.nextCounter = '47'), /past endCounter/],
        ['wrong suite', (s) => (s.suite = 'P521-SHA512'), /unknown suite/],
        ['P-384 suite with P-256 keys', (s) => (s.suite = 'P384-SHA384'), /must be 48 bytes/],
        [
            'fog key not a point',
            (s) => ((s.fog as Record<string, unknown>).publicKey = '04' + 'ab'.repeat(32)),
            /fog\.publicKey/,
        ],
        ['no csp key', (s) => delete s.cspPublicKey, /cspPublicKey/],
        ['unknown version', (s) => (s.version = 2), /unknown version/],
        [
            'session with bad route',
            (s) => {
                s.nextCounter = '2';
                s.session = {
                    counter: '1',
                    routeId: 'zz',
                    symKey: 'ab'.repeat(32),
                    established: true,
                    channel: { sendSeq: '0', recvHighest: '-1', recvWindow: '0'.repeat(16) },
                };
            },
            /routeId/,
        ],
        // Forward secrecy: x_D of the pending certificate (until the Confirm) is checked like w.
        [
            'x_D = 0',
            (s) => {
                s.nextCounter = '2';
                s.pendingCounter = '1';
                s.pendingEphemeral = '00'.repeat(32);
            },
            /pendingEphemeral:/,
        ],
        [
            '20-byte x_D',
            (s) => {
                s.nextCounter = '2';
                s.pendingCounter = '1';
                s.pendingEphemeral = 'ab'.repeat(20);
            },
            /pendingEphemeral must be 32 bytes/,
        ],
        [
            'x_D >= n',
            (s) => {
                s.nextCounter = '2';
                s.pendingCounter = '1';
                s.pendingEphemeral = 'ff'.repeat(32);
            },
            /pendingEphemeral:/,
        ],
        [
            'x_D without a pending counter',
            (s) => {
                s.nextCounter = '2';
                s.pendingEphemeral = 'ab'.repeat(32);
            },
            /pendingEphemeral without a pendingCounter/,
        ],
        [
            'pending session without symKey_i',
            (s) => {
                s.nextCounter = '2';
                s.pendingCounter = '1';
                s.pendingEphemeral = 'ab'.repeat(32);
                s.session = { counter: '1', routeId: 'ab'.repeat(16), established: false };
            },
            /session\.symKey/,
        ],
        [
            'K_i in a session not established',
            (s) => {
                s.nextCounter = '2';
                s.pendingCounter = '1';
                s.session = {
                    counter: '1',
                    routeId: 'ab'.repeat(16),
                    symKey: 'ab'.repeat(32),
                    trafficKey: 'ab'.repeat(32),
                    established: false,
                };
            },
            /session\.trafficKey in a session not established/,
        ],
    ];
    for (const [name, mutate, detail] of cases) {
        const s = validState() as unknown as Record<string, unknown>;
        mutate(s);
        await writeFile(path, JSON.stringify(s), { mode: 0o600 });
        await rejectsNaming(readDeviceState(path), path, 'corruptFile', detail).catch((err: unknown) => {
            throw new Error(`${name}: ${(err as Error).message}`);
        });
    }
    await writeFile(path, JSON.stringify(validState()), { mode: 0o600 });
    assert.equal((await readDeviceState(path))?.equipmentId, 'pi-0001');
    // A well-formed pending session (x_D, symKey_i, no channel yet) loads.
    const pending = validState() as unknown as Record<string, unknown>;
    pending.nextCounter = '2';
    pending.pendingCounter = '1';
    pending.pendingEphemeral = 'ab'.repeat(32);
    pending.session = { counter: '1', routeId: 'ab'.repeat(16), symKey: 'ab'.repeat(32), established: false };
    await writeFile(path, JSON.stringify(pending), { mode: 0o600 });
    assert.equal((await readDeviceState(path))?.pendingEphemeral, 'ab'.repeat(32));
});

void test('device state: the channel trust roots are checked at load (shape, PEM, CA roots, policy)', async () => {
    const dir = await tempDir('m2m-files-');
    const path = join(dir, 'dev.json');
    const orderer = await Organisation.open('OrdererMSP', join(dir, 'orderer'));
    const org = await Organisation.open('CSPMSP', join(dir, 'csp'));
    const leaf = (await org.enrol('peer0')).certificatePem;
    const trust = {
        channel: 'm2m',
        chaincode: 'm2m',
        endorsementPolicy: 'MAJORITY Endorsement',
        orderers: [{ mspId: 'OrdererMSP', rootCertificates: [orderer.caCertificatePem] }],
        organisations: [{ mspId: 'CSPMSP', rootCertificates: [org.caCertificatePem] }],
    };
    const withTrust = (channelTrust: unknown): Record<string, unknown> => ({ ...validState(), channelTrust });
    await writeFile(path, JSON.stringify(withTrust(trust)), { mode: 0o600 });
    assert.deepEqual((await readDeviceState(path))?.channelTrust, trust);
    const cases: [string, unknown, RegExp][] = [
        ['not an object', 'roots', /channelTrust: not a channel trust file/],
        ['no chaincode', { ...trust, chaincode: undefined }, /channelTrust: not a channel trust file/],
        [
            'a PEM that is not a certificate',
            {
                ...trust,
                organisations: [
                    {
                        mspId: 'CSPMSP',
                        rootCertificates: ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'],
                    },
                ],
            },
            /channelTrust:/,
        ],
        [
            'a leaf as a root',
            { ...trust, organisations: [{ mspId: 'CSPMSP', rootCertificates: [leaf] }] },
            /a root of CSPMSP is not a CA certificate/,
        ],
        ['no orderer', { ...trust, orderers: [] }, /channelTrust: no roots/],
        [
            'an MSP without roots',
            { ...trust, organisations: [{ mspId: 'CSPMSP', rootCertificates: [] }] },
            /CSPMSP has no root certificate/,
        ],
        ['an MSP twice', { ...trust, organisations: [trust.organisations[0], trust.organisations[0]] }, /listed twice/],
        ['an unknown policy', { ...trust, endorsementPolicy: 'OutOf(2)' }, /unsupported endorsement policy/],
    ];
    for (const [name, channelTrust, detail] of cases) {
        await writeFile(path, JSON.stringify(withTrust(channelTrust)), { mode: 0o600 });
        await rejectsNaming(readDeviceState(path), path, 'corruptFile', detail).catch((err: unknown) => {
            throw new Error(`${name}: ${(err as Error).message}`);
        });
    }
});

void test('device agent: a bad state is refused before a counter is reserved, and the file is unchanged', async () => {
    const dir = await tempDir('m2m-files-');
    const path = join(dir, 'dev.json');
    const s = validState() as unknown as Record<string, unknown>;
    s.w = '00'.repeat(32);
    await writeFile(path, JSON.stringify(s), { mode: 0o600 });
    const before = await readFile(path, 'utf8');
    await rejectsNaming(DeviceAgent.open({ statePath: path }), path);
    assert.equal(await readFile(path, 'utf8'), before, 'no counter advanced');
    assert.deepEqual(
        (await readdir(dir)).filter((n) => n.endsWith('.lock')),
        [],
        'no lock left behind',
    );
});

void test('a state file other users can read is made 0600 with a warning, or refused on request', async () => {
    const dir = await tempDir('m2m-files-');
    const path = join(dir, 'dev.json');
    await writeDeviceState(path, validState());
    await chmod(path, 0o644);
    const warnings: string[] = [];
    assert.ok(await readDeviceState(path, { onWarning: (w) => warnings.push(w) }));
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /mode 0644; changed to 0600/);
    assert.ok(warnings[0]!.includes(path));
    await chmod(path, 0o640);
    await rejectsNaming(readDeviceState(path, { insecureMode: 'refuse' }), path, 'insecureFile');
});

void test('service key file: corrupt, wrong suite, zero and short scalars are refused naming the file', async () => {
    const dir = await tempDir('m2m-files-');
    const path = join(dir, 'csp.json');
    const cases: [string, RegExp][] = [
        ['', /empty/],
        ['{"suite":"P256-SHA256","privateKey":"ab', /not valid JSON/],
        [JSON.stringify({ suite: 'P384-SHA384', privateKey: 'ab'.repeat(48) }), /holds a P384-SHA384 key/],
        [JSON.stringify({ suite: 'nope', privateKey: 'ab'.repeat(32) }), /unknown suite/],
        [JSON.stringify({ suite: 'P256-SHA256', privateKey: '00'.repeat(32) }), /privateKey:/],
        [JSON.stringify({ suite: 'P256-SHA256', privateKey: 'ab'.repeat(20) }), /privateKey must be 32 bytes/],
        [JSON.stringify({ suite: 'P256-SHA256', privateKey: 7 }), /privateKey must be/],
    ];
    for (const [content, detail] of cases) {
        await writeFile(path, content, { mode: 0o600 });
        await rejectsNaming(loadOrCreateServiceKey(path, suite), path, 'corruptFile', detail);
        assert.equal(await readFile(path, 'utf8'), content, 'a bad key file is never replaced');
    }
    const fresh = join(dir, 'fog.json');
    const key = await loadOrCreateServiceKey(fresh, suite);
    assert.equal((await loadOrCreateServiceKey(fresh, suite)).publicKeyHex, key.publicKeyHex);
});

void test('state lock: unreadable, dead-pid and leftover lock files are removed; a live lock is kept', async () => {
    const dir = await tempDir('m2m-files-');
    const path = join(dir, 'dev.json');
    const lockPath = lockPathFor(path);
    // An empty lock file (written by hand or by another tool), old enough not to be in creation.
    await writeFile(lockPath, '');
    const old = new Date(Date.now() - 60_000);
    await utimes(lockPath, old, old);
    // Leftovers of a taker killed between creating its temporary file and unlinking it.
    const tmp = join(dir, '.dev.json.lock.0123456789abcdef01234567.tmp');
    const aside = `${lockPath}.stale-aabbccddeeff`;
    for (const p of [tmp, aside]) {
        await writeFile(p, '{}');
        const older = new Date(Date.now() - 5 * 60_000);
        await utimes(p, older, older);
    }
    const lock = await DeviceStateLock.acquire(path);
    const names = await readdir(dir);
    assert.ok(!names.includes('.dev.json.lock.0123456789abcdef01234567.tmp'));
    assert.ok(!names.some((n) => n.includes('.stale-')));
    await lock.release();
    // A lock of a process that no longer exists (pid far above pid_max) is broken.
    await writeFile(
        lockPath,
        JSON.stringify({ pid: 2 ** 30, host: hostname(), nonce: 'x', since: new Date().toISOString() }),
    );
    await (await DeviceStateLock.acquire(path)).release();
    // A lock without `since` held by a live process: refused, and the message has no "undefined".
    await writeFile(lockPath, JSON.stringify({ pid: process.pid, host: hostname(), nonce: 'y' }));
    await assert.rejects(DeviceStateLock.acquire(path), (err: unknown) => {
        assert.ok(err instanceof ServiceError);
        assert.equal(err.code, 'deviceBusy');
        assert.doesNotMatch(err.message, /undefined/);
        return true;
    });
    // A live pid whose process started after the lock was taken is a reused pid: stale.
    await writeFile(
        lockPath,
        JSON.stringify({ pid: process.pid, host: hostname(), nonce: 'z', since: '2000-01-01T00:00:00.000Z' }),
    );
    const taken = await DeviceStateLock.acquire(path);
    await taken.release();
});

void test('error replies carry their code once (no "malformedInput: malformedInput: ...")', () => {
    const err = new ServiceError('malformedInput', new ServiceError('malformedInput', 'bad M3').message);
    assert.equal(err.message, 'malformedInput: bad M3');
    const decoded = decodeErrorBody(encodeErrorBody('malformedInput', err.message));
    assert.equal(decoded.message, 'malformedInput: bad M3');
});
