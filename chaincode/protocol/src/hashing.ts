/**
 * Domain-separated hashing (RFC 9380). Each use has its own DST so a value computed for one purpose
 * can never be replayed as another.
 *
 * Every DST on the wire is `<name>-<suite id>`, e.g. `M2M-V1-COUNTER-PROOF-BASE-P256-SHA256`, so a
 * value computed under one suite is never valid under the other. Multi-part inputs are encoded as
 * u32-length-prefixed parts, so ('ab', 'c') and ('a', 'bc') hash differently.
 */
import { hash_to_field } from '@noble/curves/abstract/hash-to-curve.js';
import { normalized } from './affine.js';
import { ByteWriter } from './encoding.js';
import type { Point, Suite } from './suite.js';

/** Every domain-separation tag the protocol uses; the suite id is appended at use. */
export const DST = {
    /** k_i = H(ID_i, i*w): the device's ECQV request private key (paper eq. 2). */
    EcqvRequestKey: 'M2M-V1-ECQV-REQUEST-KEY',
    /** ID_i: the device's dynamic identity for session i. */
    DynamicIdentity: 'M2M-V1-DYNAMIC-ID',
    /** HashToCurve(ID_i || i), multiplied by d_c for secondaryHash (Alg. 3). */
    SecondaryHashPoint: 'M2M-V1-SECONDARY-HASH-POINT',
    /** secondaryHash = H(d_c * HashToCurve(ID_i || i)). */
    SecondaryHash: 'M2M-V1-SECONDARY-HASH',
    /** primaryHash = H(P) with P = d_f * IDCert_i (Alg. 2, eq. 10). */
    PrimaryHash: 'M2M-V1-PRIMARY-HASH',
    /** symKey_i = H(d_i * d_c * G) (eq. 13/20). */
    SymmetricKey: 'M2M-V1-SYMMETRIC-KEY',
    /** H(symKey_i), stored on the ledger. */
    SymmetricKeyCommitment: 'M2M-V1-SYMKEY-COMMITMENT',
    /** H(Q_i), stored on the ledger. */
    PublicKeyCommitment: 'M2M-V1-PUBKEY-COMMITMENT',
    /** addr_f = H(ID_f, d_f * Q_c). */
    FogAddress: 'M2M-V1-FOG-ADDRESS',
    /** P_i, the counter proof's second base: HashToCurve(IDCert_i). */
    CounterProofBase: 'M2M-V1-COUNTER-PROOF-BASE',
    CounterProofChallenge: 'M2M-V1-COUNTER-PROOF-CHALLENGE',
    SchnorrChallenge: 'M2M-V1-SCHNORR-CHALLENGE',
    SchnorrNonce: 'M2M-V1-SCHNORR-NONCE',
    /** RFC 9497 contextString-style prefix for the primaryHash DLEQ proof. */
    Dleq: 'M2M-V1-DLEQ',
    SessionChannel: 'M2M-V1-SESSION-CHANNEL',
    /** rs_α = H(equipmentId, w): a device's revocation seed (revocation.ts). */
    RevocationSeed: 'M2M-V1-REVOCATION-SEED',
    /** t_i = H(rs_α, i): a certificate's revocation tag. */
    RevocationTag: 'M2M-V1-REVOCATION-TAG',
    /** w_S = H(equipmentId, w): the device's owner secret in another suite S (suite-secrets.ts). */
    SuiteSecret: 'M2M-V1-SUITE-SECRET',
    /** Paper 000 Figs. 6-7 "inspection information": the digest a packet carries of itself. */
    PacketInspection: 'M2M-V1-PACKET-INSPECTION',
    /** Identifies a query packet; an information packet names the query it answers by it. */
    QueryDigest: 'M2M-V1-QUERY-DIGEST',
} as const;
export type DstName = keyof typeof DST;

/** The DST string actually used: the named tag, '-', the suite id. */
export function dstFor(suite: Suite, dst: DstName): string {
    return `${DST[dst]}-${suite.id}`;
}

/** Unambiguous encoding of a list of byte strings: each as u32 length + bytes. */
export function encodeHashInput(parts: readonly Uint8Array[]): Uint8Array {
    const w = new ByteWriter();
    for (const part of parts) w.bytes32(part);
    return w.finish();
}

/**
 * RFC 9380 §3 hash_to_curve with the suite's `P256_XMD:SHA-256_SSWU_RO_` /
 * `P384_XMD:SHA-384_SSWU_RO_` parameters, on a raw message and raw DST. The protocol calls
 * {@link hashToCurve}; this is exported so the RFC 9380 vectors can pin it.
 */
export function rfc9380HashToCurve(suite: Suite, msg: Uint8Array, dst: string | Uint8Array): Point {
    return suite.hashToCurve.hashToCurve(msg, { DST: dst });
}

/**
 * RFC 9380 §5.2 hash_to_field(msg, count) over GF(p) (the base field, as hash_to_curve uses it) or
 * GF(n) (the scalar field, RFC 9497's HashToScalar), with the suite's expand_message_xmd and k.
 */
export function rfc9380HashToField(
    suite: Suite,
    msg: Uint8Array,
    dst: string | Uint8Array,
    count: number,
    field: 'p' | 'n',
): bigint[] {
    const defaults = suite.hashToCurve.defaults;
    const modulus = field === 'p' ? suite.Point.Fp.ORDER : suite.n;
    const u = hash_to_field(msg, count, {
        DST: dst,
        expand: defaults.expand,
        hash: defaults.hash,
        p: modulus,
        m: 1,
        k: defaults.k,
    });
    return u.map((e) => {
        const v = e[0];
        if (v === undefined) throw new Error('hash_to_field returned an empty element');
        return v;
    });
}

/** RFC 9380 hash_to_field(msg, 1) over GF(n) with a raw DST: RFC 9497's HashToScalar. */
export function rfc9380HashToScalar(suite: Suite, msg: Uint8Array, dst: string | Uint8Array): bigint {
    return suite.hashToCurve.hashToScalar(msg, { DST: dst });
}

/** RFC 9380 hash_to_field(msg, 1) reduced mod n, with the named DST. Result in [0, n-1]. */
export function hashToScalar(suite: Suite, dst: DstName, ...parts: Uint8Array[]): bigint {
    return rfc9380HashToScalar(suite, encodeHashInput(parts), dstFor(suite, dst));
}

/** RFC 9380 hash_to_curve, `_XMD:SHA-xxx_SSWU_RO_`, with the named DST. */
export function hashToCurve(suite: Suite, dst: DstName, ...parts: Uint8Array[]): Point {
    // Normalised: the point is encoded into challenges and multiplied, each needing its affine form.
    return normalized(suite, rfc9380HashToCurve(suite, encodeHashInput(parts), dstFor(suite, dst)));
}

const UTF8 = new TextEncoder();

/** Suite hash over an unambiguous (length-prefixed) encoding of DST and parts; hashBytes long. */
export function hashBytes(suite: Suite, dst: DstName, ...parts: Uint8Array[]): Uint8Array {
    const w = new ByteWriter().bytes16(UTF8.encode(dstFor(suite, dst)));
    for (const part of parts) w.bytes32(part);
    return suite.hash(w.finish());
}
