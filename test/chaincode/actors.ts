/**
 * The protocol's off-chain actors for the chaincode tests: the CSP (CA key d_c), fogs (d_f),
 * and devices with their manufacturer's secrets. Each step is the protocol module's own function,
 * so the chaincode is tested against exactly what the services will send.
 */
import {
    computeSecondaryHash,
    computeSymKey,
    contentAddress,
    createActivation,
    createCertificateRequest,
    createM1,
    createM4,
    decodeCertificateObject,
    ecqvExtractPublicKey,
    encodeActivation,
    encodeCertificateObject,
    encodeCertificateRequest,
    encodeEcqvCertificate,
    encodePoint,
    encodeSynchronisation,
    fogAddress,
    hpkeRecipientFromScalar,
    issueCertificates,
    openM1,
    openM4,
    processM2,
    randomScalar,
    symKeyCommitment,
    toHex,
} from '@m2m-fabric/protocol';
import type {
    Activation,
    CertificateRequest,
    DeviceSecrets,
    HpkeRecipient,
    M1,
    Point,
    Suite,
} from '@m2m-fabric/protocol';

export interface CspActor {
    suite: Suite;
    d: bigint;
    Q: Point;
    recipient: HpkeRecipient;
    /** Q_c as the registerCsp argument. */
    publicKeyHex: string;
}

export interface FogActor {
    suite: Suite;
    id: string;
    mspId: string;
    d: bigint;
    Q: Point;
    recipient: HpkeRecipient;
    publicKeyHex: string;
    /** addr_f = H(ID_f, d_f*Q_c), as the fog registers it. */
    addressHex: string;
}

export async function newCsp(suite: Suite): Promise<CspActor> {
    const d = randomScalar(suite);
    const Q = suite.Point.BASE.multiply(d);
    return {
        suite,
        d,
        Q,
        recipient: await hpkeRecipientFromScalar(suite, d),
        publicKeyHex: toHex(encodePoint(suite, Q)),
    };
}

export async function newFog(csp: CspActor, id: string, mspId: string): Promise<FogActor> {
    const suite = csp.suite;
    const d = randomScalar(suite);
    const Q = suite.Point.BASE.multiply(d);
    return {
        suite,
        id,
        mspId,
        d,
        Q,
        recipient: await hpkeRecipientFromScalar(suite, d),
        publicKeyHex: toHex(encodePoint(suite, Q)),
        addressHex: toHex(fogAddress(suite, id, csp.Q.multiply(d))),
    };
}

/** The CSP backend's own H(ID_f, d_c*Q_f), the approveFog argument. */
export function cspFogAddress(csp: CspActor, fog: FogActor): string {
    return toHex(fogAddress(csp.suite, fog.id, fog.Q.multiply(csp.d)));
}

export function newDevice(equipmentId: string, suite: Suite): DeviceSecrets {
    return { w: randomScalar(suite), equipmentId };
}

/** Alg. 1, manufacturer: the request object, its bytes and its CID (the request id). */
export interface SessionRequest {
    request: CertificateRequest;
    bytes: Uint8Array;
    cid: string;
}

export function buildRequest(suite: Suite, device: DeviceSecrets, firstCounter: bigint, n: number): SessionRequest {
    const request = createCertificateRequest(suite, device, firstCounter, n);
    const bytes = encodeCertificateRequest(request);
    return { request, bytes, cid: contentAddress(bytes) };
}

/** Alg. 1, CSP-CA: the encoded certificate objects, one per request entry, in order. */
export function issueObjects(csp: CspActor, request: SessionRequest): Uint8Array[] {
    return issueCertificates(csp.suite, csp.d, request.request).map((object) => encodeCertificateObject(object));
}

/** The transient map of issueCertificates. */
export function issuanceTransient(request: SessionRequest, objects: Uint8Array[]): Record<string, Uint8Array> {
    const transient: Record<string, Uint8Array> = { request: request.bytes };
    objects.forEach((object, index) => (transient[`certificate:${index}`] = object));
    return transient;
}

/** Everything one activation produces off-chain (device M1/M3, fog's Activation). */
export interface PreparedActivation {
    m1: M1;
    idCert: Point;
    activation: Activation;
    bytes: Uint8Array;
    symKey: Uint8Array;
}

/** Alg. 2 off-chain: device M1 -> fog opens C1 -> device processes M2 -> fog builds the activation. */
export async function prepareActivation(
    csp: CspActor,
    fog: FogActor,
    device: DeviceSecrets,
    counter: bigint,
    objectBytes: Uint8Array,
): Promise<PreparedActivation> {
    const suite = csp.suite;
    const { m1, session } = await createM1(suite, device, counter, fog.id, fog.Q, csp.Q);
    const { idCert } = await openM1(suite, fog.recipient, m1);
    const { m3, symKey } = processM2(session, objectBytes, csp.Q, fog.id);
    const activation = createActivation(suite, fog.d, objectBytes, m1, m3);
    return { m1, idCert, activation, bytes: encodeActivation(activation), symKey };
}

/** Alg. 3 off-chain: fog M4 -> CSP opens it and computes secondaryHash and H(symKey_i). */
export async function prepareSynchronisation(
    csp: CspActor,
    fog: FogActor,
    prepared: PreparedActivation,
    primaryHash: Uint8Array,
): Promise<{ bytes: Uint8Array; secondaryHash: Uint8Array; symKeyCommitment: Uint8Array }> {
    const suite = csp.suite;
    const m4 = await createM4(suite, fog.id, fog.d, prepared.m1, primaryHash, csp.Q);
    const opened = await openM4(suite, csp.recipient, fog.Q, m4);
    const secondaryHash = computeSecondaryHash(suite, csp.d, opened.dynamicId, opened.counter);
    const object = decodeCertificateObject(prepared.activation.certificateObject);
    const publicKey = ecqvExtractPublicKey(
        suite,
        encodeEcqvCertificate(suite, object.idCert, object.cert),
        object.cert,
        csp.Q,
    );
    const commitment = symKeyCommitment(suite, computeSymKey(suite, csp.d, publicKey));
    return {
        bytes: encodeSynchronisation({
            suite,
            primaryHash: opened.primaryHash,
            secondaryHash,
            symKeyCommitment: commitment,
        }),
        secondaryHash,
        symKeyCommitment: commitment,
    };
}
