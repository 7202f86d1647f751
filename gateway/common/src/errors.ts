/**
 * Typed errors of the service layer (device agent, fog, CSP, manufacturer). A reply carries an
 * error as `<code>: <detail>`; a client switches on `code`, never on the message. Codes are the
 * protocol's {@link ErrorCode} (the paper's rejection names and the chaincode's) plus the
 * transport and availability codes below.
 */
import { ErrorCode, parseErrorCode, ProtocolError } from '@m2m-fabric/protocol';

/**
 * Error codes of the service layer that the protocol's ErrorCode does not cover (transport and
 * availability). Wire form is the same `<code>: <detail>` as protocol errors.
 */
export const ServiceErrorCode = {
    Timeout: 'timeout',
    RateLimited: 'rateLimited',
    Oversized: 'oversized',
    Unavailable: 'unavailable',
    LedgerUnavailable: 'ledgerUnavailable',
    StorageUnavailable: 'storageUnavailable',
    UnknownSession: 'unknownSession',
    Busy: 'busy',
    /** Another live process (a running device agent) owns the device state file. */
    DeviceBusy: 'deviceBusy',
    /** The ledger holds another key for this fog than its key file. */
    FogKeyMismatch: 'fogKeyMismatch',
    /** The ledger holds another CSP key or suite than the CSP's key file. */
    CspKeyMismatch: 'cspKeyMismatch',
    NoSessionsLeft: 'noSessionsLeft',
    /** A persisted file (device state, key, record) is unparsable or holds an invalid field. */
    CorruptFile: 'corruptFile',
    /** A file holding a secret is readable by other users. */
    InsecureFile: 'insecureFile',
    /** A forwarded M4's route ID is not the one derived from its IDCert_i. */
    RouteMismatch: 'routeMismatch',
    /**
     * A re-sent M4 of an established session carries another ephemeral share E_D than the one its
     * K_i was derived from: refused, never a second key for one session.
     */
    EphemeralShareMismatch: 'ephemeralShareMismatch',
    Internal: 'internal',
} as const;
export type ServiceErrorCode = (typeof ServiceErrorCode)[keyof typeof ServiceErrorCode];
export type AnyErrorCode = ErrorCode | ServiceErrorCode;
const SERVICE_CODES: ReadonlySet<string> = new Set(Object.values(ServiceErrorCode));

/** A typed failure of the service layer; `code` is a protocol ErrorCode or a ServiceErrorCode. */
/**
 * `detail` without leading `<code>: ` prefixes. An error's message already starts with its code, and
 * it crosses several hops (CSP -> link -> fog -> device), each of which would otherwise prepend the
 * code once more (`malformedInput: malformedInput: ...`).
 */
export function errorDetail(code: string, detail: string): string {
    const prefix = `${code}: `;
    let d = detail;
    while (d.startsWith(prefix)) d = d.slice(prefix.length);
    return d;
}

export class ServiceError extends Error {
    readonly code: AnyErrorCode;
    constructor(code: AnyErrorCode, message: string, options?: ErrorOptions) {
        super(`${code}: ${errorDetail(code, message)}`, options);
        this.name = 'ServiceError';
        this.code = code;
    }
}

/**
 * The SDK's ledger errors that mean "the peer did not answer in time or could not be reached"
 * (@m2m-fabric/sdk's ConnectionError and DeadlineError). Matched by name: this package does not
 * depend on the SDK, and a device never loads it.
 */
const LEDGER_UNREACHABLE = new Set(['ConnectionError', 'DeadlineError']);

/**
 * The code of any error: ProtocolError/ServiceError code; `ledgerUnavailable` for a peer that was
 * unreachable or too slow (retryable: nothing was decided); a code embedded in a ledger message;
 * or internal.
 */
export function errorCodeOf(err: unknown): AnyErrorCode {
    if (err instanceof ServiceError || err instanceof ProtocolError) return err.code;
    if (err instanceof Error && LEDGER_UNREACHABLE.has(err.name)) return ServiceErrorCode.LedgerUnavailable;
    const message = err instanceof Error ? err.message : String(err);
    const code = parseErrorCode(message);
    if (code !== undefined) return code;
    for (const m of message.matchAll(/([A-Za-z][A-Za-z0-9-]*):/g)) {
        if (m[1] !== undefined && SERVICE_CODES.has(m[1])) return m[1] as ServiceErrorCode;
    }
    return ServiceErrorCode.Internal;
}

export function isKnownErrorCode(code: string): code is AnyErrorCode {
    return SERVICE_CODES.has(code) || (Object.values(ErrorCode) as string[]).includes(code);
}
