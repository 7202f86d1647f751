import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
    DecodeError,
    decodeActivation,
    decodeC2Plaintext,
    decodeCertificateObject,
    decodeCertificateRequest,
    decodeM1,
    decodeM2,
    decodeM3,
    decodeM4,
    decodeSynchronisation,
    encodeActivation,
    encodeC2Plaintext,
    encodeCertificateObject,
    encodeCertificateRequest,
    encodeM1,
    encodeM2,
    encodeM3,
    encodeM4,
    encodeSynchronisation,
    MessageType,
    P256_SHA256,
    P384_SHA384,
    PROTOCOL_VERSION,
    type CertificateObject,
    type CounterProof,
    type HpkeCiphertext,
    type M3,
    type Suite,
} from '@m2m-fabric/protocol';
import { randomPoint, randomScalar, SUITES, throwsDecode } from './protocol-helpers.js';

const HEADER = 3;

function ciphertext(suite: Suite, ptLength: number): HpkeCiphertext {
    return { enc: randomPoint(suite).toBytes(false), ct: new Uint8Array(randomBytes(ptLength + 16)) };
}
function hashValue(suite: Suite): Uint8Array {
    return new Uint8Array(randomBytes(suite.hashBytes));
}
function signature(suite: Suite): { c: bigint; s: bigint } {
    return { c: randomScalar(suite), s: randomScalar(suite) };
}
function counterProof(suite: Suite): CounterProof {
    return {
        B: randomPoint(suite),
        X: randomPoint(suite),
        R: randomPoint(suite),
        A: randomPoint(suite),
        s: randomScalar(suite),
    };
}
function certificateObject(suite: Suite): CertificateObject {
    return {
        suite,
        idCert: randomPoint(suite),
        cert: randomPoint(suite),
        rAux: randomScalar(suite),
        counterProof: counterProof(suite),
    };
}
function m3(suite: Suite): M3 {
    return { suite, publicKey: randomPoint(suite), symKeyCommitment: hashValue(suite), signature: signature(suite) };
}

/** One entry per message type: how to build a sample, encode it, and decode it. */
interface Codec {
    name: string;
    type: number;
    /** Decoders that take the suite pin it; these two read it from the tag. */
    suitePinned: boolean;
    sample(suite: Suite): Uint8Array;
    decode(suite: Suite, bytes: Uint8Array): unknown;
    encode(value: unknown): Uint8Array;
}

