/**
 * Connection settings for a real Fabric network: which peer's Gateway service to call, how to
 * trust its TLS certificate, which identity to transact as, and which channel and chaincode to use.
 *
 * Settings come from a connection file (`.json`, or `.env` with `KEY=VALUE` lines; see
 * fabric-network/connection/) and/or the process environment; environment variables win, so one
 * file can serve several processes that differ only in, say, the peer they call. Every problem is
 * reported at once, with the variable name that fixes it, before any network call is made.
 */
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

/** Time budgets (ms) of the four Gateway calls when a call gives no `deadlineMs` of its own. */
export interface FabricTimeouts {
    evaluateMs: number;
    endorseMs: number;
    submitMs: number;
    commitStatusMs: number;
}

/** Defaults as in fabric-samples' application-gateway-typescript. */
export const DEFAULT_TIMEOUTS: Readonly<FabricTimeouts> = {
    evaluateMs: 5_000,
    endorseMs: 15_000,
    submitMs: 5_000,
    commitStatusMs: 60_000,
};

/** Settings as written: paths not yet read, numbers not yet parsed. */
export interface FabricConnectionSettings {
    peerEndpoint?: string;
    hostAlias?: string;
    tlsCaCertPath?: string;
    mspId?: string;
    certPath?: string;
    keyPath?: string;
    channelName?: string;
    chaincodeName?: string;
    contractName?: string;
    evaluateTimeoutMs?: string;
    endorseTimeoutMs?: string;
    submitTimeoutMs?: string;
    commitStatusTimeoutMs?: string;
    /** Shown in `EndorsementPolicyError.policy`; the channel's default is `MAJORITY Endorsement`. */
    endorsementPolicy?: string;
}

/** Validated settings with the files read. */
export interface FabricConnectionConfig {
    /** `host:port` of the peer whose Gateway service this client calls. */
    peerEndpoint: string;
    /** TLS server name to expect when it differs from the endpoint's host (e.g. `peer0.foga.m2m.example.com`). */
    hostAlias: string | undefined;
    /** PEM of the CA that issued the peer's TLS certificate. */
    tlsCaCert: Buffer;
    mspId: string;
    /** PEM X.509 certificate of the client identity. */
    certificate: Buffer;
    /** The identity's private key; it never leaves this process. */
    privateKey: KeyObject;
    channelName: string;
    chaincodeName: string;
    contractName: string | undefined;
    timeouts: FabricTimeouts;
    endorsementPolicy: string;
}

/** The settings are incomplete or inconsistent; `problems` lists every one, each naming its variable. */
export class FabricConfigError extends Error {
    readonly problems: readonly string[];
    constructor(problems: readonly string[], source: string) {
        super(`invalid Fabric connection settings (${source}):\n  - ${problems.join('\n  - ')}`);
        this.name = 'FabricConfigError';
        this.problems = problems;
    }
}

/** Environment variable of each setting (also the key names of a `.env` connection file). */
export const ENV_NAMES = {
    peerEndpoint: 'FABRIC_PEER_ENDPOINT',
    hostAlias: 'FABRIC_PEER_HOST_ALIAS',
    tlsCaCertPath: 'FABRIC_TLS_CA_CERT',
    mspId: 'FABRIC_MSP_ID',
    certPath: 'FABRIC_CERT',
    keyPath: 'FABRIC_KEY',
    channelName: 'FABRIC_CHANNEL',
    chaincodeName: 'FABRIC_CHAINCODE',
    contractName: 'FABRIC_CONTRACT',
    evaluateTimeoutMs: 'FABRIC_EVALUATE_TIMEOUT_MS',
    endorseTimeoutMs: 'FABRIC_ENDORSE_TIMEOUT_MS',
    submitTimeoutMs: 'FABRIC_SUBMIT_TIMEOUT_MS',
    commitStatusTimeoutMs: 'FABRIC_COMMIT_STATUS_TIMEOUT_MS',
    endorsementPolicy: 'FABRIC_ENDORSEMENT_POLICY',
} as const satisfies Record<keyof FabricConnectionSettings, string>;

/** The variable that names a connection file. */
export const CONNECTION_FILE_ENV = 'FABRIC_CONNECTION';

