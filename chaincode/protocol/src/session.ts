/**
 * The protocol's steps as pure functions, one per role, composed from the primitives. The
 * chaincode calls the verify* functions; the SDK's device agent, fog gateway and CSP backend call
 * the others; `npm run bench -- crypto` runs them all in one loop.
 *
 *   Algorithm 1  manufacturer: createCertificateRequest   CSP-CA: issueCertificates
 *                chaincode:    verifyIssuedCertificate
 *   Algorithm 2  device: createM1 -> (fog: openM1, M2) -> device: processM2 (-> M3)
 *                fog: createActivation; chaincode: verifyActivation; fog: createM4
 *   Algorithm 3  CSP: openM4 -> computeSecondaryHash, computeSymKey
 *
 * Bindings beyond the paper (docs/protocol.md explains each):
 *  - C2 is sealed with IDCert_i as HPKE associated data, and C3 carries IDCert_i next to
 *    primaryHash_i, so a fog cannot pair one device's (i, ID_i) with another session's primaryHash:
 *    C2 only opens under the IDCert_i that C3 names, and the CSP checks that the ledger's session
 *    record for primaryHash_i holds that same IDCert_i.
 *  - The proof of possession signs (IDCert_i, fogId); the M3 signature signs (IDCert_i, Q_i,
 *    H(symKey_i), fogId); s_f signs (C2, C3, fogId). Each uses its own Schnorr context.
 *  - Diffie-Hellman-shaped secrets (symKey_i, secondaryHash_i) hash the x-coordinate of the shared
 *    point, computed by OpenSSL (node:crypto ECDH), which is ~26x faster than noble here.
 */
import { counterCommitment, createCounterProof, verifyCounterProof, type CounterProof } from './counter-proof.js';
import { dleqProve, dleqVerify, type DleqProof } from './dleq.js';
import {
    ecqvExtractPublicKey,
    ecqvGenerateCertificate,
    ecqvReconstructPrivateKey,
    ecqvRequestKey,
    ecqvVerifyIssuance,
    ecqvCertU,
    encodeEcqvCertificate,
} from './ecqv.js';
import { ByteReader, ByteWriter, encodePoint, encodeScalar } from './encoding.js';
import { EphemeralKey } from './forward-secrecy.js';
import { opensslEcdhX, opensslMultiply } from './openssl-ec.js';
import { DecodeError, ErrorCode, ProtocolError, VerificationError } from './errors.js';
import { hashBytes, hashToCurve } from './hashing.js';
import {
    encodeHpkeCiphertext,
    hpkeOpen,
    hpkeRecipientFromScalar,
    hpkeSeal,
    HpkeInfo,
    type HpkeCiphertext,
    type HpkeRecipient,
} from './hpke.js';
import {
    decodeC2Plaintext,
    decodeCertificateObject,
    encodeC2Plaintext,
    type Activation,
    type CertificateObject,
    type CertificateRequest,
    type M1,
    type M3,
    type M4,
} from './messages.js';
import { schnorrSign, schnorrVerify, SchnorrContext } from './schnorr.js';
import { randomScalar, type Point, type Suite } from './suite.js';
import { mulBase, withPrecomputedTable } from './multiply.js';

/** Device secrets provisioned by the manufacturer (w and the equipment id never leave it). */
export interface DeviceSecrets {
    /** Owner secret w. */
    w: bigint;
    /** Static equipment identifier (registered on the M-EB); only ever encrypted to the CSP. */
    equipmentId: string;
}

const UTF8 = new TextEncoder();
const MAX_COUNTER = (1n << 64n) - 1n;

function assertCounter(counter: bigint): void {
    if (counter < 1n || counter > MAX_COUNTER) {
        throw new RangeError('session counter i must be in [1, 2^64-1]');
    }
}

function counterBytes(counter: bigint): Uint8Array {
    return new ByteWriter().u64(counter).finish();
}

