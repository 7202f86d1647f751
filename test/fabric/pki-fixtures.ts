/**
 * Test PKI on disk, laid out like cryptogen's output for one client identity: a TLS CA
 * certificate, a signing certificate and a keystore directory holding its private key.
 */
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first

import { webcrypto } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface TestPki {
    dir: string;
    tlsCaPath: string;
    certPath: string;
    keystoreDir: string;
    keyPath: string;
    /** Key of another identity (does not match certPath). */
    otherKeyPath: string;
    /** An RSA key, which Fabric identities do not use. */
    rsaKeyPath: string;
    certificatePem: string;
}

async function selfSigned(name: string, keys: webcrypto.CryptoKeyPair): Promise<string> {
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: '01',
        name,
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 86_400_000),
        keys,
        signingAlgorithm: EC,
    });
    return cert.toString('pem');
}

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
    const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
    const body = der.toString('base64').replace(/(.{64})/g, '$1\n');
    return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}

export async function makeTestPki(): Promise<TestPki> {
    const dir = await mkdtemp(join(tmpdir(), 'm2m-fabric-pki-'));
    const caKeys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
    const userKeys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
    const otherKeys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
    const rsaKeys = await webcrypto.subtle.generateKey(
        { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
        true,
        ['sign', 'verify'],
    );
    const tlsCaPath = join(dir, 'tlsca.pem');
    const certPath = join(dir, 'signcerts', 'cert.pem');
    const keystoreDir = join(dir, 'keystore');
    const keyPath = join(keystoreDir, 'priv_sk');
    const otherKeyPath = join(dir, 'other_sk');
    const rsaKeyPath = join(dir, 'rsa_sk');
    await mkdir(join(dir, 'signcerts'));
    await mkdir(keystoreDir);
    const certificatePem = await selfSigned('CN=User1@foga.m2m.example.com', userKeys);
    await writeFile(tlsCaPath, await selfSigned('CN=tlsca.foga.m2m.example.com', caKeys));
    await writeFile(certPath, certificatePem);
    await writeFile(keyPath, await pkcs8Pem(userKeys.privateKey), { mode: 0o600 });
    await writeFile(otherKeyPath, await pkcs8Pem(otherKeys.privateKey), { mode: 0o600 });
    await writeFile(rsaKeyPath, await pkcs8Pem(rsaKeys.privateKey), { mode: 0o600 });
    return { dir, tlsCaPath, certPath, keystoreDir, keyPath, otherKeyPath, rsaKeyPath, certificatePem };
}
