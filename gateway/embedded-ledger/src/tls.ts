/**
 * TLS material of an organisation's embedded peer endpoint: a TLS CA of its own (Fabric keeps TLS
 * and MSP CAs apart, as cryptogen's `tlsca` does) and a server certificate for the host names the
 * endpoint is reached by. Created on first use under `<dir>/tls/`, keys mode 0600.
 */

import { webcrypto } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';

import * as x509 from '@peculiar/x509';

// msp.ts registers node's WebCrypto as @peculiar/x509's provider.
import { randomSerial, readOptional, toPem, writeFileAtomic } from './msp.js';

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const VALIDITY_YEARS = 10;

export interface TlsServerMaterial {
    /** PEM of the TLS CA clients trust (`FABRIC_TLS_CA_CERT`). */
    readonly caCertificatePem: string;
    readonly certificatePem: string;
    readonly privateKeyPem: string;
    /** Host names and addresses in the server certificate. */
    readonly hosts: readonly string[];
}

function validity(): { notBefore: Date; notAfter: Date } {
    const now = new Date();
    return {
        notBefore: new Date(now.getTime() - 60_000),
        notAfter: new Date(now.getFullYear() + VALIDITY_YEARS, now.getMonth(), now.getDate()),
    };
}

/**
 * The TLS CA and server certificate of `mspId`'s peer endpoint in `dir`, created if missing or if
 * the stored server certificate does not cover `hosts`.
 */
export async function loadOrCreateTlsServer(
    dir: string,
    mspId: string,
    hosts: readonly string[],
): Promise<TlsServerMaterial> {
    const tlsDir = join(dir, 'tls');
    await mkdir(tlsDir, { recursive: true, mode: 0o700 });
    const paths = {
        caCert: join(tlsDir, 'ca-cert.pem'),
        caKey: join(tlsDir, 'ca-key.pem'),
        cert: join(tlsDir, 'server-cert.pem'),
        key: join(tlsDir, 'server-key.pem'),
        hosts: join(tlsDir, 'server-hosts.json'),
    };
    let caCertificatePem = await readOptional(paths.caCert);
    let caKeyPem = await readOptional(paths.caKey);
    if (caCertificatePem === undefined || caKeyPem === undefined) {
        const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
        const ca = await x509.X509CertificateGenerator.createSelfSigned({
            serialNumber: randomSerial(),
            name: `C=US, O=${mspId}, CN=tlsca.${mspId.toLowerCase()}`,
            ...validity(),
            signingAlgorithm: EC,
            keys,
            extensions: [
                new x509.BasicConstraintsExtension(true, 0, true),
                new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
                await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
            ],
        });
        caCertificatePem = `${ca.toString('pem')}\n`;
        caKeyPem = toPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
        await writeFileAtomic(paths.caKey, caKeyPem, 0o600);
        await writeFileAtomic(paths.caCert, caCertificatePem, 0o644);
        await writeFile(paths.hosts, '[]', { mode: 0o644 }); // forces a new server certificate
    }
    const storedHosts = JSON.parse((await readOptional(paths.hosts)) ?? '[]') as string[];
    let certificatePem = await readOptional(paths.cert);
    let privateKeyPem = await readOptional(paths.key);
    const covered = hosts.every((host) => storedHosts.includes(host));
    if (certificatePem === undefined || privateKeyPem === undefined || !covered) {
        const ca = new x509.X509Certificate(caCertificatePem);
        const caKey = await webcrypto.subtle.importKey(
            'pkcs8',
            Buffer.from(caKeyPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64'),
            EC,
            false,
            ['sign'],
        );
        const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
        const names = [...new Set([...storedHosts, ...hosts])];
        const certificate = await x509.X509CertificateGenerator.create({
            serialNumber: randomSerial(),
            subject: `C=US, O=${mspId}, CN=${names[0] ?? 'localhost'}`,
            issuer: ca.subject,
            ...validity(),
            signingAlgorithm: EC,
            publicKey: keys.publicKey,
            signingKey: caKey,
            extensions: [
                new x509.BasicConstraintsExtension(false, undefined, true),
                new x509.KeyUsagesExtension(
                    x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
                    true,
                ),
                new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
                new x509.SubjectAlternativeNameExtension(
                    names.map((name) =>
                        isIP(name) !== 0 ? { type: 'ip', value: name } : { type: 'dns', value: name },
                    ),
                ),
                await x509.AuthorityKeyIdentifierExtension.create(ca),
            ],
        });
        certificatePem = `${certificate.toString('pem')}\n`;
        privateKeyPem = toPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
        await writeFileAtomic(paths.key, privateKeyPem, 0o600);
        await writeFileAtomic(paths.cert, certificatePem, 0o644);
        await writeFileAtomic(paths.hosts, JSON.stringify(names), 0o644);
        return { caCertificatePem, certificatePem, privateKeyPem, hosts: names };
    }
    return { caCertificatePem, certificatePem, privateKeyPem, hosts: storedHosts };
}
