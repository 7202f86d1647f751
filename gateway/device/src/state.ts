/**
 * The device's local state file (mode 0600, replaced atomically): its secrets (w, equipment id),
 * the fog and CSP keys it was provisioned with, the purchased counter range and the current
 * session. A counter is reserved — written as used — BEFORE M1 leaves the device, so it is never
 * given to another session, even after a crash between send and reply; until its session is
 * established it stays `pendingCounter`, and only that same session retries it.
 */
import {
    checkField,
    isJsonObject,
    PersistedFileError,
    readJsonFile,
    ROUTE_ID_BYTES,
    ServiceErrorCode,
    writeJsonAtomic,
    type ReadSecretOptions,
} from '@m2m-fabric/common';
import { X509Certificate } from 'node:crypto';

import {
    ReceiptVerifier,
    decodePoint,
    decodeScalar,
    fromHex,
    getSuite,
    parseChannelTrust,
    suiteOfCounter as suiteOfCounterIn,
    type ChannelTrust,
    type SessionChannelState,
    type Suite,
} from '@m2m-fabric/protocol';

/**
 * The current session. Pending (`established: false`, between M2 and the Confirm): `symKey` is
 * symKey_i and the certificate's x_D is the file's `pendingEphemeral`, both kept so that a retry
 * or a restarted device can still take the Confirm of an activation that committed. Established:
 * `trafficKey` is K_i, the forward-secret key of the session channel, and `channel` its state;
 * symKey_i and x_D left the file in the same atomic write that stored K_i. (An established session
 * of an older release holds `symKey` instead of `trafficKey`: the agent drops it at load.)
 */
export interface DeviceSessionState {
    counter: string;
    routeId: string;
    /** K_i (hex), once established. */
    trafficKey?: string;
    /** symKey_i (hex), only until the Confirm. */
    symKey?: string;
    established: boolean;
    /** The session channel's state under K_i, once established. */
    channel?: SessionChannelState;
    /**
     * d_i, the session's private key (hex scalar): signs the device's communication records of
     * the frames it sends, so records name H(Q_i) and never the device (absent in older files).
     */
    recordKey?: string;
    /** The session's suite when it is not the device's (its certificate's: see counterSuites). */
    suite?: string;
}

export interface DeviceStateFile {
    version: 1;
    suite: string;
    equipmentId: string;
    /** Owner secret w, hex scalar. */
    w: string;
    fog: { id: string; publicKey: string; brokerUrl?: string };
    /** Q_c as provisioned: CA key epoch 0, also the CSP's identity (its record and query signatures). */
    cspPublicKey: string;
    /**
     * CA key epochs after 0 this device accepted, oldest first: each learnt from a fog's info
     * message only with its rotation signed by the previous trusted key and by itself
     * (extendTrustedCspKeys; docs/protocol.md#csp-key-rotation). Absent: epoch 0 only.
     */
    cspKeys?: { keyId: number; caPublicKey: string; suite?: string }[];
    /**
     * Purchases in another suite than the device's (after the CSP moved its CA to another suite,
     * docs/protocol.md#rotation-to-another-suite): counters in [from, to) are certificates of
     * `suite`, built with the owner secret derived for it (suiteSecrets). Sorted by `from`;
     * counters in no range are in the device's own suite.
     */
    counterSuites?: { from: string; to: string; suite: string }[];
    /** Next unused counter i (decimal). */
    nextCounter: string;
    /** One past the last purchased counter (decimal). */
    endCounter: string;
    /**
     * Highest CSP instruction id handed to the device's handlers: a re-delivered instruction (the
     * CSP did not see the acknowledgement) is acknowledged again but not handled twice.
     */
    lastInstructionId?: string;
    /**
     * The counter of a session that has not finished (reserved, not yet established nor refused for
     * good). Its certificate is paid for and may still be `unused` on the ledger, so the next session
     * retries THIS certificate (same counter, fresh M1) instead of reserving a new one; see
     * docs/reliability.md#recovering-a-paid-session.
     */
    pendingCounter?: string;
    /**
     * x_D (hex scalar) of the pending counter's certificate: drawn once, written with the
     * reservation before M1 leaves, reused by every attempt of that certificate (so each C2 carries
     * the same E_D and attempts stay interchangeable), removed at the Confirm or when the
     * certificate is given up.
     */
    pendingEphemeral?: string;
    session?: DeviceSessionState;
    /**
     * The channel's trust roots (MSP root certificates of its organisations and orderers, the
     * chaincode, the endorsement policy), given at provisioning: step 9 of the record query
     * verifies every answered record's Merkle receipt against them, offline (receipt-check.ts).
     */
    channelTrust?: ChannelTrust;
}

const DECIMAL = /^(0|[1-9]\d*)$/;
const HEX = /^(?:[0-9a-f]{2})+$/;
const MAX_COUNTER = 2n ** 64n;

