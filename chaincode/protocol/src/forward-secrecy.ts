/**
 * Forward-secret session keys (paper 004 §V admits none: symKey_i = H(d_i*d_c*G) depends only on
 * long-term secrets, so whoever later learns d_c, or w with the public ledger and M2, recomputes
 * every past session key).
 *
 * Each session's traffic key also mixes an ephemeral-ephemeral ECDH between device and CSP:
 *   device: x_D random, E_D = x_D*G, carried inside C2 (sealed to Q_c, bound to IDCert_i)
 *   CSP:    x_C random, E_C = x_C*G, carried in clear in front of the Confirm frame
 *   Z_e     = x(x_D*E_C) = x(x_C*E_D)                               (ECDH, OpenSSL)
 *   PRK     = HKDF-Extract(salt = symKey_i, IKM = Z_e)              (RFC 5869, suite hash)
 *   K_i     = HKDF-Expand(PRK, info, L = hashBytes)
 *   info    = "M2M-V1-FS-TRAFFIC-KEY" || u8 0 || suite id || u8 0 || IDCert_i || E_D || E_C
 * K_i keys the session channel in place of symKey_i. The ledger still commits to H(symKey_i) (the
 * paper's check at Alg. 3 stays meaningful: K_i can only be derived by someone holding symKey_i),
 * and symKey_i authenticates the exchange: the Confirm is sealed under K_i, so a fog that swapped
 * E_C (or E_D, which it cannot even read) produces a key the device's Confirm check rejects.
 *
 * After the exchange x_D and x_C are erased ({@link EphemeralKey.agree} zeroes every copy it
 * holds), and symKey_i is dropped: d_c, w and a later device state file then give symKey_i but not
 * Z_e, which needs x_D or x_C (or the CDH of E_D, E_C).
 */
import { createECDH, hkdfSync, type ECDH } from 'node:crypto';
import { ByteReader, ByteWriter, decodePoint, encodePoint } from './encoding.js';
import { DecodeError, ErrorCode, VerificationError } from './errors.js';
import { FrameType, SessionChannel } from './session-channel.js';
import type { Point, Suite } from './suite.js';

const INFO_LABEL = new TextEncoder().encode('M2M-V1-FS-TRAFFIC-KEY');
const UTF8 = new TextEncoder();

function hkdfHash(suite: Suite): 'sha256' | 'sha384' {
    return suite.hashBytes === 32 ? 'sha256' : 'sha384';
}

/** The exact HKDF `info` of the traffic key (exported for the known-answer tests and docs). */
export function trafficKeyInfo(suite: Suite, idCert: Point, deviceShare: Point, cspShare: Point): Uint8Array {
    return new ByteWriter()
        .raw(INFO_LABEL)
        .u8(0)
        .raw(UTF8.encode(suite.id))
        .u8(0)
        .point(suite, idCert)
        .point(suite, deviceShare)
        .point(suite, cspShare)
        .finish();
}

/**
 * K_i = HKDF-Expand(HKDF-Extract(symKey_i, Z_e), info, hashBytes). Pure function of its inputs,
 * which is what the known-answer tests pin.
 * @throws {RangeError} when: symKey must be … bytes; the ephemeral shared secret must be … bytes
 */
export function deriveTrafficKey(
    suite: Suite,
    symKey: Uint8Array,
    ephemeralSecret: Uint8Array,
    idCert: Point,
    deviceShare: Point,
    cspShare: Point,
): Uint8Array {
    if (symKey.length !== suite.hashBytes) throw new RangeError(`symKey must be ${suite.hashBytes} bytes`);
    if (ephemeralSecret.length !== suite.scalarBytes) {
        throw new RangeError(`the ephemeral shared secret must be ${suite.scalarBytes} bytes`);
    }
    const info = trafficKeyInfo(suite, idCert, deviceShare, cspShare);
    // node:crypto's hkdfSync is RFC 5869 Extract-then-Expand with salt = symKey_i, IKM = Z_e.
    return new Uint8Array(hkdfSync(hkdfHash(suite), ephemeralSecret, symKey, info, suite.hashBytes));
}

/**
 * One ephemeral ECDH key pair (x, E = x*G), held by OpenSSL. Usable once: {@link agree}
 * computes Z_e and erases x (OpenSSL's EC_KEY_free clears the private scalar when the key is
 * replaced); any later use throws. The CSP's x_C is never persisted. The device's x_D is written
 * to its state file ({@link exportSecret}) with the pending session until the Confirm, so that a
 * retry of the same certificate (after a fault or restart) carries the same E_D; it is removed in
 * the write that stores K_i. Forward secrecy is about compromise after the session, which that
 * keeps: see docs/reliability.md.
 */
