/**
 * A writer process for the kill -9 tests: an embedded ledger (durable, in the given directory)
 * and the CSP's record batcher. `run DIR`: ingests signed records without end, printing
 * `ack <leafIndex>` only after each acknowledgement. `drain DIR`: recovers, anchors everything
 * acknowledged, prints the batcher's and the ledger's view as JSON and exits.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { contracts } from '@m2m-fabric/chaincode';
import {
    CSP_WRITER,
    EncryptionType,
    P256_SHA256,
    PartyRole,
    RecordSigner,
    RecordType,
    encodePoint,
    encodeRecord,
    payloadDigest,
    toHex,
} from '@m2m-fabric/protocol';
import { EmbeddedLedger } from '@m2m-fabric/embedded-ledger';
import { RecordBatcher } from '@m2m-fabric/services';

import { randomScalar } from '../crypto/helpers.js';

const suite = P256_SHA256;
export const CHILD_ORGANISATIONS = ['CSPMSP', 'FogAMSP', 'FogBMSP'];

async function main(): Promise<void> {
    const [mode, dir] = process.argv.slice(2);
    if (dir === undefined || (mode !== 'run' && mode !== 'drain')) throw new Error('usage: run|drain DIR');
    const ledger = await EmbeddedLedger.open({
        dataDir: join(dir, 'ledger'),
        organisations: CHILD_ORGANISATIONS,
        chaincodes: [{ name: 'm2m', contracts }],
        batch: { batchTimeoutMs: 20 },
    });
    const enrolment = await ledger.loadOrEnrol('CSPMSP', 'csp', { attributes: { 'm2m.role': 'csp' } });
    const connection = await ledger.connect({ identity: enrolment.identity, signer: enrolment.signer });
    const keyFile = join(dir, 'csp-key');
    let d: bigint;
    if (existsSync(keyFile)) {
        d = BigInt(readFileSync(keyFile, 'utf8'));
    } else {
        d = randomScalar(suite);
        await connection
            .getContract('m2m', 'registry')
            .submit('registerCsp', { arguments: [suite.id, toHex(encodePoint(suite, suite.Point.BASE.multiply(d)))] });
        writeFileSync(keyFile, d.toString());
    }
    const anchors = connection.getContract('m2m', 'anchors');
    const batcher = await RecordBatcher.open({
        dir: join(dir, 'journal'),
        writer: { suite, writer: CSP_WRITER, secretKey: d },
        anchors,
        batchSize: 50,
        maxDelayMs: 30,
    });
    if (mode === 'drain') {
        await batcher.drain();
        const head = JSON.parse(
            new TextDecoder().decode(await anchors.evaluate('getWriterHead', { arguments: [CSP_WRITER] })),
        ) as { sequence: number; treeSize: number; root: string };
        const list = JSON.parse(
            new TextDecoder().decode(
                await anchors.evaluate('listAnchors', {
                    arguments: [CSP_WRITER, '0', String(Date.now() + 60_000), '100', ''],
                }),
            ),
        ) as { anchors: { treeSize: number }[] };
        process.stdout.write(
            `${JSON.stringify({
                durable: batcher.durableSize,
                anchored: batcher.anchoredSize,
                head,
                root: toHex(batcher.tree.root(head.treeSize)),
                sizes: list.anchors.map((a) => a.treeSize),
            })}\n`,
        );
        await batcher.close();
        connection.close();
        await ledger.close();
        return;
    }
    const device = new RecordSigner(suite, randomScalar(suite));
    const cspParty = new RecordSigner(suite, d).party(PartyRole.Csp);
    let sequence = 0n;
    // Many records in flight at once, so a kill lands between journal writes, fsyncs and anchors.
    const worker = async (): Promise<never> => {
        for (;;) {
            const payload = new Uint8Array(64);
            const record = device.sign({
                suite,
                type: RecordType.Upload,
                encryption: EncryptionType.SessionChannel,
                sender: device.party(PartyRole.Device),
                receiver: cspParty,
                sequence: sequence++,
                timestamp: BigInt(Date.now()),
                size: payload.length,
                digest: payloadDigest(payload),
            });
            const ack = await batcher.ingest(encodeRecord(record));
            process.stdout.write(`ack ${ack.leafIndex}\n`);
        }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
}

main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
});
