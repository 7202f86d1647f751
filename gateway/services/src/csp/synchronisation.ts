/**
 * Algorithm 3 at the CSP, around the pure checks of the protocol module ({@link runAlgorithm3}):
 * opening M4, the one ledger read, the durable 'syncing' record, the synchronisation transaction,
 * and finishing or dropping a session whose outcome a crash left unknown.
 *
 * Crash safety: a session is written to the store as 'syncing' before the synchronisation is
 * submitted; a restarted CSP finds it, checks the ledger and finishes it (resume).
 */
import {
    cspTrafficKey,
    decodeM4,
    decodePoint,
    encodeFsConfirm,
    encodePoint,
    ErrorCode,
    requireEphemeralShare,
    FrameType,
    fromHex,
    messageSuite,
    MessageType,
    openM4,
    runAlgorithm3,
    symKeyCommitment,
    toHex,
} from '@m2m-fabric/protocol';
import { errorCodeOf, faultPoint, routeIdFor, routeKey, ServiceError, ServiceErrorCode } from '@m2m-fabric/common';
import { FifoLimiter } from '../util/fifo-limiter.js';
import type { CspChannels } from './channels.js';
import type { ServiceKey } from '../keys.js';
import type { CspContext } from './context.js';
import { sessionSuite, type StoredSession } from './session-store.js';

/**
 * How long the CSP waits for its own peer to show a session the fog says it activated. The fog
 * sends M4 once the activation committed on the fog's peer; Fabric guarantees nothing about the
 * CSP's peer, which commits the same block moments later (longer after a restart or under load).
 */
const ACTIVATION_VISIBILITY_MS = 5_000;

/**
 * The session record of `primaryHash` from the CSP's own peer, read again while that peer does not
 * know it yet (`invalidPrimaryHash`) for up to ACTIVATION_VISIBILITY_MS.
 *
 * @throws {ServiceError} invalidPrimaryHash when the session is still unknown after that;
 *   other ledger errors at once.
 */
async function readActivatedSession(
    ctx: CspContext,
    primaryHash: string,
): Promise<Awaited<ReturnType<CspContext['ledger']['getSession']>>> {
    const deadline = Date.now() + ACTIVATION_VISIBILITY_MS;
    for (;;) {
        try {
            return await ctx.ledgerCall(() => ctx.ledger.getSession(primaryHash));
        } catch (err) {
            if (errorCodeOf(err) !== 'invalidPrimaryHash' || Date.now() > deadline) throw err;
            await new Promise((resolve) => setTimeout(resolve, 100));
        }
    }
}

/**
 * The synchronisation transaction, submitted again while an endorsing peer of another org refuses
 * it with `invalidPrimaryHash`, for up to ACTIVATION_VISIBILITY_MS. By then this CSP's own peer has
 * shown the activated session (readActivatedSession), so that refusal can only come from an
 * endorser that has not committed the activation's block yet: on real Fabric every org's peer
 * commits the same block at its own moment. A refused endorsement submits nothing, so submitting
 * again cannot synchronise twice.
 *
 * @throws {ServiceError} invalidPrimaryHash when endorsers still refuse after that; other ledger
 *   errors at once.
 */
async function submitSynchronisation(ctx: CspContext, synchronisation: Uint8Array, ordered: () => void): Promise<void> {
    const deadline = Date.now() + ACTIVATION_VISIBILITY_MS;
    for (;;) {
        try {
            await ctx.ledgerCall(() => ctx.ledger.synchroniseSession(synchronisation, ordered));
            return;
        } catch (err) {
            if (errorCodeOf(err) !== ErrorCode.InvalidPrimaryHash || Date.now() > deadline) throw err;
            await new Promise((resolve) => setTimeout(resolve, 100));
        }
    }
}

export class CspSynchroniser {
    /** One Algorithm 3 run per route at a time: a re-sent M4 joins the run in progress. */
    private readonly inFlight = new Map<string, Promise<Uint8Array>>();
    private readonly slots: FifoLimiter;

    constructor(
        private readonly ctx: CspContext,
        private readonly channels: CspChannels,
        maxConcurrent: number,
    ) {
        this.slots = new FifoLimiter(maxConcurrent);
    }

