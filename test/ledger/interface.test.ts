/**
 * Unit tests of the implementation-independent parts of the ledger client interface: typed
 * errors, validation code names, checkpointers and the MVCC retry helper (with a scripted
 * contract double standing in for a ledger, since the helper is the code under test).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, verify } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import {
    CommitError,
    EndorseError,
    EndorsementMismatchError,
    EndorsementPolicyError,
    fileCheckpointer,
    newPrivateKeySigner,
    verifyLowS,
    submitCommittedWithRetry,
    submitWithRetry,
    validationCodeName,
    ValidationCodes,
    type LedgerContract,
    type SubmittedTransaction,
    type ValidationCode,
} from '@m2m-fabric/sdk';

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

    void it('re-submits after an endorsement mismatch, and gives up with EndorsementMismatchError', async () => {
        const mismatch = (id: string): EndorsementMismatchError =>
            new EndorsementMismatchError({
                transactionId: id,
                policy: 'MAJORITY Endorsement',
                endorsers: [],
                reason: 'FogAMSP@127.0.0.1:8051: ProposalResponsePayloads do not match',
            });
        const recovers = scriptedContract([mismatch('a'), conflict('b')]);
        const retried: string[] = [];
        await submitWithRetry(
            recovers,
            'Put',
            {},
            { attempts: 3, backoffMs: 1, onRetry: (e) => retried.push(e.transactionId) },
        );
        assert.deepEqual(retried, ['a', 'b']);
        const persistent = scriptedContract([mismatch('c'), mismatch('d'), mismatch('e')]);
        await assert.rejects(submitWithRetry(persistent, 'Put', {}, { attempts: 2, backoffMs: 1 }), (err: unknown) => {
            return err instanceof EndorsementMismatchError && err.transactionId === 'd';
        });
        assert.equal(persistent.calls, 2);
        // A policy no peers can meet is not retried.
        const policy = scriptedContract([
            new EndorsementPolicyError({
                transactionId: 'p',
                policy: 'MAJORITY',
                endorsers: [],
                reason: 'no combination',
            }),
        ]);
        await assert.rejects(submitWithRetry(policy, 'Put', {}, { attempts: 5, backoffMs: 1 }), EndorsementPolicyError);
        assert.equal(policy.calls, 1);
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

void describe('submitCommittedWithRetry', () => {
    /** A contract whose submitAsync commits with the scripted validation codes in turn. */
    function scriptedAsync(codes: ValidationCode[]): LedgerContract & { calls: number } {
        const contract = {
            chaincodeName: 'cc',
            calls: 0,
            async submit(): Promise<Uint8Array> {
                throw new Error('not used');
            },
            async evaluate(): Promise<Uint8Array> {
                throw new Error('not used');
            },
            async submitAsync(): Promise<SubmittedTransaction> {
                contract.calls++;
                const code = codes.shift() ?? 'VALID';
                const transactionId = `tx${contract.calls}`;
                return {
                    transactionId,
                    getResult: () => new TextEncoder().encode(`result ${contract.calls}`),
                    getStatus: async () => ({
                        transactionId,
                        blockNumber: BigInt(10 + contract.calls),
                        code,
                        successful: code === 'VALID',
                    }),
                };
            },
        };
        return contract;
    }

    void it('returns the result and the commit status of the attempt that committed', async () => {
        const contract = scriptedAsync(['MVCC_READ_CONFLICT', 'PHANTOM_READ_CONFLICT']);
        const { result, status } = await submitCommittedWithRetry(contract, 'Put', {}, { attempts: 3, backoffMs: 1 });
        assert.equal(new TextDecoder().decode(result), 'result 3');
        assert.deepEqual(status, { transactionId: 'tx3', blockNumber: 13n, code: 'VALID', successful: true });
    });

    void it('throws a CommitError at once for an invalidation a retry cannot cure', async () => {
        const contract = scriptedAsync(['ENDORSEMENT_POLICY_FAILURE']);
        await assert.rejects(
            submitCommittedWithRetry(contract, 'Put', {}, { attempts: 5, backoffMs: 1 }),
            (err: unknown) => err instanceof CommitError && err.code === 'ENDORSEMENT_POLICY_FAILURE',
        );
        assert.equal(contract.calls, 1);
    });
});

void describe('newPrivateKeySigner', () => {
    const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
    /** Splits a DER ECDSA signature into r and s. */
    function rs(der: Uint8Array): [bigint, bigint] {
        const b = Buffer.from(der);
        const rLen = b[3] ?? 0;
        const r = BigInt(`0x${b.subarray(4, 4 + rLen).toString('hex')}`);
        const sLen = b[5 + rLen] ?? 0;
        const s = BigInt(`0x${b.subarray(6 + rLen, 6 + rLen + sLen).toString('hex')}`);
        return [r, s];
    }
    function der(r: bigint, s: bigint): Uint8Array {
        const int = (v: bigint): Buffer => {
            let h = v.toString(16);
            if (h.length % 2) h = `0${h}`;
            let x = Buffer.from(h, 'hex');
            if ((x[0] ?? 0) & 0x80) x = Buffer.concat([Buffer.from([0]), x]);
            return Buffer.concat([Buffer.from([2, x.length]), x]);
        };
        const body = Buffer.concat([int(r), int(s)]);
        return Buffer.concat([Buffer.from([0x30, body.length]), body]);
    }

    void it('produces low-S ECDSA-SHA256 signatures that OpenSSL verifies', async () => {
        const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        const signer = newPrivateKeySigner(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
        for (let i = 0; i < 32; i++) {
            const message = Buffer.from(`message ${i}`);
            const signature = await signer(message);
            assert.ok(verify('sha256', message, publicKey, signature));
            assert.ok(rs(signature)[1] <= P256_N >> 1n);
            assert.ok(verifyLowS(publicKey, message, signature));
            // The high-S twin is a valid ECDSA signature that Fabric refuses.
            const [r, s] = rs(signature);
            const high = der(r, P256_N - s);
            assert.ok(verify('sha256', message, publicKey, high));
            assert.equal(verifyLowS(publicKey, message, high), false);
            assert.equal(verifyLowS(publicKey, Buffer.from('other'), signature), false);
        }
    });

    void it('refuses non-EC keys', () => {
        const { privateKey } = generateKeyPairSync('ed25519');
        assert.throws(() => newPrivateKeySigner(privateKey), TypeError);
    });
});