function decimal(value: unknown, path: string, what: string): bigint {
    checkField(typeof value === 'string' && DECIMAL.test(value), path, `${what} must be a decimal string`);
    const n = BigInt(value);
    checkField(n < MAX_COUNTER, path, `${what} is out of range`);
    return n;
}

function hexBytes(value: unknown, path: string, what: string, length?: number): Uint8Array {
    checkField(typeof value === 'string' && HEX.test(value), path, `${what} must be lowercase hex`);
    const bytes = fromHex(value);
    checkField(length === undefined || bytes.length === length, path, `${what} must be ${length} bytes`);
    return bytes;
}

/**
 * The trust roots must be a channel trust a ReceiptVerifier accepts, and every root a CA
 * certificate: a device that trusted a leaf (or nothing) would accept no receipt, or the wrong ones.
 * @throws PersistedFileError `corruptFile`
 */
function validateChannelTrust(raw: unknown, path: string): void {
    let trust: ChannelTrust;
    try {
        trust = parseChannelTrust(JSON.stringify(raw));
        new ReceiptVerifier(trust);
    } catch (err) {
        throw new PersistedFileError(ServiceErrorCode.CorruptFile, path, `channelTrust: ${(err as Error).message}`);
    }
    checkField(trust.orderers.length > 0 && trust.organisations.length > 0, path, 'channelTrust: no roots');
    for (const org of [...trust.orderers, ...trust.organisations]) {
        checkField(org.rootCertificates.length > 0, path, `channelTrust: ${org.mspId} has no root certificate`);
        for (const pem of org.rootCertificates) {
            checkField(
                new X509Certificate(pem).ca,
                path,
                `channelTrust: a root of ${org.mspId} is not a CA certificate`,
            );
        }
    }
}

/** The suite counter `counter` is a certificate of, by the state's counterSuites. */
export function suiteOfCounter(state: Pick<DeviceStateFile, 'suite' | 'counterSuites'>, counter: bigint): Suite {
    return suiteOfCounterIn(getSuite(state.suite), state.counterSuites, counter);
}

/**
 * Checks every field of a parsed state file, so a bad file is refused at load — before any counter
 * is reserved — rather than after a session has been spent on it.
 *
 * @throws PersistedFileError `corruptFile` naming `path` and the first bad field.
 */
