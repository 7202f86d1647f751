/**
 * Unit tests of the implementation-independent parts of the ledger client interface: typed
 * errors, validation code names, checkpointers and the MVCC retry helper (with a scripted
 * contract double standing in for a ledger, since the helper is the code under test).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import {
    CommitError,
    EndorseError,
    fileCheckpointer,
    submitWithRetry,
    validationCodeName,
    ValidationCodes,
    type LedgerContract,
    type SubmittedTransaction,
} from '@m2m-fabric/gateway/ledger/index';

void describe('ledger errors', () => {
    void it('EndorseError parses the protocol error code from the chaincode message', () => {
        const error = new EndorseError({
            transactionId: 'tx1',
            status: 500,
            chaincodeMessage: 'failedDoubleSpendingCheck-1: primary hash already used',
        });
        assert.equal(error.errorCode, 'failedDoubleSpendingCheck-1');
        assert.equal(error.status, 500);
        assert.equal(error.transactionId, 'tx1');
        assert.equal(
            new EndorseError({ transactionId: 't', status: 500, chaincodeMessage: 'boom' }).errorCode,
            undefined,
        );
    });

    void it('maps Fabric numeric validation codes to names', () => {
        assert.equal(validationCodeName(11), 'MVCC_READ_CONFLICT');
        assert.equal(validationCodeName(12), 'PHANTOM_READ_CONFLICT');
        assert.equal(validationCodeName(0), 'VALID');
        assert.equal(validationCodeName(9999), 'INVALID_OTHER_REASON');
        assert.equal(ValidationCodes.ENDORSEMENT_POLICY_FAILURE, 10);
    });
});

void describe('file checkpointer', () => {
    void it('persists block and transaction positions across instances', async () => {
        const dir = await mkdtemp(join(tmpdir(), 'ckpt-'));
        try {
            const path = join(dir, 'events.json');
            const first = await fileCheckpointer(path);
            assert.equal(first.getBlockNumber(), undefined);
            await first.checkpointChaincodeEvent({
                chaincodeName: 'cc',
                eventName: 'e',
                payload: new Uint8Array(),
                transactionId: 'abc',
                blockNumber: 7n,
            });
            const second = await fileCheckpointer(path);
            assert.equal(second.getBlockNumber(), 7n);
            assert.equal(second.getTransactionId(), 'abc');
            await second.checkpointBlock(7n);
            const third = await fileCheckpointer(path);
            assert.equal(third.getBlockNumber(), 8n);
            assert.equal(third.getTransactionId(), undefined);
            // Same JSON shape as fabric-gateway's file checkpointer.
            assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), { blockNumber: '8' });
        } finally {
            await rm(dir, { recursive: true, force: true });
        }
    });
});

void describe('submitWithRetry', () => {
    /** A contract whose submit fails with the scripted errors, then succeeds. */
    function scriptedContract(failures: Error[]): LedgerContract & { calls: number } {
        const contract = {
            chaincodeName: 'cc',
            calls: 0,
            async submit(): Promise<Uint8Array> {
                contract.calls++;
                const failure = failures.shift();
                if (failure) throw failure;
                return new TextEncoder().encode('ok');
            },
            async evaluate(): Promise<Uint8Array> {
                throw new Error('not used');
            },
            async submitAsync(): Promise<SubmittedTransaction> {
                throw new Error('not used');
            },
        };
        return contract;
    }
    const conflict = (id: string): CommitError =>
        new CommitError({ transactionId: id, code: 'MVCC_READ_CONFLICT', blockNumber: 1n });

    void it('re-submits after MVCC_READ_CONFLICT until success', async () => {
        const contract = scriptedContract([conflict('a'), conflict('b')]);
        const result = await submitWithRetry(contract, 'Put', {}, { attempts: 3, backoffMs: 1 });
        assert.equal(new TextDecoder().decode(result), 'ok');
        assert.equal(contract.calls, 3);
    });

    void it('gives up after the configured attempts with the last conflict', async () => {
        const contract = scriptedContract([conflict('a'), conflict('b'), conflict('c')]);
        await assert.rejects(submitWithRetry(contract, 'Put', {}, { attempts: 2, backoffMs: 1 }), (err: unknown) => {
            return err instanceof CommitError && err.transactionId === 'b';
        });
        assert.equal(contract.calls, 2);
    });

    void it('does not retry other failures', async () => {
        const endorse = new EndorseError({ transactionId: 'x', status: 500, chaincodeMessage: 'malformedInput: x' });
        const contract = scriptedContract([endorse]);
        await assert.rejects(submitWithRetry(contract, 'Put', {}, { attempts: 5, backoffMs: 1 }), EndorseError);
        const policy = scriptedContract([
            new CommitError({ transactionId: 'y', code: 'ENDORSEMENT_POLICY_FAILURE', blockNumber: 2n }),
        ]);
        await assert.rejects(submitWithRetry(policy, 'Put', {}, { attempts: 5, backoffMs: 1 }), CommitError);
        assert.equal(contract.calls + policy.calls, 2);
    });
});