    /**
     * Algorithm 3 for the M4 a fog forwarded on route `key`. Returns the Confirm frame under the new
     * session key. Idempotent per route. At most `maxConcurrent` runs go on until their
     * synchronisation is with the orderer; the rest wait in arrival order (util/fifo-limiter.ts),
     * so a burst's first transaction starts its block early.
     *
     * @throws {ServiceError | VerificationError} with the paper's code of the check that failed.
     */
    run(fogId: string, m4Bytes: Uint8Array, devicePublicKey: Uint8Array, key: string): Promise<Uint8Array> {
        const running = this.inFlight.get(key);
        if (running !== undefined) {
            // A re-sent M4 waits for the run in progress and is then examined on its own (an
            // established session answers it at once, if it carries the same E_D).
            return running.then(
                () => this.run(fogId, m4Bytes, devicePublicKey, key),
                () => this.run(fogId, m4Bytes, devicePublicKey, key),
            );
        }
        let p = this.inFlight.get(key);
        if (p === undefined) {
            p = (async () => {
                const release = await this.slots.acquire();
                try {
                    return await this.synchronise(fogId, m4Bytes, devicePublicKey, key, release);
                } finally {
                    release();
                }
            })();
            this.inFlight.set(key, p);
            p.finally(() => this.inFlight.delete(key)).catch(() => undefined);
        }
        return p;
    }

    /**
     * The key pair of a CA key epoch, reloading the epochs once if it is not held yet.
     * @throws {ServiceError} cspKeyMismatch when this CSP has no key file for the epoch.
     */
    private async caKeyOf(keyId: number): Promise<ServiceKey> {
        const { ctx } = this;
        let pair = ctx.caKeys.pair(keyId);
        if (pair === undefined) {
            await ctx.caKeys.refresh(ctx.ledger);
            pair = ctx.caKeys.pair(keyId);
        }
        if (pair === undefined)
            throw new ServiceError(ServiceErrorCode.CspKeyMismatch, `no key file for CSP key epoch ${keyId}`);
        return pair;
    }

