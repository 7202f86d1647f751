/**
 * The device state file has one writer at a time: a running agent holds its lock, purchases reach
 * it through the provisioning inbox, and a crash (a real SIGKILL of a separate `m2m device`
 * process) leaves a stale lock that the next opener breaks. No counter is ever reused or lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DeviceAgent } from '@m2m-fabric/device';
import { readDeviceState } from '@m2m-fabric/device';
import { deliverGrant, pendingGrantFiles } from '@m2m-fabric/device';
import { DeviceStateLock, lockPathFor } from '@m2m-fabric/device';
import { ServiceError } from '@m2m-fabric/common';
import { MANUFACTURER_MSP } from '@m2m-fabric/cli';
import type { ObjectStore } from '@m2m-fabric/sdk';
import { startTestBed } from './helpers/setup.js';
import { WrappedStore } from './helpers/wrapped-store.js';
import { CLI, waitFor } from './helpers/process.js';
import { tempDir } from './helpers/temp-dir.js';

function codeOf(err: unknown): string {
    return err instanceof ServiceError ? err.code : `untyped:${String(err)}`;
}

void test('a purchase while the agent runs sessions goes through the inbox: counters 1..n, none reused or lost', async (t) => {
    const bed = await startTestBed();
    t.after(() => bed.close());
    const path = await bed.provision('hand-0001', 2);
    const agent = await bed.agent('hand-0001');
    await agent.connect();
    // One writer: a second agent (or a second process) on the same file is refused.
    await assert.rejects(
        DeviceAgent.open({ statePath: path, lockWaitMs: 0 }),
        (e: unknown) => codeOf(e) === 'deviceBusy',
    );

    // A mistyped path is a clear error and creates nothing (no lock, no directory).
    const absent = join(bed.dataDir, 'absent', 'x.json');
    await assert.rejects(DeviceAgent.open({ statePath: absent }), (e: unknown) => codeOf(e) === 'notConfigured');
    assert.equal(existsSync(dirname(absent)), false);

    const counters: bigint[] = [];
    const deliveries: string[] = [];
    const buyer = (async (): Promise<void> => {
        for (let round = 0; round < 3; round++) {
            await bed.net.csp.grantCredit(MANUFACTURER_MSP, 2);
            await bed.net.manufacturer.buySessions('hand-0001', 2);
            const r = await bed.net.manufacturer.provisionDevice('hand-0001', path, { id: 'fog-1' });
            deliveries.push(r.delivery);
        }
    })();
    const deadline = Date.now() + 60_000;
    while (counters.length < 8 && Date.now() < deadline) {
        try {
            counters.push((await agent.establishSession()).counter);
        } catch (err) {
            assert.equal(codeOf(err), 'noSessionsLeft', String(err));
            await new Promise((r) => setTimeout(r, 100)); // the next purchase is on its way
        }
    }
    await buyer;
    assert.deepEqual(deliveries, ['inbox', 'inbox', 'inbox'], 'never written under the running agent');
    assert.deepEqual(counters, [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
    await assert.rejects(agent.establishSession(), (e: unknown) => codeOf(e) === 'noSessionsLeft');
    const state = (await readDeviceState(path))!;
    assert.equal(state.nextCounter, '9');
    assert.equal(state.endCounter, '9');
    assert.deepEqual(await pendingGrantFiles(path), [], 'every grant merged and removed');
    assert.equal(bed.net.csp.listSessions().length, 8, 'eight distinct sessions on the ledger and at the CSP');
    await agent.close();
    assert.equal(existsSync(lockPathFor(path)), false, 'close() released the lock');
    // With no agent running the manufacturer writes the state file itself (under the lock).
    await bed.net.csp.grantCredit(MANUFACTURER_MSP, 1);
    await bed.net.manufacturer.buySessions('hand-0001', 1);
    const r = await bed.net.manufacturer.provisionDevice('hand-0001', path, { id: 'fog-1' });
    assert.equal(r.delivery, 'state');
    assert.equal((await readDeviceState(path))!.endCounter, '10');
    assert.equal((await readDeviceState(path))!.nextCounter, '9');
});

/** The fog's object store, held at `get` while `hold` is set: a session stalls after M1 left the device. */
class HoldingStore extends WrappedStore {
    private gate: { promise: Promise<void>; open: () => void } | undefined;
    hold(): void {
        let open!: () => void;
        const promise = new Promise<void>((r) => (open = r));
        this.gate = { promise, open };
    }
    release(): void {
        this.gate?.open();
        this.gate = undefined;
    }
    override get: ObjectStore['get'] = async (cid, o) => {
        await this.gate?.promise;
        return this.inner.get(cid, o);
    };
}

