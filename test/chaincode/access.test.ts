/**
 * The access matrix on the embedded ledger: every transaction, called by every identity that does
 * not hold one of its roles (other organisations, an organisation with no role, identities whose
 * role attribute is missing or wrong), is refused with unauthorisedMsp and changes nothing.
 * Owner-only rules are checked for the cases a role alone would allow.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ErrorCode, P256_SHA256 } from '@m2m-fabric/protocol';

import { newDevice } from './actors.js';
import { startNetwork } from './network.js';
import type { Parties, Party, TestNetwork } from './network.js';
import { assertRejected, bootstrap, evaluate, purchase, submit } from './scenario.js';
import { TRANSACTIONS } from './transactions.js';
import type { RoleName } from './transactions.js';

/** The roles each identity legitimately holds. */
const HELD: Record<keyof Parties, RoleName[]> = {
    csp: ['csp'],
    fogA: ['fog'],
    fogB: ['fog'],
    manufacturer: ['manufacturer'],
    outsider: [],
    cspWithoutRole: [],
    fogAsManufacturer: [],
};

void describe('access matrix', () => {
    let net: TestNetwork;
    before(async () => {
        net = await startNetwork(P256_SHA256);
        await bootstrap(net, 5);
    });
    after(async () => net.close());

    void it('refuses every transaction to every identity without one of its roles', async () => {
        const before = await net.stateFingerprint();
        let denials = 0;
        for (const [contract, transactions] of Object.entries(TRANSACTIONS)) {
            for (const [name, spec] of Object.entries(transactions)) {
                // Plausible arguments: the role check comes before any argument is read.
                const args = spec.parameters.map((parameter) => (parameter === 'pageSize' ? '10' : 'x'));
                for (const [label, party] of Object.entries(net.parties) as [keyof Parties, Party][]) {
                    if (HELD[label].some((role) => spec.roles.includes(role))) continue;
                    const call =
                        spec.evaluate === true
                            ? party.contract(contract).evaluate(name, { arguments: args })
                            : party.contract(contract).submit(name, { arguments: args });
                    await assertRejected(call, ErrorCode.UnauthorisedMsp);
                    denials++;
                }
            }
        }
        assert.ok(denials >= 23 * 3, `only ${denials} denials checked`);
        assert.equal(await net.stateFingerprint(), before);
    });

    void it('keeps owner-only data to its owner', async () => {
        const { parties } = net;
        const { request } = await purchase(net, newDevice('robot-1', P256_SHA256), 1n, 1);
        assert.equal(
            (await evaluate(parties.manufacturer, 'certificates', 'getRequest', { args: [request.cid] })).owner,
            parties.manufacturer.mspId,
        );
        await assertRejected(
            evaluate(parties.manufacturer, 'registry', 'getCredit', { args: ['OtherMSP'] }),
            ErrorCode.UnauthorisedMsp,
        );
        await assertRejected(
            evaluate(parties.manufacturer, 'equipment', 'queryEquipmentByOwner', { args: ['OtherMSP', '10', ''] }),
            ErrorCode.UnauthorisedMsp,
        );
        // A fog organisation may activate only its own fogs.
        await assertRejected(
            submit(parties.fogB, 'sessions', 'activateSession', {
                args: [net.fogA.id],
                transient: { activation: Uint8Array.of(1) },
            }),
            ErrorCode.UnauthorisedMsp,
        );
    });
});
