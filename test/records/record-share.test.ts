/**
 * Envelope encryption of stored payloads, end to end through the services (docs/records.md
 * "Envelope encryption"): a device uploads over MQTT with records on; the CSP seals every
 * recorded frame's clear payload for its storage key and the device's Q_i; it shares one record
 * with an auditor key by re-wrapping that record's data key (the stored object and its CID
 * unchanged); the auditor opens exactly that record, and no other, offline against the record's
 * receipt. Refusals (an unknown CID, a key that is not a point) change nothing. The same through
 * `m2m records auditor-key / share / open`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
    DecodeError,
    ErrorCode,
    PartyRole,
    ProtocolError,
    RecordType,
    contentAddressOfDigest,
    decodeSealedPayload,
    encodeRecordShare,
    hpkeRecipientFromScalar,
    openRecord,
    openRecordShare,
    openSealedPayload,
    randomScalar,
    sealedPayloadAddress,
    type CommunicationRecord,
} from '@m2m-fabric/protocol';
import {
    DEFAULT_CHAINCODE_NAME,
    buildReceipt,
    encodeReceipt,
    fetchBlockByTxId,
    openSharedRecord,
} from '@m2m-fabric/sdk';
import { readDeviceState } from '@m2m-fabric/device';

import { startTestBed } from '../services/helpers/setup.js';
import { CLI } from '../services/helpers/process.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

void test('the CSP shares one stored record with an auditor; the auditor opens that record and no other', async (t) => {
    const bed = await startTestBed({ records: { batchSize: 1000, maxDelayMs: 200 } });
    t.after(() => bed.close());
    await bed.provision('shr-0001', 2);
    const agent = await bed.agent('shr-0001');
    await agent.connect();
    const got = new Promise<Uint8Array>((resolve) => agent.onInstruction(resolve));
    await agent.establishSession();
    await agent.upload({ equipmentId: 'shr-0001', temperature: 21 });
    await agent.upload({ equipmentId: 'shr-0001', temperature: 22 });
    const session = (await readDeviceState(bed.statePath('shr-0001')))!.session!;
    await bed.net.csp.sendInstruction({ routeId: session.routeId }, new TextEncoder().encode('{"setpoint":20}'));
    await got;
    const batcher = bed.net.recordBatcher!;
    const envelopes = bed.net.recordEnvelopes!;
    const counts = bed.net.csp.records!;
    for (let i = 0; i < 100 && counts.received < 3; i++) await new Promise((r) => setTimeout(r, 50));
    await batcher.drain();
    // Every journaled record has its sealed payload (both are durable before the frame is answered).
    assert.equal(envelopes.size, batcher.durableSize);

    const records: CommunicationRecord[] = [];
    for (let leaf = 0; leaf < batcher.durableSize; leaf++) records.push(openRecord(await batcher.readRecord(leaf)));
    const uploads = records
        .map((record, leaf) => ({ record, leaf }))
        .filter(({ record }) => record.sender.role === PartyRole.Device && record.type === RecordType.Upload);
    assert.equal(uploads.length, 2);
    const [first, second] = uploads as [(typeof uploads)[0], (typeof uploads)[0]];
    const cid = contentAddressOfDigest(first.record.digest);
    const otherCid = contentAddressOfDigest(second.record.digest);

    // The CSP reads every stored payload with its storage key; the device with its d_i.
    assert.deepEqual(JSON.parse(text(await envelopes.read(cid))), { equipmentId: 'shr-0001', temperature: 21 });
    const deviceKey = await hpkeRecipientFromScalar(bed.net.suite, BigInt(`0x${session.recordKey!}`));
    assert.deepEqual(
        JSON.parse(text(await openSealedPayload(decodeSealedPayload(await envelopes.sealed(otherCid)), deviceKey))),
        { equipmentId: 'shr-0001', temperature: 22 },
    );
    const download = records.find((r) => r.type === RecordType.Download)!;
    const instruction = await openSealedPayload(
        decodeSealedPayload(await envelopes.sealed(contentAddressOfDigest(download.digest))),
        deviceKey,
    );
    // A Download payload is the instruction's u64 id, then the instruction.
    assert.equal(
        text(instruction.subarray(8)),
        '{"setpoint":20}',
        "the device reads the CSP's sealed payload of the instruction it was sent",
    );

    // The receipt of the first upload's record, as an auditor is handed it.
    const batch = bed.net.anchoredBatches.find((b) => b.treeSize > first.leaf)!;
    const receipt = encodeReceipt(
        buildReceipt(
            {
                record: await batcher.readRecord(first.leaf),
                writer: batch.writer,
                sequence: batch.sequence,
                leafIndex: first.leaf,
                treeSize: batch.treeSize,
                inclusionProof: batcher.tree.inclusionProof(first.leaf, batch.treeSize),
                root: batch.root,
                transactionId: batch.transactionId,
            },
            await fetchBlockByTxId(bed.net.cspConnection!, batch.transactionId),
        ),
    );
    const trust = bed.net.ledger.channelTrust(DEFAULT_CHAINCODE_NAME);

    // Share: one re-wrap; the stored object and its CID are unchanged, nothing new is indexed.
    const auditor = await hpkeRecipientFromScalar(bed.net.suite, randomScalar(bed.net.suite));
    const sealedCid = envelopes.sealedCid(cid);
    const storedBefore = await bed.net.store.get(sealedCid);
    const indexed = envelopes.size;
    const share = await envelopes.share(cid, auditor.publicKey);
    assert.equal(sealedPayloadAddress(share.sealed), sealedCid);
    assert.deepEqual(await bed.net.store.get(sealedCid), storedBefore);
    assert.equal(envelopes.sealedCid(cid), sealedCid);
    assert.equal(envelopes.size, indexed);

    // The auditor, offline: receipt verified against the MSP roots, then exactly that record opens.
    const opened = await openSharedRecord(trust, receipt, encodeRecordShare(share), auditor);
    assert.deepEqual(JSON.parse(text(opened.plaintext)), { equipmentId: 'shr-0001', temperature: 21 });
    assert.deepEqual(opened.record.digest, first.record.digest);
    assert.equal(opened.cid, sealedCid);
    // ... and no other: the other upload's stored payload does not open with the auditor's key, nor
    // with the auditor's wrap moved beside it; the share is not the payload of another record.
    const other = await envelopes.sealed(otherCid);
    await assert.rejects(
        () => openSealedPayload(decodeSealedPayload(other), auditor),
        (e: unknown) => e instanceof ProtocolError && e.code === ErrorCode.DecryptionFailed,
    );
    await assert.rejects(
        () => openRecordShare({ sealed: other, wrap: share.wrap }, auditor),
        (e: unknown) => e instanceof ProtocolError && e.code === ErrorCode.DecryptionFailed,
    );
    await assert.rejects(
        () => openRecordShare(share, auditor, second.record),
        (e: unknown) => e instanceof ProtocolError && e.code === ErrorCode.RecordMismatch,
    );

    // Refusals change nothing: a CID the CSP has no record of, an auditor key that is not a point.
    const unknown = contentAddressOfDigest(new Uint8Array(32).fill(7));
    await assert.rejects(
        () => envelopes.share(unknown, auditor.publicKey),
        (e: unknown) => e instanceof ProtocolError && e.code === ErrorCode.UnknownRecord,
    );
    const notAPoint = new Uint8Array(bed.net.suite.pointBytes).fill(0xff);
    notAPoint[0] = 2;
    await assert.rejects(() => envelopes.share(cid, notAPoint), DecodeError);
    assert.equal(envelopes.size, indexed);
    assert.deepEqual(await bed.net.store.get(sealedCid), storedBefore);

    // The same through the CLI, on the CSP's data directory once the network is down.
    await agent.close();
    await bed.close();
    const dir = bed.dataDir;
    const trustFile = join(dir, 'trust.json');
    writeFileSync(trustFile, JSON.stringify(trust));
    const receiptFile = join(dir, 'first.receipt');
    writeFileSync(receiptFile, receipt);
    const m2m = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
        spawnSync(process.execPath, [CLI, 'records', ...args], { encoding: 'utf8' });
    const key = join(dir, 'auditor.pem');
    assert.equal(m2m('auditor-key', '--out', key).status, 0);
    const shareFile = join(dir, 'first.share');
    const shared = m2m('share', cid, '--auditor', `${key}.pub`, '--data-dir', dir, '--out', shareFile);
    assert.equal(shared.status, 0, shared.stderr);
    assert.equal((JSON.parse(shared.stdout) as { sealedPayload: string }).sealedPayload, sealedCid);
    const openedCli = m2m('open', shareFile, '--key', key, '--receipt', receiptFile, '--trust', trustFile);
    assert.equal(openedCli.status, 0, openedCli.stderr);
    const printed = JSON.parse(openedCli.stdout) as { opened: boolean; receiptVerified: boolean; payload: string };
    assert.equal(printed.receiptVerified, true);
    assert.deepEqual(JSON.parse(printed.payload), { equipmentId: 'shr-0001', temperature: 21 });
    // Another auditor's key, an unknown CID, a key file that is not a point: exit 1, typed code.
    const key2 = join(dir, 'other.pem');
    assert.equal(m2m('auditor-key', '--out', key2).status, 0);
    const wrongKey = m2m('open', shareFile, '--key', key2);
    assert.equal(wrongKey.status, 1);
    assert.match(wrongKey.stderr, /^error decryptionFailed/);
    const unknownCli = m2m('share', unknown, '--auditor', `${key}.pub`, '--data-dir', dir, '--out', join(dir, 'x'));
    assert.equal(unknownCli.status, 1);
    assert.match(unknownCli.stderr, /^error unknownRecord/);
    const badKey = join(dir, 'bad.pub');
    writeFileSync(badKey, Buffer.from(notAPoint).toString('hex'));
    const badCli = m2m('share', cid, '--auditor', badKey, '--data-dir', dir, '--out', join(dir, 'y'));
    assert.equal(badCli.status, 1);
    assert.match(badCli.stderr, /^error malformedInput/);
});
