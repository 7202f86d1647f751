/**
 * Issued / unused / used certificates of one device, for its manufacturer only. The ledger never
 * links a certificate to equipment (Table II is keyed by IDCert_i alone); only the holder of the
 * device's owner secret w can recompute IDCert_i = k_i*G for each purchased counter i and look each
 * one up. So these counts come from the manufacturer's own device record (manufacturer/client.ts
 * keeps w and the next counter to buy) and are never computed for another org's identity.
 */
import { join } from 'node:path';
import {
    decodeScalar,
    dynamicIdentity,
    ecqvRequestKey,
    encodePoint,
    fromHex,
    suiteOfCounter,
    suiteSecrets,
    toHex,
    type CounterSuiteRange,
    type Suite,
} from '@m2m-fabric/protocol';
import type { ChaincodeClient } from '@m2m-fabric/sdk';
import { errorCodeOf } from '@m2m-fabric/common';
import { readJsonFile } from '@m2m-fabric/common';

export interface CertificateCounts {
    /** Counters bought so far (1 .. purchased). */
    purchased: number;
    requested: number;
    /** Issued and not yet used: the device's remaining prepaid sessions. */
    unused: number;
    used: number;
    /** Withdrawn by a revocation (revocation:revokeDevice, or decommissioning) before use. */
    revoked: number;
    /** Purchased counters with no Table II record (a purchase that never reached the ledger). */
    missing: number;
}

interface DeviceRecord {
    equipmentId: string;
    w: string;
    nextPurchase: string;
    /** Purchases in another suite (after a CSP rotation to another suite): manufacturer/client.ts. */
    suiteRanges?: CounterSuiteRange[];
}

/** Most counters one page looks up (each is a hash, a base-point multiply and one evaluate). */
export const MAX_COUNTED_CERTIFICATES = 1000;

/**
 * Counts a device's certificates by status, or returns undefined when this manufacturer keeps no
 * record of the device (another manufacturer's, or bought elsewhere).
 */
export async function countCertificates(
    suite: Suite,
    client: ChaincodeClient,
    manufacturerDataDir: string,
    equipmentId: string,
): Promise<CertificateCounts | undefined> {
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(equipmentId)) return undefined;
    const record = (await readJsonFile(join(manufacturerDataDir, 'devices', `${equipmentId}.json`))) as
        DeviceRecord | undefined;
    if (record === undefined || record.equipmentId !== equipmentId) return undefined;
    const purchased = Math.min(MAX_COUNTED_CERTIFICATES, Number(BigInt(record.nextPurchase) - 1n));
    const secrets = { w: decodeScalar(suite, fromHex(record.w)), equipmentId };
    const counts: CertificateCounts = { purchased, requested: 0, unused: 0, used: 0, revoked: 0, missing: 0 };
    const lookups: Promise<void>[] = [];
    for (let i = 1; i <= purchased; i++) {
        const counter = BigInt(i);
        // A counter bought after a rotation to another suite is a certificate of that suite.
        const of = suiteOfCounter(suite, record.suiteRanges, counter);
        const own = suiteSecrets(suite, secrets, of);
        const { idCert } = ecqvRequestKey(of, dynamicIdentity(of, own, counter), counter, own.w);
        const idCertHex = toHex(encodePoint(of, idCert));
        lookups.push(
            client.getCertificate(idCertHex).then(
                (c) => {
                    if (c.status === 'used') counts.used++;
                    else if (c.status === 'unused') counts.unused++;
                    else if (c.status === 'revoked') counts.revoked++;
                    else counts.requested++;
                },
                (err: unknown) => {
                    if (errorCodeOf(err) !== 'unknownCertificate') throw err;
                    counts.missing++;
                },
            ),
        );
    }
    await Promise.all(lookups);
    return counts;
}
