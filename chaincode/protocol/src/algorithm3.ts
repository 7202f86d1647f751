/**
 * Algorithm 3 (paper 004, "synchronisation") at the CSP, as one pure function: every check the CSP
 * makes on a forwarded M4 once it has opened it and read the session record the activation
 * (Algorithm 2) wrote, and everything it derives for the synchronisation transaction. It holds no
 * state and does no I/O; the CSP backend (gateway/services/src/csp/synchronisation.ts) persists
 * the result and submits it, and the chaincode checks what reaches the ledger again.
 *
 * Order of the checks, each with its error code:
 *   1. M4 names the fog that forwarded it ............................. failedSignatureVerification
 *      (s_f itself is verified by {@link openM4} against that fog's registered Q_f)
 *   2. the session record names IDCert_i (from C3) and the same fog ........... invalidPrimaryHash
 *   3. Q_i hashes to the H(Q_i) the activation recorded ......................... publicKeyMismatch
 *   4. B_i == i*G for the counter i decrypted from C2 ............................. failedChallenge
 * then secondaryHash = H(d_c * HashToCurve(ID_i || i)) and symKey_i = KDF(d_c * Q_i); the ledger
 * checks secondaryHash for double use (failedDoubleSpendingCheck-2) and H(symKey_i) against the
 * device's (symmetricKeyInvalid).
 */
import { ErrorCode, VerificationError } from './errors.js';
import { decodePoint, encodePoint, equalBytes } from './encoding.js';
import { encodeSynchronisation, type M4 } from './messages.js';
import {
    computeSecondaryHash,
    computeSymKey,
    publicKeyCommitment,
    symKeyCommitment,
    verifyCounterCommitment,
    type OpenedM4,
} from './session.js';
import type { Suite } from './suite.js';

/** What the ledger's session record (written by the activation) says, as Algorithm 3 needs it. */
export interface ActivatedSessionRecord {
    /** IDCert_i, SEC1-encoded. */
    idCert: Uint8Array;
    /** The fog that activated the session. */
    fogId: string;
    /** H(Q_i), from M3. */
    publicKeyCommitment: Uint8Array;
    /** B_i = i*G, from the certificate's Table II record. */
    counterCommitment: Uint8Array;
}

/** Everything Algorithm 3 produces: the CSP's secrets for the session and the transaction body. */
export interface Algorithm3Result {
    primaryHash: Uint8Array;
    /** IDCert_i, SEC1-encoded. */
    idCert: Uint8Array;
    counter: bigint;
    dynamicId: Uint8Array;
    secondaryHash: Uint8Array;
    /** symKey_i: secret, shared with the device only. */
    symKey: Uint8Array;
    /** The synchronisation transaction's argument (primaryHash, secondaryHash, H(symKey_i)). */
    synchronisation: Uint8Array;
}

/**
 * Runs the checks of Algorithm 3 on an opened M4 against the ledger's session record and derives
 * secondaryHash, symKey_i and the synchronisation.
 *
 * @param suite - the deployment's suite.
 * @param cspPrivateKey - d_c.
 * @param forwardingFogId - the fog whose signed link message carried M4.
 * @param m4 - the decoded M4 (for the fog ID it names).
 * @param opened - M4 opened by {@link openM4} (s_f verified, C2 and C3 decrypted).
 * @param devicePublicKey - Q_i as the fog forwarded it.
 * @param record - the session record the ledger holds under the opened primaryHash.
 * @param secondaryHashKey - the d_c secondaryHash is computed with (default cspPrivateKey). After a
 *   CSP key rotation cspPrivateKey is the d_c of the certificate's key epoch (symKey_i) and this is
 *   epoch 0's, so one (ID_i, i) always gives one secondaryHash whatever key issued it.
 * @throws {VerificationError} failedSignatureVerification when M4 names another fog;
 *   invalidPrimaryHash when the record names another certificate or fog; publicKeyMismatch when
 *   H(Q_i) differs; failedChallenge when B_i != i*G.
 * @throws {DecodeError} when Q_i or a record point is not a valid encoding.
 */
export function runAlgorithm3(
    suite: Suite,
    cspPrivateKey: bigint,
    forwardingFogId: string,
    m4: M4,
    opened: OpenedM4,
    devicePublicKey: Uint8Array,
    record: ActivatedSessionRecord,
    secondaryHashKey: bigint = cspPrivateKey,
): Algorithm3Result {
    if (m4.fogId !== forwardingFogId) {
        throw new VerificationError(ErrorCode.FailedSignatureVerification, 'M4 names another fog than its sender');
    }
    const idCert = encodePoint(suite, opened.idCert);
    if (!equalBytes(record.idCert, idCert) || record.fogId !== forwardingFogId) {
        throw new VerificationError(
            ErrorCode.InvalidPrimaryHash,
            'the session record names another certificate or fog',
        );
    }
    const Qi = decodePoint(suite, devicePublicKey);
    if (!equalBytes(publicKeyCommitment(suite, Qi), record.publicKeyCommitment)) {
        throw new VerificationError(ErrorCode.PublicKeyMismatch, "Q_i does not match the ledger's H(Q_i)");
    }
    verifyCounterCommitment(suite, opened.counter, decodePoint(suite, record.counterCommitment));
    const secondaryHash = computeSecondaryHash(suite, secondaryHashKey, opened.dynamicId, opened.counter);
    const symKey = computeSymKey(suite, cspPrivateKey, Qi);
    const synchronisation = encodeSynchronisation({
        suite,
        primaryHash: opened.primaryHash,
        secondaryHash,
        symKeyCommitment: symKeyCommitment(suite, symKey),
    });
    return {
        primaryHash: opened.primaryHash,
        idCert,
        counter: opened.counter,
        dynamicId: opened.dynamicId,
        secondaryHash,
        symKey,
        synchronisation,
    };
}
