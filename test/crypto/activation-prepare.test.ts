/**
 * prepareActivation + completeActivation (the fog computes P, its DLEQ proof and M4 while the device
 * works on M3) give an activation the chaincode's verifyActivation accepts, exactly as
 * createActivation does; and they refuse a suite mismatch or an out-of-range fog key.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
    completeActivation,
    createActivation,
    createCertificateRequest,
    createM1,
    DecodeError,
    encodeActivation,
    encodeCertificateObject,
    issueCertificates,
    P256_SHA256,
    P384_SHA384,
    prepareActivation,
    processM2,
    verifyActivation,
} from '@m2m-fabric/protocol';
import { SUITES, randomScalar } from './helpers.js';

for (const suite of SUITES) {
    void describe(`prepared activation ${suite.id}`, () => {
        void it('verifies in the chaincode like createActivation, and fixes the same P', async () => {
            const [dC, dF] = [randomScalar(suite), randomScalar(suite)];
            const [QC, QF] = [suite.Point.BASE.multiply(dC), suite.Point.BASE.multiply(dF)];
            const secrets = { w: randomScalar(suite), equipmentId: 'eq-prep' };
            const [obj] = issueCertificates(suite, dC, createCertificateRequest(suite, secrets, 7n, 1));
            const objBytes = encodeCertificateObject(obj!);
            const { m1, session } = await createM1(suite, secrets, 7n, 'fog-1', QF, QC);
            const { m3 } = processM2(session, objBytes, QC, 'fog-1');
            const prepared = prepareActivation(suite, dF, objBytes);
            const activation = completeActivation(prepared, m1, m3);
            const verified = verifyActivation(suite, activation, obj!.counterProof.B, QC, QF, 'fog-1');
            const direct = createActivation(suite, dF, objBytes, m1, m3);
            assert.ok(direct.P.equals(activation.P));
            assert.deepEqual(
                verifyActivation(suite, direct, obj!.counterProof.B, QC, QF, 'fog-1').primaryHash,
                verified.primaryHash,
            );
            assert.ok(encodeActivation(activation).length > 0);
        });

        void it('refuses another suite and fog keys outside [1, n-1]', async () => {
            const other = suite.id === P256_SHA256.id ? P384_SHA384 : P256_SHA256;
            const secrets = { w: randomScalar(suite), equipmentId: 'eq-prep' };
            const dC = randomScalar(suite);
            const QC = suite.Point.BASE.multiply(dC);
            const [obj] = issueCertificates(suite, dC, createCertificateRequest(suite, secrets, 1n, 1));
            const objBytes = encodeCertificateObject(obj!);
            assert.throws(() => prepareActivation(other, randomScalar(other), objBytes), DecodeError);
            assert.throws(() => prepareActivation(suite, 0n, objBytes), RangeError);
            assert.throws(() => prepareActivation(suite, suite.n, objBytes), RangeError);
            const { m1, session } = await createM1(suite, secrets, 1n, 'fog-1', QC, QC);
            const { m3 } = processM2(session, objBytes, QC, 'fog-1');
            const otherSecrets = { w: randomScalar(other), equipmentId: 'eq-other' };
            const G = other.Point.BASE;
            const { m1: otherM1 } = await createM1(other, otherSecrets, 1n, 'fog-1', G, G);
            const prepared = prepareActivation(suite, randomScalar(suite), objBytes);
            assert.throws(() => completeActivation(prepared, otherM1, m3), DecodeError);
            assert.ok(completeActivation(prepared, m1, m3).P.equals(prepared.P));
        });
    });
}
