/**
 * HPKE (RFC 9180) base mode: the standard form of the paper's ECIES for C1, C2 and C3
 * (DESIGN.md §2). DHKEM(P-256, HKDF-SHA256) / DHKEM(P-384, HKDF-SHA384), HKDF of the suite,
 * AES-128-GCM / AES-256-GCM, via @hpke/core (WebCrypto, OpenSSL-backed). Each message kind has its
 * own `info` label so a C1 can never be opened as a C2.
 */
import type { Suite } from './suite.js';

export const HpkeInfo = {
    /** C1 = Enc_{Q_f}(IDCert_i): device -> fog. */
    C1: 'M2M-V1-C1',
    /** C2 = Enc_{Q_c}(i, ID_i): device -> CSP (through the fog, opaque to it). */
    C2: 'M2M-V1-C2',
    /** C3 = Enc_{Q_c}(primaryHash_i): fog -> CSP. */
    C3: 'M2M-V1-C3',
} as const;
export type HpkeInfo = (typeof HpkeInfo)[keyof typeof HpkeInfo];

export interface HpkeCiphertext {
    /** Encapsulated key (the paper's A_f / A_c-1 / A_c-2), SEC1 uncompressed as RFC 9180 defines. */
    enc: Uint8Array;
    /** AEAD ciphertext with tag (the paper's C_f / C_c-1 / C_c-2). */
    ct: Uint8Array;
}

/** Recipient key pair in the form HPKE needs; built once per service from its scalar. */
export interface HpkeRecipient {
    readonly suite: Suite;
    readonly publicKey: Uint8Array;
}

export declare function hpkeRecipientFromScalar(suite: Suite, secret: bigint): Promise<HpkeRecipient>;
export declare function hpkeSeal(
    suite: Suite,
    recipientPublicKey: Uint8Array,
    info: HpkeInfo,
    plaintext: Uint8Array,
    aad?: Uint8Array,
): Promise<HpkeCiphertext>;
/** Throws ProtocolError(DecryptionFailed) on any authentication failure. */
export declare function hpkeOpen(
    recipient: HpkeRecipient,
    info: HpkeInfo,
    ciphertext: HpkeCiphertext,
    aad?: Uint8Array,
): Promise<Uint8Array>;
export declare function encodeHpkeCiphertext(suite: Suite, c: HpkeCiphertext): Uint8Array;
export declare function decodeHpkeCiphertext(suite: Suite, bytes: Uint8Array): HpkeCiphertext;
