/**
 * Sharing one communication record with an auditor (docs/records.md "Envelope encryption"):
 *
 *  - `m2m records auditor-key --out FILE`: the auditor's key pair, FILE (PKCS#8 PEM, private) and
 *    FILE.pub (SPKI PEM); any P-256 key from `openssl ecparam -genkey` works as well.
 *  - `m2m records share CID --auditor PUBFILE --data-dir DIR --out SHARE` (the CSP operator): the
 *    record's data key re-wrapped for the auditor; the stored sealed payload and its CID unchanged.
 *  - `m2m records open SHARE --key FILE [--receipt RECEIPT --trust TRUST] [--out PAYLOAD]` (the
 *    auditor, offline): opens the payload; with a receipt, only if it is that record's.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import {
    DecodeError,
    ProtocolError,
    decodeRecordShare,
    encodeRecordShare,
    fromBase64Url,
    getSuite,
    hpkeRecipientFromScalar,
    openRecordShare,
    readerPublicKey,
    toHex,
    type HpkeRecipient,
    type Suite,
} from '@m2m-fabric/protocol';
import { ConfigError } from '@m2m-fabric/common';
import { ReceiptError, openSharedRecord, parseChannelTrust, openObjectStore } from '@m2m-fabric/sdk';

const CURVES: Readonly<Record<string, string>> = { 'P-256': 'P256-SHA256', 'P-384': 'P384-SHA384' };

export const SHARE_USAGE = `  m2m records auditor-key --out FILE
      writes an auditor key pair: FILE (PKCS#8 PEM) and FILE.pub (SPKI PEM).
  m2m records share CID --auditor PUBFILE --data-dir DIR --out SHARE
      (the CSP) wraps the data key of the record with CID (its frame's address) for the auditor's
      public key (PEM, or SEC1 hex); the stored sealed payload and its CID stay unchanged.
  m2m records open SHARE --key FILE [--receipt RECEIPT --trust FILE] [--out PAYLOAD]
      (the auditor, offline) opens a share with its private key (PEM); with a receipt, only if the
      share is the sealed payload of the receipt's record, signed by the CSP it names.`;

function suiteOfJwk(crv: unknown): Suite {
    const id = typeof crv === 'string' ? CURVES[crv] : undefined;
    if (id === undefined) throw new ConfigError([`auditor keys are P-256 or P-384 EC keys, not ${String(crv)}`]);
    return getSuite(id);
}

/**
 * An auditor public key: SPKI PEM, or a SEC1 point in hex; checked to be a point of the curve.
 * @throws {DecodeError} when: the key is not a point of the curve
 */
export async function readAuditorPublicKey(path: string, suite: Suite): Promise<Uint8Array> {
    const text = (await readFile(path, 'utf8')).trim();
    if (/^[0-9a-fA-F]+$/.test(text)) return readerPublicKey(suite, Buffer.from(text, 'hex'));
    let key: KeyObject;
    try {
        key = createPublicKey(text);
    } catch (cause) {
        throw new DecodeError('offCurve', `${path} is not a public key of the curve`, { cause });
    }
    const jwk = key.export({ format: 'jwk' });
    if (suiteOfJwk(jwk.crv).id !== suite.id) throw new ConfigError([`${path} is not a ${suite.id} key`]);
    const x = fromBase64Url(jwk.x!);
    const y = fromBase64Url(jwk.y!);
    return readerPublicKey(suite, Uint8Array.from([4, ...x, ...y]));
}

/** An auditor private key (PKCS#8 or SEC1 PEM) as an HPKE recipient. */
export async function readAuditorKey(path: string): Promise<HpkeRecipient> {
    const jwk = createPrivateKey(await readFile(path, 'utf8')).export({ format: 'jwk' });
    const suite = suiteOfJwk(jwk.crv);
    if (jwk.d === undefined) throw new ConfigError([`${path} holds no private key`]);
    return hpkeRecipientFromScalar(suite, BigInt(`0x${toHex(fromBase64Url(jwk.d))}`));
}

