/**
 * The protocol's steps as pure functions, one per role, composed from the primitives. The
 * chaincode calls the verify* functions; the SDK's device agent, fog gateway and CSP backend call
 * the others; `npm run bench -- crypto` runs them all in one loop.
 *
 *   Algorithm 1  manufacturer: createCertificateRequest   CSP-CA: issueCertificates
 *                chaincode:    verifyIssuedCertificate
 *   Algorithm 2  device: createM1 -> (fog: openM1, M2) -> device: processM2 (-> M3)
 *                fog: createActivation; chaincode: verifyActivation; fog: createM4
 *   Algorithm 3  CSP: openM4 -> computeSecondaryHash, computeSymKeyFromPublicKey
 */
import type { CertificateObject, CertificateRequest, M1, M3, M4, Activation } from './messages.js';
import type { HpkeRecipient } from './hpke.js';
import type { Point, Suite } from './suite.js';

/** Device secrets provisioned by the manufacturer (w and the equipment id never leave it). */
export interface DeviceSecrets {
    /** Owner secret w. */
    w: bigint;
    /** Static equipment identifier (registered on the M-EB); only ever encrypted to the CSP. */
    equipmentId: string;
}

/** ID_i: the dynamic identity of session i, H(equipmentId, i, w). */
export declare function dynamicIdentity(suite: Suite, secrets: DeviceSecrets, counter: bigint): Uint8Array;

/** Manufacturer: I_alpha and counter proofs for counters [first, first+n). */
export declare function createCertificateRequest(
    suite: Suite,
    secrets: DeviceSecrets,
    firstCounter: bigint,
    n: number,
): CertificateRequest;

/** CSP-CA (Alg. 1): one certificate object per request entry; fresh r_c each. */
export declare function issueCertificates(
    suite: Suite,
    caPrivateKey: bigint,
    request: CertificateRequest,
): CertificateObject[];

/**
 * Chaincode (Alg. 1): issuance equation and counter proof of one object, against the request entry
 * it answers. Throws VerificationError(InvalidIssuance | FailedChallenge).
 */
export declare function verifyIssuedCertificate(suite: Suite, obj: CertificateObject, caPublicKey: Point): void;

/** Per-session device state carried from M1 to M3. Holds secrets: never logged or sent. */
export interface DeviceSession {
    suite: Suite;
    counter: bigint;
    dynamicId: Uint8Array;
    requestKey: bigint;
    idCert: Point;
}

/** Device (Alg. 2 start): M1 = <C1, C2, PoP>. PoP = Schnorr_k_i(IDCert_i || fogId). */
export declare function createM1(
    suite: Suite,
    secrets: DeviceSecrets,
    counter: bigint,
    fogId: string,
    fogPublicKey: Point,
    cspPublicKey: Point,
): Promise<{ m1: M1; session: DeviceSession }>;

/** Fog: decrypt C1 to IDCert_i (the ledger key to look up). */
export declare function openM1(suite: Suite, fogRecipient: HpkeRecipient, m1: M1): Promise<{ idCert: Point }>;

/**
 * Device: on M2 (the certificate object) derive d_i (eq. 12), check Q_i, symKey_i = H(d_i*Q_c)
 * (eq. 13) and answer M3 = <Q_i, H(symKey_i), Schnorr_d_i(IDCert_i || Q_i || H(symKey_i) || fogId)>.
 * Throws VerificationError when the object is not for this session or does not verify.
 */
export declare function processM2(
    session: DeviceSession,
    certificateObject: Uint8Array,
    cspPublicKey: Point,
    fogId: string,
): { m3: M3; privateKey: bigint; publicKey: Point; symKey: Uint8Array };

/** Fog: P = d_f*IDCert_i with a DLEQ proof against Q_f, packaged with the PoP and M3. */
export declare function createActivation(
    suite: Suite,
    fogPrivateKey: bigint,
    certificateObject: Uint8Array,
    m1: M1,
    m3: M3,
): Activation;

/** What chaincode records for a verified activation. */
export interface VerifiedActivation {
    idCert: Point;
    primaryHash: Uint8Array;
    publicKeyCommitment: Uint8Array;
    symKeyCommitment: Uint8Array;
}

/**
 * Chaincode (Alg. 2), in DESIGN.md §4.4 order after the ledger checks (record exists and unused,
 * content address) that the caller does: counter ZKP (FailedChallenge); proof of possession
 * (InvalidProofOfPossession); DLEQ against Q_f (InvalidDleqProof); M3 signature against
 * Q_i = e*Cert_i + Q_c (FailedSignatureVerification). Returns primaryHash = H(P) for the
 * caller's double-use check (failedDoubleSpendingCheck-1).
 */
export declare function verifyActivation(
    suite: Suite,
    activation: Activation,
    expectedB: Point,
    caPublicKey: Point,
    fogPublicKey: Point,
    fogId: string,
): VerifiedActivation;

/** Fog: M4 = <C2, C3 = Enc_{Q_c}(primaryHash), s_f = Schnorr_d_f(C2 || C3 || fogId)>. */
export declare function createM4(
    suite: Suite,
    fogId: string,
    fogPrivateKey: bigint,
    m1: M1,
    primaryHash: Uint8Array,
    cspPublicKey: Point,
): Promise<M4>;

/**
 * CSP (Alg. 3): verify s_f against the fog's Q_f (FailedSignatureVerification), decrypt C3 and C2.
 * The caller checks primaryHash on the ledger and B_i == i*G (FailedChallenge).
 */
export declare function openM4(
    suite: Suite,
    cspRecipient: HpkeRecipient,
    fogPublicKey: Point,
    m4: M4,
): Promise<{ primaryHash: Uint8Array; counter: bigint; dynamicId: Uint8Array }>;

/** secondaryHash = H(d_c * HashToCurve(ID_i || i)) (DESIGN.md §1). */
export declare function computeSecondaryHash(
    suite: Suite,
    caPrivateKey: bigint,
    dynamicId: Uint8Array,
    counter: bigint,
): Uint8Array;

/** symKey_i = H(d_c*Q_i) (eq. 20), equal to the device's H(d_i*Q_c). */
export declare function computeSymKey(suite: Suite, privateKey: bigint, peerPublicKey: Point): Uint8Array;
/** H(symKey_i) as stored on the ledger. */
export declare function symKeyCommitment(suite: Suite, symKey: Uint8Array): Uint8Array;
/** H(Q_i) as stored on the ledger. */
export declare function publicKeyCommitment(suite: Suite, publicKey: Point): Uint8Array;
/** addr_f = H(ID_f, d_f*Q_c) = H(ID_f, d_c*Q_f). */
export declare function fogAddress(suite: Suite, fogId: string, sharedPoint: Point): Uint8Array;
