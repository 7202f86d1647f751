/**
 * An independent RFC 9180 base-mode single-shot Open written directly on node:crypto (OpenSSL ECDH,
 * HMAC, AES-GCM), used only by tests to cross-check the module's hpke.ts: same vectors, same
 * ciphertexts, two code paths. Section numbers refer to RFC 9180.
 */
import { createDecipheriv, createECDH, createHmac } from 'node:crypto';

export interface ReferenceSuite {
    kemId: number;
    kdfId: number;
    aeadId: number;
    hash: 'sha256' | 'sha384';
    hashBytes: number;
    curve: 'prime256v1' | 'secp384r1';
    aead: 'aes-128-gcm' | 'aes-256-gcm';
    keyBytes: number;
}

export const REF_P256: ReferenceSuite = {
    kemId: 0x10,
    kdfId: 0x01,
    aeadId: 0x01,
    hash: 'sha256',
    hashBytes: 32,
    curve: 'prime256v1',
    aead: 'aes-128-gcm',
    keyBytes: 16,
};
export const REF_P384: ReferenceSuite = {
    kemId: 0x11,
    kdfId: 0x02,
    aeadId: 0x02,
    hash: 'sha384',
    hashBytes: 48,
    curve: 'secp384r1',
    aead: 'aes-256-gcm',
    keyBytes: 32,
};

const ascii = (s: string): Buffer => Buffer.from(s, 'ascii');
const i2osp = (v: number, n: number): Buffer => {
    const b = Buffer.alloc(n);
    b.writeUIntBE(v, 0, n);
    return b;
};

function extract(hash: string, salt: Buffer, ikm: Buffer): Buffer {
    return createHmac(hash, salt).update(ikm).digest();
}

function expand(hash: string, hashBytes: number, prk: Buffer, info: Buffer, length: number): Buffer {
    const blocks: Buffer[] = [];
    let prev = Buffer.alloc(0);
    for (let i = 1; blocks.length * hashBytes < length; i++) {
        prev = createHmac(hash, prk)
            .update(Buffer.concat([prev, info, Buffer.from([i])]))
            .digest();
        blocks.push(prev);
    }
    return Buffer.concat(blocks).subarray(0, length);
}

function labeledExtract(s: ReferenceSuite, suiteId: Buffer, salt: Buffer, label: string, ikm: Buffer): Buffer {
    return extract(s.hash, salt, Buffer.concat([ascii('HPKE-v1'), suiteId, ascii(label), ikm]));
}

function labeledExpand(
    s: ReferenceSuite,
    suiteId: Buffer,
    prk: Buffer,
    label: string,
    info: Buffer,
    L: number,
): Buffer {
    return expand(
        s.hash,
        s.hashBytes,
        prk,
        Buffer.concat([i2osp(L, 2), ascii('HPKE-v1'), suiteId, ascii(label), info]),
        L,
    );
}

/** §4.1 DH + ExtractAndExpand: the KEM shared secret, with the raw DH output for inspection. */
export function referenceDecap(
    s: ReferenceSuite,
    enc: Uint8Array,
    skR: Uint8Array,
): { dh: Buffer; sharedSecret: Buffer; pkR: Buffer } {
    const ecdh = createECDH(s.curve);
    ecdh.setPrivateKey(Buffer.from(skR));
    const dh = ecdh.computeSecret(Buffer.from(enc));
    const pkR = ecdh.getPublicKey();
    const kemSuiteId = Buffer.concat([ascii('KEM'), i2osp(s.kemId, 2)]);
    const eaePrk = labeledExtract(s, kemSuiteId, Buffer.alloc(0), 'eae_prk', dh);
    const kemContext = Buffer.concat([Buffer.from(enc), pkR]);
    const sharedSecret = labeledExpand(s, kemSuiteId, eaePrk, 'shared_secret', kemContext, s.hashBytes);
    return { dh, sharedSecret, pkR };
}

/** §5.1 KeySchedule (mode_base) + §5.2 single-shot Open (sequence number 0). */
export function referenceOpen(
    s: ReferenceSuite,
    skR: Uint8Array,
    enc: Uint8Array,
    info: Uint8Array,
    aad: Uint8Array,
    ct: Uint8Array,
): { plaintext: Buffer; sharedSecret: Buffer; key: Buffer; baseNonce: Buffer } {
    const { sharedSecret } = referenceDecap(s, enc, skR);
    const suiteId = Buffer.concat([ascii('HPKE'), i2osp(s.kemId, 2), i2osp(s.kdfId, 2), i2osp(s.aeadId, 2)]);
    const empty = Buffer.alloc(0);
    const pskIdHash = labeledExtract(s, suiteId, empty, 'psk_id_hash', empty);
    const infoHash = labeledExtract(s, suiteId, empty, 'info_hash', Buffer.from(info));
    const context = Buffer.concat([Buffer.from([0]), pskIdHash, infoHash]);
    const secret = labeledExtract(s, suiteId, sharedSecret, 'secret', empty);
    const key = labeledExpand(s, suiteId, secret, 'key', context, s.keyBytes);
    const baseNonce = labeledExpand(s, suiteId, secret, 'base_nonce', context, 12);
    const body = Buffer.from(ct.subarray(0, ct.length - 16));
    const tag = Buffer.from(ct.subarray(ct.length - 16));
    const decipher = createDecipheriv(s.aead, key, baseNonce);
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(tag);
    const plaintext = Buffer.concat([decipher.update(body), decipher.final()]);
    return { plaintext, sharedSecret, key, baseNonce };
}
