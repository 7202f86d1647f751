/**
 * `m2m device query <target> --since ... --until ...`: paper 000's record query from the command
 * line, as the machine itself runs it. The agent connects to its fog, signs the query packet with
 * the machine's static M-EB secret (`--static-key` file or M2M_DEVICE_STATIC_KEY, hex scalar), and
 * checks the answer at step 9: the target's registered key (`--target-key`, hex point, as
 * `m2m manufacturer` or the M-EB shows it; the device has no ledger access of its own), Q_c from
 * the state file when the CSP answered, every record's Merkle receipt against the channel's trust
 * roots the state file was provisioned with, and that every record the machine holds a receipt
 * for (`--receipts dir`: the `*.receipt` files it was handed) is in the answer. Prints the
 * records, or the typed failure with its Fig. 8 step and retry.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

import {
    decodePoint,
    decodeRecord,
    decodeScalar,
    fromHex,
    getSuite,
    QueryError,
    ReceiptError,
    toHex,
} from '@m2m-fabric/protocol';
import { ErrorCode } from '@m2m-fabric/protocol';
import { ServiceError, TopicLayout, createLogger } from '@m2m-fabric/common';

import { DeviceAgent } from './agent.js';
import { QueryAsker } from './query-asker.js';
import { MerkleReceiptCheck } from './receipt-check.js';
import { MemoryReceiptBook } from './record-history.js';
import { readDeviceState } from './state.js';

const USAGE = `m2m device query <target> --since ISO --until ISO [--kinds k1,k2] [--json]
    --device.state path (M2M_DEVICE_STATE)  --static-key file (M2M_DEVICE_STATIC_KEY: hex scalar or a file holding it)
    --target-key hex (the target's M-EB public key)  [--receipts dir (*.receipt files held for the target's records)]
    [--mqtt.url url] [--topics.prefix p] [--timeout.ms 30000]`;

/**
 * `m2m device query`: paper 000's record query from this machine to `target` through its fog.
 * @throws {ServiceError} `malformedInput` when: the arguments are incomplete
 * @throws {ServiceError} `notConfigured` when: there is no device state file, or it has no channel trust roots
 * @throws {ServiceError} `receiptInvalid` when: a held receipt does not verify
 * @throws {ServiceError} the failure packet's code (with the paper's retry) when: the query fails
 */
export async function runDeviceQuery(argv: string[]): Promise<void> {
    const { values, positionals } = parseArgs({
        args: argv,
        options: {
            'device.state': { type: 'string' },
            'static-key': { type: 'string' },
            'target-key': { type: 'string' },
            receipts: { type: 'string' },
            'mqtt.url': { type: 'string' },
            'topics.prefix': { type: 'string' },
            'timeout.ms': { type: 'string' },
            since: { type: 'string' },
            until: { type: 'string' },
            kinds: { type: 'string' },
            json: { type: 'boolean' },
            help: { type: 'boolean' },
        },
        allowPositionals: true,
        strict: true,
    });
    if (values.help === true) {
        console.log(USAGE);
        return;
    }
    const target = positionals[0];
    const statePath = values['device.state'] ?? process.env.M2M_DEVICE_STATE;
    const staticKey = values['static-key'] ?? process.env.M2M_DEVICE_STATIC_KEY;
    const since = Date.parse(values.since ?? '');
    const until = Date.parse(values.until ?? '');
    if (
        positionals.length !== 1 ||
        target === undefined ||
        statePath === undefined ||
        staticKey === undefined ||
        values['target-key'] === undefined ||
        Number.isNaN(since) ||
        Number.isNaN(until)
    ) {
        throw new ServiceError(ErrorCode.MalformedInput, `usage: ${USAGE}`);
    }
    const state = await readDeviceState(statePath);
    if (state === undefined) throw new ServiceError(ErrorCode.NotConfigured, `no device state at ${statePath}`);
    const suite = getSuite(state.suite);
    const secretHex = /^[0-9a-f]+$/i.test(staticKey) ? staticKey : (await readFile(staticKey, 'utf8')).trim();
    const secretKey = decodeScalar(suite, fromHex(secretHex.padStart(2 * suite.scalarBytes, '0')));
    const targetKey = decodePoint(suite, fromHex(values['target-key']));
    const cspKey = decodePoint(suite, fromHex(state.cspPublicKey));
    if (state.channelTrust === undefined) {
        throw new ServiceError(
            ErrorCode.NotConfigured,
            `${statePath} has no channelTrust: provision the device with the channel's trust roots`,
        );
    }
    const check = new MerkleReceiptCheck(state.channelTrust);
    const book = new MemoryReceiptBook();
    if (values.receipts !== undefined) {
        for (const name of (await readdir(values.receipts)).filter((n) => n.endsWith('.receipt')).sort()) {
            try {
                book.holdReceipt(target, '', await readFile(join(values.receipts, name)), check.verifier);
            } catch (err) {
                if (err instanceof ReceiptError) throw new ServiceError(err.code, `${name}: ${err.message}`);
                throw err;
            }
        }
    }
    const agent = await DeviceAgent.open({
        statePath,
        ...(values['mqtt.url'] !== undefined ? { brokerUrl: values['mqtt.url'] } : {}),
        topics: new TopicLayout(values['topics.prefix'] ?? 'm2m/v1'),
        logger: createLogger('device', 'warn'),
    });
    try {
        await agent.connect();
        const timeoutMs = Number(values['timeout.ms'] ?? '30000');
        const asker = new QueryAsker({
            suite,
            equipmentId: state.equipmentId,
            secretKey,
            keyOf: (id) =>
                id === target
                    ? Promise.resolve(targetKey)
                    : Promise.reject(new ServiceError(ErrorCode.MalformedInput, `no key for ${id}`)),
            cspKey,
            receipts: check,
            book,
            send: (packet) => agent.sendQuery(packet, timeoutMs),
        });
        const result = await asker
            .query(target, {
                since: new Date(since),
                until: new Date(until),
                kinds: values.kinds === undefined ? [] : values.kinds.split(',').filter((k) => k !== ''),
            })
            .catch((err: unknown) => {
                if (err instanceof QueryError)
                    throw new ServiceError(err.code, `${err.message} (retry: ${err.retry}, after ${err.step})`);
                throw err;
            });
        const records = result.records.map((r) => {
            const record = decodeRecord(r.body);
            return {
                id: toHex(r.recordId),
                time: new Date(r.time).toISOString(),
                kind: r.kind,
                counterpart: r.counterpart,
                type: record.type,
                size: record.size,
                digest: toHex(record.digest),
            };
        });
        if (values.json === true) {
            console.log(JSON.stringify({ target, responder: result.responder, attempts: result.attempts, records }));
        } else {
            console.log(
                `${records.length} record(s) of ${target}, answered by ${result.responder === 'csp' ? 'the CSP (target offline)' : 'the target'}; signature and receipts verified`,
            );
            for (const r of records)
                console.log(
                    `  ${r.time} ${r.kind} with ${r.counterpart}: ${r.size} B, digest ${r.digest.slice(0, 16)}…`,
                );
        }
    } finally {
        await agent.close();
    }
}
