/**
 * Alg. 1 across two organisations, as the suites drive it: the manufacturer requests sessions on
 * its peer, then the CSP-CA issues them on its own peer — after that peer has committed the
 * request. The manufacturer's submit returns once the manufacturer's peer has the block; the CSP's
 * peer may not have it yet, and its chaincode would then not know the request (`unknownRequest`).
 */
import { waitForCommit } from '@m2m-fabric/sdk';

import { issuanceTransient, issueObjects, type CspActor, type SessionRequest } from '../chaincode/actors.js';
import type { OpenSuite } from './suite-setup.js';

/**
 * Requests and issues `request`; returns the request id. `beforeIssue` runs between the two (a
 * test's hook, e.g. waiting for a restarting peer); `endorsingOrganizations` (MSP ids) names the
 * request's endorsers instead of letting the manufacturer's Gateway choose them (e.g. to leave out
 * a paused peer).
 */
export async function purchaseAndIssue(
    suite: OpenSuite,
    csp: CspActor,
    request: SessionRequest,
    hooks: { beforeIssue?: () => Promise<void> | void; endorsingOrganizations?: string[] } = {},
): Promise<string> {
    const n = request.request.entries.length;
    const submitted = await suite.contract('manufacturer', 'certificates').submitAsync('requestSessions', {
        arguments: [String(n), request.cid],
        transientData: { request: request.bytes },
        ...(hooks.endorsingOrganizations === undefined ? {} : { endorsingOrganizations: hooks.endorsingOrganizations }),
    });
    const status = await submitted.getStatus();
    if (!status.successful) throw new Error(`requestSessions ${status.transactionId} invalidated: ${status.code}`);
    await hooks.beforeIssue?.();
    // Act on the manufacturer's commit only once the CSP's own peer has it.
    await waitForCommit(
        suite.connections.get('csp') as NonNullable<ReturnType<typeof suite.connections.get>>,
        suite.target.chaincodeName,
        status,
    );
    const objects = issueObjects(csp, request);
    await suite
        .contract('csp', 'certificates')
        .submit('issueCertificates', { arguments: [request.cid], transientData: issuanceTransient(request, objects) });
    return request.cid;
}
