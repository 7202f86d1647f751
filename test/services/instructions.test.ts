/**
 * The CSP's instruction outbox: durable before the call returns, delivered in order when the
 * device's session channel is next available, removed only on the device's acknowledgement,
 * surviving CSP restarts; the `m2m csp instruct` command spools into it exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { spoolInstruction } from '@m2m-fabric/services';
import { readDeviceState } from '@m2m-fabric/device';
import { startTestBed } from './helpers/setup.js';
import { runCli, waitFor } from './helpers/process.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

void test('instructions for an offline device: durable, in order, acknowledged, survive CSP restarts', async (t) => {
    const bed = await startTestBed({ cspOptions: { instructionRetryMs: 300 } });
    t.after(() => bed.close());
    const cspDir = join(bed.dataDir, 'csp');
    await bed.provision('ins-0001', 2);
    let agent = await bed.agent('ins-0001');
    const received: string[] = [];
    const listen = (a: typeof agent): void => a.onInstruction((p) => received.push(new TextDecoder().decode(p)));
    listen(agent);
    await agent.connect();
    await agent.establishSession();
    await agent.upload({ hello: 1 }); // the CSP learns the equipment id inside the channel
    // Device offline (its process stopped): nothing acknowledges.
    await agent.close();
    const target = { equipmentId: 'ins-0001' };
    await bed.net.csp.sendInstruction(target, text('a'));
    assert.equal(await bed.net.csp.sendInstruction(target, text('b')), 'queued', 'b waits behind a');
    // Durable before the call returned: on disk in the outbox log.
    const log = await readFile(join(cspDir, 'csp-instructions.jsonl'), 'utf8');
    assert.match(log, /"target":"eq:ins-0001"/);
    assert.equal(bed.net.csp.pendingInstructions(target).length, 2);

    // CSP restart with both pending, and one more queued by the CLI while the CSP is down.
    await bed.net.csp.close();
    const cli = await runCli(['csp', 'instruct', '--data.dir', cspDir, '--equipment', 'ins-0001', '--payload', 'c']);
    assert.equal(cli.code, 0, cli.out);
    const bad = await runCli(['csp', 'instruct', '--data.dir', cspDir, '--payload', 'x']);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /instruct needs --equipment ID or --route HEX/);
    await bed.net.restartCsp();
    await waitFor(() => bed.net.csp.pendingInstructions(target).length === 3, 5_000);
    assert.deepEqual(received, [], 'nothing reached the offline device');

    // The device comes back (a new process: new MQTT client id) and uploads: all three arrive, in order.
    agent = await bed.agent('ins-0001');
    listen(agent);
    await agent.connect();
    await agent.upload({ back: true });
    await waitFor(
        () => bed.net.csp.pendingInstructions().length === 0,
        15_000,
        () => JSON.stringify(received),
    );
    assert.deepEqual(received, ['a', 'b', 'c']);
    assert.equal((await readDeviceState(bed.statePath('ins-0001')))!.lastInstructionId, '3');
    assert.match(bed.net.csp.metrics.render(), /m2m_csp_instructions_total\{outcome="acknowledged"\} 3/);
    assert.match(bed.net.csp.metrics.render(), /m2m_csp_instruction_outbox_depth 0/);

    // Another restart delivers nothing twice; a library call while the device is online goes at once.
    await bed.net.restartCsp();
    await agent.upload({ again: true });
    assert.equal(await bed.net.csp.sendInstruction(target, text('d')), 'sent');
    await waitFor(() => bed.net.csp.pendingInstructions().length === 0, 10_000);
    assert.deepEqual(received, ['a', 'b', 'c', 'd']);

    // The spool is taken in exactly once even when its file is seen again (crash before removal).
    await spoolInstruction(cspDir, target, text('e'));
    await waitFor(
        () => received.length === 5,
        10_000,
        () => JSON.stringify(received),
    );
    await new Promise((r) => setTimeout(r, 700)); // two more spool passes
    assert.deepEqual(received, ['a', 'b', 'c', 'd', 'e']);
});

void test('a lost acknowledgement: the CSP re-sends, the device acknowledges again without handling twice', async (t) => {
    const bed = await startTestBed({ cspOptions: { instructionRetryMs: 300 } });
    t.after(() => bed.close());
    await bed.provision('dup-0001', 1);
    const agent = await bed.agent('dup-0001');
    const received: string[] = [];
    let dropNextAck = true;
    agent.onInstruction((p) => {
        received.push(new TextDecoder().decode(p));
        // The connection drops right after the instruction was handled, before its Ack leaves.
        if (dropNextAck) void agent.disconnect();
        dropNextAck = false;
    });
    await agent.connect();
    await agent.establishSession();
    await agent.upload({ hello: 1 });
    await bed.net.csp.sendInstruction({ equipmentId: 'dup-0001' }, text('once'));
    await waitFor(() => received.length === 1, 10_000);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(bed.net.csp.pendingInstructions().length, 1, 'not acknowledged: still in the outbox');
    await agent.connect();
    await agent.upload({ back: 1 });
    await waitFor(() => bed.net.csp.pendingInstructions().length === 0, 10_000);
    assert.deepEqual(received, ['once'], 'handled once');
    // An unknown device is a typed error, and nothing is queued.
    await assert.rejects(bed.net.csp.sendInstruction({ equipmentId: 'nobody' }, text('x')), /unknownSession/);
    assert.equal(bed.net.csp.pendingInstructions().length, 0);
});
