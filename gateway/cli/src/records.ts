/**
 * `m2m records verify <receipt> --trust FILE`: verifies a receipt offline — no peer, no network —
 * against a channel trust file (the MSP root certificates of the orderer and application
 * organisations, the chaincode and its endorsement policy; docs/records.md). Prints the record
 * as JSON and exits 0, or names the failed check and exits 1.
 * `m2m records trust --data-dir DIR`: writes the trust file of an embedded ledger.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { toHex } from '@m2m-fabric/protocol';

import { ConfigError } from '@m2m-fabric/common';
import {
    CHECKPOINTS_CONTRACT,
    ReceiptError,
    exportCheckpoint,
    importCheckpoint,
    parseChannelTrust,
    recordCheckpoint,
    registerCheckpointSource,
    verifyReceipt,
    type ChannelTrust,
} from '@m2m-fabric/sdk';
import { reportRejection } from './rejection.js';
import { SHARE_USAGE, auditorKey, openShare, share } from './records-share.js';

export const RECORDS_USAGE = `usage: m2m records <verify|trust|checkpoint|auditor-key|share|open> [options]

  m2m records verify RECEIPT --trust FILE
      verifies a receipt file offline against the channel trust file; prints the record (JSON)
      and exits 0, or prints "receiptInvalid: <check>: <detail>" and exits 1.
  m2m records trust --data-dir DIR [--chaincode NAME] [--out FILE]
      writes the trust file (orderer and organisation MSP roots, chaincode, endorsement policy)
      of the embedded ledger in DIR/ledger (default chaincode m2m, output to stdout).
  m2m records checkpoint export --out FILE          (ledger: FABRIC_CONNECTION / FABRIC_*)
      commits a checkpoint of every writer's head on this channel and writes its proof to FILE.
  m2m records checkpoint register --trust FILE      (CSP identity)
      registers the source channel of a trust file (its orderer roots) on this channel.
  m2m records checkpoint import PROOF --source CHANNEL
      verifies (in the chaincode) and stores a checkpoint exported from CHANNEL; prints it (JSON).
      A chaincode rejection prints "error <code>: <detail>" and exits 1.
${SHARE_USAGE}`;

export async function runRecords(argv: string[]): Promise<void> {
    const [sub, ...rest] = argv;
    if (sub === 'verify') return verify(rest);
    if (sub === 'trust') return trust(rest);
    if (sub === 'checkpoint') return checkpoint(rest);
    if (sub === 'auditor-key') return auditorKey(rest);
    if (sub === 'share') return share(rest);
    if (sub === 'open') return openShare(rest);
    if (sub === undefined || sub === '--help' || sub === 'help') {
        console.log(RECORDS_USAGE);
        return;
    }
    throw new ConfigError([`unknown records command ${sub}`, RECORDS_USAGE]);
}

async function verify(argv: string[]): Promise<void> {
    const { values, positionals } = parseArgs({
        args: argv,
        options: { trust: { type: 'string' }, help: { type: 'boolean', default: false } },
        allowPositionals: true,
        strict: true,
    });
    if (values.help) {
        console.log(RECORDS_USAGE);
        return;
    }
    if (positionals.length !== 1 || values.trust === undefined) {
        throw new ConfigError(['records verify needs one receipt file and --trust FILE', RECORDS_USAGE]);
    }
    const channelTrust = parseChannelTrust(await readFile(values.trust, 'utf8'));
    const bytes = new Uint8Array(await readFile(positionals[0]!));
    try {
        const record = verifyReceipt(channelTrust, bytes);
        console.log(
            JSON.stringify({
                valid: true,
                suite: record.suite.id,
                type: record.type,
                encryption: record.encryption,
                sender: { role: record.sender.role, keyId: toHex(record.sender.keyId) },
                receiver: { role: record.receiver.role, keyId: toHex(record.receiver.keyId) },
                sequence: record.sequence.toString(),
                timestamp: new Date(Number(record.timestamp)).toISOString(),
                size: record.size,
                digest: toHex(record.digest),
            }),
        );
    } catch (error) {
        if (!(error instanceof ReceiptError)) throw error;
        console.error(error.message.startsWith('receiptInvalid') ? error.message : `receiptInvalid: ${error.message}`);
        process.exitCode = 1;
    }
}

async function trust(argv: string[]): Promise<void> {
    const { values } = parseArgs({
        args: argv,
        options: {
            'data-dir': { type: 'string' },
            chaincode: { type: 'string', default: 'm2m' },
            out: { type: 'string' },
            help: { type: 'boolean', default: false },
        },
        strict: true,
    });
    if (values.help) {
        console.log(RECORDS_USAGE);
        return;
    }
    if (values['data-dir'] === undefined) throw new ConfigError(['records trust needs --data-dir DIR']);
    const text = `${JSON.stringify(await embeddedTrust(join(values['data-dir'], 'ledger'), values.chaincode), null, 2)}\n`;
    if (values.out === undefined) process.stdout.write(text);
    else await writeFile(values.out, text);
}

/**
 * The trust file of an embedded ledger directory, read from its organisations' CA certificates
 * (organisations/<MSP>/ca/ca-cert.pem) without opening the ledger, so it works while the ledger
 * runs. The embedded ledger's policy is MAJORITY unless the chaincode was defined otherwise.
 */