export class EphemeralKey {
    private ecdh: ECDH | undefined;
    readonly share: Point;

    private constructor(
        private readonly suite: Suite,
        ecdh: ECDH,
    ) {
        this.ecdh = ecdh;
        this.share = decodePoint(suite, ecdh.getPublicKey(null, 'compressed'));
    }

    /** A fresh key pair from OpenSSL's CSPRNG. */
    static generate(suite: Suite): EphemeralKey {
        const ecdh = createECDH(suite.opensslCurve);
        ecdh.generateKeys();
        return new EphemeralKey(suite, ecdh);
    }

    /**
     * A key pair from a given scalar (big-endian, scalarBytes long): the known-answer tests, and a
     * device retrying a certificate with the x_D of its pending session. The caller's buffer is zeroed.
     * @throws RangeError when the scalar is 0 or not below the group order (OpenSSL refuses it).
     */
    static fromSecret(suite: Suite, secret: Uint8Array): EphemeralKey {
        const ecdh = createECDH(suite.opensslCurve);
        ecdh.setPrivateKey(secret);
        secret.fill(0);
        return new EphemeralKey(suite, ecdh);
    }

    /**
     * x as big-endian scalarBytes, for the device's state file until the Confirm (the caller zeroes
     * the copy once written).
     * @throws {RangeError} when: the key was already used and erased
     */
    exportSecret(): Uint8Array {
        const ecdh = this.ecdh;
        if (ecdh === undefined) throw new RangeError('ephemeral key already used and erased');
        const raw = ecdh.getPrivateKey();
        const out = new Uint8Array(this.suite.scalarBytes);
        out.set(raw, out.length - raw.length);
        raw.fill(0);
        return out;
    }

    /** Whether {@link agree} or {@link erase} already ran. */
    get erased(): boolean {
        return this.ecdh === undefined;
    }

    /**
     * Z_e = x(x*peerShare), then erases x. Throws VerificationError(MalformedInput) for the
     * identity or a point OpenSSL refuses, and RangeError once erased.
     * @throws {RangeError} when: ephemeral key already used and erased
     * @throws {VerificationError} `malformedInput` when: ephemeral share is the identity
     */
    agree(peerShare: Point): Uint8Array {
        const ecdh = this.ecdh;
        if (ecdh === undefined) throw new RangeError('ephemeral key already used and erased');
        try {
            if (peerShare.is0())
                throw new VerificationError(ErrorCode.MalformedInput, 'ephemeral share is the identity');
            return new Uint8Array(ecdh.computeSecret(Buffer.from(peerShare.toBytes(false))));
        } finally {
            this.erase();
        }
    }

    /** Erases x without using it (a session that failed). Idempotent. */
    erase(): void {
        const ecdh = this.ecdh;
        if (ecdh === undefined) return;
        this.ecdh = undefined;
        // Replacing the private key frees (and clears) OpenSSL's copy of x; the scratch is zeroed.
        const scratch = Buffer.alloc(this.suite.scalarBytes);
        scratch[scratch.length - 1] = 1;
        ecdh.setPrivateKey(scratch);
        scratch.fill(0);
    }
}

/**
 * Requires the peer's ephemeral share: a session without one is a downgrade to the paper's
 * non-forward-secret key, refused with VerificationError(ForwardSecrecyRequired).
 * @throws {VerificationError} `forwardSecrecyRequired` when: … carries no ephemeral share: a session without forward secrecy is refused
 */
export function requireEphemeralShare(share: Point | undefined, who: string): Point {
    if (share === undefined) {
        throw new VerificationError(
            ErrorCode.ForwardSecrecyRequired,
            `${who} carries no ephemeral share: a session without forward secrecy is refused`,
        );
    }
    return share;
}

/**
 * First byte of a forward-secret Confirm. A session-channel frame starts with its version (1), so
 * the two cannot be confused.
 */
export const FS_CONFIRM_MARKER = 0xf5;

/** The forward-secret Confirm: marker, suite tag, E_C in clear, then the Confirm frame sealed under K_i. */
export function encodeFsConfirm(suite: Suite, cspShare: Point, frame: Uint8Array): Uint8Array {
    return new ByteWriter().u8(FS_CONFIRM_MARKER).u8(suite.tag).point(suite, cspShare).bytes16(frame).finish();
}

