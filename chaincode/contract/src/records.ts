/**
 * The compact binary world-state records of Algorithms 1-3 (docs/design.md#ledger-records). They are the records a
 * ledger holds per certificate and per session, so they are binary (paper 004 Fig. 4: the ledger
 * stores a pointer, not the certificate) — roughly 71 value bytes per P-256 certificate.
 *
 *   Table II   IDCert_i -> version | status | B_i (SEC1) | CID of the certificate object (36 B)
 *              (version 2, a certificate issued under CSP key epoch > 0: version | u16 keyId | ...;
 *              version 3, one requested or issued in a suite other than the ledger's (a CA key epoch of
 *              another suite, docs/protocol.md#rotation-to-another-suite): version | u16 keyId | u8 suite tag | ...)
 *   session    primaryHash -> version | status | fog id | IDCert_i | H(Q_i) | H(symKey_i)
 *              (version 2, a session in another suite: version | u8 suite tag | ...)
 *   secondary  secondaryHash -> 0x01 (existence only)
 *
 * No record holds a certificate object, ciphertext, ID_i or i.
 */
import { ByteReader, ByteWriter, suiteFromTag } from '@m2m-fabric/protocol';
import type { Suite } from '@m2m-fabric/protocol';

const RECORD_VERSION = 1;

/**
 * Table II record status: requested by a manufacturer, issued (unused), used by a session, or
 * revoked before use (revocation.ts).
 */
export const CertificateStatus = {
    Requested: 'requested',
    Unused: 'unused',
    Used: 'used',
    Revoked: 'revoked',
} as const;
export type CertificateStatus = (typeof CertificateStatus)[keyof typeof CertificateStatus];

const CERTIFICATE_STATUS_CODES: readonly CertificateStatus[] = ['requested', 'unused', 'used', 'revoked'];

export interface CertificateRecord {
    status: CertificateStatus;
    /** B_i = i*G, SEC1 compressed (from the request's counter proof). */
    counterCommitment: Uint8Array;
    /** Binary CIDv1 of the certificate object; absent while requested. */
    contentAddress?: Uint8Array;
    /**
     * The CSP key epoch it was issued under (state.ts, CspKeyEpoch); 0 when absent. Epoch 0 keeps
     * the version-1 layout, so records written before key rotation existed read unchanged.
     */
    keyId?: number;
    /**
     * The certificate's suite, when it is not the ledger's (the suite given to encode/decode): set
     * for the certificates of a CA key epoch of another suite. Its points and hashes are that suite's.
     */
    suite?: Suite;
}

/** Table II records of certificates issued under a CSP key epoch > 0 carry it after the version. */
const KEYED_RECORD_VERSION = 2;
/** Table II records of another suite than the ledger's: the key epoch, then the suite tag. */
const SUITED_RECORD_VERSION = 3;
/** Session records of another suite than the ledger's carry its tag after the version. */
const SUITED_SESSION_VERSION = 2;

/** The suite a record is in: its own when it names one that differs from the ledger's. */
function recordSuite(ledgerSuite: Suite, record: { suite?: Suite }): Suite | undefined {
    return record.suite !== undefined && record.suite.tag !== ledgerSuite.tag ? record.suite : undefined;
}

/** Binary CIDv1 raw sha2-256 length: version, codec, multihash code, digest length, 32-byte digest. */
export const BINARY_CID_BYTES = 36;

export function encodeCertificateRecord(suite: Suite, record: CertificateRecord): Uint8Array {
    const keyId = record.keyId ?? 0;
    if (!Number.isInteger(keyId) || keyId < 0 || keyId > 0xffff) throw new TypeError('keyId outside [0, 65535]');
    const own = recordSuite(suite, record);
    const writer =
        own !== undefined
            ? new ByteWriter().u8(SUITED_RECORD_VERSION).u16(keyId).u8(own.tag)
            : keyId === 0
              ? new ByteWriter().u8(RECORD_VERSION)
              : new ByteWriter().u8(KEYED_RECORD_VERSION).u16(keyId);
    writer
        .u8(CERTIFICATE_STATUS_CODES.indexOf(record.status))
        .raw(checkLength(record.counterCommitment, (own ?? suite).pointBytes, 'B_i'));
    if (record.status === CertificateStatus.Requested) {
        if (record.contentAddress !== undefined) {
            throw new TypeError('a requested certificate has no content address yet');
        }
    } else if (record.status === CertificateStatus.Revoked) {
        // Revoked before or after issuance: a presence byte, then the CID when it was issued.
        if (record.contentAddress === undefined) writer.u8(0);
        else writer.u8(1).raw(checkLength(record.contentAddress, BINARY_CID_BYTES, 'content address'));
    } else {
        if (record.contentAddress === undefined) {
            throw new TypeError('an issued certificate record needs its content address');
        }
        writer.raw(checkLength(record.contentAddress, BINARY_CID_BYTES, 'content address'));
    }
    return writer.finish();
}

