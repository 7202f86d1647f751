/**
 * A fog's session key for another suite (docs/protocol.md#rotation-to-another-suite).
 *
 * After the CSP moves its CA to another suite S, certificates of the new epoch are points of S, and
 * Algorithm 2's DLEQ proof (P = d_f*IDCert_i for the registered Q_f) needs the fog's key on the same
 * curve. A fog therefore adds one key per suite it serves, Q_f^S = d_f^S*G_S, next to its identity
 * key Q_f (the ledger's registration suite, which keeps addr_f, link and login signatures). The
 * statement
 *   "M2M-V1-FOG-SUITE-KEY" || u8 0 || u16-length fogId || identity suite tag || Q_f || suite tag || Q_f^S
 * is signed with Schnorr (context `fog-suite-key`) by d_f (the key the CSP approved authorises the
 * new one, so no second approval is needed) and by d_f^S (possession). Chaincode verifies both before
 * it records Q_f^S; a device verifies both against the fog key it was provisioned with before it
 * seals C1 to Q_f^S.
 */
import { ByteReader, ByteWriter } from './encoding.js';
import { DecodeError, ErrorCode, VerificationError } from './errors.js';
import { mulBase } from './multiply.js';
import { SchnorrContext, schnorrSign, schnorrVerify, type SchnorrSignature } from './schnorr.js';
import { suiteFromTag, type Point, type Suite } from './suite.js';

const LABEL = new TextEncoder().encode('M2M-V1-FOG-SUITE-KEY');

/** What a fog states: its identity key (in `identitySuite`) vouches for `key` in `suite`. */
export interface FogSuiteKeyStatement {
    fogId: string;
    identitySuite: Suite;
    identityKey: Point;
    suite: Suite;
    key: Point;
}

/** The two signatures: by the identity key (authority) and by the new key (possession). */
export interface FogSuiteKeySignatures {
    identitySignature: SchnorrSignature;
    newSignature: SchnorrSignature;
}

/**
 * The exact bytes both signatures sign.
 * @throws {RangeError} when: the new key's suite is the identity suite
 */
export function fogSuiteKeyMessage(statement: FogSuiteKeyStatement): Uint8Array {
    const { fogId, identitySuite, identityKey, suite, key } = statement;
    if (suite.tag === identitySuite.tag) throw new RangeError('the new key’s suite is the identity suite');
    return new ByteWriter()
        .raw(LABEL)
        .u8(0)
        .string(fogId)
        .u8(identitySuite.tag)
        .point(identitySuite, identityKey)
        .u8(suite.tag)
        .point(suite, key)
        .finish();
}

/**
 * Fog: signs a session key for `statement.suite` with its identity key d_f and the new key d_f^S.
 * @throws {RangeError} when: the private keys do not match the statement's keys; the new key's suite is the identity suite
 */
export function signFogSuiteKey(
    statement: FogSuiteKeyStatement,
    identityPrivateKey: bigint,
    newPrivateKey: bigint,
): FogSuiteKeySignatures {
    if (
        !mulBase(statement.identitySuite, identityPrivateKey).equals(statement.identityKey) ||
        !mulBase(statement.suite, newPrivateKey).equals(statement.key)
    ) {
        throw new RangeError('the private keys do not match the statement’s keys');
    }
    const message = fogSuiteKeyMessage(statement);
    return {
        identitySignature: schnorrSign(
            statement.identitySuite,
            SchnorrContext.FogSuiteKey,
            identityPrivateKey,
            message,
        ),
        newSignature: schnorrSign(statement.suite, SchnorrContext.FogSuiteKey, newPrivateKey, message),
    };
}

/**
 * Checks both signatures of a fog suite key.
 * @throws {VerificationError} `failedSignatureVerification` when: the suite key is not signed by the fog's identity key
 * @throws {VerificationError} `invalidProofOfPossession` when: the suite key is not signed by itself
 * @throws {RangeError} when: the new key's suite is the identity suite
 */
export function verifyFogSuiteKey(statement: FogSuiteKeyStatement, signatures: FogSuiteKeySignatures): void {
    const message = fogSuiteKeyMessage(statement);
    if (
        !schnorrVerify(
            statement.identitySuite,
            SchnorrContext.FogSuiteKey,
            statement.identityKey,
            message,
            signatures.identitySignature,
        )
    ) {
        throw new VerificationError(
            ErrorCode.FailedSignatureVerification,
            "the suite key is not signed by the fog's identity key",
        );
    }
    if (!schnorrVerify(statement.suite, SchnorrContext.FogSuiteKey, statement.key, message, signatures.newSignature)) {
        throw new VerificationError(ErrorCode.InvalidProofOfPossession, 'the suite key is not signed by itself');
    }
}

/** One suite key as a fog relays it in its info message (the device checks it with verifyFogSuiteKey). */
export interface FogSuiteKeyLink {
    suite: Suite;
    key: Point;
    signatures: FogSuiteKeySignatures;
}

/** Most suite keys one fog relays. */
export const MAX_FOG_SUITE_KEYS = 8;

/**
 * u8 count, then per key: u8 suite tag, the key (SEC1 in its suite), the identity signature (two
 * scalars of the identity suite) and the new key's (two scalars of its suite).
 * @throws {RangeError} when: more than MAX_FOG_SUITE_KEYS keys
 */
export function encodeFogSuiteKeys(identitySuite: Suite, links: readonly FogSuiteKeyLink[]): Uint8Array {
    if (links.length > MAX_FOG_SUITE_KEYS) throw new RangeError(`at most ${MAX_FOG_SUITE_KEYS} suite keys`);
    const w = new ByteWriter().u8(links.length);
    for (const link of links) {
        w.u8(link.suite.tag)
            .point(link.suite, link.key)
            .scalar(identitySuite, link.signatures.identitySignature.c)
            .scalar(identitySuite, link.signatures.identitySignature.s)
            .scalar(link.suite, link.signatures.newSignature.c)
            .scalar(link.suite, link.signatures.newSignature.s);
    }
    return w.finish();
}

/**
 * Inverse of {@link encodeFogSuiteKeys}; checks only the shape.
 * @throws {DecodeError} on any malformed field, an unknown suite or a suite named twice.
 */
export function decodeFogSuiteKeys(identitySuite: Suite, bytes: Uint8Array): FogSuiteKeyLink[] {
    const r = new ByteReader(bytes);
    const count = r.u8();
    if (count > MAX_FOG_SUITE_KEYS) throw new DecodeError('invalidValue', `${count} fog suite keys`);
    const links: FogSuiteKeyLink[] = [];
    for (let k = 0; k < count; k++) {
        const suite = suiteFromTag(r.u8());
        if (links.some((l) => l.suite.tag === suite.tag)) {
            throw new DecodeError('invalidValue', `fog suite key for ${suite.id} twice`);
        }
        const key = r.point(suite);
        const identitySignature = { c: r.scalar(identitySuite), s: r.scalar(identitySuite) };
        const newSignature = { c: r.scalar(suite), s: r.scalar(suite) };
        links.push({ suite, key, signatures: { identitySignature, newSignature } });
    }
    r.end();
    return links;
}
