/**
 * The console's ledger view on a real Fabric network: blocks read through the peer's query system
 * chaincode (qscc GetChainInfo / GetBlockByNumber) over the same Gateway connection the services
 * use, decoded for display. Real Fabric peers serve qscc, and so does the embedded ledger's Gateway
 * endpoint (`m2m peer`, the `embedded` target); the in-process target has no Gateway connection.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, test } from 'node:test';
import { decodeBlockView, qsccBlockSource } from '@m2m-fabric/console';
import type { LedgerConnection } from '@m2m-fabric/sdk';
import { chooseTarget, openEmbeddedGatewayTarget, openFabricTarget, type SuiteTarget } from './targets.js';

const choice = chooseTarget(process.argv.slice(2), process.env);
const skip =
    typeof choice === 'object'
        ? choice.skip
        : choice === 'in-process'
          ? 'qscc (the console ledger view over a Gateway connection) needs a Gateway connection'
          : false;

void describe('console ledger view over qscc (real Fabric, m2m peer)', () => {
    let target: SuiteTarget | undefined;
    let connection: LedgerConnection;

    before(async () => {
        if (skip !== false) return;
        target = choice === 'embedded' ? await openEmbeddedGatewayTarget() : await openFabricTarget(process.env);
        connection = await target.connect('csp');
    });
    after(async () => {
        connection?.close();
        await target?.close();
    });

    void test('the genesis block is a config block; the newest block decodes with named codes', { skip }, async () => {
        const blocks = qsccBlockSource(connection);
        const height = await blocks.height();
        assert.ok(height >= 1);
        const genesis = decodeBlockView((await blocks.block(0))!);
        assert.equal(genesis.number, 0);
        assert.equal(genesis.transactions[0]?.type, 'CONFIG');
        const newest = decodeBlockView((await blocks.block(height - 1))!);
        assert.equal(newest.number, height - 1);
        for (const tx of newest.transactions) assert.match(tx.code, /^[A-Z_]+$/);
        if (newest.transactions[0]?.type === 'ENDORSER_TRANSACTION')
            assert.ok(newest.transactions[0].endorsers.length > 0, 'endorsing orgs named');
    });
});
