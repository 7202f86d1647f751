/**
 * Restart and chain verification: state, history and the chain survive a clean restart; the
 * verifier (library and `ledger:verify` script) accepts the chain and pinpoints the first bad
 * block after tampering.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ClassicLevel } from 'classic-level';

import { common } from '@m2m-fabric/embedded-ledger/internal';
import { verifyLedger } from '@m2m-fabric/embedded-ledger';

import { openTestNetwork, utf8 } from './fixtures/network.js';

const VERIFY_SCRIPT = fileURLToPath(new URL('../../scripts/ledger-verify.js', import.meta.url));

function blockKey(n: number): Buffer {
    const key = Buffer.alloc(9);
    key[0] = 0x62; // 'b'
    key.writeUInt32BE(n, 5);
    return key;
}

void describe('embedded ledger restart and verify', () => {
    void it('keeps state, history and chain across restarts; verify reports the first bad block', async () => {
        const net = await openTestNetwork({});
        try {
            for (let i = 0; i < 4; i++) await net.contract.submit('Put', { arguments: ['r', `v${i}`] });
            const height = net.ledger.height;
            await net.ledger.close();
            assert.deepEqual(await verifyLedger(net.dir), { ok: true, height: Number(height) });

            const reopened = await openTestNetwork({ dir: net.dir });
            assert.equal(reopened.ledger.height, height);
            assert.equal(utf8(await reopened.contract.evaluate('Get', { arguments: ['r'] })), 'v3');
            assert.equal(
                (JSON.parse(utf8(await reopened.contract.evaluate('History', { arguments: ['r'] }))) as unknown[])
                    .length,
                4,
            );
            await reopened.contract.submit('Put', { arguments: ['r', 'v4'] });
            await reopened.ledger.close();

            const ok = spawnSync(process.execPath, [VERIFY_SCRIPT, net.dir], { encoding: 'utf8' });
            assert.equal(ok.status, 0, ok.stderr);
            assert.equal(ok.stdout.trim(), `OK height ${Number(height) + 1}`);

            // Tamper with the data of block 2: its data hash no longer matches.
            const db = new ClassicLevel<Buffer, Buffer>(join(net.dir, 'ledger'), {
                keyEncoding: 'buffer',
                valueEncoding: 'buffer',
            });
            await db.open();
            const original = await db.get(blockKey(2));
            assert.ok(original !== undefined);
            const block = common.Block.deserializeBinary(original);
            const data = block.getData()?.getDataList_asU8() ?? [];
            const envelope = Buffer.from(data[0] ?? new Uint8Array());
            envelope.writeUInt8((envelope.at(-1) ?? 0) ^ 1, envelope.length - 1);
            block.getData()?.setDataList([envelope, ...data.slice(1)]);
            await db.put(blockKey(2), Buffer.from(block.serializeBinary()));
            await db.close();
            const bad = await verifyLedger(net.dir);
            assert.equal(bad.ok, false);
            assert.equal(!bad.ok && bad.firstBadBlock, 2);
            assert.match(!bad.ok ? bad.reason : '', /data hash/);
            const script = spawnSync(process.execPath, [VERIFY_SCRIPT, net.dir], { encoding: 'utf8' });
            assert.equal(script.status, 1);
            assert.match(script.stdout, /^BAD block 2 /);

            // Consistent data but a rewritten header breaks the link from block 3.
            const db2 = new ClassicLevel<Buffer, Buffer>(join(net.dir, 'ledger'), {
                keyEncoding: 'buffer',
                valueEncoding: 'buffer',
            });
            await db2.open();
            const fixed = common.Block.deserializeBinary(original);
            const header = fixed.getHeader();
            assert.ok(header !== undefined);
            fixed.getData()?.setDataList([envelope, ...data.slice(1)]);
            const { blockDataHash } = await import('@m2m-fabric/embedded-ledger');
            header.setDataHash(blockDataHash([envelope, ...data.slice(1)]));
            await db2.put(blockKey(2), Buffer.from(fixed.serializeBinary()));
            await db2.close();
            const relinked = await verifyLedger(net.dir);
            assert.equal(!relinked.ok && relinked.firstBadBlock, 3);
            assert.match(!relinked.ok ? relinked.reason : '', /previous hash/);

            assert.equal(spawnSync(process.execPath, [VERIFY_SCRIPT], { encoding: 'utf8' }).status, 2);
        } finally {
            await net.dispose();
        }
    });
});
