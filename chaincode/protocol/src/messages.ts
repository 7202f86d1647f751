/**
 * Canonical binary encodings of every structured protocol object. Each begins with a version byte,
 * a type byte and the suite tag; decoders reject unknown versions/types, trailing bytes, and
 * anything non-canonical (DecodeError). What each object carries follows paper 004 and docs/design.md.
 *
 * Field forms: points are SEC1 compressed (suite.pointBytes), scalars fixed-width big-endian,
 * hashes fixed at suite.hashBytes, HPKE ciphertexts `enc (uncompressed) || u16 len || ct`, and the
 * proofs/signatures owned by other modules are embedded as `u16 len || their canonical encoding`.
 * docs/protocol.md lays every message out byte by byte.
 */
import { decodeCounterProof, encodeCounterProof, type CounterProof } from './counter-proof.js';
import { decodeDleqProof, encodeDleqProof, type DleqProof } from './dleq.js';
import { ByteReader, ByteWriter, equalBytes } from './encoding.js';
import { DecodeError } from './errors.js';
import { readHpkeCiphertext, writeHpkeCiphertext, type HpkeCiphertext } from './hpke.js';
import { decodeSchnorrSignature, encodeSchnorrSignature, type SchnorrSignature } from './schnorr.js';
import { suiteFromTag, type Point, type Suite } from './suite.js';
import { MAX_OBJECT_BYTES } from './cid.js';

export const PROTOCOL_VERSION = 1;