function assertSuite(expected: Suite, actual: Suite, what: string): void {
    if (expected.id !== actual.id) {
        throw new DecodeError('unknownSuite', `${what} is for ${actual.id}, expected ${expected.id}`);
    }
}

// ---------------------------------------------------------------------------------------------
// Hash-derived values

/** ID_i: the dynamic identity of session i, H(equipmentId, i, w). */
export function dynamicIdentity(suite: Suite, secrets: DeviceSecrets, counter: bigint): Uint8Array {
    assertCounter(counter);
    return hashBytes(
        suite,
        'DynamicIdentity',
        UTF8.encode(secrets.equipmentId),
        counterBytes(counter),
        encodeScalar(suite, secrets.w),
    );
}

/** primaryHash_i = H(P) with P = d_f*IDCert_i (eq. 10). */
export function computePrimaryHash(suite: Suite, P: Point): Uint8Array {
    return hashBytes(suite, 'PrimaryHash', encodePoint(suite, P));
}

/** H(symKey_i) as stored on the ledger. */
export function symKeyCommitment(suite: Suite, symKey: Uint8Array): Uint8Array {
    return hashBytes(suite, 'SymmetricKeyCommitment', symKey);
}

/** H(Q_i) as stored on the ledger. */
export function publicKeyCommitment(suite: Suite, publicKey: Point): Uint8Array {
    return hashBytes(suite, 'PublicKeyCommitment', encodePoint(suite, publicKey));
}

/** addr_f = H(ID_f, d_f*Q_c) = H(ID_f, d_c*Q_f). */
export function fogAddress(suite: Suite, fogId: string, sharedPoint: Point): Uint8Array {
    return hashBytes(suite, 'FogAddress', UTF8.encode(fogId), encodePoint(suite, sharedPoint));
}

/**
 * x(d*Q) by OpenSSL: the ECDH shared secret. `Q` must be a valid non-identity point (every Point
 * reaching here came through a decoder or a multiplication); OpenSSL checks it again.
 */
function ecdhX(suite: Suite, privateKey: bigint, peer: Point): Uint8Array {
    if (privateKey <= 0n || privateKey >= suite.n) {
        throw new RangeError('private key outside [1, n-1]');
    }
    return opensslEcdhX(suite, privateKey, peer);
}

/**
 * The full point d*Q (and D = d*G) with the secret multiplications done by OpenSSL, constant-time
 * and ~20x faster than noble's (openssl-ec.ts explains how the sign of the product is recovered).
 * Falls back to noble in the one case ECDH cannot express (Q + G = O).
 * @throws {RangeError} when: private key outside [1, n-1]
 */
export function multiplySecret(suite: Suite, privateKey: bigint, Q: Point): { product: Point; publicKey: Point } {
    if (privateKey <= 0n || privateKey >= suite.n) {
        throw new RangeError('private key outside [1, n-1]');
    }
    return opensslMultiply(suite, privateKey, Q);
}

/**
 * symKey_i = H(x(d_c*Q_i)) (eq. 20), equal to the device's H(x(d_i*Q_c)) (eq. 13) since both are
 * x(d_i*d_c*G).
 */
export function computeSymKey(suite: Suite, privateKey: bigint, peerPublicKey: Point): Uint8Array {
    return hashBytes(suite, 'SymmetricKey', ecdhX(suite, privateKey, peerPublicKey));
}

/** secondaryHash = H(x(d_c * HashToCurve(ID_i || i))) (docs/design.md#where-secrets-live; paper eq. 19). */
export function computeSecondaryHash(
    suite: Suite,
    caPrivateKey: bigint,
    dynamicId: Uint8Array,
    counter: bigint,
): Uint8Array {
    assertCounter(counter);
    const base = hashToCurve(suite, 'SecondaryHashPoint', dynamicId, counterBytes(counter));
    return hashBytes(suite, 'SecondaryHash', ecdhX(suite, caPrivateKey, base));
}

