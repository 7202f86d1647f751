/**
 * Session contract: paper 004 Algorithm 2 (activation at the fog) and Algorithm 3 (synchronisation
 * by the CSP), with every rule checked from public data (docs/design.md#where-secrets-live, #algorithm-2-activation-at-the-fog). A session costs
 * two commits: activateSession, then synchroniseSession.
 */
import fca from 'fabric-contract-api';
import { Context } from 'fabric-contract-api';

import { contentAddressBytes } from '@m2m-fabric/protocol';
import { decodePoint, encodePoint, equalBytes, toHex } from '@m2m-fabric/protocol';
import { MessageType, decodeActivation, decodeCertificateObject, decodeSynchronisation } from '@m2m-fabric/protocol';
import { verifyActivation, type Suite } from '@m2m-fabric/protocol';
import { Role, requireRole } from './access.js';
import type { AccessPolicy } from './access.js';
import { M2MContract } from './base.js';
import { canonicalJson } from './canonical-json.js';
import { ErrorCode, reject } from './errors.js';
import { EventName, emitEvent } from './events.js';
import {
    CertificateStatus,
    SECONDARY_HASH_MARKER,
    SessionStatus,
    decodeCertificateRecord,
    decodeSessionRecord,
    encodeCertificateRecord,
    encodeSessionRecord,
    type SessionRecord,
} from './records.js';
import {
    FogStatus,
    certificateKey,
    cspKeyForUse,
    fogKeyFor,
    messageSuiteIn,
    readCspConfig,
    readFog,
    readState,
    secondaryKey,
    sessionKey,
    suitesInUse,
} from './state.js';
import { requireHexBytesOf, requireIdentifier, requireOnlyTransientKeys, requireTransient } from './validate.js';

const { Info, Returns, Transaction } = fca;

/** Transient-map keys of Algorithms 2 and 3. */
export const SessionTransientKey = {
    /** The encoded Activation: certificate object, P with its DLEQ proof, proof of possession, M3. */
    Activation: 'activation',
    /** The encoded Synchronisation: primaryHash, secondaryHash, H(symKey_i) computed by the CSP. */
    Synchronisation: 'synchronisation',
} as const;

/**
 * The session record of `primaryHash` and its state key: the one read of a session record that
 * synchronisation, getSession and revocation:endSession share.
 *
 * @throws invalidPrimaryHash when primaryHash names no session.
 */
export async function readSessionRecord(
    ctx: Context,
    suite: Suite,
    primaryHash: Uint8Array,
): Promise<{ key: string; session: SessionRecord }> {
    const key = sessionKey(ctx, primaryHash);
    const stored = await readState(ctx, key);
    if (stored === undefined) {
        return reject(ErrorCode.InvalidPrimaryHash, 'primaryHash names no session');
    }
    return { key, session: decodeSessionRecord(suite, stored) };
}

/**
 * Moves a session to `status` (synchronised, or ended by the CSP): writes its record, emits the
 * status's event and returns the canonical JSON answer of both transactions.
 */
export async function setSessionStatus(
    ctx: Context,
    suite: Suite,
    key: string,
    session: SessionRecord,
    primaryHash: Uint8Array,
    status: typeof SessionStatus.Synchronised | typeof SessionStatus.Ended,
): Promise<string> {
    await ctx.stub.putState(key, encodeSessionRecord(suite, { ...session, status }));
    const hex = toHex(primaryHash);
    const event = status === SessionStatus.Ended ? EventName.SessionEnded : EventName.SessionSynchronised;
    emitEvent(ctx, event, { fogId: session.fogId, primaryHash: hex });
    return canonicalJson({ primaryHash: hex, fogId: session.fogId, status });
}

@Info({ title: 'Sessions', description: 'Algorithm 2 (session activation) and Algorithm 3 (CSP synchronisation)' })
export class SessionContract extends M2MContract {
    constructor(policy?: AccessPolicy) {
        super('sessions', policy);
    }

