/**
 * Receipt delivery (docs/traceability.md, "Receipts"): with records on and deliverReceipts, the CSP
 * sends a device the Merkle receipt of each record it uploaded once the record's batch is
 * anchored, over the session channel; the agent verifies it against the channel trust roots its
 * state file was provisioned with before handing it on. The receipt is of the device's own
 * record (signed with the session's d_i), anchored by the CSP, and verifies offline; the device's
 * receipt book then holds it, and an answer to a record query built from it passes step 9.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
    PartyRole,
    ReceiptVerifier,
    RecordType,
    answeredRecordOfReceipt,
    decodeReceipt,
    encodeReceiptNotice,
    decodeReceiptNotice,
    equalBytes,
    openRecord,
    partyKeyIdOf,
    verifyAnsweredRecord,
    type CommunicationRecord,
} from '@m2m-fabric/protocol';
import { MemoryReceiptBook, readDeviceState } from '@m2m-fabric/device';

import { startTestBed } from '../services/helpers/setup.js';

void test('receipt notices: a receipt inside, anything else is an ordinary instruction', () => {
    const receipt = new Uint8Array([1, 2, 3]);
    assert.deepEqual(decodeReceiptNotice(encodeReceiptNotice(receipt)), receipt);
    assert.equal(decodeReceiptNotice(new TextEncoder().encode('{"setpoint":20}')), undefined);
    assert.equal(decodeReceiptNotice(new Uint8Array()), undefined);
    assert.equal(decodeReceiptNotice(new Uint8Array([...encodeReceiptNotice(receipt), 0])), undefined);
});

void test('the CSP sends each uploaded record its Merkle receipt once anchored; the device verifies and keeps it', async (t) => {
    const bed = await startTestBed({
        records: { batchSize: 1000, maxDelayMs: 100 },
        cspOptions: { deliverReceipts: true, instructionRetryMs: 200 },
    });
    t.after(() => bed.close());
    await bed.provision('rcpt-0001', 1);
    const state = await readDeviceState(bed.statePath('rcpt-0001'));
    assert.ok(state?.channelTrust !== undefined, 'provisioning wrote the channel trust roots');
    const agent = await bed.agent('rcpt-0001');
    await agent.connect();
    const received: { receipt: Uint8Array; record: CommunicationRecord }[] = [];
    const instructions: Uint8Array[] = [];
    agent.onReceipt((receipt, record) => received.push({ receipt, record }));
    agent.onInstruction((body) => instructions.push(body));
    const cspCopies: { equipmentId?: string; receipt: Uint8Array }[] = [];
    bed.net.csp.onReceipt((r) => cspCopies.push(r));
    await agent.establishSession();
    await agent.upload({ temperature: 21 });
    await agent.upload({ temperature: 22 });
    for (let i = 0; i < 200 && received.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(received.length, 2, 'one receipt per upload');
    assert.equal(instructions.length, 0, 'receipt notices do not reach the instruction handlers');
    const verifier = new ReceiptVerifier(state.channelTrust);
    for (const { receipt, record } of received) {
        // An upload record, signed by the device's session key, verified offline against the roots alone.
        assert.equal(record.type, RecordType.Upload);
        assert.equal(record.sender.role, PartyRole.Device);
        assert.ok(equalBytes(record.sender.keyId, partyKeyIdOf(bed.net.suite, record.signerKey)));
        assert.deepEqual(verifier.verifyBytes(receipt), openRecord(decodeReceipt(receipt).record));
    }
    assert.equal(
        new Set(received.map((r) => r.record.sequence)).size,
        2,
        'the receipts are of the two different uploads',
    );
    // The CSP kept its copy, named with the machine's equipment id from its telemetry.
    assert.equal(cspCopies.length, 2);
    assert.ok(cspCopies.every((c) => c.equipmentId === 'rcpt-0001'));
    // The receipt book takes them; an answered record built from one passes step 9's check.
    const book = new MemoryReceiptBook();
    for (const { receipt } of received) book.holdReceipt('rcpt-0001', 'telemetry', receipt, verifier);
    assert.equal(book.receiptsOf('rcpt-0001').length, 2);
    verifyAnsweredRecord(verifier, answeredRecordOfReceipt('telemetry', 'csp', received[0]!.receipt));
    // The Download frames of the receipts were acknowledged: nothing is left in the outbox.
    for (let i = 0; i < 100 && bed.net.csp.pendingInstructions().length > 0; i++)
        await new Promise((r) => setTimeout(r, 50));
    assert.equal(bed.net.csp.pendingInstructions().length, 0);
    assert.equal(bed.net.csp.receipts?.delivered, 2);
});
