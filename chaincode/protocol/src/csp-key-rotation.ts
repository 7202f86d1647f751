/**
 * CSP key rotation (docs/protocol.md#csp-key-rotation): the statement a rotation to a new CA key
 * Q_c' is signed over, its two signatures, and the chain a device walks to learn the new key
 * without trusting the fog that tells it.
 *
 * A rotation from key epoch j (Q_c) to epoch j+1 (Q_c') within one suite is
 *   statement = "M2M-V1-CSP-KEY-ROTATION" || u8 0 || suite tag || u32 j || Q_c || u32 j+1 || Q_c'
 *               || u32 overlapSeconds
 * and a rotation to another suite (Q_c' on another curve: a suite migration) is
 *   statement = "M2M-V1-CSP-KEY-ROTATION" || u8 1 || old suite tag || new suite tag || u32 j || Q_c
 *               || u32 j+1 || Q_c' || u32 overlapSeconds
 * (each key in its own suite's SEC1 encoding). It is signed twice with Schnorr under the context
 * `csp-key-rotation`: by d_c in the old suite (the holder of the key everybody already trusts
 * authorises the new one) and by d_c' in the new suite (the CSP holds the new private key: nobody
 * can rotate to a key whose d_c' they do not know). Chaincode verifies both before it
 * records the new epoch; a device verifies both, from its provisioned Q_c forward, before it seals
 * anything to Q_c' — so a fog can withhold a rotation but never invent one.
 */
import { ByteReader, ByteWriter, decodePoint, encodePoint } from './encoding.js';
import { DecodeError, ErrorCode, VerificationError } from './errors.js';
import { SchnorrContext, schnorrSign, schnorrVerify, type SchnorrSignature } from './schnorr.js';
import { suiteFromTag, suiteOr, type Point, type Suite } from './suite.js';
import { mulBase } from './multiply.js';

const LABEL = new TextEncoder().encode('M2M-V1-CSP-KEY-ROTATION');

/** Longest overlap a rotation may give the previous key (one year). */
export const MAX_CSP_KEY_OVERLAP_SECONDS = 365 * 24 * 3600;

/**
 * What a rotation states: from epoch `previousKeyId` (key `previousKey`, in `suite`) to `keyId`
 * (`newKey`, in `newSuite`, which is `suite` when absent).
 */
export interface CspKeyRotation {
    /** The suite of the previous key. */
    suite: Suite;
    /** The suite of the new key, when the rotation moves the CA to another suite. */
    newSuite?: Suite;
    previousKeyId: number;
    previousKey: Point;
    keyId: number;
    newKey: Point;
    /** How long certificates under the previous key keep working after the rotation commits. */
    overlapSeconds: number;
}

/** The two signatures of a rotation: by the previous key (authority) and by the new one (possession). */
export interface CspKeyRotationSignatures {
    previousSignature: SchnorrSignature;
    newSignature: SchnorrSignature;
}

/**
 * The exact bytes both signatures of a rotation sign.
 * @throws {RangeError} when: key ids must be consecutive; overlapSeconds outside [0, MAX_CSP_KEY_OVERLAP_SECONDS]
 */
export function cspKeyRotationMessage(rotation: CspKeyRotation): Uint8Array {
    const { suite, previousKeyId, previousKey, keyId, newKey, overlapSeconds } = rotation;
    const newSuite = rotation.newSuite ?? suite;
    if (!Number.isInteger(previousKeyId) || previousKeyId < 0 || keyId !== previousKeyId + 1) {
        throw new RangeError('key ids must be consecutive');
    }
    if (!Number.isInteger(overlapSeconds) || overlapSeconds < 0 || overlapSeconds > MAX_CSP_KEY_OVERLAP_SECONDS) {
        throw new RangeError(`overlapSeconds outside [0, ${MAX_CSP_KEY_OVERLAP_SECONDS}]`);
    }
    // Same-suite statements keep their original bytes (form 0); a migration names both suites.
    const w = new ByteWriter().raw(LABEL);
    if (newSuite.tag === suite.tag) w.u8(0).u8(suite.tag);
    else w.u8(1).u8(suite.tag).u8(newSuite.tag);
    return w
        .u32(previousKeyId)
        .point(suite, previousKey)
        .u32(keyId)
        .point(newSuite, newKey)
        .u32(overlapSeconds)
        .finish();
}

/**
 * CSP: signs a rotation from the key pair it holds (d_c) to a new one (d_c'). The rotation's keys
 * must be the public keys of the two scalars.
 * @throws {RangeError} when: the private keys do not match the rotation's keys; key ids must be consecutive; overlapSeconds outside …
 */