/**
 * The CSP's counter check of Alg. 3: B_i (from Table II) == i*G, else FailedChallenge.
 * @throws {VerificationError} `failedChallenge` when: B_i != i*G: the counter does not match the certificate
 */
export function verifyCounterCommitment(suite: Suite, counter: bigint, expectedB: Point): void {
    if (counter < 1n || counter >= suite.n || !counterCommitment(suite, counter).equals(expectedB)) {
        throw new VerificationError(
            ErrorCode.FailedChallenge,
            'B_i != i*G: the counter does not match the certificate',
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Signed messages: what each Schnorr signature covers

function popMessage(suite: Suite, idCert: Point, fogId: string): Uint8Array {
    return new ByteWriter().u8(suite.tag).point(suite, idCert).string(fogId).finish();
}

function m3Message(suite: Suite, idCert: Point, publicKey: Point, commitment: Uint8Array, fogId: string): Uint8Array {
    return new ByteWriter()
        .u8(suite.tag)
        .point(suite, idCert)
        .point(suite, publicKey)
        .raw(commitment)
        .string(fogId)
        .finish();
}

function m4Message(suite: Suite, m4: Pick<M4, 'fogId' | 'c2' | 'c3'>): Uint8Array {
    return new ByteWriter()
        .u8(suite.tag)
        .bytes16(encodeHpkeCiphertext(suite, m4.c2))
        .bytes16(encodeHpkeCiphertext(suite, m4.c3))
        .string(m4.fogId)
        .finish();
}

/** C3's plaintext: primaryHash_i || IDCert_i (fixed widths). */
function encodeC3Plaintext(suite: Suite, primaryHash: Uint8Array, idCert: Point): Uint8Array {
    if (primaryHash.length !== suite.hashBytes) {
        throw new RangeError(`primaryHash must be ${suite.hashBytes} bytes`);
    }
    return new ByteWriter().raw(primaryHash).point(suite, idCert).finish();
}

function decodeC3Plaintext(suite: Suite, bytes: Uint8Array): { primaryHash: Uint8Array; idCert: Point } {
    const r = new ByteReader(bytes);
    const primaryHash = r.raw(suite.hashBytes);
    const idCert = r.point(suite);
    r.end();
    return { primaryHash, idCert };
}

// ---------------------------------------------------------------------------------------------
// Algorithm 1

/**
 * Manufacturer: I_alpha and counter proofs for counters [first, first+n).
 * @throws {RangeError} when: a request asks for at least one certificate
 */
export function createCertificateRequest(
    suite: Suite,
    secrets: DeviceSecrets,
    firstCounter: bigint,
    n: number,
): CertificateRequest {
    if (!Number.isSafeInteger(n) || n < 1) {
        throw new RangeError('a request asks for at least one certificate');
    }
    assertCounter(firstCounter);
    assertCounter(firstCounter + BigInt(n - 1));
    const entries: { idCert: Point; counterProof: CounterProof }[] = [];
    for (let k = 0; k < n; k++) {
        const counter = firstCounter + BigInt(k);
        const { idCert } = ecqvRequestKey(suite, dynamicIdentity(suite, secrets, counter), counter, secrets.w);
        entries.push({ idCert, counterProof: createCounterProof(suite, idCert, counter) });
    }
    return { suite, entries };
}

/**
 * CSP-CA (Alg. 1): one certificate object per request entry; fresh r_c each.
 * @throws {RangeError} when: CA private key outside [1, n-1]
 */
export function issueCertificates(
    suite: Suite,
    caPrivateKey: bigint,
    request: CertificateRequest,
): CertificateObject[] {
    assertSuite(suite, request.suite, 'certificate request');
    if (caPrivateKey <= 0n || caPrivateKey >= suite.n) {
        throw new RangeError('CA private key outside [1, n-1]');
    }
    // The 1609.2 variant hashes the issuer record (Q_c) into e: computed once per batch.
    const caPublicKey = suite.ecqv === 'ieee1609.2' ? mulBase(suite, caPrivateKey) : undefined;
    return request.entries.map(({ idCert, counterProof }) => {
        // P_U = O (r_c = -k_U) or r = 0 happen with probability ~1/n each: draw another r_c. The
        // attempts are bounded so a persistent error (a bad input) surfaces instead of looping.
        for (let attempt = 1; ; attempt++) {
            try {
                const { cert, r } = ecqvGenerateCertificate(suite, idCert, caPrivateKey, randomScalar(suite), (P_U) =>
                    caPublicKey === undefined
                        ? encodeEcqvCertificate(suite, idCert, P_U)
                        : ecqvCertU(suite, idCert, P_U, caPublicKey),
                );
                if (r !== 0n) return { suite, idCert, cert, rAux: r, counterProof };
                if (attempt >= 3) throw new RangeError('r = 0 repeatedly: the CA key or RNG is broken');
            } catch (e) {
                if (!(e instanceof RangeError) || attempt >= 3) throw e;
            }
        }
    });
}

/**
 * Chaincode (Alg. 1): issuance equation and counter proof of one object, against the request entry
 * it answers. Throws VerificationError(InvalidIssuance | FailedChallenge).
 * @throws {VerificationError} `invalidIssuance` when: r*G != e*(Cert_i - IDCert_i) + Q_c
 * @throws {VerificationError} `failedChallenge` when: counter proof does not verify for this IDCert_i
 */
export function verifyIssuedCertificate(suite: Suite, obj: CertificateObject, caPublicKey: Point): void {
    assertSuite(suite, obj.suite, 'certificate object');
    const certU = ecqvCertU(suite, obj.idCert, obj.cert, caPublicKey);
    if (!ecqvVerifyIssuance(suite, certU, obj.idCert, obj.cert, obj.rAux, caPublicKey)) {
        throw new VerificationError(ErrorCode.InvalidIssuance, 'r*G != e*(Cert_i - IDCert_i) + Q_c');
    }
    if (!verifyCounterProof(suite, obj.idCert, obj.counterProof)) {
        throw new VerificationError(ErrorCode.FailedChallenge, 'counter proof does not verify for this IDCert_i');
    }
}

// ---------------------------------------------------------------------------------------------
// Algorithm 2

/** Per-session device state carried from M1 to M3. Holds secrets: never logged or sent. */
export interface DeviceSession {
    suite: Suite;
    counter: bigint;
    dynamicId: Uint8Array;
    requestKey: bigint;
    idCert: Point;
    /**
     * x_D, E_D for the forward-secret traffic key (forward-secrecy.ts): E_D travels in C2; x_D
     * lives only in memory until the Confirm's E_C arrives, then is erased.
     */
    ephemeral: EphemeralKey;
}

/**
 * Device (Alg. 2 start): M1 = <C1, C2, PoP>. C1 = HPKE_{Q_f}(IDCert_i); C2 = HPKE_{Q_c}(i, ID_i,
 * E_D) with IDCert_i as associated data; PoP = Schnorr_k_i(IDCert_i || fogId). E_D = x_D*G is the
 * device's ephemeral share for the forward-secret key (x_D stays in the returned session).
 * `ephemeral` is a fresh x_D unless given: a retry of the same certificate passes the x_D of its
 * first attempt, so that every attempt's C2 carries the same E_D (the device agent keeps it on disk
 * until the Confirm) and attempts stay interchangeable.
 */
export async function createM1(
    suite: Suite,
    secrets: DeviceSecrets,
    counter: bigint,
    fogId: string,
    fogPublicKey: Point,
    cspPublicKey: Point,
    ephemeral: EphemeralKey = EphemeralKey.generate(suite),
): Promise<{ m1: M1; session: DeviceSession }> {
    const dynamicId = dynamicIdentity(suite, secrets, counter);
    const { k, idCert } = ecqvRequestKey(suite, dynamicId, counter, secrets.w);
    const idCertBytes = encodePoint(suite, idCert);
    const [c1, c2] = await Promise.all([
        hpkeSeal(suite, fogPublicKey.toBytes(false), HpkeInfo.C1, idCertBytes),
        hpkeSeal(
            suite,
            cspPublicKey.toBytes(false),
            HpkeInfo.C2,
            encodeC2Plaintext(suite, { counter, dynamicId, ephemeralShare: ephemeral.share }),
            idCertBytes,
        ),
    ]);
    const proofOfPossession = schnorrSign(suite, SchnorrContext.ProofOfPossession, k, popMessage(suite, idCert, fogId));
    return {
        m1: { suite, c1, c2, proofOfPossession },
        session: { suite, counter, dynamicId, requestKey: k, idCert, ephemeral },
    };
}

/** Fog: decrypt C1 to IDCert_i (the ledger key to look up). */
export async function openM1(suite: Suite, fogRecipient: HpkeRecipient, m1: M1): Promise<{ idCert: Point }> {
    assertSuite(suite, m1.suite, 'M1');
    assertSuite(suite, fogRecipient.suite, 'fog HPKE key');
    const plaintext = await hpkeOpen(fogRecipient, HpkeInfo.C1, m1.c1);
    const r = new ByteReader(plaintext);
    const idCert = r.point(suite);
    r.end();
    return { idCert };
}

/**
 * Fog, on M1, before any ledger or storage work: the proof of possession of k_i for the IDCert_i
 * opened from C1, so an M1 whose signature is broken learns nothing about the certificate (not
 * even whether it is used). The chaincode checks the same proof again at activation.
 *
 * @throws VerificationError `invalidProofOfPossession` when it does not verify.
 */
export function verifyM1ProofOfPossession(suite: Suite, m1: M1, idCert: Point, fogId: string): void {
    assertSuite(suite, m1.suite, 'M1');
    if (
        !schnorrVerify(
            suite,
            SchnorrContext.ProofOfPossession,
            idCert,
            popMessage(suite, idCert, fogId),
            m1.proofOfPossession,
        )
    ) {
        throw new VerificationError(ErrorCode.InvalidProofOfPossession, 'proof of possession of k_i does not verify');
    }
}

/**
 * Device: on M2 (the certificate object) derive d_i (eq. 12), check Q_i, symKey_i = H(d_i*Q_c)
 * (eq. 13) and answer M3 = <Q_i, H(symKey_i), Schnorr_d_i(IDCert_i || Q_i || H(symKey_i) || fogId)>.
 * Throws VerificationError when the object is not for this session or does not verify.
 * @throws {VerificationError} `invalidIssuance` when: the certificate object is for another IDCert_i
 */
export function processM2(
    session: DeviceSession,
    certificateObject: Uint8Array,
    cspPublicKey: Point,
    fogId: string,
): { m3: M3; privateKey: bigint; publicKey: Point; symKey: Uint8Array } {
    const suite = session.suite;
    const obj = decodeCertificateObject(certificateObject);
    assertSuite(suite, obj.suite, 'certificate object');
    if (!obj.idCert.equals(session.idCert)) {
        throw new VerificationError(ErrorCode.InvalidIssuance, 'the certificate object is for another IDCert_i');
    }
    const certU = ecqvCertU(suite, obj.idCert, obj.cert, cspPublicKey);
    // Checks d_i*G == e*Cert_i + Q_c, so a wrong Cert_i, r_aux or Q_c fails here (InvalidIssuance).
    const privateKey = ecqvReconstructPrivateKey(suite, certU, obj.cert, obj.rAux, session.requestKey, cspPublicKey);
    const publicKey = ecqvExtractPublicKey(suite, certU, obj.cert, cspPublicKey);
    const symKey = computeSymKey(suite, privateKey, cspPublicKey);
    const commitment = symKeyCommitment(suite, symKey);
    const signature = schnorrSign(
        suite,
        SchnorrContext.M3,
        privateKey,
        m3Message(suite, obj.idCert, publicKey, commitment, fogId),
    );
    return { m3: { suite, publicKey, symKeyCommitment: commitment, signature }, privateKey, publicKey, symKey };
}

/** The part of an activation that depends only on the certificate object (see prepareActivation). */
export interface PreparedActivation {
    suite: Suite;
    certificateObject: Uint8Array;
    /** P = d_f*IDCert_i. */
    P: Point;
    dleqProof: DleqProof;
}

/**
 * Fog: P = d_f*IDCert_i with a DLEQ proof against Q_f. Needs only the certificate object, so a fog
 * can compute it as soon as it has sent M2, while the device works on M3 (createActivation does it
 * all at once).
 * @throws {RangeError} when: fog private key outside [1, n-1]
 */
export function prepareActivation(
    suite: Suite,
    fogPrivateKey: bigint,
    certificateObject: Uint8Array,
): PreparedActivation {
    const obj = decodeCertificateObject(certificateObject);
    assertSuite(suite, obj.suite, 'certificate object');
    if (fogPrivateKey <= 0n || fogPrivateKey >= suite.n) {
        throw new RangeError('fog private key outside [1, n-1]');
    }
    // d_f is secret: both multiplications run in OpenSSL, constant-time.
    const { product: P, publicKey: fogPublicKey } = multiplySecret(suite, fogPrivateKey, obj.idCert);
    const dleqProof = dleqProve(suite, fogPrivateKey, suite.Point.BASE, fogPublicKey, obj.idCert, P);
    return { suite, certificateObject, P, dleqProof };
}

/** Fog: a prepared activation packaged with the PoP (from M1) and M3. */
export function completeActivation(prepared: PreparedActivation, m1: M1, m3: M3): Activation {
    const suite = prepared.suite;
    assertSuite(suite, m1.suite, 'M1');
    assertSuite(suite, m3.suite, 'M3');
    const { certificateObject, P, dleqProof } = prepared;
    return { suite, certificateObject, P, dleqProof, proofOfPossession: m1.proofOfPossession, m3 };
}

/** Fog: P = d_f*IDCert_i with a DLEQ proof against Q_f, packaged with the PoP and M3. */
export function createActivation(
    suite: Suite,
    fogPrivateKey: bigint,
    certificateObject: Uint8Array,
    m1: M1,
    m3: M3,
): Activation {
    assertSuite(suite, m1.suite, 'M1');
    assertSuite(suite, m3.suite, 'M3');
    return completeActivation(prepareActivation(suite, fogPrivateKey, certificateObject), m1, m3);
}

/** What chaincode records for a verified activation. */
export interface VerifiedActivation {
    idCert: Point;
    primaryHash: Uint8Array;
    publicKeyCommitment: Uint8Array;
    symKeyCommitment: Uint8Array;
}

/**
 * Chaincode (Alg. 2), in the order of docs/design.md#algorithm-2-activation-at-the-fog after the ledger checks (record exists and unused,
 * content address) that the caller does: counter ZKP (FailedChallenge); proof of possession
 * (InvalidProofOfPossession); DLEQ against Q_f (InvalidDleqProof); M3 signature against
 * Q_i = e*Cert_i + Q_c (FailedSignatureVerification). Returns primaryHash = H(P) for the
 * caller's double-use check (failedDoubleSpendingCheck-1).
 * Deterministic and public-data only: every multiplication is variable-time.
 * `decodedObject`: decodeCertificateObject(activation.certificateObject) when the caller already
 * has it (the chaincode decodes it for its ledger checks), so its points are not decompressed twice.
 * @throws {VerificationError} `failedChallenge` when: the counter proof's B_i is not the ledger's B_i; counter proof does not verify
 * @throws {VerificationError} `invalidProofOfPossession` when: proof of possession of k_i does not verify
 * @throws {VerificationError} `invalidDleqProof` when: DLEQ proof for P = d_f*IDCert_i does not verify
 * @throws {VerificationError} `failedSignatureVerification` when: M3's Q_i is not the certificate's Q_i; M3 signature by d_i does not verify
 */
export function verifyActivation(
    suite: Suite,
    activation: Activation,
    expectedB: Point,
    caPublicKey: Point,
    fogPublicKey: Point,
    fogId: string,
    decodedObject?: CertificateObject,
): VerifiedActivation {
    assertSuite(suite, activation.suite, 'activation');
    assertSuite(suite, activation.m3.suite, 'M3');
    const obj = decodedObject ?? decodeCertificateObject(activation.certificateObject);
    assertSuite(suite, obj.suite, 'certificate object');
    const { idCert, cert, counterProof } = obj;

    // 1. Counter ZKP, and it is the proof for the B_i the ledger holds for this IDCert_i.
    if (!counterProof.B.equals(expectedB)) {
        throw new VerificationError(ErrorCode.FailedChallenge, "the counter proof's B_i is not the ledger's B_i");
    }
    if (!verifyCounterProof(suite, idCert, counterProof)) {
        throw new VerificationError(ErrorCode.FailedChallenge, 'counter proof does not verify');
    }
    // 2. Proof of possession of k_i (IDCert_i = k_i*G).
    if (
        !schnorrVerify(
            suite,
            SchnorrContext.ProofOfPossession,
            idCert,
            popMessage(suite, idCert, fogId),
            activation.proofOfPossession,
        )
    ) {
        throw new VerificationError(ErrorCode.InvalidProofOfPossession, 'proof of possession of k_i does not verify');
    }
    // 3. P = d_f*IDCert_i for the registered Q_f = d_f*G. Q_f is long-lived: its cached
    // multiplication table makes the c*Q_f term ~7x cheaper after the first activation.
    const Qf = withPrecomputedTable(suite, fogPublicKey);
    if (!dleqVerify(suite, suite.Point.BASE, Qf, idCert, activation.P, activation.dleqProof)) {
        throw new VerificationError(ErrorCode.InvalidDleqProof, 'DLEQ proof for P = d_f*IDCert_i does not verify');
    }
    // 4. M3 is signed by d_i for Q_i = e*Cert_i + Q_c, the key the certificate implies.
    const certU = ecqvCertU(suite, idCert, cert, caPublicKey);
    const publicKey = ecqvExtractPublicKey(suite, certU, cert, caPublicKey);
    const m3 = activation.m3;
    if (!m3.publicKey.equals(publicKey)) {
        throw new VerificationError(ErrorCode.FailedSignatureVerification, "M3's Q_i is not the certificate's Q_i");
    }
    if (
        !schnorrVerify(
            suite,
            SchnorrContext.M3,
            publicKey,
            m3Message(suite, idCert, publicKey, m3.symKeyCommitment, fogId),
            m3.signature,
        )
    ) {
        throw new VerificationError(ErrorCode.FailedSignatureVerification, 'M3 signature by d_i does not verify');
    }
    return {
        idCert,
        primaryHash: computePrimaryHash(suite, activation.P),
        publicKeyCommitment: publicKeyCommitment(suite, publicKey),
        symKeyCommitment: m3.symKeyCommitment,
    };
}

/**
 * Fog: M4 = <C2, C3 = HPKE_{Q_c}(primaryHash || IDCert_i), s_f = Schnorr_d_f(C2 || C3 || fogId)>.
 * `idCert` is what openM1 returned; when left out it is recovered by opening C1 again.
 */
export async function createM4(
    suite: Suite,
    fogId: string,
    fogPrivateKey: bigint,
    m1: M1,
    primaryHash: Uint8Array,
    cspPublicKey: Point,
    idCert?: Point,
): Promise<M4> {
    assertSuite(suite, m1.suite, 'M1');
    const sessionIdCert =
        idCert ?? (await openM1(suite, await hpkeRecipientFromScalar(suite, fogPrivateKey), m1)).idCert;
    const c3 = await hpkeSeal(
        suite,
        cspPublicKey.toBytes(false),
        HpkeInfo.C3,
        encodeC3Plaintext(suite, primaryHash, sessionIdCert),
    );
    const unsigned = { fogId, c2: m1.c2, c3 };
    const signature = schnorrSign(suite, SchnorrContext.FogM4, fogPrivateKey, m4Message(suite, unsigned));
    return { suite, ...unsigned, signature };
}

/** M4 after {@link openM4}: s_f verified, C3 and C2 decrypted. */
export interface OpenedM4 {
    primaryHash: Uint8Array;
    counter: bigint;
    dynamicId: Uint8Array;
    /** E_D; undefined for a C2 without it, which cspTrafficKey refuses as a downgrade. */
    ephemeralShare: Point | undefined;
    idCert: Point;
}

/**
 * CSP (Alg. 3): verify s_f against the fog's Q_f (FailedSignatureVerification), decrypt C3 to
 * (primaryHash, IDCert_i) and C2 under IDCert_i (DecryptionFailed if C2 belongs to another
 * certificate). `cspRecipient` may be several CA keys (a rotation's overlap): each ciphertext opens
 * under whichever of them it was sealed to. The caller checks that the ledger's session record for primaryHash exists and holds
 * this IDCert_i (InvalidPrimaryHash), and B_i == i*G with verifyCounterCommitment (FailedChallenge).
 * @throws {VerificationError} `failedSignatureVerification` when: s_f does not verify for this fog
 */
export async function openM4(
    suite: Suite,
    cspRecipient: HpkeRecipient | readonly HpkeRecipient[],
    fogPublicKey: Point,
    m4: M4,
): Promise<OpenedM4> {
    assertSuite(suite, m4.suite, 'M4');
    const recipients: readonly HpkeRecipient[] = Array.isArray(cspRecipient)
        ? (cspRecipient as readonly HpkeRecipient[])
        : [cspRecipient as HpkeRecipient];
    for (const r of recipients) assertSuite(suite, r.suite, 'CSP HPKE key');
    const Qf = withPrecomputedTable(suite, fogPublicKey);
    if (!schnorrVerify(suite, SchnorrContext.FogM4, Qf, m4Message(suite, m4), m4.signature)) {
        throw new VerificationError(ErrorCode.FailedSignatureVerification, 's_f does not verify for this fog');
    }
    const { primaryHash, idCert } = decodeC3Plaintext(suite, await openUnderAny(recipients, HpkeInfo.C3, m4.c3));
    const c2 = await openUnderAny(recipients, HpkeInfo.C2, m4.c2, encodePoint(suite, idCert));
    const { counter, dynamicId, ephemeralShare } = decodeC2Plaintext(suite, c2);
    return { primaryHash, counter, dynamicId, idCert, ephemeralShare };
}

/**
 * HPKE open under the first of the CSP's CA keys that opens it: during a key rotation the device
 * and the fog seal to the newest key they know, which may be either (docs/protocol.md#csp-key-rotation).
 * Only the AEAD tag decides, so trying a wrong key reveals nothing; the last error is thrown.
 */
async function openUnderAny(
    recipients: readonly HpkeRecipient[],
    info: HpkeInfo,
    ciphertext: HpkeCiphertext,
    aad?: Uint8Array,
): Promise<Uint8Array> {
    let last: unknown = new ProtocolError(ErrorCode.DecryptionFailed, 'no CSP key to open with');
    for (const recipient of recipients) {
        try {
            return await hpkeOpen(recipient, info, ciphertext, aad);
        } catch (err) {
            if (!(err instanceof ProtocolError) || err.code !== ErrorCode.DecryptionFailed) throw err;
            last = err;
        }
    }
    throw last;
}
