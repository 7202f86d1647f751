/**
 * The whole protocol on the embedded ledger: Algorithm 1 for several devices, Algorithms 2 and 3
 * through both fogs, idempotent issuance, events that name no equipment, and the
 * Machine-Equipment Blockchain (status, replacement, history, paginated queries).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { P256_SHA256, P384_SHA384, decodeCertificateObject, encodePoint, toHex } from '@m2m-fabric/protocol';
import type { Suite } from '@m2m-fabric/protocol';

import { issuanceTransient, newDevice } from './actors.js';
import { startNetwork } from './network.js';
import type { TestNetwork } from './network.js';
import { bootstrap, evaluate, purchase, runSession, submit } from './scenario.js';
import type { Json } from './scenario.js';

async function runFlow(suite: Suite, devices: number, sessionsPerDevice: number): Promise<void> {
    const net = await startNetwork(suite);
    try {
        const events = await net.recordEvents();
        await bootstrap(net, 100);
        const { parties } = net;

        const fleet = Array.from({ length: devices }, (_, k) => newDevice(`press-${suite.tag}-${k}`, suite));
        const purchases = [];
        for (const device of fleet) {
            purchases.push(await purchase(net, device, 1n, sessionsPerDevice));
        }
        const bought = devices * sessionsPerDevice;
        const credit = await evaluate(parties.manufacturer, 'registry', 'getCredit', {
            args: [parties.manufacturer.mspId],
        });
        assert.deepEqual(
            { account: credit.account, balance: credit.balance },
            {
                account: parties.manufacturer.mspId,
                balance: 100 - bought,
            },
        );

        // Every certificate is on the ledger, unused, pointing at its object's content address.
        for (const { request, objects } of purchases) {
            assert.equal(
                (await evaluate(parties.csp, 'certificates', 'getRequest', { args: [request.cid] })).status,
                'issued',
            );
            for (const object of objects) {
                const idCert = toHex(encodePoint(suite, decodeCertificateObject(object).idCert));
                const record = await evaluate(parties.fogA, 'certificates', 'getCertificate', { args: [idCert] });
                assert.equal(record.status, 'unused');
                assert.match(record.contentAddress as string, /^bafkrei/);
            }
        }

        // Alg. 2 + 3 for every session, alternating fogs; counters in order per device.
        const sessions: { primaryHash: string; fogId: string }[] = [];
        for (let counter = 0; counter < sessionsPerDevice; counter++) {
            for (const [index, device] of fleet.entries()) {
                const fog = (index + counter) % 2 === 0 ? net.fogA : net.fogB;
                const object = purchases[index]?.objects[counter];
                assert.ok(object !== undefined);
                const { primaryHash } = await runSession(net, fog, device, BigInt(counter + 1), object);
                sessions.push({ primaryHash, fogId: fog.id });
            }
        }
        assert.equal(new Set(sessions.map((s) => s.primaryHash)).size, bought);
        assert.deepEqual(new Set(sessions.map((s) => s.fogId)), new Set([net.fogA.id, net.fogB.id]));
        for (const { primaryHash, fogId } of sessions) {
            const session = await evaluate(parties.csp, 'sessions', 'getSession', { args: [primaryHash] });
            assert.equal(session.status, 'synchronised');
            assert.equal(session.fogId, fogId);
            // B_i comes with the session (Algorithm 3's one read) and is the certificate's.
            const certificate = await evaluate(parties.csp, 'certificates', 'getCertificate', {
                args: [String(session.idCert)],
            });
            assert.match(String(session.counterCommitment), /^0[23]([0-9a-f]{64}|[0-9a-f]{96})$/);
            assert.equal(session.counterCommitment, certificate.counterCommitment);
        }
        for (const { objects } of purchases) {
            for (const object of objects) {
                const idCert = toHex(encodePoint(suite, decodeCertificateObject(object).idCert));
                assert.equal(
                    (await evaluate(parties.csp, 'certificates', 'getCertificate', { args: [idCert] })).status,
                    'used',
                );
            }
        }

        // Events: one per mutation, none naming equipment, dynamic identities or counters.
        const received = await events.drain();
        const names = received.map((event) => event.eventName);
        assert.equal(names.filter((name) => name === 'SessionsRequested').length, devices);
        assert.equal(names.filter((name) => name === 'CertificatesIssued').length, devices);
        assert.equal(names.filter((name) => name === 'SessionActivated').length, bought);
        assert.equal(names.filter((name) => name === 'SessionSynchronised').length, bought);
        for (const event of received) {
            const payload = new TextDecoder().decode(event.payload);
            const fields = Object.keys(JSON.parse(payload) as Json);
            for (const forbidden of ['equipmentId', 'counter', 'dynamicId', 'idCert', 'i']) {
                assert.ok(!fields.includes(forbidden), `${event.eventName} carries ${forbidden}`);
            }
            for (const device of fleet) {
                assert.ok(!payload.includes(device.equipmentId), `${event.eventName} names equipment`);
            }
        }
    } finally {
        await net.close();
    }
}

void describe('full protocol flow on the embedded ledger', () => {
    void it('P-256: three devices, two sessions each, through both fogs', async () => {
        await runFlow(P256_SHA256, 3, 2);
    });

    void it('P-384: one device, two sessions', async () => {
        await runFlow(P384_SHA384, 1, 2);
    });
});

void describe('idempotent issuance', () => {
    let net: TestNetwork;
    before(async () => {
        net = await startNetwork(P256_SHA256);
        await bootstrap(net, 10);
    });
    after(async () => net.close());

    void it('resubmitting an issued batch returns the same result and changes nothing', async () => {
        const device = newDevice('lathe-1', P256_SHA256);
        const { request, objects } = await purchase(net, device, 1n, 3);
        const before = await net.stateFingerprint();
        const again = await submit(net.parties.csp, 'certificates', 'issueCertificates', {
            args: [request.cid],
            transient: issuanceTransient(request, objects),
        });
        const third = await submit(net.parties.csp, 'certificates', 'issueCertificates', {
            args: [request.cid],
            transient: issuanceTransient(request, objects),
        });
        assert.deepEqual(again, third);
        assert.equal(again.status, 'issued');
        assert.equal((again.certificates as unknown[]).length, 3);
        assert.equal(await net.stateFingerprint(), before);
        const credit = await evaluate(net.parties.manufacturer, 'registry', 'getCredit', {
            args: [net.parties.manufacturer.mspId],
        });
        assert.deepEqual(
            { account: credit.account, balance: credit.balance },
            { account: net.parties.manufacturer.mspId, balance: 7 },
        );
    });
});