export function validateDeviceState(raw: unknown, path: string): DeviceStateFile {
    checkField(isJsonObject(raw), path, 'not a JSON object');
    checkField(raw.version === 1, path, `unknown version ${JSON.stringify(raw.version)}`);
    checkField(typeof raw.suite === 'string', path, 'suite missing');
    let suite: Suite;
    try {
        suite = getSuite(raw.suite);
    } catch {
        throw new PersistedFileError(ServiceErrorCode.CorruptFile, path, `unknown suite ${JSON.stringify(raw.suite)}`);
    }
    checkField(
        typeof raw.equipmentId === 'string' && raw.equipmentId !== '' && raw.equipmentId.length <= 256,
        path,
        'equipmentId missing',
    );
    const w = hexBytes(raw.w, path, 'w', suite.scalarBytes);
    try {
        decodeScalar(suite, w);
    } catch (err) {
        throw new PersistedFileError(ServiceErrorCode.CorruptFile, path, `w: ${(err as Error).message}`);
    }
    const namedSuite = (value: unknown, what: string): Suite => {
        if (value === undefined) return suite;
        try {
            return getSuite(value as string);
        } catch {
            throw new PersistedFileError(ServiceErrorCode.CorruptFile, path, `${what}: unknown suite`);
        }
    };
    const point = (value: unknown, what: string, of: Suite = suite): void => {
        const bytes = hexBytes(value, path, what, of.pointBytes);
        try {
            decodePoint(of, bytes);
        } catch (err) {
            throw new PersistedFileError(ServiceErrorCode.CorruptFile, path, `${what}: ${(err as Error).message}`);
        }
    };
    const fog = raw.fog;
    checkField(isJsonObject(fog), path, 'fog missing');
    checkField(typeof fog.id === 'string' && fog.id !== '', path, 'fog.id missing');
    point(fog.publicKey, 'fog.publicKey');
    checkField(
        fog.brokerUrl === undefined || typeof fog.brokerUrl === 'string',
        path,
        'fog.brokerUrl must be a string',
    );
    point(raw.cspPublicKey, 'cspPublicKey');
    if (raw.cspKeys !== undefined) {
        checkField(Array.isArray(raw.cspKeys) && raw.cspKeys.length <= 64, path, 'cspKeys must be a list');
        (raw.cspKeys as unknown[]).forEach((entry, index) => {
            checkField(isJsonObject(entry), path, `cspKeys[${index}] must be an object`);
            checkField(entry.keyId === index + 1, path, `cspKeys[${index}].keyId must be ${index + 1}`);
            const of = namedSuite(entry.suite, `cspKeys[${index}].suite`);
            point(entry.caPublicKey, `cspKeys[${index}].caPublicKey`, of);
        });
    }
    if (raw.counterSuites !== undefined) {
        checkField(
            Array.isArray(raw.counterSuites) && raw.counterSuites.length <= 1024,
            path,
            'counterSuites must be a list',
        );
        let previousEnd = 0n;
        (raw.counterSuites as unknown[]).forEach((entry, index) => {
            const what = `counterSuites[${index}]`;
            checkField(isJsonObject(entry), path, `${what} must be an object`);
            const from = decimal(entry.from, path, `${what}.from`);
            const to = decimal(entry.to, path, `${what}.to`);
            checkField(from >= 1n && from < to, path, `${what} must be a non-empty range of counters`);
            checkField(from >= previousEnd, path, `${what} overlaps the range before it`);
            previousEnd = to;
            checkField(
                namedSuite(entry.suite, `${what}.suite`).tag !== suite.tag,
                path,
                `${what} names the device's own suite`,
            );
        });
    }
    const next = decimal(raw.nextCounter, path, 'nextCounter');
    const end = decimal(raw.endCounter, path, 'endCounter');
    checkField(next >= 1n, path, 'nextCounter must be at least 1 (counters start at 1)');
    checkField(next <= end, path, `nextCounter ${next} is past endCounter ${end}`);
    if (raw.lastInstructionId !== undefined) decimal(raw.lastInstructionId, path, 'lastInstructionId');
    if (raw.pendingCounter !== undefined) {
        const pending = decimal(raw.pendingCounter, path, 'pendingCounter');
        checkField(pending >= 1n && pending < next, path, 'pendingCounter must be a reserved counter');
    }
    if (raw.pendingEphemeral !== undefined) {
        checkField(raw.pendingCounter !== undefined, path, 'pendingEphemeral without a pendingCounter');
        const pendingSuite = suiteOfCounter(raw as unknown as DeviceStateFile, BigInt(raw.pendingCounter as string));
        const x = hexBytes(raw.pendingEphemeral, path, 'pendingEphemeral', pendingSuite.scalarBytes);
        try {
            decodeScalar(pendingSuite, x);
        } catch (err) {
            throw new PersistedFileError(
                ServiceErrorCode.CorruptFile,
                path,
                `pendingEphemeral: ${(err as Error).message}`,
            );
        }
    }
    if (raw.channelTrust !== undefined) validateChannelTrust(raw.channelTrust, path);
    if (raw.session !== undefined) {
        const ses = raw.session;
        checkField(isJsonObject(ses), path, 'session must be an object');
        const counter = decimal(ses.counter, path, 'session.counter');
        checkField(counter >= 1n && counter < next, path, 'session.counter must be a reserved counter');
        hexBytes(ses.routeId, path, 'session.routeId', ROUTE_ID_BYTES);
        checkField(typeof ses.established === 'boolean', path, 'session.established must be true or false');
        const own = namedSuite(ses.suite, 'session.suite');
        if (ses.established === true && (ses.trafficKey !== undefined || ses.symKey === undefined))
            hexBytes(ses.trafficKey, path, 'session.trafficKey', own.hashBytes);
        else hexBytes(ses.symKey, path, 'session.symKey', own.hashBytes);
        if (ses.established === false)
            checkField(ses.trafficKey === undefined, path, 'session.trafficKey in a session not established');
        if (ses.recordKey !== undefined) hexBytes(ses.recordKey, path, 'session.recordKey', own.scalarBytes);
        const ch = ses.channel;
        if (ch === undefined && ses.established === false) return raw as unknown as DeviceStateFile;
        checkField(isJsonObject(ch), path, 'session.channel missing');
        decimal(ch.sendSeq, path, 'session.channel.sendSeq');
        checkField(
            typeof ch.recvHighest === 'string' && /^(-1|0|[1-9]\d*)$/.test(ch.recvHighest),
            path,
            'session.channel.recvHighest must be a decimal string or -1',
        );
        checkField(
            typeof ch.recvWindow === 'string' && /^[0-9a-f]{16}$/.test(ch.recvWindow),
            path,
            'session.channel.recvWindow must be 16 hex digits',
        );
    }
    return raw as unknown as DeviceStateFile;
}

/**
 * Reads and fully validates the state file; undefined when it does not exist. A file other users
 * can read is made 0600 with a warning (its w may have been read: re-provision if in doubt).
 *
 * @throws PersistedFileError `corruptFile` (unparsable or an invalid field), naming the file.
 */
export async function readDeviceState(
    path: string,
    options: ReadSecretOptions = {},
): Promise<DeviceStateFile | undefined> {
    const raw = await readJsonFile(path, options);
    if (raw === undefined) return undefined;
    return validateDeviceState(raw, path);
}

export async function writeDeviceState(path: string, state: DeviceStateFile): Promise<void> {
    await writeJsonAtomic(path, state);
}
