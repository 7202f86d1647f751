/**
 * Service key material: the CSP-CA's d_c and a fog's d_f, stored as a 0600 JSON file
 * `{suite, privateKey}` (hex scalar), created on first use. The key never leaves the service and is
 * never logged; only the public key is printed.
 *
 * The same scalar also signs the fog <-> CSP link messages and broker login tokens with ECDSA
 * through OpenSSL (node:crypto), under labels distinct from every protocol use.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import {
    bigIntToBytes,
    decodeScalar,
    encodePoint,
    fromHex,
    getSuite,
    hpkeRecipientFromScalar,
    randomScalar,
    toBase64Url,
    toHex,
    withPrecomputedTable,
    type HpkeRecipient,
    type Point,
    type Suite,
} from '@m2m-fabric/protocol';
import {
    checkField,
    isJsonObject,
    PersistedFileError,
    readJsonFile,
    ServiceErrorCode,
    writeJsonAtomic,
    type ReadSecretOptions,
} from '@m2m-fabric/common';

export interface ServiceKey {
    readonly suite: Suite;
    /** The private scalar (d_c or d_f). */
    readonly privateKey: bigint;
    readonly publicKey: Point;
    readonly publicKeyHex: string;
    readonly recipient: HpkeRecipient;
    /** ECDSA key object over the same scalar, for link signatures. */
    readonly signingKey: KeyObject;
}

interface KeyFile {
    suite: string;
    privateKey: string;
}

function jwkCoordinates(suite: Suite, p: Point): { x: string; y: string } {
    const affine = p.toAffine();
    return {
        x: toBase64Url(bigIntToBytes(affine.x, suite.scalarBytes)),
        y: toBase64Url(bigIntToBytes(affine.y, suite.scalarBytes)),
    };
}

/** node:crypto public key for a protocol point (for ECDSA verification). */
export function ecdsaPublicKey(suite: Suite, p: Point): KeyObject {
    return createPublicKey({
        key: { kty: 'EC', crv: suite.webCryptoCurve, ...jwkCoordinates(suite, p) },
        format: 'jwk',
    });
}

export async function serviceKeyFromScalar(suite: Suite, privateKey: bigint): Promise<ServiceKey> {
    const publicKey = withPrecomputedTable(suite, suite.Point.BASE.multiply(privateKey));
    const signingKey = createPrivateKey({
        key: {
            kty: 'EC',
            crv: suite.webCryptoCurve,
            ...jwkCoordinates(suite, publicKey),
            d: toBase64Url(bigIntToBytes(privateKey, suite.scalarBytes)),
        },
        format: 'jwk',
    });
    return {
        suite,
        privateKey,
        publicKey,
        publicKeyHex: toHex(encodePoint(suite, publicKey)),
        recipient: await hpkeRecipientFromScalar(suite, privateKey),
        signingKey,
    };
}

/**
 * Checks a parsed key file completely: the suite is the one configured and the scalar is a
 * canonical, non-zero scalar of it.
 *
 * @throws PersistedFileError `corruptFile` naming `path`.
 */
function validateKeyFile(raw: unknown, path: string, suite: Suite): bigint {
    checkField(isJsonObject(raw), path, 'not a JSON object');
    const stored = raw as Partial<KeyFile>;
    checkField(typeof stored.suite === 'string', path, 'suite missing');
    let fileSuite: Suite;
    try {
        fileSuite = getSuite(stored.suite);
    } catch {
        throw new PersistedFileError(
            ServiceErrorCode.CorruptFile,
            path,
            `unknown suite ${JSON.stringify(stored.suite)}`,
        );
    }
    checkField(fileSuite.id === suite.id, path, `holds a ${fileSuite.id} key, not ${suite.id}`);
    checkField(
        typeof stored.privateKey === 'string' &&
            new RegExp(`^[0-9a-f]{${2 * suite.scalarBytes}}$`).test(stored.privateKey),
        path,
        `privateKey must be ${suite.scalarBytes} bytes of lowercase hex`,
    );
    try {
        return decodeScalar(suite, fromHex(stored.privateKey));
    } catch (err) {
        throw new PersistedFileError(ServiceErrorCode.CorruptFile, path, `privateKey: ${(err as Error).message}`);
    }
}

/**
 * Loads the key file, or creates it (0600) with a fresh key when it does not exist. A key file
 * other users can read is made 0600 with a warning.
 *
 * @throws PersistedFileError `corruptFile` when the file is unparsable, for another suite or holds
 * an invalid scalar (a service never silently replaces its key).
 */
export async function loadOrCreateServiceKey(
    path: string,
    suite: Suite,
    options: ReadSecretOptions = {},
): Promise<ServiceKey> {
    const stored = await readJsonFile(path, options);
    if (stored !== undefined) return serviceKeyFromScalar(suite, validateKeyFile(stored, path, suite));
    const d = randomScalar(suite);
    await writeJsonAtomic(path, { suite: suite.id, privateKey: toHex(bigIntToBytes(d, suite.scalarBytes)) });
    return serviceKeyFromScalar(suite, d);
}

/**
 * Loads an existing key file (validated like {@link loadOrCreateServiceKey}); undefined when there
 * is none. Never creates one.
 *
 * @throws PersistedFileError `corruptFile` when the file is unparsable, for another suite or holds
 * an invalid scalar.
 */
export async function readServiceKey(
    path: string,
    suite: Suite,
    options: ReadSecretOptions = {},
): Promise<ServiceKey | undefined> {
    const stored = await readJsonFile(path, options);
    return stored === undefined ? undefined : serviceKeyFromScalar(suite, validateKeyFile(stored, path, suite));
}

const digestOf = (suite: Suite): string => (suite.hashBytes === 32 ? 'sha256' : 'sha384');

/** ECDSA signature (DER) over `label || message`. */
export function signLabelled(key: ServiceKey, label: string, message: Uint8Array): Uint8Array {
    return new Uint8Array(
        sign(digestOf(key.suite), Buffer.concat([Buffer.from(`${label}\0`), message]), key.signingKey),
    );
}

export function verifyLabelled(
    suite: Suite,
    publicKey: KeyObject,
    label: string,
    message: Uint8Array,
    signature: Uint8Array,
): boolean {
    try {
        return verify(digestOf(suite), Buffer.concat([Buffer.from(`${label}\0`), message]), publicKey, signature);
    } catch {
        return false;
    }
}

const LOGIN_LABEL = 'M2M-V1-MQTT-LOGIN';
/** Login tokens are accepted this long after they were made (clock skew plus connect time). */
export const LOGIN_TOKEN_MAX_AGE_MS = 5 * 60_000;

/** A broker password proving possession of the service key: `<ms timestamp>.<base64url signature>`. */
export function loginToken(key: ServiceKey, username: string, clientId: string, now = Date.now()): string {
    const sig = signLabelled(key, LOGIN_LABEL, Buffer.from(`${username}\0${clientId}\0${now}`));
    return `${now}.${toBase64Url(sig)}`;
}

export function verifyLoginToken(
    suite: Suite,
    publicKey: KeyObject,
    username: string,
    clientId: string,
    token: string,
    now = Date.now(),
): boolean {
    const m = /^(\d{1,15})\.([A-Za-z0-9_-]+)$/.exec(token);
    if (m === null) return false;
    const ts = Number(m[1]);
    if (Math.abs(now - ts) > LOGIN_TOKEN_MAX_AGE_MS) return false;
    const sig = Buffer.from(m[2]!, 'base64url');
    return verifyLabelled(suite, publicKey, LOGIN_LABEL, Buffer.from(`${username}\0${clientId}\0${ts}`), sig);
}