const PATH_SETTINGS = ['tlsCaCertPath', 'certPath', 'keyPath'] as const;
const SETTING_KEYS = Object.keys(ENV_NAMES) as (keyof FabricConnectionSettings)[];
const ENV_TO_KEY: ReadonlyMap<string, keyof FabricConnectionSettings> = new Map(
    SETTING_KEYS.map((key) => [ENV_NAMES[key], key]),
);

/**
 * Parses a `.env` connection file: `KEY=VALUE` lines, `#` comments, optional `export ` prefix,
 * values optionally in single or double quotes. No variable expansion (a file that needs it is a
 * shell script, not configuration).
 */
export function parseEnvFile(text: string, source: string): Record<string, string> {
    const values: Record<string, string> = {};
    const lines = text.split(/\r?\n/);
    lines.forEach((raw, index) => {
        const line = raw.trim();
        if (line === '' || line.startsWith('#')) return;
        const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
        if (match === null) {
            throw new FabricConfigError([`line ${index + 1} is not KEY=VALUE: ${JSON.stringify(raw)}`], source);
        }
        let value = match[2] ?? '';
        const quoted = /^'(.*)'$/.exec(value) ?? /^"(.*)"$/.exec(value);
        if (quoted !== null) value = quoted[1] ?? '';
        values[match[1] ?? ''] = value;
    });
    return values;
}

/**
 * Reads a connection file into settings; relative paths in it are resolved against its directory.
 * @throws {FabricConfigError}
 */
export function readConnectionFile(path: string): FabricConnectionSettings {
    let text: string;
    try {
        text = readFileSync(path, 'utf8');
    } catch (err) {
        throw new FabricConfigError([`cannot read connection file: ${(err as Error).message}`], path);
    }
    const settings: FabricConnectionSettings = {};
    if (path.endsWith('.json')) {
        let parsed: unknown;
        try {
            parsed = JSON.parse(text);
        } catch (err) {
            throw new FabricConfigError([`not valid JSON: ${(err as Error).message}`], path);
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
            throw new FabricConfigError(['the JSON document must be an object'], path);
        }
        const problems: string[] = [];
        for (const [key, value] of Object.entries(parsed)) {
            if (!SETTING_KEYS.includes(key as keyof FabricConnectionSettings)) {
                problems.push(`unknown key "${key}" (known: ${SETTING_KEYS.join(', ')})`);
            } else if (typeof value !== 'string' && typeof value !== 'number') {
                problems.push(`"${key}" must be a string`);
            } else {
                settings[key as keyof FabricConnectionSettings] = String(value);
            }
        }
        if (problems.length > 0) throw new FabricConfigError(problems, path);
    } else {
        const problems: string[] = [];
        for (const [name, value] of Object.entries(parseEnvFile(text, path))) {
            const key = ENV_TO_KEY.get(name);
            if (key === undefined) {
                problems.push(`unknown variable ${name} (known: ${[...ENV_TO_KEY.keys()].join(', ')})`);
            } else {
                settings[key] = value;
            }
        }
        if (problems.length > 0) throw new FabricConfigError(problems, path);
    }
    const base = dirname(resolve(path));
    for (const key of PATH_SETTINGS) {
        const value = settings[key];
        if (value !== undefined && value !== '' && !isAbsolute(value)) settings[key] = join(base, value);
    }
    return settings;
}

/** Settings from the environment only (paths relative to the working directory). */
export function settingsFromEnv(env: NodeJS.ProcessEnv): FabricConnectionSettings {
    const settings: FabricConnectionSettings = {};
    for (const key of SETTING_KEYS) {
        const value = env[ENV_NAMES[key]];
        if (value !== undefined && value !== '') settings[key] = value;
    }
    for (const key of PATH_SETTINGS) {
        const value = settings[key];
        if (value !== undefined) settings[key] = resolve(value);
    }
    return settings;
}

/**
 * Loads settings from `file` (default: `$FABRIC_CONNECTION`, if set) overlaid with the
 * environment, and validates them. Throws `FabricConfigError` listing every problem.
 */
