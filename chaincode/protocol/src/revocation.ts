/**
 * Revocation linkage (SCMS-style): each certificate carries a revocation tag that looks random
 * until its device is revoked.
 *
 *   rs_α  = H(RevocationSeed, equipmentId, w)          per device, held by its owner
 *   t_i   = H(RevocationTag, rs_α, i)                   per certificate, registered at purchase
 *
 * Before revocation a tag is a pseudorandom value of one certificate: nothing on-chain links two
 * of a device's tags (or certificates) without rs_α. Revoking reveals rs_α and a counter range; the
 * chaincode recomputes t_i for that range and withdraws the certificates they name. From then on
 * anyone can link exactly that device's certificates (those under rs_α) to one another — and to
 * nothing else: rs_α reveals neither w, nor ID_i, nor the equipment id, and no other device's tags.
 */
import { ByteWriter, encodeScalar } from './encoding.js';
import { hashBytes } from './hashing.js';
import type { DeviceSecrets } from './session.js';
import type { Suite } from './suite.js';

const UTF8 = new TextEncoder();

/** Most counters one revocation transaction recomputes tags for (bounds its work). */
export const MAX_REVOCATION_RANGE = 1024;

/** rs_α: the device's revocation seed, derived from its owner's secrets (hashBytes long). */
export function revocationSeed(suite: Suite, secrets: DeviceSecrets): Uint8Array {
    return hashBytes(suite, 'RevocationSeed', UTF8.encode(secrets.equipmentId), encodeScalar(suite, secrets.w));
}

/**
 * t_i = H(RevocationTag, rs_α, i) (hashBytes long).
 * @throws {RangeError} when: revocation seed must be … bytes; session counter i must be in [1, 2^64-1]
 */
export function revocationTag(suite: Suite, seed: Uint8Array, counter: bigint): Uint8Array {
    if (seed.length !== suite.hashBytes) throw new RangeError(`revocation seed must be ${suite.hashBytes} bytes`);
    if (counter < 1n || counter >= 1n << 64n) throw new RangeError('session counter i must be in [1, 2^64-1]');
    return hashBytes(suite, 'RevocationTag', seed, new ByteWriter().u64(counter).finish());
}

/** The tags of counters [first, first + n), concatenated in request-entry order. */
export function revocationTags(suite: Suite, seed: Uint8Array, firstCounter: bigint, n: number): Uint8Array {
    const out = new Uint8Array(n * suite.hashBytes);
    for (let k = 0; k < n; k++) out.set(revocationTag(suite, seed, firstCounter + BigInt(k)), k * suite.hashBytes);
    return out;
}

/**
 * The ledger key of a device's revocation: H(RevocationSeed, rs_α); rs_α itself never reaches the ledger.
 * @throws {RangeError} when: revocation seed must be … bytes
 */
export function revocationId(suite: Suite, seed: Uint8Array): Uint8Array {
    if (seed.length !== suite.hashBytes) throw new RangeError(`revocation seed must be ${suite.hashBytes} bytes`);
    return hashBytes(suite, 'RevocationSeed', seed);
}

/**
 * What `revocation:revokeDevice` did, as it returns it and records it on the ledger under
 * revocationId = H(rs_α). The counter range [fromCounter, toCounter) stands in the transaction's
 * arguments and in this record: from this commit on, the device's certificates of that range are
 * linkable to one another (SCMS-style), and to nothing else.
 */
export interface RevocationRecord {
    revocationId: string;
    owner: string;
    revokedBy: string;
    /** The transaction timestamp (ISO 8601). */
    revokedAt: string;
    fromCounter: number;
    toCounter: number;
    /** Certificates withdrawn by this revocation (issued but unused, or still requested). */
    revoked: number;
    /** Certificates of the range already used by a session (left as they are). */
    used: number;
}
