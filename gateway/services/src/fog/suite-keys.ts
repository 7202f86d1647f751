/**
 * The fog's session keys for suites other than the ledger's (docs/protocol.md#rotation-to-another-suite).
 *
 * When the CSP's key epochs name another suite S (a rotation to another suite), this fog needs a
 * key of S to serve that epoch's certificates: C1 is sealed to it, Algorithm 2's DLEQ proves
 * P = d_f^S*IDCert_i against it, and M4's s_f is under it. For each such suite the fog keeps a key
 * file (0600, created on first use, `keys/<fogId>-<suite id>.json` under its data directory) and
 * registers the public key with registry:addFogSuiteKey, signed by its identity key and the new
 * key. The file is written before the ledger names the key, so a crash in between leaves a key the
 * next run registers, never a registered key nobody holds.
 */
import { join } from 'node:path';
import {
    decodePoint,
    decodeSchnorrSignature,
    encodeSchnorrSignature,
    fromHex,
    getSuite,
    signFogSuiteKey,
    toHex,
    type Suite,
} from '@m2m-fabric/protocol';
import { ServiceError, ServiceErrorCode } from '@m2m-fabric/common';
import type { FogRecord } from '@m2m-fabric/sdk';
import { loadOrCreateServiceKey } from '../keys.js';
import type { FogContext } from './context.js';

/** Where a fog keeps its key of `suite` under its data directory. */
export function fogSuiteKeyPath(dataDir: string, fogId: string, suite: Suite): string {
    return join(dataDir, 'keys', `${fogId}-${suite.id}.json`);
}

/**
 * Makes sure this fog holds, and the ledger lists, a key for every suite of the CSP's key epochs
 * (and for `extra` suites asked for ahead of a rotation), and loads them into the context.
 *
 * @returns the suites whose key was registered by this call.
 * @throws {ServiceError} fogKeyMismatch when the ledger lists another key for a suite than the file
 *   holds; the ledger's refusals of addFogSuiteKey (fogNotApproved, …) as the SDK raises them.
 */
export async function ensureFogSuiteKeys(
    ctx: FogContext,
    keyFile: (suite: Suite) => string,
    extra: readonly Suite[] = [],
): Promise<Suite[]> {
    const wanted = [...ctx.otherEpochSuites()];
    for (const suite of extra)
        if (suite.tag !== ctx.suite.tag && !wanted.some((s) => s.tag === suite.tag)) wanted.push(suite);
    const missing = wanted.filter((s) => !ctx.suiteKeys.has(s.tag));
    if (missing.length === 0) return [];
    let fog: FogRecord = await ctx.ledgerCall(() => ctx.ledger.getFog(ctx.fogId));
    const registered: Suite[] = [];
    for (const suite of missing) {
        const key = await loadOrCreateServiceKey(keyFile(suite), suite);
        let entry = fog.suiteKeys?.find((k) => k.suite === suite.id);
        if (entry === undefined) {
            const signatures = signFogSuiteKey(
                {
                    fogId: ctx.fogId,
                    identitySuite: ctx.suite,
                    identityKey: ctx.key.publicKey,
                    suite,
                    key: key.publicKey,
                },
                ctx.key.privateKey,
                key.privateKey,
            );
            fog = await ctx.ledgerCall(() =>
                ctx.ledger.addFogSuiteKey(
                    ctx.fogId,
                    suite.id,
                    key.publicKeyHex,
                    toHex(encodeSchnorrSignature(ctx.suite, signatures.identitySignature)),
                    toHex(encodeSchnorrSignature(suite, signatures.newSignature)),
                ),
            );
            entry = fog.suiteKeys?.find((k) => k.suite === suite.id);
            registered.push(suite);
        }
        if (entry === undefined || entry.publicKey !== key.publicKeyHex)
            throw new ServiceError(
                ServiceErrorCode.FogKeyMismatch,
                `the ledger holds another ${suite.id} key for fog ${ctx.fogId} than ${keyFile(suite)}`,
            );
        ctx.suiteKeys.set(suite.tag, {
            key,
            link: {
                suite: getSuite(entry.suite),
                key: decodePoint(suite, fromHex(entry.publicKey)),
                signatures: {
                    identitySignature: decodeSchnorrSignature(ctx.suite, fromHex(entry.identitySignature)),
                    newSignature: decodeSchnorrSignature(suite, fromHex(entry.newSignature)),
                },
            },
        });
    }
    return registered;
}
