/**
 * Membership service providers: one per organisation, each with its own X.509 CA (ECDSA P-256),
 * enrolled identities on disk and the checks a Fabric MSP performs on an identity. Certificates
 * look like Fabric CA's: NodeOU in the subject (`OU=client|peer|admin`), and the attributes
 * extension 1.2.3.4.5.6.7.8.1 holding `{"attrs":{...}}` with `hf.EnrollmentID`, `hf.Type` and
 * `hf.Affiliation` plus any attributes requested, which `ctx.clientIdentity` reads.
 */
import { X509Certificate, createPrivateKey, webcrypto, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import * as x509 from '@peculiar/x509';

import { newPrivateKeySigner, publicKeyOf } from '@m2m-fabric/sdk';
import type { LedgerIdentity, LedgerSigner } from '@m2m-fabric/sdk';
import { msp } from './protos.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** Fabric CA's attribute extension. */
export const ATTRIBUTES_OID = '1.2.3.4.5.6.7.8.1';

const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const VALIDITY_YEARS = 10;

/** NodeOU roles (Fabric's `OU=` classification). */
export type IdentityRole = 'client' | 'peer' | 'admin' | 'orderer';

/** An enrolled identity: its certificate, its private key, and a signer over it. */
export interface Enrolment {
    readonly name: string;
    readonly identity: LedgerIdentity;
    readonly certificatePem: string;
    readonly privateKeyPem: string;
    readonly signer: LedgerSigner;
}

export interface EnrolOptions {
    role?: IdentityRole;
    /** Extra attributes for the certificate (`ctx.clientIdentity.getAttributeValue(name)`). */
    attributes?: Record<string, string>;
}

/** An identity a Fabric MSP has accepted. */
export interface ValidatedIdentity {
    readonly mspId: string;
    readonly role: IdentityRole | undefined;
    readonly publicKey: KeyObject;
    /** Serialized `msp.SerializedIdentity`, as carried in endorsements and signature headers. */
    readonly serialized: Uint8Array;
}

/** Writes a file atomically (temp + rename), with the given mode. */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
    const temporary = `${path}.tmp`;
    await writeFile(temporary, data, { mode });
    await rename(temporary, path);
}

export async function readOptional(path: string): Promise<string | undefined> {
    try {
        return await readFile(path, 'utf8');
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
    }
}