export async function auditorKey(argv: string[]): Promise<void> {
    const { values } = parseArgs({ args: argv, options: { out: { type: 'string' } }, strict: true });
    if (values.out === undefined) throw new ConfigError(['records auditor-key needs --out FILE']);
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    await writeFile(values.out, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(`${values.out}.pub`, publicKey.export({ type: 'spki', format: 'pem' }));
    console.log(JSON.stringify({ key: values.out, publicKey: `${values.out}.pub` }));
}

/** Prints a refusal that is the answer (unknown record, a key that is not a point, ...) and sets exit code 1. */
function reportRefusal(error: unknown): boolean {
    if (error instanceof ReceiptError) {
        console.error(error.message.startsWith('receiptInvalid') ? error.message : `receiptInvalid: ${error.message}`);
    } else if (error instanceof DecodeError) {
        console.error(`error malformedInput: ${error.message}`);
    } else if (error instanceof ProtocolError) {
        console.error(`error ${error.code}: ${error.message}`);
    } else return false;
    process.exitCode = 1;
    return true;
}

export async function share(argv: string[]): Promise<void> {
    const { values, positionals } = parseArgs({
        args: argv,
        options: { auditor: { type: 'string' }, 'data-dir': { type: 'string' }, out: { type: 'string' } },
        allowPositionals: true,
        strict: true,
    });
    if (
        positionals.length !== 1 ||
        values.auditor === undefined ||
        values['data-dir'] === undefined ||
        values.out === undefined
    ) {
        throw new ConfigError(['records share needs one record CID, --auditor FILE, --data-dir DIR and --out FILE']);
    }
    const dataDir = values['data-dir'];
    // Loaded here: the services package is what the CSP runs; `records verify` has no use for it.
    const { RecordEnvelopes, storageKeySuite, loadOrCreateServiceKey } = await import('@m2m-fabric/services');
    const dir = join(dataDir, 'csp', 'envelopes');
    const suite = await storageKeySuite(dir).catch(() => {
        throw new ConfigError([`no sealed payloads under ${dir} (records with envelopes off, or another data dir)`]);
    });
    const store = await openObjectStore({ backend: 'embedded', directory: join(dataDir, 'objects'), create: false });
    try {
        const keyPath = join(dataDir, 'keys', 'csp.json');
        if (!existsSync(keyPath)) throw new ConfigError([`no CSP key ${keyPath}`]);
        const cspKey = await loadOrCreateServiceKey(keyPath, suite);
        const envelopes = await RecordEnvelopes.open({
            dir,
            store,
            suite,
            signerSecretKey: cspKey.privateKey,
            readOnly: true,
        });
        try {
            const auditor = await readAuditorPublicKey(values.auditor, suite);
            const made = await envelopes.share(positionals[0]!, auditor);
            await writeFile(values.out, encodeRecordShare(made));
            console.log(
                JSON.stringify({
                    record: positionals[0],
                    sealedPayload: envelopes.sealedCid(positionals[0]!),
                    auditorKeyId: toHex(made.wrap.readerKeyId),
                    share: values.out,
                }),
            );
        } catch (error) {
            if (!reportRefusal(error)) throw error;
        } finally {
            await envelopes.close();
        }
    } finally {
        await store.close();
    }
}

export async function openShare(argv: string[]): Promise<void> {
    const { values, positionals } = parseArgs({
        args: argv,
        options: {
            key: { type: 'string' },
            receipt: { type: 'string' },
            trust: { type: 'string' },
            out: { type: 'string' },
        },
        allowPositionals: true,
        strict: true,
    });
    if (
        positionals.length !== 1 ||
        values.key === undefined ||
        (values.receipt === undefined) !== (values.trust === undefined)
    ) {
        throw new ConfigError(['records open needs one share file and --key FILE (and --receipt with --trust)']);
    }
    const auditor = await readAuditorKey(values.key);
    const shareBytes = new Uint8Array(await readFile(positionals[0]!));
    try {
        const opened =
            values.receipt === undefined
                ? await openRecordShare(decodeRecordShare(shareBytes), auditor)
                : await openSharedRecord(
                      parseChannelTrust(await readFile(values.trust!, 'utf8')),
                      new Uint8Array(await readFile(values.receipt)),
                      shareBytes,
                      auditor,
                  );
        if (values.out !== undefined) await writeFile(values.out, opened.plaintext);
        console.log(
            JSON.stringify({
                opened: true,
                sealedPayload: opened.cid,
                recordHash: toHex(opened.sealed.recordHash),
                receiptVerified: values.receipt !== undefined,
                bytes: opened.plaintext.length,
                ...(values.out === undefined ? { payload: new TextDecoder().decode(opened.plaintext) } : {}),
            }),
        );
    } catch (error) {
        if (!reportRefusal(error)) throw error;
    }
}