export const MessageType = {
    CertificateObject: 0x10,
    CertificateRequest: 0x11,
    M1: 0x21,
    M2: 0x22,
    M3: 0x23,
    M4: 0x24,
    Activation: 0x30,
    Synchronisation: 0x31,
    C2Plaintext: 0x40,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Most certificates one request may ask for (one Alg. 1 transaction). */
export const MAX_REQUEST_ENTRIES = 1000;
/** Longest fog id, in UTF-8 bytes. */
export const MAX_FOG_ID_BYTES = 128;

/**
 * Table III, the certificate object stored in IPFS and addressed from the ledger. P_i is not stored:
 * it is HashToCurve(IDCert_i), recomputed by every verifier.
 */
export interface CertificateObject {
    suite: Suite;
    /** IDCert_i = R_U = k_i*G (also the ledger key of the Table II record). */
    idCert: Point;
    /** Cert_i = P_U. */
    cert: Point;
    /** r_aux-i = e*r_c + d_c. */
    rAux: bigint;
    /** {B_i, x_i*P_i, r_i*P_i, A_i, s_i}. */
    counterProof: CounterProof;
}

// ---------------------------------------------------------------------------------------------
// Shared framing

function header(type: MessageType, suite: Suite): ByteWriter {
    return new ByteWriter().u8(PROTOCOL_VERSION).u8(type).u8(suite.tag);
}

/** Reads version, type and suite tag; `expected` pins the suite when the caller knows it. */
function readHeader(r: ByteReader, type: MessageType, expected?: Suite): Suite {
    const version = r.u8();
    if (version !== PROTOCOL_VERSION) {
        throw new DecodeError('unknownVersion', `message version ${version}, expected ${PROTOCOL_VERSION}`);
    }
    const actualType = r.u8();
    if (actualType !== type) {
        throw new DecodeError(
            'unknownType',
            `message type 0x${actualType.toString(16)}, expected 0x${type.toString(16)}`,
        );
    }
    const tag = r.u8();
    const suite = suiteFromTag(tag);
    if (expected !== undefined && suite.tag !== expected.tag) {
        throw new DecodeError('unknownSuite', `suite ${suite.id} where ${expected.id} is in use`);
    }
    return suite;
}

/**
 * The suite a protocol message of `type` is in, read from its header without decoding the rest:
 * a party serving certificates of several suites (a fog, the CSP, chaincode after a rotation to
 * another suite) picks the suite here and then decodes with it pinned.
 * @throws {DecodeError} `unknownVersion`, `unknownType` or `unknownSuite` for a header that is not one
 */
export function messageSuite(type: MessageType, bytes: Uint8Array): Suite {
    const r = new ByteReader(bytes.subarray(0, 3));
    return readHeader(r, type);
}

/** A sub-encoding owned by another module, length-prefixed; its decoder must consume it exactly. */
function readEmbedded<T>(r: ByteReader, decode: (bytes: Uint8Array) => T): T {
    return decode(r.bytes16());
}

function readHash(r: ByteReader, suite: Suite): Uint8Array {
    return r.raw(suite.hashBytes);
}

function writeHash(w: ByteWriter, suite: Suite, h: Uint8Array, name: string): void {
    if (h.length !== suite.hashBytes) {
        throw new RangeError(`${name} must be ${suite.hashBytes} bytes`);
    }
    w.raw(h);
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

function writeFogId(w: ByteWriter, fogId: string): void {
    const bytes = utf8Encoder.encode(fogId);
    if (bytes.length === 0 || bytes.length > MAX_FOG_ID_BYTES) {
        throw new RangeError(`fog id must be 1..${MAX_FOG_ID_BYTES} UTF-8 bytes`);
    }
    w.bytes16(bytes);
}

/** Strict UTF-8 (no replacement characters, BOM kept) so decode -> encode is byte-identical. */
function readFogId(r: ByteReader): string {
    const bytes = r.bytes16();
    if (bytes.length === 0 || bytes.length > MAX_FOG_ID_BYTES) {
        throw new DecodeError('invalidValue', `fog id must be 1..${MAX_FOG_ID_BYTES} bytes`);
    }
    let s: string;
    try {
        s = utf8Decoder.decode(bytes);
    } catch (e) {
        throw new DecodeError('nonCanonical', 'fog id is not valid UTF-8', { cause: e });
    }
    if (!equalBytes(utf8Encoder.encode(s), bytes)) {
        throw new DecodeError('nonCanonical', 'fog id does not re-encode to the same bytes');
    }
    return s;
}

function finishDecode<T>(r: ByteReader, value: T): T {
    r.end();
    return value;
}

// ---------------------------------------------------------------------------------------------
// Table III certificate object

function writeCertificateBody(w: ByteWriter, obj: CertificateObject): void {
    const s = obj.suite;
    w.point(s, obj.idCert).point(s, obj.cert).scalar(s, obj.rAux).bytes16(encodeCounterProof(s, obj.counterProof));
}

export function encodeCertificateObject(obj: CertificateObject): Uint8Array {
    const w = header(MessageType.CertificateObject, obj.suite);
    writeCertificateBody(w, obj);
    return w.finish();
}

export function decodeCertificateObject(bytes: Uint8Array): CertificateObject {
    const r = new ByteReader(bytes);
    const suite = readHeader(r, MessageType.CertificateObject);
    const idCert = r.point(suite);
    const cert = r.point(suite);
    const rAux = r.scalar(suite);
    const counterProof = readEmbedded(r, (b) => decodeCounterProof(suite, b));
    return finishDecode(r, { suite, idCert, cert, rAux, counterProof });
}

// ---------------------------------------------------------------------------------------------
// Alg. 1 request

/** Alg. 1 request M_alpha without payment details: I_alpha and the counter proofs. No equipment id. */
export interface CertificateRequest {
    suite: Suite;
    entries: { idCert: Point; counterProof: CounterProof }[];
}

/**
 * @throws {RangeError} when: a certificate request holds 1..… entries
 */
export function encodeCertificateRequest(req: CertificateRequest): Uint8Array {
    const s = req.suite;
    if (req.entries.length === 0 || req.entries.length > MAX_REQUEST_ENTRIES) {
        throw new RangeError(`a certificate request holds 1..${MAX_REQUEST_ENTRIES} entries`);
    }
    const w = header(MessageType.CertificateRequest, s).u16(req.entries.length);
    for (const entry of req.entries) {
        w.point(s, entry.idCert).bytes16(encodeCounterProof(s, entry.counterProof));
    }
    return w.finish();
}

/**
 * Also rejects an empty request, more than MAX_REQUEST_ENTRIES, and a repeated IDCert_i.
 * @throws {DecodeError} `invalidValue` when: request with … entries (1..…); IDCert_i repeated at entry …
 */
export function decodeCertificateRequest(bytes: Uint8Array): CertificateRequest {
    const r = new ByteReader(bytes);
    const suite = readHeader(r, MessageType.CertificateRequest);
    const count = r.u16();
    if (count === 0 || count > MAX_REQUEST_ENTRIES) {
        throw new DecodeError('invalidValue', `request with ${count} entries (1..${MAX_REQUEST_ENTRIES})`);
    }
    const entries: CertificateRequest['entries'] = [];
    const seen = new Set<string>();
    for (let k = 0; k < count; k++) {
        const idBytes = r.raw(suite.pointBytes);
        const key = Buffer.from(idBytes).toString('hex');
        if (seen.has(key)) {
            throw new DecodeError('invalidValue', `IDCert_i repeated at entry ${k}`);
        }
        seen.add(key);
        const idCert = new ByteReader(idBytes).point(suite);
        const counterProof = readEmbedded(r, (b) => decodeCounterProof(suite, b));
        entries.push({ idCert, counterProof });
    }
    return finishDecode(r, { suite, entries });
}

// ---------------------------------------------------------------------------------------------
// C2 plaintext

/** What C2 encrypts for the CSP: the counter i and the dynamic identity ID_i. */
export interface C2Plaintext {
    counter: bigint;
    dynamicId: Uint8Array;
    /**
     * E_D, the device's ephemeral share for the forward-secret key (forward-secrecy.ts). Optional in
     * the encoding so a C2 without it decodes — and is then refused as a downgrade
     * (forwardSecrecyRequired) by the CSP, not as malformed.
     */
    ephemeralShare?: Point;
}

const MAX_COUNTER = (1n << 64n) - 1n;

function checkCounter(counter: bigint): void {
    if (counter < 1n || counter > MAX_COUNTER) {
        throw new RangeError('session counter i must be in [1, 2^64-1]');
    }
}

export function encodeC2Plaintext(suite: Suite, p: C2Plaintext): Uint8Array {
    checkCounter(p.counter);
    const w = header(MessageType.C2Plaintext, suite).u64(p.counter);
    writeHash(w, suite, p.dynamicId, 'ID_i');
    // A presence byte keeps the encoding canonical (no prefix of one C2 is another valid C2).
    if (p.ephemeralShare === undefined) w.u8(0);
    else w.u8(1).point(suite, p.ephemeralShare);
    return w.finish();
}

/**
 * @throws {DecodeError} `invalidValue` when: session counter 0; ephemeral-share flag …
 */
export function decodeC2Plaintext(suite: Suite, bytes: Uint8Array): C2Plaintext {
    const r = new ByteReader(bytes);
    readHeader(r, MessageType.C2Plaintext, suite);
    const counter = r.u64();
    if (counter === 0n) {
        // B_i = i*G must not be the identity; counters start at 1 (Alg. 1).
        throw new DecodeError('invalidValue', 'session counter 0');
    }
    const dynamicId = readHash(r, suite);
    const present = r.u8();
    if (present === 0) return finishDecode(r, { counter, dynamicId });
    if (present !== 1) throw new DecodeError('invalidValue', `ephemeral-share flag ${present}`);
    const ephemeralShare = r.point(suite);
    return finishDecode(r, { counter, dynamicId, ephemeralShare });
}

// ---------------------------------------------------------------------------------------------
// M1..M4

/** M1 = <C1, C2, proof of possession by k_i> (device -> fog). */
export interface M1 {
    suite: Suite;
    c1: HpkeCiphertext;
    c2: HpkeCiphertext;
    proofOfPossession: SchnorrSignature;
}

export function encodeM1(m: M1): Uint8Array {
    const s = m.suite;
    const w = header(MessageType.M1, s);
    writeHpkeCiphertext(w, s, m.c1);
    writeHpkeCiphertext(w, s, m.c2);
    w.bytes16(encodeSchnorrSignature(s, m.proofOfPossession));
    return w.finish();
}

export function decodeM1(suite: Suite, bytes: Uint8Array): M1 {
    const r = new ByteReader(bytes);
    readHeader(r, MessageType.M1, suite);
    const c1 = readHpkeCiphertext(r, suite);
    const c2 = readHpkeCiphertext(r, suite);
    const proofOfPossession = readEmbedded(r, (b) => decodeSchnorrSignature(suite, b));
    return finishDecode(r, { suite, c1, c2, proofOfPossession });
}

/** M2 = the certificate object (fog -> device). */
export interface M2 {
    suite: Suite;
    certificateObject: Uint8Array;
}

function writeObjectBytes(w: ByteWriter, obj: Uint8Array): void {
    if (obj.length === 0 || obj.length > MAX_OBJECT_BYTES) {
        throw new RangeError(`certificate object must be 1..${MAX_OBJECT_BYTES} bytes`);
    }
    w.bytes32(obj);
}

function readObjectBytes(r: ByteReader): Uint8Array {
    const obj = r.bytes32();
    if (obj.length === 0 || obj.length > MAX_OBJECT_BYTES) {
        throw new DecodeError('invalidValue', `certificate object of ${obj.length} bytes`);
    }
    return obj;
}

export function encodeM2(m: M2): Uint8Array {
    const w = header(MessageType.M2, m.suite);
    writeObjectBytes(w, m.certificateObject);
    return w.finish();
}

/** The certificate object stays opaque bytes here: its content address is over exactly these. */
export function decodeM2(suite: Suite, bytes: Uint8Array): M2 {
    const r = new ByteReader(bytes);
    readHeader(r, MessageType.M2, suite);
    const certificateObject = readObjectBytes(r);
    return finishDecode(r, { suite, certificateObject });
}

/** M3 = <Q_i, H(symKey_i), signature by d_i> (device -> fog -> chaincode), eq. 14. */
export interface M3 {
    suite: Suite;
    publicKey: Point;
    symKeyCommitment: Uint8Array;
    signature: SchnorrSignature;
}

export function encodeM3(m: M3): Uint8Array {
    const s = m.suite;
    const w = header(MessageType.M3, s).point(s, m.publicKey);
    writeHash(w, s, m.symKeyCommitment, 'H(symKey_i)');
    w.bytes16(encodeSchnorrSignature(s, m.signature));
    return w.finish();
}

export function decodeM3(suite: Suite, bytes: Uint8Array): M3 {
    const r = new ByteReader(bytes);
    readHeader(r, MessageType.M3, suite);
    const publicKey = r.point(suite);
    const symKeyCommitment = readHash(r, suite);
    const signature = readEmbedded(r, (b) => decodeSchnorrSignature(suite, b));
    return finishDecode(r, { suite, publicKey, symKeyCommitment, signature });
}

/** M4 = <C2, C3, s_f> (fog -> CSP), eq. 16, plus the fog id the CSP verifies s_f against. */
export interface M4 {
    suite: Suite;
    fogId: string;
    c2: HpkeCiphertext;
    c3: HpkeCiphertext;
    signature: SchnorrSignature;
}

export function encodeM4(m: M4): Uint8Array {
    const s = m.suite;
    const w = header(MessageType.M4, s);
    writeFogId(w, m.fogId);
    writeHpkeCiphertext(w, s, m.c2);
    writeHpkeCiphertext(w, s, m.c3);
    w.bytes16(encodeSchnorrSignature(s, m.signature));
    return w.finish();
}

export function decodeM4(suite: Suite, bytes: Uint8Array): M4 {
    const r = new ByteReader(bytes);
    readHeader(r, MessageType.M4, suite);
    const fogId = readFogId(r);
    const c2 = readHpkeCiphertext(r, suite);
    const c3 = readHpkeCiphertext(r, suite);
    const signature = readEmbedded(r, (b) => decodeSchnorrSignature(suite, b));
    return finishDecode(r, { suite, fogId, c2, c3, signature });
}

// ---------------------------------------------------------------------------------------------
// Transactions

/**
 * The single activation transaction of Alg. 2 (docs/design.md#two-commits-per-session), sent in the transient map:
 * certificate object, P = d_f*IDCert_i with its DLEQ proof, the proof of possession and M3.
 */
export interface Activation {
    suite: Suite;
    certificateObject: Uint8Array;
    P: Point;
    dleqProof: DleqProof;
    proofOfPossession: SchnorrSignature;
    m3: M3;
}

/**
 * @throws {RangeError} when: M3 suite differs from the activation suite
 */
export function encodeActivation(a: Activation): Uint8Array {
    const s = a.suite;
    if (a.m3.suite.tag !== s.tag) {
        throw new RangeError('M3 suite differs from the activation suite');
    }
    const w = header(MessageType.Activation, s);
    writeObjectBytes(w, a.certificateObject);
    w.point(s, a.P)
        .bytes16(encodeDleqProof(s, a.dleqProof))
        .bytes16(encodeSchnorrSignature(s, a.proofOfPossession))
        .bytes16(encodeM3(a.m3));
    return w.finish();
}

export function decodeActivation(suite: Suite, bytes: Uint8Array): Activation {
    const r = new ByteReader(bytes);
    readHeader(r, MessageType.Activation, suite);
    const certificateObject = readObjectBytes(r);
    const P = r.point(suite);
    const dleqProof = readEmbedded(r, (b) => decodeDleqProof(suite, b));
    const proofOfPossession = readEmbedded(r, (b) => decodeSchnorrSignature(suite, b));
    const m3 = readEmbedded(r, (b) => decodeM3(suite, b));
    return finishDecode(r, { suite, certificateObject, P, dleqProof, proofOfPossession, m3 });
}

/** Alg. 3 synchronisation by the CSP, sent in the transient map. */
export interface Synchronisation {
    suite: Suite;
    primaryHash: Uint8Array;
    secondaryHash: Uint8Array;
    symKeyCommitment: Uint8Array;
}

export function encodeSynchronisation(s: Synchronisation): Uint8Array {
    const w = header(MessageType.Synchronisation, s.suite);
    writeHash(w, s.suite, s.primaryHash, 'primaryHash');
    writeHash(w, s.suite, s.secondaryHash, 'secondaryHash');
    writeHash(w, s.suite, s.symKeyCommitment, 'H(symKey_i)');
    return w.finish();
}

export function decodeSynchronisation(suite: Suite, bytes: Uint8Array): Synchronisation {
    const r = new ByteReader(bytes);
    readHeader(r, MessageType.Synchronisation, suite);
    const primaryHash = readHash(r, suite);
    const secondaryHash = readHash(r, suite);
    const symKeyCommitment = readHash(r, suite);
    return finishDecode(r, { suite, primaryHash, secondaryHash, symKeyCommitment });
}