export function toPem(der: ArrayBuffer, label: string): string {
    const base64 = Buffer.from(der).toString('base64');
    const lines = base64.match(/.{1,64}/g) ?? [];
    return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export function randomSerial(): string {
    const bytes = webcrypto.getRandomValues(new Uint8Array(16));
    bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive
    return Buffer.from(bytes).toString('hex');
}

/** Serializes an identity as Fabric does (`msp.SerializedIdentity`). */
export function serializeIdentity(mspId: string, certificatePem: string | Uint8Array): Uint8Array {
    const identity = new msp.SerializedIdentity();
    identity.setMspid(mspId);
    identity.setIdBytes(typeof certificatePem === 'string' ? Buffer.from(certificatePem) : certificatePem);
    return identity.serializeBinary();
}

/** One organisation: its CA, and the identities enrolled with it (under `<dir>`). */
export class Organisation {
    readonly mspId: string;
    readonly dir: string;
    readonly caCertificatePem: string;
    readonly #caCertificate: x509.X509Certificate;
    readonly #caKey: webcrypto.CryptoKey;
    readonly #caCertificateNative: X509Certificate;
    readonly #caPublicKey: KeyObject;

    private constructor(mspId: string, dir: string, caCertificatePem: string, caKey: webcrypto.CryptoKey) {
        this.mspId = mspId;
        this.dir = dir;
        this.caCertificatePem = caCertificatePem;
        this.#caCertificate = new x509.X509Certificate(caCertificatePem);
        this.#caKey = caKey;
        this.#caCertificateNative = new X509Certificate(caCertificatePem);
        this.#caPublicKey = publicKeyOf(caCertificatePem);
    }

    /**
     * Loads the organisation's CA from `dir`, creating it on first use.
     * @throws {RangeError} when: invalid MSP ID …
     */
    static async open(mspId: string, dir: string): Promise<Organisation> {
        if (!/^[A-Za-z0-9_.-]+$/.test(mspId)) throw new RangeError(`invalid MSP ID ${JSON.stringify(mspId)}`);
        const caDir = join(dir, 'ca');
        await mkdir(caDir, { recursive: true, mode: 0o700 });
        const certPath = join(caDir, 'ca-cert.pem');
        const keyPath = join(caDir, 'ca-key.pem');
        let certPem = await readOptional(certPath);
        let keyPem = await readOptional(keyPath);
        if (certPem === undefined || keyPem === undefined) {
            const keys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
            const now = new Date();
            const certificate = await x509.X509CertificateGenerator.createSelfSigned({
                serialNumber: randomSerial(),
                name: `C=US, O=${mspId}, CN=ca.${mspId.toLowerCase()}`,
                notBefore: new Date(now.getTime() - 60_000),
                notAfter: new Date(now.getFullYear() + VALIDITY_YEARS, now.getMonth(), now.getDate()),
                signingAlgorithm: SIGNING_ALGORITHM,
                keys,
                extensions: [
                    new x509.BasicConstraintsExtension(true, 1, true),
                    new x509.KeyUsagesExtension(
                        x509.KeyUsageFlags.keyCertSign |
                            x509.KeyUsageFlags.cRLSign |
                            x509.KeyUsageFlags.digitalSignature,
                        true,
                    ),
                    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
                ],
            });
            certPem = certificate.toString('pem') + '\n';
            keyPem = toPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
            await writeFileAtomic(keyPath, keyPem, 0o600);
            await writeFileAtomic(certPath, certPem, 0o644);
        }
        const caKey = await webcrypto.subtle.importKey(
            'pkcs8',
            createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' }),
            KEY_ALGORITHM,
            false,
            ['sign'],
        );
        return new Organisation(mspId, dir, certPem, caKey);
    }

    /**
     * Issues a new key pair and certificate for `name` (as `fabric-ca-client enroll` would) and
     * stores them under `<dir>/<role>s/<name>/` with the key file mode 0600. Re-enrolling replaces them.
     * @throws {RangeError} when: invalid enrolment name …
     */
    async enrol(name: string, options: EnrolOptions = {}): Promise<Enrolment> {
        if (!/^[A-Za-z0-9_.@-]+$/.test(name)) throw new RangeError(`invalid enrolment name ${JSON.stringify(name)}`);
        const role = options.role ?? 'client';
        const keys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
        const attrs: Record<string, string> = {
            'hf.Affiliation': '',
            'hf.EnrollmentID': name,
            'hf.Type': role,
            ...options.attributes,
        };
        const now = new Date();
        const certificate = await x509.X509CertificateGenerator.create({
            serialNumber: randomSerial(),
            subject: `C=US, O=${this.mspId}, OU=${role}, CN=${name}`,
            issuer: this.#caCertificate.subject,
            notBefore: new Date(now.getTime() - 60_000),
            notAfter: new Date(now.getFullYear() + VALIDITY_YEARS, now.getMonth(), now.getDate()),
            signingAlgorithm: SIGNING_ALGORITHM,
            publicKey: keys.publicKey,
            signingKey: this.#caKey,
            extensions: [
                new x509.BasicConstraintsExtension(false, undefined, true),
                new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
                await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
                await x509.AuthorityKeyIdentifierExtension.create(this.#caCertificate),
                // Fabric CA stores the attributes as raw JSON bytes in this extension.
                new x509.Extension(ATTRIBUTES_OID, false, Buffer.from(JSON.stringify({ attrs }))),
            ],
        });
        const certificatePem = certificate.toString('pem') + '\n';
        const privateKeyPem = toPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
        const dir = join(this.dir, `${role}s`, name);
        await mkdir(dir, { recursive: true, mode: 0o700 });
        await writeFileAtomic(join(dir, 'key.pem'), privateKeyPem, 0o600);
        await writeFileAtomic(join(dir, 'cert.pem'), certificatePem, 0o644);
        return this.#enrolment(name, certificatePem, privateKeyPem);
    }

    /** The stored enrolment of `name`, or undefined if there is none. */
    async load(name: string, role: IdentityRole = 'client'): Promise<Enrolment | undefined> {
        const dir = join(this.dir, `${role}s`, name);
        const certificatePem = await readOptional(join(dir, 'cert.pem'));
        const privateKeyPem = await readOptional(join(dir, 'key.pem'));
        if (certificatePem === undefined || privateKeyPem === undefined) return undefined;
        return this.#enrolment(name, certificatePem, privateKeyPem);
    }

    /** The stored enrolment of `name`, enrolling it first if needed. */
    async loadOrEnrol(name: string, options: EnrolOptions = {}): Promise<Enrolment> {
        return (await this.load(name, options.role ?? 'client')) ?? (await this.enrol(name, options));
    }

    #enrolment(name: string, certificatePem: string, privateKeyPem: string): Enrolment {
        return {
            name,
            identity: { mspId: this.mspId, credentials: Buffer.from(certificatePem) },
            certificatePem,
            privateKeyPem,
            signer: newPrivateKeySigner(privateKeyPem),
        };
    }

    /**
     * Checks that a PEM certificate is a valid identity of this MSP: issued and signed by its CA,
     * within its validity period, not a CA. Returns its NodeOU role.
     */
    validate(
        certificatePem: string,
        at: Date,
    ): { valid: true; role: IdentityRole | undefined } | { valid: false; reason: string } {
        let certificate: X509Certificate;
        try {
            certificate = new X509Certificate(certificatePem);
        } catch {
            return { valid: false, reason: 'not an X.509 certificate' };
        }
        if (!certificate.checkIssued(this.#caCertificateNative) || !certificate.verify(this.#caPublicKey)) {
            return { valid: false, reason: `not issued by the ${this.mspId} CA` };
        }
        if (certificate.ca) return { valid: false, reason: 'a CA certificate is not an identity' };
        if (at < new Date(certificate.validFrom) || at > new Date(certificate.validTo)) {
            return { valid: false, reason: 'certificate expired or not yet valid' };
        }
        const ou = /^OU=(.*)$/m.exec(certificate.subject)?.[1];
        const role = ou === 'client' || ou === 'peer' || ou === 'admin' || ou === 'orderer' ? ou : undefined;
        return { valid: true, role };
    }
}

/**
 * The channel's MSPs: deserializes and validates identities as a peer does, with a cache because
 * every proposal, endorsement and transaction carries one.
 */
export class MspRegistry {
    readonly #organisations: ReadonlyMap<string, Organisation>;
    readonly #cache = new Map<string, ValidatedIdentity | string>();

    constructor(organisations: Iterable<Organisation>) {
        this.#organisations = new Map([...organisations].map((org) => [org.mspId, org]));
    }

    get mspIds(): string[] {
        return [...this.#organisations.keys()];
    }

    organisation(mspId: string): Organisation | undefined {
        return this.#organisations.get(mspId);
    }

    /**
     * Deserializes an `msp.SerializedIdentity` and validates it against its MSP. Returns the
     * identity, or a string saying why it is refused.
     */
    deserialize(serialized: Uint8Array): ValidatedIdentity | string {
        const cacheKey = Buffer.from(serialized).toString('base64');
        const cached = this.#cache.get(cacheKey);
        if (cached !== undefined) return cached;
        const result = this.#deserializeUncached(serialized);
        if (this.#cache.size > 10_000) this.#cache.clear();
        this.#cache.set(cacheKey, result);
        return result;
    }

    #deserializeUncached(serialized: Uint8Array): ValidatedIdentity | string {
        let mspId: string;
        let pem: string;
        try {
            const identity = msp.SerializedIdentity.deserializeBinary(serialized);
            mspId = identity.getMspid();
            pem = Buffer.from(identity.getIdBytes_asU8()).toString('utf8');
        } catch {
            return 'malformed serialized identity';
        }
        const organisation = this.#organisations.get(mspId);
        if (organisation === undefined) return `unknown MSP ${mspId}`;
        const validation = organisation.validate(pem, new Date());
        if (!validation.valid) return validation.reason;
        return { mspId, role: validation.role, publicKey: publicKeyOf(pem), serialized };
    }
}