const codecs: Codec[] = [
    {
        name: 'CertificateObject',
        type: MessageType.CertificateObject,
        suitePinned: false,
        sample: (s) => encodeCertificateObject(certificateObject(s)),
        decode: (_s, b) => decodeCertificateObject(b),
        encode: (v) => encodeCertificateObject(v as CertificateObject),
    },
    {
        name: 'CertificateRequest',
        type: MessageType.CertificateRequest,
        suitePinned: false,
        sample: (s) =>
            encodeCertificateRequest({
                suite: s,
                entries: [0, 1].map(() => ({ idCert: randomPoint(s), counterProof: counterProof(s) })),
            }),
        decode: (_s, b) => decodeCertificateRequest(b),
        encode: (v) => encodeCertificateRequest(v as Parameters<typeof encodeCertificateRequest>[0]),
    },
    {
        name: 'C2Plaintext',
        type: MessageType.C2Plaintext,
        suitePinned: true,
        sample: (s) => encodeC2Plaintext(s, { counter: 7n, dynamicId: hashValue(s) }),
        decode: (s, b) => ({ suite: s, value: decodeC2Plaintext(s, b) }),
        encode: (v) => {
            const { suite, value } = v as { suite: Suite; value: ReturnType<typeof decodeC2Plaintext> };
            return encodeC2Plaintext(suite, value);
        },
    },
    {
        name: 'M1',
        type: MessageType.M1,
        suitePinned: true,
        sample: (s) =>
            encodeM1({
                suite: s,
                c1: ciphertext(s, s.pointBytes),
                c2: ciphertext(s, 3 + 8 + s.hashBytes),
                proofOfPossession: signature(s),
            }),
        decode: (s, b) => decodeM1(s, b),
        encode: (v) => encodeM1(v as ReturnType<typeof decodeM1>),
    },
    {
        name: 'M2',
        type: MessageType.M2,
        suitePinned: true,
        sample: (s) => encodeM2({ suite: s, certificateObject: encodeCertificateObject(certificateObject(s)) }),
        decode: (s, b) => decodeM2(s, b),
        encode: (v) => encodeM2(v as ReturnType<typeof decodeM2>),
    },
    {
        name: 'M3',
        type: MessageType.M3,
        suitePinned: true,
        sample: (s) => encodeM3(m3(s)),
        decode: (s, b) => decodeM3(s, b),
        encode: (v) => encodeM3(v as M3),
    },
    {
        name: 'M4',
        type: MessageType.M4,
        suitePinned: true,
        sample: (s) =>
            encodeM4({
                suite: s,
                fogId: 'fog-01.plant-α',
                c2: ciphertext(s, 40),
                c3: ciphertext(s, s.hashBytes),
                signature: signature(s),
            }),
        decode: (s, b) => decodeM4(s, b),
        encode: (v) => encodeM4(v as ReturnType<typeof decodeM4>),
    },
    {
        name: 'Activation',
        type: MessageType.Activation,
        suitePinned: true,
        sample: (s) =>
            encodeActivation({
                suite: s,
                certificateObject: encodeCertificateObject(certificateObject(s)),
                P: randomPoint(s),
                dleqProof: signature(s),
                proofOfPossession: signature(s),
                m3: m3(s),
            }),
        decode: (s, b) => decodeActivation(s, b),
        encode: (v) => encodeActivation(v as ReturnType<typeof decodeActivation>),
    },
    {
        name: 'Synchronisation',
        type: MessageType.Synchronisation,
        suitePinned: true,
        sample: (s) =>
            encodeSynchronisation({
                suite: s,
                primaryHash: hashValue(s),
                secondaryHash: hashValue(s),
                symKeyCommitment: hashValue(s),
            }),
        decode: (s, b) => decodeSynchronisation(s, b),
        encode: (v) => encodeSynchronisation(v as ReturnType<typeof decodeSynchronisation>),
    },
];

const withByte = (bytes: Uint8Array, index: number, value: number): Uint8Array => {
    const out = bytes.slice();
    out[index] = value;
    return out;
};

