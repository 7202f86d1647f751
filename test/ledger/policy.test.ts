/** Endorsement policy parsing and Fabric-style evaluation. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { evaluatePolicy, parsePolicy, PolicySyntaxError } from '@m2m-fabric/embedded-ledger';
import { planEndorsers } from '@m2m-fabric/embedded-ledger/internal';

const ORGS = ['Org1MSP', 'Org2MSP', 'Org3MSP'];
const peer = (mspId: string, id = mspId): { mspId: string; role: 'peer'; id: string } => ({ mspId, role: 'peer', id });

void describe('endorsement policies', () => {
    void it('MAJORITY Endorsement needs more than half of the organisations', () => {
        const policy = parsePolicy('MAJORITY Endorsement', ORGS);
        assert.equal(evaluatePolicy(policy, [peer('Org1MSP')]), false);
        assert.equal(evaluatePolicy(policy, [peer('Org1MSP'), peer('Org3MSP')]), true);
        // The same organisation twice (two peers) still counts once for its org's sub-policy.
        assert.equal(evaluatePolicy(policy, [peer('Org1MSP', 'a'), peer('Org1MSP', 'b')]), false);
        assert.equal(evaluatePolicy(parsePolicy('MAJORITY Endorsement', ['A', 'B']), [peer('A')]), false);
        assert.equal(evaluatePolicy(parsePolicy('ANY Endorsement', ORGS), [peer('Org2MSP')]), true);
        assert.equal(evaluatePolicy(parsePolicy('ALL Endorsement', ORGS), [peer('Org1MSP'), peer('Org2MSP')]), false);
    });

    void it('signature policies: OR, AND, OutOf with roles', () => {
        const or = parsePolicy("OR('Org1MSP.peer', 'Org2MSP.peer')", ORGS);
        assert.equal(evaluatePolicy(or, [peer('Org2MSP')]), true);
        assert.equal(evaluatePolicy(or, [peer('Org3MSP')]), false);
        const and = parsePolicy("AND('Org1MSP.peer', 'Org2MSP.member')", ORGS);
        assert.equal(evaluatePolicy(and, [peer('Org1MSP'), peer('Org2MSP')]), true);
        assert.equal(evaluatePolicy(and, [peer('Org1MSP')]), false);
        const outOf = parsePolicy("OutOf(2, 'Org1MSP.peer', 'Org2MSP.peer', 'Org3MSP.peer')", ORGS);
        assert.equal(evaluatePolicy(outOf, [peer('Org3MSP'), peer('Org2MSP')]), true);
        // One identity cannot satisfy two principals.
        const twice = parsePolicy("AND('Org1MSP.member', 'Org1MSP.peer')", ORGS);
        assert.equal(evaluatePolicy(twice, [peer('Org1MSP')]), false);
        assert.equal(evaluatePolicy(twice, [peer('Org1MSP', 'x'), peer('Org1MSP', 'y')]), true);
        // A client is a member but not a peer.
        const client = { mspId: 'Org1MSP', role: 'client' as const, id: 'c' };
        assert.equal(evaluatePolicy(parsePolicy("OR('Org1MSP.peer')", ORGS), [client]), false);
        assert.equal(evaluatePolicy(parsePolicy("OR('Org1MSP.member')", ORGS), [client]), true);
    });

    void it('plans the endorsing organisations in preference order', () => {
        assert.deepEqual(planEndorsers(parsePolicy('MAJORITY Endorsement', ORGS), ['Org2MSP', 'Org1MSP', 'Org3MSP']), [
            'Org2MSP',
            'Org1MSP',
        ]);
        assert.deepEqual(planEndorsers(parsePolicy("OR('Org3MSP.peer')", ORGS), ORGS), ORGS);
        assert.equal(planEndorsers(parsePolicy("OR('Org9MSP.peer')", ORGS), ORGS), undefined);
    });

    void it('rejects malformed policies', () => {
        for (const bad of [
            '',
            'MOST Endorsement',
            "OR('Org1MSP')",
            "OR('Org1MSP.king')",
            "XOR('A.peer')",
            "OR('A.peer'",
            "OutOf(3, 'A.peer', 'B.peer')",
            "OR('A.peer') x",
        ]) {
            assert.throws(() => parsePolicy(bad, ORGS), PolicySyntaxError, bad);
        }
    });
});
