/**
 * What every `*.suite.ts` of `npm run test:fabric` shares: the target chosen on the command line
 * (targets.ts), one connection per organisation, and the network's CSP key. A Fabric ledger keeps
 * Q_c for good, so the key lives in a 0600 state file (M2M_FABRIC_TEST_STATE, or a directory
 * derived from FABRIC_CONNECTION) that every suite of a run — and later runs — reuse.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { DEFAULT_SUITE, decodePoint, encodePoint, fromHex, hpkeRecipientFromScalar, toHex } from '@m2m-fabric/protocol';
import { EndorseError, waitForCommit, type LedgerConnection, type LedgerContract } from '@m2m-fabric/sdk';

import { loadOrCreateServiceKey } from '@m2m-fabric/services';

import type { CspActor } from '../chaincode/actors.js';
import {
    chooseTarget,
    openEmbeddedGatewayTarget,
    openFabricTarget,
    openInProcessTarget,
    ORGS,
    type Org,
    type SuiteTarget,
} from './targets.js';

export const choice = chooseTarget(process.argv.slice(2), process.env);
/** The `skip` option of every test: the reason when no target is configured. */
export const skip = typeof choice === 'object' ? choice.skip : false;

export const json = (bytes: Uint8Array): Record<string, unknown> =>
    JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;

export interface OpenSuite {
    readonly target: SuiteTarget;
    readonly stateDir: string;
    readonly connections: Map<Org, LedgerConnection>;
    contract(org: Org, name: string): LedgerContract;
    close(): Promise<void>;
}

/** Opens the chosen target and one connection per organisation. */
export async function openSuite(): Promise<OpenSuite> {
    const target =
        choice === 'embedded'
            ? await openEmbeddedGatewayTarget()
            : choice === 'in-process'
              ? await openInProcessTarget()
              : await openFabricTarget(process.env);
    const stateDir =
        target.name !== 'fabric'
            ? join(tmpdir(), `m2m-suite-${randomBytes(6).toString('hex')}`)
            : (process.env.M2M_FABRIC_TEST_STATE ??
              join(
                  tmpdir(),
                  `m2m-fabric-suite-${createHash('sha256')
                      .update(process.env.FABRIC_CONNECTION ?? '')
                      .digest('hex')
                      .slice(0, 12)}`,
              ));
    const connections = new Map<Org, LedgerConnection>();
    for (const org of ORGS) connections.set(org, await target.connect(org));
    return {
        target,
        stateDir,
        connections,
        contract(org, name) {
            const connection = connections.get(org);
            assert.ok(connection, `no connection for ${org}`);
            return connection.getContract(target.chaincodeName, name);
        },
        async close() {
            for (const connection of connections.values()) connection.close();
            await target.close();
            if (target.name !== 'fabric') await rm(stateDir, { recursive: true, force: true });
        },
    };
}

/**
 * The network's CSP actor: its key from the state directory, registered on the ledger if no run
 * has yet (later runs find it and check that it is the same Q_c).
 */
export async function registeredCsp(suite: OpenSuite): Promise<CspActor> {
    await mkdir(suite.stateDir, { recursive: true, mode: 0o700 });
    const key = await loadOrCreateServiceKey(join(suite.stateDir, 'keys', 'csp.json'), DEFAULT_SUITE);
    const qc = DEFAULT_SUITE.Point.BASE.multiply(key.privateKey);
    const registry = suite.contract('csp', 'registry');
    try {
        await registry.submit('registerCsp', { arguments: [DEFAULT_SUITE.id, toHex(encodePoint(DEFAULT_SUITE, qc))] });
    } catch (err) {
        if (!(err instanceof EndorseError && err.errorCode === 'alreadyExists')) throw err;
    }
    const registered = json(await registry.evaluate('getCsp'));
    assert.ok(
        decodePoint(DEFAULT_SUITE, fromHex(String(registered.caPublicKey))).equals(qc),
        `the network's Q_c is not the key in ${suite.stateDir}: point M2M_FABRIC_TEST_STATE at the state of the run that registered it`,
    );
    return {
        suite: DEFAULT_SUITE,
        d: key.privateKey,
        Q: qc,
        recipient: await hpkeRecipientFromScalar(DEFAULT_SUITE, key.privateKey),
        publicKeyHex: toHex(encodePoint(DEFAULT_SUITE, qc)),
    };
}

/**
 * The CSP grants the manufacturer `amount` credits, and the call returns once every organisation's
 * peer has committed the grant: the purchases that follow are endorsed by other peers than the
 * CSP's, which must all see the new lots (a lagging endorser would return a different result).
 */
export async function grantCreditEverywhere(suite: OpenSuite, account: string, amount: number): Promise<void> {
    const submitted = await suite
        .contract('csp', 'registry')
        .submitAsync('grantCredit', { arguments: [account, String(amount)] });
    const status = await submitted.getStatus();
    assert.equal(status.code, 'VALID', `grantCredit ${status.transactionId}`);
    await Promise.all(
        [...suite.connections.values()].map(
            async (connection) => await waitForCommit(connection, suite.target.chaincodeName, status),
        ),
    );
}