export function loadFabricConfig(options: { file?: string; env?: NodeJS.ProcessEnv } = {}): FabricConnectionConfig {
    const env = options.env ?? process.env;
    const file = options.file ?? (env[CONNECTION_FILE_ENV] || undefined);
    const fromFile = file === undefined ? {} : readConnectionFile(file);
    const settings = { ...fromFile, ...settingsFromEnv(env) };
    return resolveFabricConfig(settings, file === undefined ? 'environment' : `${file} + environment`);
}

function label(key: keyof FabricConnectionSettings): string {
    return `${ENV_NAMES[key]} (${key})`;
}

function readPem(path: string, key: keyof FabricConnectionSettings, problems: string[]): Buffer | undefined {
    try {
        return readFileSync(path);
    } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        problems.push(
            code === 'ENOENT'
                ? `${label(key)}: file ${path} does not exist`
                : `${label(key)}: cannot read ${path}: ${(err as Error).message}`,
        );
        return undefined;
    }
}

/**
 * A key path may name the key file or, as in an MSP directory's `keystore/`, a directory holding
 * exactly one key file (cryptogen names it `priv_sk`, Fabric CA `<hash>_sk`).
 */
function resolveKeyFile(path: string, problems: string[]): string | undefined {
    let isDirectory: boolean;
    try {
        isDirectory = statSync(path).isDirectory();
    } catch {
        problems.push(`${label('keyPath')}: ${path} does not exist`);
        return undefined;
    }
    if (!isDirectory) return path;
    const files = readdirSync(path).filter((name) => !name.startsWith('.'));
    if (files.length !== 1 || files[0] === undefined) {
        problems.push(
            `${label('keyPath')}: directory ${path} must hold exactly one key file, found ${files.length} (${files.join(', ')})`,
        );
        return undefined;
    }
    return join(path, files[0]);
}

function parseTimeout(
    key: keyof FabricConnectionSettings,
    fallback: number,
    settings: FabricConnectionSettings,
    problems: string[],
): number {
    const text = settings[key];
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value <= 0) {
        problems.push(`${label(key)} must be a positive whole number of milliseconds, got ${JSON.stringify(text)}`);
        return fallback;
    }
    return value;
}

const ENDPOINT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
const MSP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
// Fabric channel names: lowercase alphanumerics, dots and dashes, starting with a letter, < 250 chars.
const CHANNEL = /^[a-z][a-z0-9.-]{0,248}$/;
// Chaincode names as the lifecycle accepts them.
const CHAINCODE = /^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$/;

/**
 * Validates settings and reads the files they name.
 * @throws {FabricConfigError}
 */