export function signCspKeyRotation(
    rotation: CspKeyRotation,
    previousPrivateKey: bigint,
    newPrivateKey: bigint,
): CspKeyRotationSignatures {
    const { suite } = rotation;
    const newSuite = rotation.newSuite ?? suite;
    if (
        !mulBase(suite, previousPrivateKey).equals(rotation.previousKey) ||
        !mulBase(newSuite, newPrivateKey).equals(rotation.newKey)
    ) {
        throw new RangeError('the private keys do not match the rotation’s keys');
    }
    const message = cspKeyRotationMessage(rotation);
    return {
        previousSignature: schnorrSign(suite, SchnorrContext.CspKeyRotation, previousPrivateKey, message),
        newSignature: schnorrSign(newSuite, SchnorrContext.CspKeyRotation, newPrivateKey, message),
    };
}

/**
 * Checks both signatures of a rotation: by the previous key (failedSignatureVerification) and by
 * the new key (invalidProofOfPossession).
 * @throws {VerificationError} `failedSignatureVerification` when: the rotation is not signed by the previous CSP key
 * @throws {VerificationError} `invalidProofOfPossession` when: the rotation is not signed by the new CSP key
 * @throws {RangeError} when: key ids must be consecutive; overlapSeconds outside …
 */
export function verifyCspKeyRotation(rotation: CspKeyRotation, signatures: CspKeyRotationSignatures): void {
    const { suite } = rotation;
    const newSuite = rotation.newSuite ?? suite;
    const message = cspKeyRotationMessage(rotation);
    if (
        !schnorrVerify(
            suite,
            SchnorrContext.CspKeyRotation,
            rotation.previousKey,
            message,
            signatures.previousSignature,
        )
    ) {
        throw new VerificationError(
            ErrorCode.FailedSignatureVerification,
            'the rotation is not signed by the previous CSP key',
        );
    }
    if (!schnorrVerify(newSuite, SchnorrContext.CspKeyRotation, rotation.newKey, message, signatures.newSignature)) {
        throw new VerificationError(
            ErrorCode.InvalidProofOfPossession,
            'the rotation is not signed by the new CSP key',
        );
    }
}

/** Small multiples ±k*G, k = 1..16, are refused as CA keys: their private key is guessable at once. */
const WEAK_MULTIPLES = 16;

/**
 * True for a key no CA should use: the identity (which has no compressed encoding, so callers see
 * it as the one-byte SEC1 encoding 0x00) or ±k*G for a tiny k.
 */
export function isWeakCspKey(suite: Suite, key: Point): boolean {
    if (key.is0()) return true;
    let multiple = suite.Point.BASE;
    for (let k = 1; k <= WEAK_MULTIPLES; k++) {
        if (multiple.equals(key) || multiple.negate().equals(key)) return true;
        multiple = multiple.add(suite.Point.BASE);
    }
    return false;
}

/** One key epoch as a fog relays it to a device: the key, its suite and the rotation that introduced it. */
export interface CspKeyLink {
    keyId: number;
    /** The suite of this epoch's key. */
    suite: Suite;
    /** Q_c of this epoch, SEC1 compressed in its suite. */
    caPublicKey: Uint8Array;
    /**
     * The rotation's overlap and signatures, and the suite of the key before it (the suite
     * `previousSignature` is in); absent for epoch 0 (the provisioned key).
     */
    rotation?: { previousSuite: Suite; overlapSeconds: number; signatures: CspKeyRotationSignatures };
}

/** A CA key a device trusts, with the suite it is a key of. */
export interface TrustedCspKey {
    suite: Suite;
    key: Point;
}

/**
 * Device: the CA keys it may trust, from the keys it already trusts (`trusted`, by key id; epoch
 * 0 is its provisioned Q_c) and a chain of epochs relayed by an untrusted fog. Each epoch after
 * the trusted ones is accepted only if its predecessor is trusted in the suite the link names for
 * it and both rotation signatures verify; the walk stops at the first link that does not, so a
 * forged or truncated chain adds nothing. A relayed key id already trusted must carry the same
 * key in the same suite (else failedSignatureVerification: the fog lies about history).
 *
 * @returns the trusted keys by key id, including the newly accepted ones.
 * @throws {VerificationError} `failedSignatureVerification` when: epoch … differs from the trusted key
 */
export function extendTrustedCspKeys(
    trusted: ReadonlyMap<number, TrustedCspKey>,
    chain: readonly CspKeyLink[],
): Map<number, TrustedCspKey> {
    const out = new Map(trusted);
    for (const link of [...chain].sort((a, b) => a.keyId - b.keyId)) {
        const known = out.get(link.keyId);
        let key: Point;
        try {
            key = decodePoint(link.suite, link.caPublicKey);
        } catch {
            break;
        }
        if (known !== undefined) {
            if (known.suite.tag !== link.suite.tag || !known.key.equals(key)) {
                throw new VerificationError(
                    ErrorCode.FailedSignatureVerification,
                    `epoch ${link.keyId} differs from the trusted key`,
                );
            }
            continue;
        }
        const previous = out.get(link.keyId - 1);
        if (previous === undefined || link.rotation === undefined) break;
        if (previous.suite.tag !== link.rotation.previousSuite.tag) break;
        try {
            verifyCspKeyRotation(
                {
                    suite: previous.suite,
                    newSuite: link.suite,
                    previousKeyId: link.keyId - 1,
                    previousKey: previous.key,
                    keyId: link.keyId,
                    newKey: key,
                    overlapSeconds: link.rotation.overlapSeconds,
                },
                link.rotation.signatures,
            );
        } catch {
            break;
        }
        out.set(link.keyId, { suite: link.suite, key });
    }
    return out;
}