for (const suite of SUITES) {
    const otherSuite = suite === P256_SHA256 ? P384_SHA384 : P256_SHA256;
    for (const codec of codecs) {
        void describe(`${codec.name} ${suite.id}`, () => {
            const bytes = codec.sample(suite);

            void it('starts with version, type and suite tag, and re-encodes byte-identically', () => {
                assert.deepEqual([...bytes.subarray(0, HEADER)], [PROTOCOL_VERSION, codec.type, suite.tag]);
                assert.deepEqual(codec.encode(codec.decode(suite, bytes)), bytes);
            });

            void it('rejects unknown versions, types and suites', () => {
                for (const v of [0, 2, 255])
                    throwsDecode(() => codec.decode(suite, withByte(bytes, 0, v)), 'unknownVersion');
                for (const t of [0, 0xff, ...Object.values(MessageType).filter((t) => t !== codec.type)]) {
                    throwsDecode(() => codec.decode(suite, withByte(bytes, 1, t)), 'unknownType', `type ${t}`);
                }
                for (const tag of [0, 3, 255])
                    throwsDecode(() => codec.decode(suite, withByte(bytes, 2, tag)), 'unknownSuite');
                if (codec.suitePinned) {
                    // A well-formed message of the other suite is refused where this suite is in use.
                    throwsDecode(() => codec.decode(suite, codec.sample(otherSuite)), 'unknownSuite');
                }
            });

            void it('rejects every truncation and any trailing byte', () => {
                for (let k = 0; k < bytes.length; k++) {
                    throwsDecode(() => codec.decode(suite, bytes.subarray(0, k)), undefined, `prefix of ${k} bytes`);
                }
                throwsDecode(() => codec.decode(suite, new Uint8Array([...bytes, 0])), 'trailingBytes');
            });

            void it('any single-byte change either fails to decode or decodes to exactly those bytes', () => {
                // Canonicality: no two byte strings decode to the same object.
                // One bit per byte, alternating low and high bits, keeps the P-384 runs short.
                for (let pos = 0; pos < bytes.length; pos++) {
                    for (const mask of [pos % 2 === 0 ? 0x01 : 0x80]) {
                        const changed = withByte(bytes, pos, bytes[pos]! ^ mask);
                        let decoded: unknown;
                        try {
                            decoded = codec.decode(suite, changed);
                        } catch (e) {
                            assert.ok(e instanceof DecodeError, `byte ${pos}: ${String(e)}`);
                            continue;
                        }
                        assert.deepEqual(codec.encode(decoded), changed, `byte ${pos} mask ${mask}`);
                    }
                }
            });
        });
    }

    void describe(`field-level malformations ${suite.id}`, () => {
        const P = suite.pointBytes;
        const S = suite.scalarBytes;

        void it('certificate object: fields decode to what was encoded', () => {
            const obj = certificateObject(suite);
            const back = decodeCertificateObject(encodeCertificateObject(obj));
            assert.equal(back.suite, suite);
            assert.ok(back.idCert.equals(obj.idCert) && back.cert.equals(obj.cert));
            assert.equal(back.rAux, obj.rAux);
            for (const k of ['B', 'X', 'R', 'A'] as const) assert.ok(back.counterProof[k].equals(obj.counterProof[k]));
            assert.equal(back.counterProof.s, obj.counterProof.s);
        });

        void it('certificate object: bad point prefix, off-curve point, scalar 0 or >= n', () => {
            const bytes = encodeCertificateObject(certificateObject(suite));
            for (const prefix of [0x00, 0x04, 0x05])
                throwsDecode(() => decodeCertificateObject(withByte(bytes, HEADER, prefix)));
            // x = 0xff..ff is >= p: not a field element, never a point.
            const badX = bytes.slice();
            badX.fill(0xff, HEADER + 1, HEADER + P);
            throwsDecode(() => decodeCertificateObject(badX));
            const rAuxAt = HEADER + 2 * P;
            const zero = bytes.slice();
            zero.fill(0, rAuxAt, rAuxAt + S);
            throwsDecode(() => decodeCertificateObject(zero), 'scalarOutOfRange');
            const big = bytes.slice();
            big.fill(0xff, rAuxAt, rAuxAt + S);
            throwsDecode(() => decodeCertificateObject(big), 'scalarOutOfRange');
            // The embedded counter proof's length prefix must match its content exactly.
            const lenAt = rAuxAt + S;
            const len = (bytes[lenAt]! << 8) | bytes[lenAt + 1]!;
            const longer = withByte(bytes, lenAt + 1, (len + 1) & 0xff);
            throwsDecode(() => decodeCertificateObject(longer));
            const shorter = withByte(bytes, lenAt + 1, (len - 1) & 0xff);
            throwsDecode(() => decodeCertificateObject(shorter));
        });

        void it('certificate request: empty, over-long, or with a repeated IDCert_i', () => {
            const entry = { idCert: randomPoint(suite), counterProof: counterProof(suite) };
            const one = encodeCertificateRequest({ suite, entries: [entry] });
            throwsDecode(
                () => decodeCertificateRequest(new Uint8Array([...one.subarray(0, HEADER), 0, 0])),
                'invalidValue',
            );
            const twoSame = encodeCertificateRequest({ suite, entries: [entry, entry] });
            throwsDecode(() => decodeCertificateRequest(twoSame), 'invalidValue');
            throwsDecode(
                () => decodeCertificateRequest(withByte(withByte(one, HEADER, 0x03), HEADER + 1, 0xe9)),
                'invalidValue',
            );
            assert.throws(() => encodeCertificateRequest({ suite, entries: [] }), RangeError);
        });

        void it('C2 plaintext: counter 0, wrong ID_i length', () => {
            const bytes = encodeC2Plaintext(suite, { counter: 1n, dynamicId: hashValue(suite) });
            const zero = bytes.slice();
            zero.fill(0, HEADER, HEADER + 8);
            throwsDecode(() => decodeC2Plaintext(suite, zero), 'invalidValue');
            const max = encodeC2Plaintext(suite, { counter: (1n << 64n) - 1n, dynamicId: hashValue(suite) });
            assert.equal(decodeC2Plaintext(suite, max).counter, (1n << 64n) - 1n);
            assert.throws(() => encodeC2Plaintext(suite, { counter: 0n, dynamicId: hashValue(suite) }), RangeError);
            assert.throws(() => encodeC2Plaintext(suite, { counter: 1n, dynamicId: new Uint8Array(5) }), RangeError);
        });

        void it('M1: compressed or off-curve HPKE enc, ciphertext shorter than a tag', () => {
            const bytes = encodeM1({
                suite,
                c1: ciphertext(suite, P),
                c2: ciphertext(suite, 50),
                proofOfPossession: signature(suite),
            });
            throwsDecode(() => decodeM1(suite, withByte(bytes, HEADER, 0x02)), 'nonCanonical');
            const encLen = 1 + 2 * S;
            throwsDecode(
                () => decodeM1(suite, withByte(bytes, HEADER + encLen - 1, bytes[HEADER + encLen - 1]! ^ 1)),
                'offCurve',
            );
            // c1 ct length 15 (< tag), with the rest shifted accordingly.
            const c1 = { enc: randomPoint(suite).toBytes(false), ct: new Uint8Array(15) };
            const manual = new Uint8Array([...bytes.subarray(0, HEADER), ...c1.enc, 0, 15, ...c1.ct]);
            throwsDecode(() => decodeM1(suite, manual), 'invalidValue');
        });

        void it('M2: empty certificate object', () => {
            throwsDecode(
                () => decodeM2(suite, new Uint8Array([1, MessageType.M2, suite.tag, 0, 0, 0, 0])),
                'invalidValue',
            );
            assert.throws(() => encodeM2({ suite, certificateObject: new Uint8Array(0) }), RangeError);
        });

        void it('M4: empty, over-long or non-UTF-8 fog id', () => {
            const sample = {
                suite,
                fogId: 'f',
                c2: ciphertext(suite, 40),
                c3: ciphertext(suite, 32),
                signature: signature(suite),
            };
            const bytes = encodeM4(sample);
            // fogId is at HEADER: u16 length 1, then 'f'.
            throwsDecode(() => decodeM4(suite, withByte(bytes, HEADER + 2, 0xff)), 'nonCanonical');
            throwsDecode(() => decodeM4(suite, withByte(bytes, HEADER + 2, 0xc3)), 'nonCanonical');
            const empty = new Uint8Array([...bytes.subarray(0, HEADER), 0, 0, ...bytes.subarray(HEADER + 3)]);
            throwsDecode(() => decodeM4(suite, empty), 'invalidValue');
            assert.throws(() => encodeM4({ ...sample, fogId: '' }), RangeError);
            assert.throws(() => encodeM4({ ...sample, fogId: 'x'.repeat(129) }), RangeError);
            const bom = encodeM4({ ...sample, fogId: '\uFEFFfog' });
            assert.equal(decodeM4(suite, bom).fogId, '\uFEFFfog');
        });

        void it('Activation: embedded M3 of the other suite or with a bad header', () => {
            const a = {
                suite,
                certificateObject: new Uint8Array([1, 2, 3]),
                P: randomPoint(suite),
                dleqProof: signature(suite),
                proofOfPossession: signature(suite),
                m3: m3(suite),
            };
            const bytes = encodeActivation(a);
            const back = decodeActivation(suite, bytes);
            assert.deepEqual(back.certificateObject, a.certificateObject);
            assert.ok(back.P.equals(a.P));
            assert.deepEqual(back.m3.symKeyCommitment, a.m3.symKeyCommitment);
            const m3At = bytes.length - encodeM3(a.m3).length;
            throwsDecode(() => decodeActivation(suite, withByte(bytes, m3At + 1, MessageType.M2)), 'unknownType');
            throwsDecode(() => decodeActivation(suite, withByte(bytes, m3At + 2, otherSuite.tag)), 'unknownSuite');
            assert.throws(() => encodeActivation({ ...a, m3: m3(otherSuite) }), RangeError);
        });

        void it('Synchronisation: hashes must be exactly hashBytes', () => {
            assert.throws(
                () =>
                    encodeSynchronisation({
                        suite,
                        primaryHash: new Uint8Array(suite.hashBytes + 1),
                        secondaryHash: hashValue(suite),
                        symKeyCommitment: hashValue(suite),
                    }),
                RangeError,
            );
        });
    });
}