export function resolveFabricConfig(settings: FabricConnectionSettings, source = 'settings'): FabricConnectionConfig {
    const problems: string[] = [];
    const required = (key: keyof FabricConnectionSettings): string | undefined => {
        const value = settings[key]?.trim();
        if (value === undefined || value === '') {
            problems.push(`${label(key)} is required`);
            return undefined;
        }
        return value;
    };

    const peerEndpoint = required('peerEndpoint');
    if (peerEndpoint !== undefined) {
        const match = ENDPOINT.exec(peerEndpoint);
        const port = match === null ? NaN : Number(match[1]);
        if (match === null || port < 1 || port > 65535) {
            problems.push(
                `${label('peerEndpoint')} must be host:port (e.g. localhost:7051), got ${JSON.stringify(peerEndpoint)}`,
            );
        }
    }
    const hostAlias = settings.hostAlias?.trim() || undefined;
    if (hostAlias !== undefined && !/^[A-Za-z0-9.-]+$/.test(hostAlias)) {
        problems.push(`${label('hostAlias')} must be a host name, got ${JSON.stringify(hostAlias)}`);
    }

    const mspId = required('mspId');
    if (mspId !== undefined && !MSP_ID.test(mspId)) {
        problems.push(`${label('mspId')} is not a valid MSP ID: ${JSON.stringify(mspId)}`);
    }
    const channelName = required('channelName');
    if (channelName !== undefined && !CHANNEL.test(channelName)) {
        problems.push(
            `${label('channelName')} must be lowercase letters, digits, '.' or '-', starting with a letter, got ${JSON.stringify(channelName)}`,
        );
    }
    const chaincodeName = required('chaincodeName');
    if (chaincodeName !== undefined && !CHAINCODE.test(chaincodeName)) {
        problems.push(`${label('chaincodeName')} is not a valid chaincode name: ${JSON.stringify(chaincodeName)}`);
    }

    let tlsCaCert: Buffer | undefined;
    const tlsCaPath = required('tlsCaCertPath');
    if (tlsCaPath !== undefined) {
        tlsCaCert = readPem(tlsCaPath, 'tlsCaCertPath', problems);
        if (tlsCaCert !== undefined) {
            try {
                new X509Certificate(tlsCaCert);
            } catch {
                problems.push(`${label('tlsCaCertPath')}: ${tlsCaPath} is not a PEM X.509 certificate`);
                tlsCaCert = undefined;
            }
        }
    }

    let certificate: Buffer | undefined;
    let x509: X509Certificate | undefined;
    const certPath = required('certPath');
    if (certPath !== undefined) {
        certificate = readPem(certPath, 'certPath', problems);
        if (certificate !== undefined) {
            try {
                x509 = new X509Certificate(certificate);
            } catch {
                problems.push(`${label('certPath')}: ${certPath} is not a PEM X.509 certificate`);
            }
        }
    }

    let privateKey: KeyObject | undefined;
    const keyPathSetting = required('keyPath');
    const keyPath = keyPathSetting === undefined ? undefined : resolveKeyFile(keyPathSetting, problems);
    if (keyPath !== undefined) {
        const keyPem = readPem(keyPath, 'keyPath', problems);
        if (keyPem !== undefined) {
            try {
                privateKey = createPrivateKey(keyPem);
            } catch {
                problems.push(`${label('keyPath')}: ${keyPath} is not a PEM private key`);
            }
        }
    }
    // The project's signer (ledger/signers.ts) does ECDSA P-256/P-384, what cryptogen and Fabric CA issue.
    const curve = privateKey?.asymmetricKeyDetails?.namedCurve;
    if (
        privateKey !== undefined &&
        (privateKey.asymmetricKeyType !== 'ec' || (curve !== 'prime256v1' && curve !== 'secp384r1'))
    ) {
        const kind = `${privateKey.asymmetricKeyType ?? '?'} ${curve ?? ''}`.trim();
        problems.push(`${label('keyPath')}: Fabric identities here use ECDSA P-256 or P-384 keys, this one is ${kind}`);
        privateKey = undefined;
    }
    if (privateKey !== undefined && x509 !== undefined) {
        const fromKey = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
        const fromCert = x509.publicKey.export({ type: 'spki', format: 'der' });
        if (!fromKey.equals(fromCert)) {
            problems.push(`${label('keyPath')} does not belong to the certificate in ${label('certPath')}`);
        }
    }

    const timeouts: FabricTimeouts = {
        evaluateMs: parseTimeout('evaluateTimeoutMs', DEFAULT_TIMEOUTS.evaluateMs, settings, problems),
        endorseMs: parseTimeout('endorseTimeoutMs', DEFAULT_TIMEOUTS.endorseMs, settings, problems),
        submitMs: parseTimeout('submitTimeoutMs', DEFAULT_TIMEOUTS.submitMs, settings, problems),
        commitStatusMs: parseTimeout('commitStatusTimeoutMs', DEFAULT_TIMEOUTS.commitStatusMs, settings, problems),
    };

    if (
        problems.length > 0 ||
        peerEndpoint === undefined ||
        tlsCaCert === undefined ||
        mspId === undefined ||
        certificate === undefined ||
        privateKey === undefined ||
        channelName === undefined ||
        chaincodeName === undefined
    ) {
        throw new FabricConfigError(problems, source);
    }
    return {
        peerEndpoint,
        hostAlias,
        tlsCaCert,
        mspId,
        certificate,
        privateKey,
        channelName,
        chaincodeName,
        contractName: settings.contractName?.trim() || undefined,
        timeouts,
        endorsementPolicy: settings.endorsementPolicy?.trim() || 'MAJORITY Endorsement',
    };
}