/**
 * Inverse of {@link encodeFsConfirm}. A bare channel frame (the paper's Confirm, no E_C) is a
 * downgrade: VerificationError(ForwardSecrecyRequired). Other malformations: DecodeError.
 * @throws {VerificationError} `forwardSecrecyRequired` when: the Confirm carries no ephemeral share: a session without forward secrecy is refused
 * @throws {DecodeError} `unknownSuite` when: Confirm for suite tag …, expected …
 */
export function decodeFsConfirm(suite: Suite, bytes: Uint8Array): { cspShare: Point; frame: Uint8Array } {
    if (bytes.length === 0 || bytes[0] !== FS_CONFIRM_MARKER) {
        throw new VerificationError(
            ErrorCode.ForwardSecrecyRequired,
            'the Confirm carries no ephemeral share: a session without forward secrecy is refused',
        );
    }
    const r = new ByteReader(bytes);
    r.u8();
    const tag = r.u8();
    if (tag !== suite.tag) throw new DecodeError('unknownSuite', `Confirm for suite tag ${tag}, expected ${suite.tag}`);
    const cspShare = r.point(suite);
    const frame = r.bytes16();
    r.end();
    return { cspShare, frame };
}

/** Compressed encoding of a share, for state files and logs of public values. */
export function encodeShare(suite: Suite, share: Point): Uint8Array {
    return encodePoint(suite, share);
}

/**
 * CSP side (Alg. 3, after the H(symKey_i) check): a fresh x_C, Z_e = x(x_C*E_D), K_i; x_C is
 * erased before this returns. `deviceShare` undefined (C2 without E_D) is a downgrade:
 * VerificationError(ForwardSecrecyRequired).
 */
export function cspTrafficKey(
    suite: Suite,
    symKey: Uint8Array,
    idCert: Point,
    deviceShare: Point | undefined,
): { cspShare: Point; trafficKey: Uint8Array } {
    const share = requireEphemeralShare(deviceShare, 'C2');
    const ephemeral = EphemeralKey.generate(suite);
    const z = ephemeral.agree(share);
    try {
        return {
            cspShare: ephemeral.share,
            trafficKey: deriveTrafficKey(suite, symKey, z, idCert, share, ephemeral.share),
        };
    } finally {
        z.fill(0);
    }
}

/**
 * Device side, on the Confirm's E_C: Z_e = x(x_D*E_C) (erasing x_D), K_i. Throws RangeError if
 * x_D was already used or erased.
 */
export function deviceTrafficKey(
    suite: Suite,
    ephemeral: EphemeralKey,
    symKey: Uint8Array,
    idCert: Point,
    cspShare: Point,
): Uint8Array {
    const z = ephemeral.agree(cspShare);
    try {
        return deriveTrafficKey(suite, symKey, z, idCert, ephemeral.share, cspShare);
    } finally {
        z.fill(0);
    }
}

/**
 * Device side of the forward-secret Confirm, in the order that keeps a refusal harmless: the
 * Confirm is decoded first (a bare channel frame — the paper's Confirm without E_C — throws
 * VerificationError(ForwardSecrecyRequired) and x_D is left untouched, so the genuine Confirm can
 * still be accepted); then Z_e = x(x_D*E_C) erases x_D, K_i is derived and the channel keyed by K_i
 * must open the frame as a Confirm. A replayed Confirm of another session (or one under an old CSP
 * key, or a swapped E_C) gives another K_i: ProtocolError(DecryptionFailed).
 *
 * @returns the session channel under K_i (its Confirm consumed) and K_i itself (for the state file).
 * @throws VerificationError ForwardSecrecyRequired, ProtocolError DecryptionFailed, DecodeError,
 *   RangeError when x_D was already used.
 */
export async function acceptFsConfirm(
    suite: Suite,
    ephemeral: EphemeralKey,
    symKey: Uint8Array,
    idCert: Point,
    sessionId: Uint8Array,
    confirm: Uint8Array,
): Promise<{ channel: SessionChannel; trafficKey: Uint8Array }> {
    const { cspShare, frame } = decodeFsConfirm(suite, confirm);
    const trafficKey = deviceTrafficKey(suite, ephemeral, symKey, idCert, cspShare);
    const channel = await SessionChannel.create(suite, trafficKey, 'device', sessionId);
    const opened = await channel.open(frame);
    if (opened.type !== FrameType.Confirm) {
        trafficKey.fill(0);
        throw new DecodeError('unknownType', `expected a Confirm frame, got type ${opened.type}`);
    }
    return { channel, trafficKey };
}
