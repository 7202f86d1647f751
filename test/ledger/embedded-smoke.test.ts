import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { openTestNetwork, utf8 } from './fixtures/network.js';

void describe('embedded ledger smoke', () => {
    void it('submits and evaluates through the real shim', async () => {
        const net = await openTestNetwork();
        try {
            await net.contract.submit('Put', { arguments: ['a', 'one'] });
            assert.equal(utf8(await net.contract.evaluate('Get', { arguments: ['a'] })), 'one');
            assert.equal(utf8(await net.contract.submit('Increment', { arguments: ['c'] })), '1');
            assert.equal(utf8(await net.contract.submit('Increment', { arguments: ['c'] })), '2');
            const who = JSON.parse(utf8(await net.contract.evaluate('WhoAmI'))) as Record<string, string>;
            assert.equal(who.mspId, 'Org1MSP');
            assert.equal(who.id, 'x509::/C=US/O=Org1MSP/OU=client/CN=user1::/C=US/O=Org1MSP/CN=ca.org1msp');
            assert.equal(who.enrollmentId, 'user1');
            assert.equal(who.type, 'client');
            assert.equal(who.role, 'tester');
            assert.equal(who.channel, 'm2m');
        } finally {
            await net.dispose();
        }
    });
});