    /**
     * Algorithm 2: an approved fog activates a session as itself. Argument: its fog id; transient
     * 'activation'. Checks, in the order of docs/design.md#algorithm-2-activation-at-the-fog: the Table II record exists (unknownCertificate)
     * and is unused (failedDoubleSpendingCheck-1); the object's content address
     * (contentAddressMismatch); the fog is approved (fogNotApproved); then verifyActivation —
     * counter ZKP (failedChallenge), proof of possession (invalidProofOfPossession), DLEQ against
     * Q_f (invalidDleqProof), M3 signature against Q_i (failedSignatureVerification); finally
     * primaryHash = H(P), computed here, is unused (failedDoubleSpendingCheck-1).
     * @throws {ContractError} `unauthorisedMsp` when: fog … belongs to another organisation
     * @throws {ContractError} `malformedInput` when: the certificate object uses suite …
     * @throws {ContractError} `unknownCertificate` when: no Table II record for this IDCert_i; this IDCert_i has not been issued yet
     * @throws {ContractError} `certificateRevoked` when: this certificate was revoked
     * @throws {ContractError} `failedDoubleSpendingCheck1` when: this certificate has already been used; primaryHash is already recorded
     * @throws {ContractError} `contentAddressMismatch` when: the certificate object is not the one on the ledger
     * @throws {ContractError} `fogNotApproved` when: fog … is …
     * @throws {ContractError} `cspKeyExpired` when: the certificate's CSP key (epoch …) ended at …
     * @throws {ContractError} `fogSuiteKeyMissing` when: fog … has no key for suite …
     */
    @Transaction()
    @Returns('string')
    async activateSession(ctx: Context, fogId: string): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Fog);
        const id = requireIdentifier('fogId', fogId);
        const fog = await readFog(ctx, id);
        if (fog.mspId !== caller.mspId) {
            return reject(ErrorCode.UnauthorisedMsp, `fog ${id} belongs to another organisation`);
        }
        requireOnlyTransientKeys(ctx, (key) => key === SessionTransientKey.Activation);
        const config = await readCspConfig(ctx);
        const activationBytes = requireTransient(ctx, SessionTransientKey.Activation);
        // The session is in its certificate's suite: the ledger's, or a CA key epoch's of another suite.
        const suite = messageSuiteIn(config, MessageType.Activation, activationBytes, 'the activation');
        const activation = decodeActivation(suite, activationBytes);
        const object = decodeCertificateObject(activation.certificateObject);
        if (object.suite.id !== suite.id) {
            return reject(ErrorCode.MalformedInput, `the certificate object uses suite ${object.suite.id}`);
        }

        // Ledger checks: the certificate exists, is unused, and the object is the one it points to.
        const idCert = encodePoint(suite, object.idCert);
        const certKey = certificateKey(ctx, idCert);
        const storedCert = await readState(ctx, certKey);
        if (storedCert === undefined) {
            return reject(ErrorCode.UnknownCertificate, 'no Table II record for this IDCert_i');
        }
        const certificate = decodeCertificateRecord(config.suite, storedCert);
        if ((certificate.suite ?? config.suite).tag !== suite.tag) {
            return reject(ErrorCode.UnknownCertificate, 'no Table II record for this IDCert_i in this suite');
        }
        if (certificate.status === CertificateStatus.Revoked) {
            return reject(ErrorCode.CertificateRevoked, 'this certificate was revoked');
        }
        if (certificate.status === CertificateStatus.Requested || certificate.contentAddress === undefined) {
            return reject(ErrorCode.UnknownCertificate, 'this IDCert_i has not been issued yet');
        }
        if (certificate.status === CertificateStatus.Used) {
            return reject(ErrorCode.FailedDoubleSpendingCheck1, 'this certificate has already been used');
        }
        // The CA key the certificate was issued under; past its end date the certificate is dead.
        const { key: caPublicKey, suite: keySuite } = cspKeyForUse(ctx, config, certificate.keyId ?? 0);
        if (keySuite.tag !== suite.tag) {
            return reject(ErrorCode.NotConfigured, `the certificate's CSP key epoch is not of suite ${suite.id}`);
        }
        if (!equalBytes(contentAddressBytes(activation.certificateObject), certificate.contentAddress)) {
            return reject(ErrorCode.ContentAddressMismatch, 'the certificate object is not the one on the ledger');
        }
        if (fog.status !== FogStatus.Approved) {
            return reject(ErrorCode.FogNotApproved, `fog ${id} is ${fog.status}`);
        }
        // Q_f for the ledger's suite; the fog's registered key of this suite otherwise.
        const fogPublicKey = fogKeyFor(config, fog, suite);

        // Cryptographic checks, all from public data (throws VerificationError with the paper's codes).
        const verified = verifyActivation(
            suite,
            activation,
            decodePoint(suite, certificate.counterCommitment),
            caPublicKey,
            fogPublicKey,
            id,
            object,
        );

        const key = sessionKey(ctx, verified.primaryHash);
        if ((await readState(ctx, key)) !== undefined) {
            return reject(ErrorCode.FailedDoubleSpendingCheck1, 'primaryHash is already recorded');
        }
        await ctx.stub.putState(
            key,
            encodeSessionRecord(config.suite, {
                status: SessionStatus.Acknowledged,
                fogId: id,
                idCert,
                publicKeyCommitment: verified.publicKeyCommitment,
                symKeyCommitment: verified.symKeyCommitment,
                suite,
            }),
        );
        await ctx.stub.putState(
            certKey,
            encodeCertificateRecord(config.suite, { ...certificate, status: CertificateStatus.Used }),
        );
        const primaryHash = toHex(verified.primaryHash);
        emitEvent(ctx, EventName.SessionActivated, { fogId: id, primaryHash });
        return canonicalJson({ primaryHash, fogId: id, status: SessionStatus.Acknowledged });
    }

    /**
     * Algorithm 3: the CSP synchronises a session. Transient 'synchronisation'. primaryHash must
     * name an acknowledged session (invalidPrimaryHash); secondaryHash must be unused
     * (failedDoubleSpendingCheck-2); the CSP's H(symKey_i), from d_c*Q_i, must equal the device's
     * (symmetricKeyInvalid). s_f and B_i == i*G are checked by the CSP before it submits (they need
     * C2/C3 plaintexts that never reach the ledger).
     * @throws {ContractError} `invalidPrimaryHash` when: primaryHash names no session; the session is already …
     * @throws {ContractError} `failedDoubleSpendingCheck2` when: secondaryHash is already recorded
     * @throws {ContractError} `symmetricKeyInvalid` when: the CSP's H(symKey_i) differs from the device's
     */
    @Transaction()
    @Returns('string')
    async synchroniseSession(ctx: Context): Promise<string> {
        requireRole(ctx, this.policy, Role.Csp);
        requireOnlyTransientKeys(ctx, (key) => key === SessionTransientKey.Synchronisation);
        const config = await readCspConfig(ctx);
        const syncBytes = requireTransient(ctx, SessionTransientKey.Synchronisation);
        const suite = messageSuiteIn(config, MessageType.Synchronisation, syncBytes, 'the synchronisation');
        const sync = decodeSynchronisation(suite, syncBytes);

        const { key, session } = await readSessionRecord(ctx, config.suite, sync.primaryHash);
        if ((session.suite ?? config.suite).tag !== suite.tag) {
            return reject(
                ErrorCode.InvalidPrimaryHash,
                `primaryHash names a session of another suite than ${suite.id}`,
            );
        }
        if (session.status !== SessionStatus.Acknowledged) {
            return reject(ErrorCode.InvalidPrimaryHash, `the session is already ${session.status}`);
        }
        const secondary = secondaryKey(ctx, sync.secondaryHash);
        if ((await readState(ctx, secondary)) !== undefined) {
            return reject(ErrorCode.FailedDoubleSpendingCheck2, 'secondaryHash is already recorded');
        }
        if (!equalBytes(sync.symKeyCommitment, session.symKeyCommitment)) {
            return reject(ErrorCode.SymmetricKeyInvalid, "the CSP's H(symKey_i) differs from the device's");
        }
        await ctx.stub.putState(secondary, SECONDARY_HASH_MARKER);
        return setSessionStatus(ctx, config.suite, key, session, sync.primaryHash, SessionStatus.Synchronised);
    }

    /**
     * A session record with its certificate's B_i (counterCommitment, which Algorithm 3 checks the
     * counter against): the CSP, or the organisation of the fog that activated it.
     * @throws {ContractError} `invalidPrimaryHash` when: primaryHash names no session
     * @throws {ContractError} `unauthorisedMsp` when: the session was activated by another organisation
     * @throws {ContractError} `unknownCertificate` when: no Table II record for the session's IDCert_i
     */
    @Transaction(false)
    @Returns('string')
    async getSession(ctx: Context, primaryHash: string): Promise<string> {
        const caller = requireRole(ctx, this.policy, Role.Csp, Role.Fog);
        const config = await readCspConfig(ctx);
        const hash = requireHexBytesOf(
            'primaryHash',
            primaryHash,
            suitesInUse(config).map((s) => s.hashBytes),
        );
        const { session } = await readSessionRecord(ctx, config.suite, hash);
        if (caller.role === Role.Fog && (await readFog(ctx, session.fogId)).mspId !== caller.mspId) {
            return reject(ErrorCode.UnauthorisedMsp, 'the session was activated by another organisation');
        }
        // B_i of the session's certificate, which Algorithm 3 checks i against: with it here the
        // CSP needs one ledger read per session, not two (the certificate record is public anyway).
        const certificate = await readState(ctx, certificateKey(ctx, session.idCert));
        if (certificate === undefined) {
            return reject(ErrorCode.UnknownCertificate, "no Table II record for the session's IDCert_i");
        }
        const certificateRecord = decodeCertificateRecord(config.suite, certificate);
        return canonicalJson({
            primaryHash: toHex(hash),
            status: session.status,
            fogId: session.fogId,
            idCert: toHex(session.idCert),
            counterCommitment: toHex(certificateRecord.counterCommitment),
            keyId: certificateRecord.keyId ?? 0,
            publicKeyCommitment: toHex(session.publicKeyCommitment),
            symKeyCommitment: toHex(session.symKeyCommitment),
            ...(session.suite === undefined ? {} : { suite: session.suite.id }),
        });
    }
}