/** `suite` is the ledger's; a version-3 record names its own (returned as `suite`). */
export function decodeCertificateRecord(ledgerSuite: Suite, bytes: Uint8Array): CertificateRecord {
    const reader = new ByteReader(bytes);
    const version = reader.u8();
    let keyId = 0;
    let own: Suite | undefined;
    if (version === KEYED_RECORD_VERSION) {
        keyId = reader.u16();
        if (keyId === 0) throw new TypeError('a version-2 certificate record names key epoch 0');
    } else if (version === SUITED_RECORD_VERSION) {
        keyId = reader.u16();
        own = suiteFromTag(reader.u8());
        if (own.tag === ledgerSuite.tag) throw new TypeError("a version-3 certificate record names the ledger's suite");
    } else checkVersion(version);
    const suite = own ?? ledgerSuite;
    const status = CERTIFICATE_STATUS_CODES[reader.u8()];
    if (status === undefined) {
        throw new TypeError('unknown certificate status in stored record');
    }
    const counterCommitment = reader.raw(suite.pointBytes);
    let contentAddress: Uint8Array | undefined;
    if (status === CertificateStatus.Revoked) {
        const present = reader.u8();
        if (present > 1) throw new TypeError('bad content-address flag in a revoked record');
        contentAddress = present === 1 ? reader.raw(BINARY_CID_BYTES) : undefined;
    } else if (status !== CertificateStatus.Requested) {
        contentAddress = reader.raw(BINARY_CID_BYTES);
    }
    reader.end();
    const record: CertificateRecord =
        contentAddress === undefined ? { status, counterCommitment } : { status, counterCommitment, contentAddress };
    if (keyId !== 0) record.keyId = keyId;
    if (own !== undefined) record.suite = own;
    return record;
}

export const SessionStatus = {
    /** Recorded by the activation (Alg. 2): the fog and the device agree, the CSP not yet. */
    Acknowledged: 'acknowledged',
    /** Confirmed by the CSP (Alg. 3). */
    Synchronised: 'synchronised',
    /** Ended by the CSP (its device was revoked, or the CSP closed it). */
    Ended: 'ended',
} as const;
export type SessionStatus = (typeof SessionStatus)[keyof typeof SessionStatus];

const SESSION_STATUS_CODES: readonly SessionStatus[] = ['acknowledged', 'synchronised', 'ended'];

export interface SessionRecord {
    status: SessionStatus;
    fogId: string;
    /** IDCert_i, SEC1 compressed. */
    idCert: Uint8Array;
    /** H(Q_i). */
    publicKeyCommitment: Uint8Array;
    /** H(symKey_i). */
    symKeyCommitment: Uint8Array;
    /** The session's suite, when it is not the ledger's (as CertificateRecord.suite). */
    suite?: Suite;
}

export function encodeSessionRecord(ledgerSuite: Suite, record: SessionRecord): Uint8Array {
    const own = recordSuite(ledgerSuite, record);
    const suite = own ?? ledgerSuite;
    const writer =
        own === undefined
            ? new ByteWriter().u8(RECORD_VERSION)
            : new ByteWriter().u8(SUITED_SESSION_VERSION).u8(own.tag);
    return writer
        .u8(SESSION_STATUS_CODES.indexOf(record.status))
        .string(record.fogId)
        .raw(checkLength(record.idCert, suite.pointBytes, 'IDCert_i'))
        .raw(checkLength(record.publicKeyCommitment, suite.hashBytes, 'H(Q_i)'))
        .raw(checkLength(record.symKeyCommitment, suite.hashBytes, 'H(symKey_i)'))
        .finish();
}

/** `ledgerSuite` is the ledger's; a version-2 record names its own (returned as `suite`). */
export function decodeSessionRecord(ledgerSuite: Suite, bytes: Uint8Array): SessionRecord {
    const reader = new ByteReader(bytes);
    const version = reader.u8();
    let own: Suite | undefined;
    if (version === SUITED_SESSION_VERSION) {
        own = suiteFromTag(reader.u8());
        if (own.tag === ledgerSuite.tag) throw new TypeError("a version-2 session record names the ledger's suite");
    } else checkVersion(version);
    const suite = own ?? ledgerSuite;
    const status = SESSION_STATUS_CODES[reader.u8()];
    if (status === undefined) {
        throw new TypeError('unknown session status in stored record');
    }
    const record: SessionRecord = {
        status,
        fogId: reader.string(),
        idCert: reader.raw(suite.pointBytes),
        publicKeyCommitment: reader.raw(suite.hashBytes),
        symKeyCommitment: reader.raw(suite.hashBytes),
    };
    reader.end();
    if (own !== undefined) record.suite = own;
    return record;
}

/** The value of a secondaryHash record: it only has to exist (Fabric treats an empty value as a delete). */
export const SECONDARY_HASH_MARKER = Uint8Array.of(1);

function checkLength(bytes: Uint8Array, length: number, what: string): Uint8Array {
    if (bytes.length !== length) {
        throw new TypeError(`${what} must be ${length} bytes, got ${bytes.length}`);
    }
    return bytes;
}

function checkVersion(version: number): void {
    if (version !== RECORD_VERSION) {
        throw new TypeError(`unknown record version ${version}`);
    }
}
