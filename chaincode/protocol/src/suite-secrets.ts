/**
 * A device's owner secret in another suite (docs/protocol.md#rotation-to-another-suite).
 *
 * w is a scalar of the suite the device was provisioned in. When the CSP moves its CA to another
 * suite S, the device's certificates of the new epoch need w as a scalar of S: both the
 * manufacturer (who builds the requests) and the device (which rebuilds k_i) derive
 *   w_S = HashToScalar_S("M2M-V1-SUITE-SECRET-<S>"; equipmentId, w as a scalar of its suite, u8 its suite tag)
 * so no device has to be re-provisioned. w_S reveals nothing of w (a one-way hash), and w_S of two
 * suites are unrelated. The revocation seed stays derived from w in the provisioning suite, so one
 * revocation covers a device's certificates of every suite.
 */
import { encodeScalar } from './encoding.js';
import { hashToScalar } from './hashing.js';
import type { DeviceSecrets } from './session.js';
import { getSuite, type Suite } from './suite.js';

const UTF8 = new TextEncoder();

/**
 * The device's secrets for certificates of `suite`, from those of its provisioning suite.
 * @returns `secrets` itself when `suite` is the provisioning suite.
 */
export function suiteSecrets(provisioningSuite: Suite, secrets: DeviceSecrets, suite: Suite): DeviceSecrets {
    if (suite.tag === provisioningSuite.tag) return secrets;
    const w = hashToScalar(
        suite,
        'SuiteSecret',
        UTF8.encode(secrets.equipmentId),
        encodeScalar(provisioningSuite, secrets.w),
        Uint8Array.of(provisioningSuite.tag),
    );
    return { equipmentId: secrets.equipmentId, w };
}

/** Counters [from, to) (decimal strings) bought in `suite`: a purchase after a rotation to another suite. */
export interface CounterSuiteRange {
    from: string;
    to: string;
    suite: string;
}

/**
 * The suite of counter `counter`'s certificate: that of the range holding it, else `ownSuite`
 * (the device's provisioning suite). One rule for the device, the manufacturer and the console.
 */
export function suiteOfCounter(
    ownSuite: Suite,
    ranges: readonly CounterSuiteRange[] | undefined,
    counter: bigint,
): Suite {
    const range = ranges?.find((r) => BigInt(r.from) <= counter && counter < BigInt(r.to));
    return range === undefined ? ownSuite : getSuite(range.suite);
}
