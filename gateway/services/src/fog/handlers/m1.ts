/**
 * Device → fog M1 = ⟨C1, C2, proof of possession⟩ (Algorithm 2, first half). The fog opens C1 to
 * IDCert_i, checks the certificate's Table II record on the ledger (a read-only pre-check), fetches
 * its object from the object store and answers M2 = the certificate object, with a one-time handle
 * for M3. While the device works on M3 the fog prepares P = d_f*IDCert_i, its DLEQ proof,
 * primaryHash and M4.
 */
import { randomBytes } from 'node:crypto';
import {
    computePrimaryHash,
    createM4,
    decodeM1,
    encodeM2,
    encodePoint,
    messageSuite,
    MessageType,
    openM1,
    prepareActivation,
    toHex,
    ErrorCode,
    verifyM1ProofOfPossession,
} from '@m2m-fabric/protocol';
import {
    encodeTagged,
    EnvelopeKind,
    faultPoint,
    ServiceError,
    ServiceErrorCode,
    type Envelope,
} from '@m2m-fabric/common';
import type { FogContext, PendingHandle, Prepared } from '../context.js';
import type { FogHandlerContext } from './handler.js';

export async function handleM1(h: FogHandlerContext, clientId: string, env: Envelope): Promise<void> {
    if (!h.limiter.allow(clientId)) throw new ServiceError(ServiceErrorCode.RateLimited, 'too many session requests');
    await h.m1Slots.run(() => answerM1(h, clientId, env));
}

/**
 * Opens M1, checks its proof of possession, checks the certificate on the ledger, fetches its
 * object and replies M2. The proof comes first, so an M1 with a broken signature learns nothing
 * about the certificate; the per-certificate and ledger-read limits come before the ledger read.
 */
async function answerM1(h: FogHandlerContext, clientId: string, env: Envelope): Promise<void> {
    const { ctx } = h;
    // The session is in its certificate's suite; C1 is sealed to this fog's key of that suite.
    const suite = messageSuite(MessageType.M1, env.body);
    const key = ctx.keyFor(suite);
    const m1 = decodeM1(suite, env.body);
    const { idCert } = await openM1(suite, key.recipient, m1);
    verifyM1ProofOfPossession(suite, m1, idCert, ctx.fogId);
    faultPoint('M1');
    const idCertHex = toHex(encodePoint(suite, idCert));
    if (!h.certificateLimiter.allow(idCertHex))
        throw new ServiceError(ServiceErrorCode.RateLimited, 'too many session requests for this certificate');
    const record = await ctx.ledgerCall(() => ctx.ledger.getCertificate(idCertHex));
    if (record.status === 'used')
        throw new ServiceError(ErrorCode.FailedDoubleSpendingCheck1, 'certificate already used');
    // A revoked certificate (revocation:revokeDevice, or decommissioning) is refused here, before
    // the object fetch and any activation work; the chaincode refuses its activation as well.
    if (record.status === 'revoked')
        throw new ServiceError(ErrorCode.CertificateRevoked, 'certificate revoked by its owner or the CSP');
    if (record.contentAddress === undefined || record.status !== 'unused') {
        throw new ServiceError(ErrorCode.UnknownCertificate, `certificate is ${record.status}`);
    }
    // Issued under a CSP key whose end date has passed: refused here, before any ledger write
    // (the chaincode refuses its activation as well, by the transaction's timestamp).
    await ctx.requireLiveCspKey(record.keyId ?? 0);
    let certificateObject: Uint8Array;
    try {
        certificateObject = await ctx.store.get(record.contentAddress);
    } catch (err) {
        ctx.m.storeErrors.inc();
        throw new ServiceError(ServiceErrorCode.StorageUnavailable, `certificate object: ${(err as Error).message}`);
    }
    const handle = new Uint8Array(randomBytes(16));
    sweepHandles(ctx);
    const pending: PendingHandle = {
        suite,
        keyId: record.keyId ?? 0,
        m1,
        idCert,
        certificateObject,
        expiresAt: Date.now() + ctx.handleTtlMs,
    };
    ctx.handles.set(toHex(handle), pending);
    faultPoint('M2');
    await ctx.reply(
        clientId,
        EnvelopeKind.M2,
        env.correlationId,
        encodeTagged(handle, encodeM2({ suite, certificateObject })),
    );
    // Off the critical path: nothing here depends on M3 (the M3 handler awaits it, or computes it if missing).
    pending.prepared = prepareForM3(ctx, pending);
    pending.prepared.catch(() => undefined);
}

/** P = d_f*IDCert_i with its DLEQ proof, primaryHash and M4: everything of Alg. 2 but M3's part. */
export async function prepareForM3(ctx: FogContext, pending: PendingHandle): Promise<Prepared> {
    const { suite } = pending;
    const key = ctx.keyFor(suite);
    const activation = prepareActivation(suite, key.privateKey, pending.certificateObject);
    const primaryHash = computePrimaryHash(suite, activation.P);
    const m4 = await createM4(
        suite,
        ctx.fogId,
        key.privateKey,
        pending.m1,
        primaryHash,
        ctx.cspKeyOf(suite),
        pending.idCert,
    );
    return { activation, primaryHash, m4 };
}

function sweepHandles(ctx: FogContext): void {
    const now = Date.now();
    for (const [k, p] of ctx.handles) if (p.expiresAt < now) ctx.handles.delete(k);
}
