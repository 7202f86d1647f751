/**
 * Unit tests of the contracts' pure helpers: canonical JSON, argument validation and the access
 * policy. The contracts themselves are tested on the embedded ledger (flow, errors, access, races).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Context } from 'fabric-contract-api';

import { DEFAULT_ACCESS_POLICY, ROLE_ATTRIBUTE, Role, accessPolicyFromEnv } from '@m2m-fabric/chaincode';
import { requireOwnerOrRole, requireRole } from '@m2m-fabric/chaincode/internal';
import { canonicalJson } from '@m2m-fabric/chaincode/internal';
import { ContractError } from '@m2m-fabric/chaincode';
import { toContractError } from '@m2m-fabric/chaincode/internal';
import { requireIdentifier, requireInteger, requireOneOf, requireString } from '@m2m-fabric/chaincode/internal';
import { ErrorCode, ProtocolError, parseErrorCode } from '@m2m-fabric/protocol';

function rejectsWith(code: ErrorCode, fn: () => unknown): void {
    assert.throws(fn, (error: unknown) => {
        assert.ok(error instanceof ContractError, `expected a ContractError, got ${String(error)}`);
        assert.equal(error.code, code);
        assert.equal(parseErrorCode(error.message), code);
        return true;
    });
}

/** A stand-in for the Context's client identity: only what the access check reads. */
function contextOf(mspId: string, role?: string): Context {
    return {
        clientIdentity: {
            getMSPID: () => mspId,
            getAttributeValue: (name: string) => (name === ROLE_ATTRIBUTE ? (role ?? null) : null),
        },
    } as unknown as Context;
}

void describe('canonicalJson', () => {
    void it('sorts keys at every depth and drops undefined fields', () => {
        assert.equal(
            canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: 'x' }, u: undefined }),
            '{"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1}',
        );
    });

    void it('gives the same bytes whatever the construction order', () => {
        assert.equal(canonicalJson({ x: 1, y: 2 }), canonicalJson({ y: 2, x: 1 }));
    });

    void it('refuses numbers that are not safe integers', () => {
        assert.throws(() => canonicalJson({ a: 1.5 }), TypeError);
        assert.throws(() => canonicalJson({ a: Number.NaN }), TypeError);
        assert.throws(() => canonicalJson({ a: 2 ** 60 }), TypeError);
    });
});

void describe('argument validation', () => {
    void it('accepts identifiers and refuses anything else as malformedInput', () => {
        assert.equal(requireIdentifier('id', 'press-7.line:2'), 'press-7.line:2');
        for (const bad of ['', ' lead', 'a b', 'x'.repeat(129), 'nul\u0000', 42, undefined, null, {}]) {
            rejectsWith(ErrorCode.MalformedInput, () => requireIdentifier('id', bad));
        }
    });

    void it('parses decimal integers inside their range only', () => {
        assert.equal(requireInteger('n', '0', 0, 5), 0);
        assert.equal(requireInteger('n', '5', 0, 5), 5);
        for (const bad of ['6', '-1', '01', '1.0', '1e3', ' 1', '', '0x10', 5]) {
            rejectsWith(ErrorCode.MalformedInput, () => requireInteger('n', bad, 0, 5));
        }
    });

    void it('accepts closed sets and patterns exactly', () => {
        assert.equal(requireOneOf('s', 'b', ['a', 'b'] as const), 'b');
        rejectsWith(ErrorCode.MalformedInput, () => requireOneOf('s', 'B', ['a', 'b'] as const));
        rejectsWith(ErrorCode.MalformedInput, () => requireString('s', 'abc1', /^[a-z]+$/));
    });
});

void describe('error wire form', () => {
    void it('puts the code first so parseErrorCode finds it inside a Fabric message', () => {
        const error = new ContractError(ErrorCode.FailedDoubleSpendingCheck2, 'secondaryHash is already recorded');
        assert.equal(error.message, 'failedDoubleSpendingCheck-2: secondaryHash is already recorded');
        assert.equal(parseErrorCode(`endorsement failed (status 500): ${error.message}`), error.code);
    });

    void it('re-wraps protocol errors with their own code and other errors as malformedInput', () => {
        const wrapped = toContractError(new ProtocolError(ErrorCode.InvalidDleqProof, 'DLEQ proof does not verify'));
        assert.equal(wrapped.code, ErrorCode.InvalidDleqProof);
        assert.equal(parseErrorCode(wrapped.message), ErrorCode.InvalidDleqProof);
        assert.equal(toContractError(new RangeError('bad point')).code, ErrorCode.MalformedInput);
        const same = new ContractError(ErrorCode.UnknownFog, 'x');
        assert.equal(toContractError(same), same);
    });
});

void describe('access policy', () => {
    void it('requires both the MSP and the role attribute', () => {
        assert.deepEqual(requireRole(contextOf('CSPMSP', 'csp'), DEFAULT_ACCESS_POLICY, Role.Csp), {
            role: 'csp',
            mspId: 'CSPMSP',
        });
        rejectsWith(ErrorCode.UnauthorisedMsp, () =>
            requireRole(contextOf('FogAMSP', 'csp'), DEFAULT_ACCESS_POLICY, Role.Csp),
        );
        rejectsWith(ErrorCode.UnauthorisedMsp, () =>
            requireRole(contextOf('CSPMSP', 'fog'), DEFAULT_ACCESS_POLICY, Role.Csp),
        );
        rejectsWith(ErrorCode.UnauthorisedMsp, () => requireRole(contextOf('CSPMSP'), DEFAULT_ACCESS_POLICY, Role.Csp));
    });

    void it('picks the first role the caller holds', () => {
        const caller = requireRole(
            contextOf('ManufacturerMSP', 'manufacturer'),
            DEFAULT_ACCESS_POLICY,
            Role.Csp,
            Role.Manufacturer,
        );
        assert.equal(caller.role, Role.Manufacturer);
        rejectsWith(ErrorCode.UnauthorisedMsp, () => requireOwnerOrRole(caller, 'OtherMSP', 'x'));
        requireOwnerOrRole(caller, 'ManufacturerMSP', 'x');
        requireOwnerOrRole({ role: Role.Csp, mspId: 'CSPMSP' }, 'OtherMSP', 'x');
    });

    void it('reads MSP lists and the attribute switch from the environment', () => {
        const policy = accessPolicyFromEnv({
            M2M_CSP_MSPS: 'Org1MSP',
            M2M_FOG_MSPS: ' Org2MSP , Org3MSP ',
            M2M_REQUIRE_ROLE_ATTRIBUTE: 'false',
        });
        assert.deepEqual(policy.msps, {
            csp: ['Org1MSP'],
            fog: ['Org2MSP', 'Org3MSP'],
            manufacturer: ['ManufacturerMSP'],
        });
        assert.equal(requireRole(contextOf('Org3MSP'), policy, Role.Fog).mspId, 'Org3MSP');
        assert.deepEqual(accessPolicyFromEnv({}), DEFAULT_ACCESS_POLICY);
    });
});
