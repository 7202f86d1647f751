/**
 * Algorithm 1 at the CSP-CA (paper 004): answers a manufacturer's purchase (SessionsRequested
 * event) by building the n certificate objects with d_c, storing them in the object store and
 * submitting them; the chaincode verifies every ECQV equation, content address and counter proof.
 * Also fog approval: addr_f = H(ID_f, d_c*Q_f) recomputed from the registered Q_f.
 */
import {
    decodeCertificateRequest,
    decodePoint,
    encodeCertificateObject,
    fogAddress,
    fromHex,
    issueCertificates,
    toHex,
    ErrorCode,
} from '@m2m-fabric/protocol';
import { errorCodeOf } from '@m2m-fabric/common';
import type { CspContext } from './context.js';

/**
 * Algorithm 1 for one purchase: fetch the request, issue, store the objects, submit.
 *
 * @throws the object store's error (StorageError) or the ledger's (EndorseError, CommitError).
 */
export async function issueRequest(ctx: CspContext, requestId: string): Promise<void> {
    const req = await ctx.ledger.getRequest(requestId);
    if (req.status !== 'pending') return;
    let requestBytes: Uint8Array;
    try {
        requestBytes = await ctx.store.get(requestId);
    } catch (err) {
        ctx.m.storeErrors.inc();
        throw err;
    }
    const request = decodeCertificateRequest(requestBytes);
    // Under the newest CA key epoch of the request's suite. A rotation that commits between this
    // read and the issuance makes the chaincode refuse the objects (invalidIssuance: not under the
    // newest key): reload the epochs and issue again under the new key, so no paid purchase is left
    // unissued. (A rotation to another suite leaves the request's suite at its previous epoch.)
    // A request of a suite no epoch this CSP loaded is of: a rotation to another suite committed and
    // its event has not reached this CSP yet. Reload the epochs first.
    if (ctx.caKeys.epochs.every((e) => (e.suite ?? ctx.suite.id) !== request.suite.id))
        await ctx.caKeys.refresh(ctx.ledger);
    for (let attempt = 1; ; attempt++) {
        const { keyId, key } = ctx.caKeys.newestOf(request.suite);
        const objects = issueCertificates(request.suite, key.privateKey, request).map(encodeCertificateObject);
        try {
            await ctx.store.putMany(objects);
        } catch (err) {
            ctx.m.storeErrors.inc();
            throw err;
        }
        try {
            await ctx.ledger.issueCertificates(requestId, requestBytes, objects);
        } catch (err) {
            if (errorCodeOf(err) !== ErrorCode.InvalidIssuance || attempt >= 3) throw err;
            await ctx.caKeys.refresh(ctx.ledger);
            if (ctx.caKeys.newestOf(request.suite).keyId === keyId) throw err;
            continue;
        }
        ctx.m.issued.inc({}, objects.length);
        return;
    }
}

/** Approves a pending fog when H(ID_f, d_c*Q_f) equals the registered addr_f. */
export async function approveFog(ctx: CspContext, fogId: string): Promise<void> {
    const fog = await ctx.ledger.getFog(fogId);
    if (fog.status !== 'pending') return;
    const Qf = decodePoint(ctx.suite, fromHex(fog.publicKey));
    const address = toHex(fogAddress(ctx.suite, fogId, Qf.multiply(ctx.key.privateKey)));
    await ctx.ledger.approveFog(fogId, address);
    ctx.log.info('fog approved', { fogId });
}
