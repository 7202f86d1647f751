/**
 * A device's owner secret in another suite (chaincode/protocol/src/suite-secrets.ts): w_S =
 * HashToScalar_S(equipmentId, w, suite tag), checked against an independent computation with
 * @noble/curves' RFC 9380 hash_to_field, and the counter-to-suite rule.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hash_to_field } from '@noble/curves/abstract/hash-to-curve.js';
import { p256, p384 } from '@noble/curves/nist.js';
import { sha256, sha384 } from '@noble/hashes/sha2.js';
import {
    P256_SHA256,
    P384_SHA384,
    P384_SHA384_IEEE1609,
    suiteOfCounter,
    suiteSecrets,
    type Suite,
} from '@m2m-fabric/protocol';

/** The length-prefixed parts encoding of hashing.ts, written out again: u32 big-endian length, bytes. */
function parts(...values: Uint8Array[]): Uint8Array {
    const out: number[] = [];
    for (const v of values) {
        out.push((v.length >>> 24) & 0xff, (v.length >>> 16) & 0xff, (v.length >>> 8) & 0xff, v.length & 0xff, ...v);
    }
    return Uint8Array.from(out);
}

function bytesOf(n: bigint, length: number): Uint8Array {
    return Uint8Array.from(Buffer.from(n.toString(16).padStart(2 * length, '0'), 'hex'));
}

/** Independent w_S: RFC 9380 hash_to_field(msg, 1) over GF(n), expand_message_xmd, L = 48 / 72. */
function independent(target: 'P-256' | 'P-384', dst: string, equipmentId: string, w: bigint, fromTag: number): bigint {
    const msg = parts(new TextEncoder().encode(equipmentId), bytesOf(w, 32), Uint8Array.of(fromTag));
    const opts =
        target === 'P-384'
            ? { DST: dst, p: p384.Point.CURVE().n, m: 1, k: 192, expand: 'xmd' as const, hash: sha384 }
            : { DST: dst, p: p256.Point.CURVE().n, m: 1, k: 128, expand: 'xmd' as const, hash: sha256 };
    return hash_to_field(msg, 1, opts)[0]![0]!;
}

void describe('suite secrets', () => {
    const w = 0x1f2e3d4c5b6a79880123456789abcdeffedcba98765432100f1e2d3c4b5a6978n;
    const secrets = { equipmentId: 'press-17', w };

    void it('the provisioning suite keeps the secrets as they are', () => {
        assert.equal(suiteSecrets(P256_SHA256, secrets, P256_SHA256), secrets);
    });

    void it('matches an independent RFC 9380 hash_to_field computation (P-256 -> P-384)', () => {
        const derived = suiteSecrets(P256_SHA256, secrets, P384_SHA384);
        assert.equal(derived.equipmentId, 'press-17');
        assert.equal(derived.w, independent('P-384', 'M2M-V1-SUITE-SECRET-P384-SHA384', 'press-17', w, 1));
        assert.ok(derived.w > 0n && derived.w < P384_SHA384.n);
    });

    void it('is deterministic and differs per equipment, per w and per target suite', () => {
        const a = suiteSecrets(P256_SHA256, secrets, P384_SHA384).w;
        assert.equal(suiteSecrets(P256_SHA256, secrets, P384_SHA384).w, a);
        assert.notEqual(suiteSecrets(P256_SHA256, { ...secrets, equipmentId: 'press-18' }, P384_SHA384).w, a);
        assert.notEqual(suiteSecrets(P256_SHA256, { ...secrets, w: w + 1n }, P384_SHA384).w, a);
        assert.notEqual(suiteSecrets(P256_SHA256, secrets, P384_SHA384_IEEE1609).w, a);
        assert.notEqual(a, w);
    });

    void it('counters take the suite of the range that holds them, else the device’s own', () => {
        const ranges = [
            { from: '5', to: '8', suite: P384_SHA384.id },
            { from: '10', to: '11', suite: P384_SHA384_IEEE1609.id },
        ];
        const at = (i: bigint): Suite => suiteOfCounter(P256_SHA256, ranges, i);
        assert.equal(at(4n).id, P256_SHA256.id);
        assert.equal(at(5n).id, P384_SHA384.id);
        assert.equal(at(7n).id, P384_SHA384.id);
        assert.equal(at(8n).id, P256_SHA256.id);
        assert.equal(at(10n).id, P384_SHA384_IEEE1609.id);
        assert.equal(suiteOfCounter(P256_SHA256, undefined, 5n).id, P256_SHA256.id);
    });
});