void test('crash of a device process between reserving a counter and the reply, purchase meanwhile: restart retries the certificate of that counter, then goes on with the next counters', async (t) => {
    let fogStore: HoldingStore | undefined;
    const bed = await startTestBed({
        wrapStore: (store, owner) => (owner === 'fog-1' ? (fogStore ??= new HoldingStore(store)) : store),
    });
    t.after(() => bed.close());
    const path = await bed.provision('crash-0001', 2);
    const url = bed.net.fogs[0]!.deviceBrokerUrl;
    fogStore!.hold();
    let child: ChildProcess | undefined = spawn(
        process.execPath,
        [CLI, 'device', '--device.state', path, '--mqtt.url', url, '--sessions', '1', '--uploads', '0'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    t.after(() => child?.kill('SIGKILL'));
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    // Counter 1 is written as used before M1 leaves; the fog then holds the session at its store.
    await waitFor(
        async () => (await readDeviceState(path))?.nextCounter === '2',
        20_000,
        () => output,
    );
    const lock = JSON.parse(await readFile(lockPathFor(path), 'utf8')) as { pid: number };
    assert.equal(lock.pid, child.pid, 'the device process holds the state file');

    // A purchase while that process runs: delivered to the inbox, the state file untouched.
    await bed.net.csp.grantCredit(MANUFACTURER_MSP, 2);
    await bed.net.manufacturer.buySessions('crash-0001', 2);
    const r = await bed.net.manufacturer.provisionDevice('crash-0001', path, { id: 'fog-1' });
    assert.equal(r.delivery, 'inbox');
    assert.equal((await readDeviceState(path))!.endCounter, '3');
    assert.equal((await pendingGrantFiles(path)).length, 1);

    // Crash: SIGKILL, no clean-up. The lock stays behind, stale.
    const exited = new Promise((res) => child!.once('exit', res));
    child.kill('SIGKILL');
    await exited;
    child = undefined;
    assert.ok(existsSync(lockPathFor(path)));
    fogStore!.release();

    // Restart: the stale lock is broken, the grant merged; counter 1 stays pending (its certificate
    // was never activated) and is given to no other session.
    const agent = await bed.agent('crash-0001');
    assert.equal((JSON.parse(await readFile(lockPathFor(path), 'utf8')) as { pid: number }).pid, process.pid);
    assert.equal(agent.nextCounter, 2n);
    assert.equal(agent.pendingCounter, 1n);
    assert.equal(agent.remainingSessions, 4n, 'pending counter 1 and counters 2..4');
    assert.deepEqual(await pendingGrantFiles(path), []);
    // A crash after the merge was persisted but before the grant file was removed: merging the
    // same grant again changes nothing.
    await deliverGrant(path, 'crash-0001', 5n);
    await agent.reloadEntitlement();
    assert.equal(agent.remainingSessions, 4n);
    assert.deepEqual(await pendingGrantFiles(path), []);
    await agent.connect();
    const s = await agent.establishSession();
    assert.equal(s.counter, 1n, 'the paid certificate of counter 1 was retried, not lost');
    assert.equal(agent.pendingCounter, undefined);
    assert.equal(agent.nextCounter, 2n);
    await agent.upload({ after: 'crash' });
    await agent.close();

    // Devices as separate processes: the real `m2m device` command runs the remaining sessions.
    const run = spawn(
        process.execPath,
        [CLI, 'device', '--device.state', path, '--mqtt.url', url, '--sessions', '2', '--uploads', '1'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    run.stdout.on('data', (d: Buffer) => (out += d.toString()));
    run.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((res) => run.once('exit', res));
    assert.equal(code, 0, out);
    assert.match(out, /session counter 2 established/);
    assert.match(out, /session counter 3 established/);
    assert.equal((await readDeviceState(path))!.nextCounter, '4');
    assert.equal(bed.net.csp.readTelemetry({ equipmentId: 'crash-0001' }).length, 3);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
});

void test('a holder whose lock was rewritten, replaced or released refuses to write (deviceBusy)', async () => {
    const statePath = join(await tempDir('m2m-lock-'), 'device.json');
    const lockPath = lockPathFor(statePath);
    const busy = (e: unknown): boolean => codeOf(e) === 'deviceBusy';
    const withNonce = (text: string, nonce: string): string =>
        JSON.stringify({ ...(JSON.parse(text) as Record<string, unknown>), nonce });

    const rewritten = await DeviceStateLock.acquire(statePath);
    await rewritten.assertHeld();
    await rewritten.assertHeld(); // checking does not change what it checks
    // Metadata changes (a touch, later than the file system's timestamp tick) are not a lost lock:
    // the nonce inside still says whose it is.
    await new Promise((r) => setTimeout(r, 30));
    const later = new Date(Date.now() + 60_000);
    await utimes(lockPath, later, later);
    await rewritten.assertHeld();
    // The same file rewritten with another holder's nonce (a tool that ignored the protocol).
    await new Promise((r) => setTimeout(r, 30));
    await writeFile(lockPath, withNonce(await readFile(lockPath, 'utf8'), 'someone-else'));
    await assert.rejects(rewritten.assertHeld(), busy);

    await rm(lockPath);
    const replaced = await DeviceStateLock.acquire(statePath);
    await replaced.assertHeld();
    // Removed by hand and taken by another agent: a new file under the same name.
    await rm(lockPath);
    const other = await DeviceStateLock.acquire(statePath);
    await assert.rejects(replaced.assertHeld(), busy);
    await other.assertHeld();

    await other.release();
    assert.equal(existsSync(lockPath), false);
    await assert.rejects(other.assertHeld(), busy);
});