/** SEC1 compressed encoding of a CA key, for {@link CspKeyLink}. */
export function encodeCspKey(suite: Suite, key: Point): Uint8Array {
    return encodePoint(suite, key);
}

/** Most epochs a relayed chain may carry. */
export const MAX_CSP_KEY_CHAIN = 64;

/**
 * The rotations after epoch 0, as a fog relays them in its info message: u8 count, then per epoch
 * u32 keyId, u8 previous suite tag, u8 suite tag, the key (SEC1 in its suite), u32
 * overlapSeconds, the previous key's signature (two scalars of the previous suite) and the new
 * key's (two scalars of its suite).
 * @throws {RangeError} when: a chain holds at most … epochs; epoch … has no rotation
 */
export function encodeCspKeyChain(links: readonly CspKeyLink[]): Uint8Array {
    const rotated = links.filter((l) => l.keyId > 0);
    if (rotated.length > MAX_CSP_KEY_CHAIN) throw new RangeError(`a chain holds at most ${MAX_CSP_KEY_CHAIN} epochs`);
    const w = new ByteWriter().u8(rotated.length);
    for (const link of rotated) {
        if (link.rotation === undefined) throw new RangeError(`epoch ${link.keyId} has no rotation`);
        const { previousSuite, overlapSeconds, signatures } = link.rotation;
        w.u32(link.keyId)
            .u8(previousSuite.tag)
            .u8(link.suite.tag)
            .raw(link.caPublicKey)
            .u32(overlapSeconds)
            .scalar(previousSuite, signatures.previousSignature.c)
            .scalar(previousSuite, signatures.previousSignature.s)
            .scalar(link.suite, signatures.newSignature.c)
            .scalar(link.suite, signatures.newSignature.s);
    }
    return w.finish();
}

/**
 * Inverse of {@link encodeCspKeyChain}. Decoding checks only the shape; the signatures are for
 * {@link extendTrustedCspKeys} to judge.
 * @throws {DecodeError} on any malformed field (wrong length, trailing bytes, unknown suite, off-curve key).
 */
export function decodeCspKeyChain(bytes: Uint8Array): CspKeyLink[] {
    const r = new ByteReader(bytes);
    const count = r.u8();
    if (count > MAX_CSP_KEY_CHAIN) throw new DecodeError('invalidValue', `chain of ${count} epochs`);
    const links: CspKeyLink[] = [];
    for (let k = 0; k < count; k++) {
        const keyId = r.u32();
        const previousSuite = suiteFromTag(r.u8());
        const suite = suiteFromTag(r.u8());
        const caPublicKey = encodePoint(suite, r.point(suite));
        const overlapSeconds = r.u32();
        const previousSignature = { c: r.scalar(previousSuite), s: r.scalar(previousSuite) };
        const newSignature = { c: r.scalar(suite), s: r.scalar(suite) };
        links.push({
            keyId,
            suite,
            caPublicKey,
            rotation: { previousSuite, overlapSeconds, signatures: { previousSignature, newSignature } },
        });
    }
    r.end();
    return links;
}

/** A CA key epoch as the ledger lists it: its suite is named only when it is not the ledger's. */
export interface SuiteOfEpoch {
    suite?: string;
}

/** The distinct suites of a list of key epochs, oldest first (epoch 0's, the ledger's, leads). */
export function epochSuites(epochs: readonly SuiteOfEpoch[], ledgerSuite: Suite): Suite[] {
    const out: Suite[] = [ledgerSuite];
    for (const epoch of epochs) {
        const suite = suiteOr(epoch.suite, ledgerSuite);
        if (!out.some((s) => s.tag === suite.tag)) out.push(suite);
    }
    return out;
}

/**
 * The newest (or, with `first`, the oldest) key epoch of `suite`; undefined when none is. The
 * newest is the one a request of the suite is issued under and C3 of its sessions is sealed to;
 * the first stands for the CSP in that suite (secondaryHash, communication records).
 */
export function epochOfSuite<T extends SuiteOfEpoch>(
    epochs: readonly T[],
    ledgerSuite: Suite,
    suite: Suite,
    which: 'newest' | 'first' = 'newest',
): T | undefined {
    const ordered = which === 'newest' ? [...epochs].reverse() : epochs;
    return ordered.find((epoch) => suiteOr(epoch.suite, ledgerSuite).tag === suite.tag);
}
