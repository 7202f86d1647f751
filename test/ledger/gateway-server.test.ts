/**
 * The embedded ledger behind its Fabric Gateway gRPC endpoint, driven by the project's Fabric
 * adapter (FabricLedgerConnector → @hyperledger/fabric-gateway → gRPC over TLS): the code path
 * services use against a real Fabric peer, end to end.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
    CommitError,
    EndorseError,
    type ChaincodeEvent,
    type LedgerConnection,
    type LedgerContract,
} from '@m2m-fabric/sdk';
import {
    EmbeddedGatewayServer,
    EmbeddedLedger,
    loadOrCreateTlsServer,
    type TlsServerMaterial,
} from '@m2m-fabric/embedded-ledger';
import { FabricLedgerConnector } from '@m2m-fabric/sdk';

import { CHAINCODE, openTestNetwork, utf8, type TestNetwork } from './fixtures/network.js';

void describe('embedded Fabric Gateway endpoint', () => {
    let net: TestNetwork;
    let tls: TlsServerMaterial;
    let server: EmbeddedGatewayServer;
    let connection: LedgerConnection;
    let contract: LedgerContract;

    async function connectAs(ledger: EmbeddedLedger, mspId: string, name: string): Promise<LedgerConnection> {
        const user = await ledger.loadOrEnrol(mspId, name, { attributes: { role: 'tester' } });
        const connector = new FabricLedgerConnector({
            peerEndpoint: server.endpoint,
            // A TLS server name, not the IP address (RFC 6066; an IP would make Node warn DEP0123).
            hostAlias: 'localhost',
            tlsCaCert: Buffer.from(tls.caCertificatePem),
            channelName: ledger.channelName,
            eventReconnect: { initialDelayMs: 50, maxDelayMs: 200 },
        });
        return connector.connect({ identity: user.identity, signer: user.signer });
    }

    before(async () => {
        net = await openTestNetwork({ organisations: ['Org1MSP', 'Org2MSP'], batch: { batchTimeoutMs: 50 } });
        tls = await loadOrCreateTlsServer(join(net.dir, 'organisations', 'Org1MSP'), 'Org1MSP', [
            '127.0.0.1',
            'localhost',
        ]);
        server = await EmbeddedGatewayServer.start(net.ledger, { mspId: 'Org1MSP', tls });
        connection = await connectAs(net.ledger, 'Org1MSP', 'gw-user');
        contract = connection.getContract(CHAINCODE);
    });

    after(async () => {
        connection.close();
        await server.close();
        await net.dispose();
    });

    void it('submits, evaluates and passes transient data through fabric-gateway', async () => {
        await contract.submit('Put', { arguments: ['gw-a', 'one'] });
        assert.equal(utf8(await contract.evaluate('Get', { arguments: ['gw-a'] })), 'one');
        const who = JSON.parse(utf8(await contract.evaluate('WhoAmI'))) as Record<string, string>;
        assert.equal(who.mspId, 'Org1MSP');
        assert.equal(who.enrollmentId, 'gw-user');
        const digest = utf8(
            await contract.submit('PutTransientHash', { arguments: ['gw-t'], transientData: { secret: 's3cret' } }),
        );
        assert.match(digest, /^[0-9a-f]{64}$/);
        assert.equal(utf8(await contract.evaluate('Get', { arguments: ['gw-t'] })), digest);
    });

    void it('reports a chaincode rejection as EndorseError with its protocol code, writing nothing', async () => {
        const height = net.ledger.height;
        await assert.rejects(
            contract.submit('Fail', { arguments: ['gw-f', 'failedDoubleSpendingCheck-1'] }),
            (err: unknown) => {
                assert.ok(err instanceof EndorseError, String(err));
                assert.equal(err.status, 500);
                assert.equal(err.errorCode, 'failedDoubleSpendingCheck-1');
                return true;
            },
        );
        assert.equal(utf8(await contract.evaluate('Get', { arguments: ['gw-f'] })), '');
        assert.equal(net.ledger.height, height);
    });

    void it('invalidates one of two conflicting transactions with MVCC_READ_CONFLICT', async () => {
        await contract.submit('Put', { arguments: ['gw-c', '0'] });
        const results = await Promise.allSettled([
            contract.submit('Increment', { arguments: ['gw-c'] }),
            contract.submit('Increment', { arguments: ['gw-c'] }),
        ]);
        const failures = results.filter((r) => r.status === 'rejected');
        assert.equal(failures.length, 1, 'exactly one of the two commits');
        const reason = (failures[0] as PromiseRejectedResult).reason as unknown;
        assert.ok(reason instanceof CommitError, String(reason));
        assert.equal(reason.code, 'MVCC_READ_CONFLICT');
        assert.equal(utf8(await contract.evaluate('Get', { arguments: ['gw-c'] })), '1');
    });

    void it('refuses an identity from a CA outside the channel', async () => {
        const other = await openTestNetwork({ organisations: ['Org1MSP'] });
        try {
            // Same MSP ID, different CA: the peer must not accept it.
            const stranger = await connectAs(other.ledger, 'Org1MSP', 'stranger');
            try {
                await assert.rejects(
                    stranger.getContract(CHAINCODE).submit('Put', { arguments: ['gw-x', 'no'] }),
                    (err: unknown) => {
                        assert.ok(err instanceof EndorseError, String(err));
                        assert.match(err.chaincodeMessage, /access denied/);
                        return true;
                    },
                );
            } finally {
                stranger.close();
            }
        } finally {
            await other.dispose();
        }
        assert.equal(utf8(await contract.evaluate('Get', { arguments: ['gw-x'] })), '');
    });

    void it('streams chaincode events after commit and resumes them across an endpoint restart', async () => {
        const start = net.ledger.height;
        const stream = await connection.getChaincodeEvents(CHAINCODE, { startBlock: start });
        const iterator = stream[Symbol.asyncIterator]();
        try {
            await contract.submit('Emit', { arguments: ['gw-e', 'first', 'p1'] });
            const first = (await iterator.next()).value as ChaincodeEvent;
            assert.equal(first.eventName, 'first');
            assert.equal(utf8(first.payload), 'p1');
            assert.ok(first.blockNumber >= start);

            // The peer goes away and comes back on the same port; the stream reopens after `first`.
            const port = Number(server.endpoint.split(':')[1]);
            await server.close();
            server = await EmbeddedGatewayServer.start(net.ledger, { mspId: 'Org1MSP', tls, port });
            await contract.submit('Emit', { arguments: ['gw-e', 'second', 'p2'] });
            const second = (await iterator.next()).value as ChaincodeEvent;
            assert.equal(second.eventName, 'second');
            assert.equal(utf8(second.payload), 'p2');
            assert.ok(second.blockNumber > first.blockNumber);
        } finally {
            stream.close();
        }
    });
});
