/**
 * A fog's key for another suite (chaincode/protocol/src/fog-suite-key.ts): the exact statement,
 * both signatures (authority of the identity key, possession of the new key) with every field
 * bound, and the encoding the fog relays in its info message (malformed input refused).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
    DecodeError,
    ErrorCode,
    P256_SHA256,
    P384_SHA384,
    P384_SHA384_IEEE1609,
    VerificationError,
    decodeFogSuiteKeys,
    encodeFogSuiteKeys,
    fogSuiteKeyMessage,
    signFogSuiteKey,
    verifyFogSuiteKey,
    type FogSuiteKeySignatures,
    type FogSuiteKeyStatement,
    type Suite,
} from '@m2m-fabric/protocol';
import { randomScalar } from './protocol-helpers.js';

function keyPair(suite: Suite): { d: bigint; Q: ReturnType<Suite['Point']['BASE']['multiply']> } {
    const d = randomScalar(suite);
    return { d, Q: suite.Point.BASE.multiply(d) };
}

for (const [identitySuite, suite] of [
    [P256_SHA256, P384_SHA384],
    [P384_SHA384, P256_SHA256],
] as const) {
    void describe(`fog suite key (${identitySuite.id} identity, ${suite.id} key)`, () => {
        const identity = keyPair(identitySuite);
        const key = keyPair(suite);
        const statement: FogSuiteKeyStatement = {
            fogId: 'fog-a',
            identitySuite,
            identityKey: identity.Q,
            suite,
            key: key.Q,
        };
        const sigs = signFogSuiteKey(statement, identity.d, key.d);
        const code = (st: FogSuiteKeyStatement, s: FogSuiteKeySignatures = sigs): ErrorCode | undefined => {
            try {
                verifyFogSuiteKey(st, s);
                return undefined;
            } catch (err) {
                assert.ok(err instanceof VerificationError, String(err));
                return err.code;
            }
        };

        void it('the statement is the documented byte string', () => {
            const m = fogSuiteKeyMessage(statement);
            const label = Buffer.from('M2M-V1-FOG-SUITE-KEY');
            assert.deepEqual(Buffer.from(m.subarray(0, label.length)), label);
            let at = label.length;
            assert.equal(m[at++], 0);
            assert.equal((m[at]! << 8) | m[at + 1]!, 5);
            at += 2;
            assert.equal(Buffer.from(m.subarray(at, at + 5)).toString(), 'fog-a');
            at += 5;
            assert.equal(m[at++], identitySuite.tag);
            at += identitySuite.pointBytes;
            assert.equal(m[at++], suite.tag);
            assert.equal(m.length, at + suite.pointBytes);
            assert.throws(
                () => fogSuiteKeyMessage({ ...statement, suite: identitySuite, key: identity.Q }),
                RangeError,
            );
            assert.throws(() => signFogSuiteKey(statement, key.d, identity.d), RangeError);
        });

        void it('both signatures verify and every field is bound', () => {
            assert.equal(code(statement), undefined);
            assert.equal(code({ ...statement, fogId: 'fog-b' }), ErrorCode.FailedSignatureVerification);
            assert.equal(code({ ...statement, key: keyPair(suite).Q }), ErrorCode.FailedSignatureVerification);
            assert.equal(
                code({ ...statement, identityKey: keyPair(identitySuite).Q }),
                ErrorCode.FailedSignatureVerification,
            );
            // The new key's signature replaced by the identity's: no possession.
            const otherKey = keyPair(suite);
            const other = signFogSuiteKey({ ...statement, key: otherKey.Q }, identity.d, otherKey.d);
            assert.equal(
                code(statement, { identitySignature: sigs.identitySignature, newSignature: other.newSignature }),
                ErrorCode.InvalidProofOfPossession,
            );
            // Signed by another identity key: no authority.
            const stranger = keyPair(identitySuite);
            const forged = signFogSuiteKey({ ...statement, identityKey: stranger.Q }, stranger.d, key.d);
            assert.equal(code(statement, forged), ErrorCode.FailedSignatureVerification);
            // The same keys claimed for a third suite of the same curve: the tag is signed.
            if (suite.tag === P384_SHA384.tag)
                assert.equal(
                    code({ ...statement, suite: P384_SHA384_IEEE1609 }),
                    ErrorCode.FailedSignatureVerification,
                );
        });

        void it('the relayed list round-trips and refuses malformed bytes', () => {
            const links = [{ suite, key: key.Q, signatures: sigs }];
            const bytes = encodeFogSuiteKeys(identitySuite, links);
            const decoded = decodeFogSuiteKeys(identitySuite, bytes);
            assert.equal(decoded.length, 1);
            assert.equal(decoded[0]!.suite.id, suite.id);
            assert.ok(decoded[0]!.key.equals(key.Q));
            verifyFogSuiteKey(statement, decoded[0]!.signatures);
            assert.deepEqual(decodeFogSuiteKeys(identitySuite, Uint8Array.of(0)), []);
            const refused = (b: Uint8Array): void => {
                assert.throws(() => decodeFogSuiteKeys(identitySuite, b), DecodeError);
            };
            refused(bytes.subarray(0, bytes.length - 1));
            refused(Uint8Array.of(...bytes, 0));
            const unknown = Uint8Array.from(bytes);
            unknown[1] = 99;
            refused(unknown);
            // The same suite twice.
            const twice = encodeFogSuiteKeys(identitySuite, [...links, ...links]);
            refused(twice);
            refused(Uint8Array.of(200));
        });
    });
}