    private async synchronise(
        fogId: string,
        m4Bytes: Uint8Array,
        devicePublicKey: Uint8Array,
        key: string,
        ordered: () => void,
    ): Promise<Uint8Array> {
        const { ctx } = this;
        const existing = ctx.sessions.get(key);
        // Every M4 is examined, even on a known route: a session is bound to its primaryHash and
        // IDCert_i, and its route ID is the one derived from IDCert_i, so a fog can neither re-file a
        // session under a fresh route ID (a second record for one key) nor get a Confirm for garbage.
        // The session is in its certificate's suite (the ledger's, or a CA key epoch's of another
        // suite): s_f is under the fog's key of that suite, C2 and C3 under CA keys of it.
        const suite = messageSuite(MessageType.M4, m4Bytes);
        const fogPoint = await ctx.fogSessionKey(fogId, suite);
        const m4 = decodeM4(suite, m4Bytes);
        // C2 and C3 are sealed to the newest CA key the device and the fog knew: open under any
        // epoch held, reloading the epochs once when a rotation is newer than what this CSP loaded.
        const opened = await openM4(suite, ctx.caKeys.recipients(suite), fogPoint, m4).catch(async (err: unknown) => {
            if (errorCodeOf(err) !== ErrorCode.DecryptionFailed) throw err;
            await ctx.caKeys.refresh(ctx.ledger);
            return openM4(suite, ctx.caKeys.recipients(suite), fogPoint, m4);
        });
        const primaryHash = toHex(opened.primaryHash);
        if (routeKey(routeIdFor(suite, opened.idCert)) !== key)
            throw new ServiceError(
                ServiceErrorCode.RouteMismatch,
                "the route ID is not the one derived from the M4's IDCert_i",
            );
        if (existing?.state === 'established') {
            if (existing.primaryHash !== primaryHash)
                throw new ServiceError('invalidPrimaryHash', 'the route is bound to another session');
            // A re-sent M4 of this very session (the fog did not see the Result, or the device
            // retried the certificate): the same E_C ‖ Confirm, but only for the E_D that K_i was
            // derived from. Another E_D gets no second key (that would be a second session on one
            // certificate): a downgrade is forwardSecrecyRequired, another share a typed refusal.
            const share = toHex(encodePoint(suite, requireEphemeralShare(opened.ephemeralShare, 'C2')));
            if (share !== existing.deviceShare)
                throw new ServiceError(
                    ServiceErrorCode.EphemeralShareMismatch,
                    'this M4 carries another ephemeral share E_D than the established session was keyed with',
                );
            return this.confirm(key);
        }
        // One read: the session record comes with its certificate's B_i.
        const record = await readActivatedSession(ctx, primaryHash);
        // symKey_i under the d_c of the certificate's key epoch; secondaryHash under one fixed key of
        // the suite (epoch 0's for the ledger's suite).
        const caKey = await this.caKeyOf(record.keyId ?? 0);
        if (caKey.suite.tag !== suite.tag)
            throw new ServiceError(
                ErrorCode.InvalidPrimaryHash,
                `the session's certificate is not of suite ${suite.id}`,
            );
        const result = runAlgorithm3(
            suite,
            caKey.privateKey,
            fogId,
            m4,
            opened,
            devicePublicKey,
            {
                idCert: fromHex(record.idCert),
                fogId: record.fogId,
                publicKeyCommitment: fromHex(record.publicKeyCommitment),
                counterCommitment: fromHex(record.counterCommitment),
            },
            ctx.caKeys.suiteIdentityOf(suite).privateKey,
        );
        // Forward secrecy, before anything is stored or submitted: a C2 without E_D is a downgrade
        // (forwardSecrecyRequired, ledger unchanged). x_C is erased inside cspTrafficKey; symKey_i
        // is zeroed once its commitment is taken, so only K_i (and the public E_C) is kept.
        const { cspShare, trafficKey } = cspTrafficKey(suite, result.symKey, opened.idCert, opened.ephemeralShare);
        const commitment = toHex(symKeyCommitment(suite, result.symKey));
        result.symKey.fill(0);
        const stored: StoredSession = {
            state: 'syncing',
            ...(suite.tag === ctx.suite.tag ? {} : { suite: suite.id }),
            routeId: key,
            primaryHash,
            idCert: toHex(result.idCert),
            fogId,
            counter: result.counter.toString(),
            dynamicId: toHex(result.dynamicId),
            trafficKey: toHex(trafficKey),
            cspShare: toHex(encodePoint(suite, cspShare)),
            deviceShare: toHex(encodePoint(suite, opened.ephemeralShare!)),
            symKeyCommitment: commitment,
            synchronisation: toHex(result.synchronisation),
            publicKeyCommitment: record.publicKeyCommitment,
        };
        // The 'syncing' record and the submission overlap (the record is durable long before the commit,
        // which waits for a BatchTimeout). Should the CSP stop before the record is on disk, the fog
        // re-sends M4 and this function finds the ledger already synchronised (below).
        const syncing = ctx.sessions.set(key, stored);
        faultPoint('sync-submit');
        try {
            await Promise.all([syncing, submitSynchronisation(ctx, result.synchronisation, ordered)]);
        } catch (err) {
            await syncing.catch(() => undefined);
            const code = errorCodeOf(err);
            if (code === ErrorCode.FailedDoubleSpendingCheck2 || code === ErrorCode.InvalidPrimaryHash) {
                // Perhaps our own earlier submission (before a crash) committed: the ledger decides.
                const now = await ctx.ledger.getSession(primaryHash).catch(() => undefined);
                if (now?.status !== 'synchronised' || now.symKeyCommitment !== commitment) {
                    await ctx.sessions.delete(key);
                    throw err;
                }
            } else if (code !== ServiceErrorCode.Internal && code !== ServiceErrorCode.LedgerUnavailable) {
                await ctx.sessions.delete(key);
                throw err;
            } else throw err; // outcome unknown: keep 'syncing' for resume
        }
        stored.state = 'established';
        stored.establishedAt = Date.now();
        // Open the channel and reserve its first send sequence numbers in the same durable write.
        await this.channels.create(key, trafficKey, stored);
        trafficKey.fill(0);
        await ctx.sessions.set(key, stored);
        return this.confirm(key);
    }

    /**
     * The forward-secret Confirm of an established session: E_C in clear, then a Confirm frame
     * under K_i (a fresh sequence number each time it is asked for again).
     *
     * @throws {ServiceError} unknownSession when no established session is on this route.
     */
    async confirm(key: string): Promise<Uint8Array> {
        const s = this.ctx.sessions.get(key);
        if (s?.state !== 'established')
            throw new ServiceError(ServiceErrorCode.UnknownSession, 'no established session on this route');
        const frame = await this.channels.seal(key, FrameType.Confirm, fromHex(key));
        const suite = sessionSuite(this.ctx.suite, s);
        return encodeFsConfirm(suite, decodePoint(suite, fromHex(s.cspShare)), frame);
    }

    /** After a restart: a 'syncing' session is finished if the ledger shows it synchronised, else dropped. */
    async resume(s: StoredSession): Promise<void> {
        const { ctx } = this;
        try {
            await ctx.ledgerCall(() => ctx.ledger.synchroniseSession(fromHex(s.synchronisation)));
        } catch {
            const now = await ctx.ledger.getSession(s.primaryHash).catch(() => undefined);
            if (now?.status !== 'synchronised') {
                await ctx.sessions.delete(s.routeId);
                return;
            }
        }
        s.state = 'established';
        s.establishedAt = Date.now();
        await ctx.sessions.set(s.routeId, s);
    }
}
