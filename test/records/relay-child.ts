/**
 * A fog process for the relay-record kill -9 test: an embedded ledger (durable, in the given
 * directory) with the CSP and one approved fog, and the fog's query handler with its relay records
 * over its RecordBatcher (writer fog:fog-kill). `run DIR`: relays one record query (the target
 * answers with a sealed information packet), prints `relayed <durable records>` once the answer is
 * handed back, and then waits to be killed — its batches are cut only after an hour, so nothing is
 * anchored before the kill. `drain DIR`: recovers, anchors everything journaled, prints the
 * batcher's and the ledger's view as JSON and exits.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

import { contracts } from '@m2m-fabric/chaincode';
import {
    P256_SHA256,
    QueryPacketType,
    Responder,
    createInformationPacket,
    createQueryPacket,
    decodeQueryPacket,
    encodePoint,
    fogAddress,
    fogWriter,
    replyType,
    toHex,
    type Point,
} from '@m2m-fabric/protocol';
import { EmbeddedLedger } from '@m2m-fabric/embedded-ledger';
import { listAnchors, openObjectStore, type LedgerConnection, type LedgerContract } from '@m2m-fabric/sdk';
import { FogQueryHandler, FogRelayRecords, RecordBatcher } from '@m2m-fabric/services';

import { randomScalar } from '../crypto/helpers.js';

const suite = P256_SHA256;
export const RELAY_CHILD_FOG = 'fog-kill';

interface Keys {
    csp: string;
    fog: string;
    asker: string;
    target: string;
}

async function main(): Promise<void> {
    const [mode, dir] = process.argv.slice(2);
    if (dir === undefined || (mode !== 'run' && mode !== 'drain')) throw new Error('usage: run|drain DIR');
    const ledger = await EmbeddedLedger.open({
        dataDir: join(dir, 'ledger'),
        organisations: ['CSPMSP', 'FogAMSP'],
        chaincodes: [{ name: 'm2m', contracts }],
        batch: { batchTimeoutMs: 20 },
    });
    const enrol = async (mspId: string, name: string, role: string): Promise<LedgerConnection> => {
        const e = await ledger.loadOrEnrol(mspId, name, { attributes: { 'm2m.role': role } });
        return ledger.connect({ identity: e.identity, signer: e.signer });
    };
    const cspConnection = await enrol('CSPMSP', 'csp', 'csp');
    const fogConnection = await enrol('FogAMSP', RELAY_CHILD_FOG, 'fog');
    const keyFile = join(dir, 'keys.json');
    let keys: Keys;
    if (existsSync(keyFile)) {
        keys = JSON.parse(readFileSync(keyFile, 'utf8')) as Keys;
    } else {
        keys = {
            csp: randomScalar(suite).toString(),
            fog: randomScalar(suite).toString(),
            asker: randomScalar(suite).toString(),
            target: randomScalar(suite).toString(),
        };
        const Qc = suite.Point.BASE.multiply(BigInt(keys.csp));
        const Qf = suite.Point.BASE.multiply(BigInt(keys.fog));
        const address = toHex(fogAddress(suite, RELAY_CHILD_FOG, Qc.multiply(BigInt(keys.fog))));
        const registry = (c: LedgerConnection): LedgerContract => c.getContract('m2m', 'registry');
        await registry(cspConnection).submit('registerCsp', { arguments: [suite.id, toHex(encodePoint(suite, Qc))] });
        await registry(fogConnection).submit('registerFog', {
            arguments: [RELAY_CHILD_FOG, toHex(encodePoint(suite, Qf)), address],
        });
        await registry(cspConnection).submit('approveFog', { arguments: [RELAY_CHILD_FOG, address] });
        writeFileSync(keyFile, JSON.stringify(keys));
    }
    const d = BigInt(keys.fog);
    const writer = fogWriter(RELAY_CHILD_FOG);
    const anchors = fogConnection.getContract('m2m', 'anchors');
    const store = await openObjectStore({ backend: 'embedded', directory: join(dir, 'objects') });
    const batcher = await RecordBatcher.open({
        dir: join(dir, 'fog', 'records'),
        writer: { suite, writer, secretKey: d },
        anchors,
        store,
        batchSize: 10_000,
        maxDelayMs: 3_600_000,
    });
    if (mode === 'drain') {
        await batcher.drain();
        const page = await listAnchors(anchors, writer, { to: new Date(Date.now() + 60_000) });
        process.stdout.write(
            `${JSON.stringify({
                durable: batcher.durableSize,
                anchored: batcher.anchoredSize,
                sequences: page.anchors.map((a) => a.sequence),
                sizes: page.anchors.map((a) => a.treeSize),
            })}\n`,
        );
        await batcher.close();
        await store.close();
        cspConnection.close();
        fogConnection.close();
        await ledger.close();
        return;
    }
    const point = (secret: string): Point => suite.Point.BASE.multiply(BigInt(secret));
    const machines: Record<string, string> = { asker: keys.asker, target: keys.target };
    const handler = new FogQueryHandler({
        suite,
        directory: {
            lookup: (id) =>
                Promise.resolve(
                    machines[id] === undefined
                        ? undefined
                        : {
                              equipmentId: id,
                              status: 'online',
                              publicKey: toHex(encodePoint(suite, point(machines[id]))),
                          },
                ),
        },
        routes: {
            endpointsFor: () => [
                {
                    kind: 'target',
                    deliver: async (packet) => {
                        const query = decodeQueryPacket(suite, packet, 5);
                        const info = await createInformationPacket(
                            suite,
                            query,
                            [],
                            encodePoint(suite, point(keys.asker)),
                            Responder.Target,
                            BigInt(keys.target),
                        );
                        return info.bytes;
                    },
                },
            ],
        },
        relays: new FogRelayRecords({
            suite,
            secretKey: d,
            cspPublicKey: point(keys.csp),
            sink: batcher,
            firstSequence: batcher.tree.size,
        }),
    });
    const now = Date.now();
    const packet = createQueryPacket(
        suite,
        {
            receiverId: 'target',
            senderId: 'asker',
            since: 0,
            until: now,
            kinds: [],
            nonce: randomBytes(16),
            issuedAt: now,
            expiresAt: now + 60_000,
        },
        BigInt(keys.asker),
    );
    const reply = await handler.handle(packet.bytes);
    if (replyType(reply) !== QueryPacketType.Information) throw new Error('the query was not answered');
    process.stdout.write(`relayed ${batcher.durableSize}\n`);
    setInterval(() => undefined, 60_000);
}

main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
});