async function embeddedTrust(ledgerDir: string, chaincode: string): Promise<ChannelTrust> {
    const { DEFAULT_CHANNEL, DEFAULT_ENDORSEMENT_POLICY, DEFAULT_ORDERER_MSP } =
        await import('@m2m-fabric/embedded-ledger');
    const names = (await readdir(join(ledgerDir, 'organisations'))).sort();
    const entry = async (mspId: string): Promise<{ mspId: string; rootCertificates: string[] }> => ({
        mspId,
        rootCertificates: [await readFile(join(ledgerDir, 'organisations', mspId, 'ca', 'ca-cert.pem'), 'utf8')],
    });
    if (!names.includes(DEFAULT_ORDERER_MSP)) throw new ConfigError([`no ${DEFAULT_ORDERER_MSP} under ${ledgerDir}`]);
    return {
        channel: DEFAULT_CHANNEL,
        chaincode,
        orderers: [await entry(DEFAULT_ORDERER_MSP)],
        organisations: await Promise.all(names.filter((n) => n !== DEFAULT_ORDERER_MSP).map(entry)),
        endorsementPolicy: DEFAULT_ENDORSEMENT_POLICY,
    };
}

/** `m2m records checkpoint export|register|import` over the Fabric client path. */
async function checkpoint(argv: string[]): Promise<void> {
    const [action, ...rest] = argv;
    const { values, positionals } = parseArgs({
        args: rest,
        options: {
            out: { type: 'string' },
            trust: { type: 'string' },
            source: { type: 'string' },
            help: { type: 'boolean', default: false },
        },
        allowPositionals: true,
        strict: true,
    });
    if (values.help || action === undefined) {
        console.log(RECORDS_USAGE);
        return;
    }
    if (!['export', 'register', 'import'].includes(action))
        throw new ConfigError([`unknown records checkpoint command ${action}`, RECORDS_USAGE]);
    if (action === 'export' && values.out === undefined) throw new ConfigError(['checkpoint export needs --out FILE']);
    if (action === 'register' && values.trust === undefined)
        throw new ConfigError(['checkpoint register needs --trust FILE']);
    if (action === 'import' && (positionals.length !== 1 || values.source === undefined))
        throw new ConfigError(['checkpoint import needs one proof file and --source CHANNEL']);
    // Loaded here, not at the top: services.js pulls in the chaincode package (its settings table),
    // which `records verify` and `records trust` have no use for.
    const client = await (await import('./services.js')).fabricClient();
    const contract = client.connection.getContract(client.registry.chaincodeName, CHECKPOINTS_CONTRACT);
    try {
        if (action === 'export') {
            const recorded = await recordCheckpoint(contract);
            const proof = await exportCheckpoint(client.connection, recorded.transactionId);
            await writeFile(values.out!, proof);
            console.log(
                JSON.stringify({
                    channel: client.connection.channelName,
                    transactionId: recorded.transactionId,
                    blockNumber: recorded.blockNumber.toString(),
                    proofBytes: proof.length,
                    checkpoint: JSON.parse(recorded.checkpoint) as unknown,
                }),
            );
        } else if (action === 'register') {
            const trust = parseChannelTrust(await readFile(values.trust!, 'utf8'));
            await registerCheckpointSource(contract, trust);
            console.log(JSON.stringify({ registered: trust.channel, chaincode: trust.chaincode }));
        } else {
            const proof = new Uint8Array(await readFile(positionals[0]!));
            console.log(await importCheckpoint(contract, values.source!, proof));
        }
    } catch (error) {
        if (reportRejection(error)) return;
        throw error;
    } finally {
        client.connection.close();
    }
}
