/**
 * The CSP's CA key pairs, one per key epoch on the ledger (docs/protocol.md#csp-key-rotation).
 * Epoch 0 is the service key the CSP registered with (keys/csp.json: also its link, login and
 * record signing identity); epoch k > 0 lives in its own key file, `keys/csp-ca-<k>.json` by
 * default, validated at load like every key file, in its epoch's suite (an epoch may be of
 * another suite than the ledger's: docs/protocol.md#rotation-to-another-suite). Issuance uses the
 * newest epoch of the request's suite; Algorithm 3 uses the epoch of the session's certificate;
 * M4's C2 and C3 open under whichever key of the session's suite they were sealed to.
 */
import { join } from 'node:path';
import {
    encodeSchnorrSignature,
    fromHex,
    decodePoint,
    epochOfSuite,
    signCspKeyRotation,
    suiteOr,
    toHex,
    type HpkeRecipient,
    type Suite,
} from '@m2m-fabric/protocol';
import { ServiceError, ServiceErrorCode } from '@m2m-fabric/common';
import type { ChaincodeClient, CspKeyEpoch } from '@m2m-fabric/sdk';
import { loadOrCreateServiceKey, readServiceKey, type ServiceKey } from '../keys.js';

/** Where the key file of CA key epoch `keyId` (> 0) lives under a service data directory. */
export function cspCaKeyPath(dataDir: string, keyId: number): string {
    return join(dataDir, 'keys', `csp-ca-${keyId}.json`);
}

export class CspCaKeys {
    /** The ledger's suite (epoch 0's, the CSP identity's). */
    readonly suite: Suite;
    #epochs: CspKeyEpoch[] = [];
    readonly #pairs = new Map<number, ServiceKey>();

    constructor(
        readonly identity: ServiceKey,
        private readonly keyFile: (keyId: number) => string,
    ) {
        this.suite = identity.suite;
        this.#pairs.set(0, identity);
    }

    /** The epochs as the ledger last listed them, oldest first. */
    get epochs(): readonly CspKeyEpoch[] {
        return this.#epochs;
    }

    /**
     * Re-reads the epochs from the ledger and loads the key file of every epoch not yet held.
     *
     * @throws {ServiceError} cspKeyMismatch when epoch 0 is not this CSP's service key, a key file
     *   holds another key than its epoch, or the current epoch's key file is missing (the CSP could
     *   not issue).
     */
    async refresh(ledger: ChaincodeClient): Promise<void> {
        const csp = await ledger.getCsp();
        const epochs = csp.keys ?? [{ keyId: 0, caPublicKey: csp.caPublicKey, activeFrom: '' }];
        if (epochs[0]?.caPublicKey !== this.identity.publicKeyHex)
            throw new ServiceError(
                ServiceErrorCode.CspKeyMismatch,
                'the ledger holds another CSP key than keys/csp.json',
            );
        for (const epoch of epochs) {
            if (this.#pairs.has(epoch.keyId)) continue;
            const path = this.keyFile(epoch.keyId);
            const pair = await readServiceKey(path, suiteOr(epoch.suite, this.suite));
            if (pair === undefined) continue;
            if (pair.publicKeyHex !== epoch.caPublicKey)
                throw new ServiceError(
                    ServiceErrorCode.CspKeyMismatch,
                    `${path} holds another key than CSP key epoch ${epoch.keyId}`,
                );
            this.#pairs.set(epoch.keyId, pair);
        }
        const current = epochs[epochs.length - 1]!;
        if (!this.#pairs.has(current.keyId))
            throw new ServiceError(
                ServiceErrorCode.CspKeyMismatch,
                `no key file for the current CSP key epoch ${current.keyId} (${this.keyFile(current.keyId)})`,
            );
        this.#epochs = epochs;
    }

    /** The current epoch and its key pair: new certificate requests are made in its suite. */
    current(): { keyId: number; key: ServiceKey } {
        const keyId = this.#epochs.length === 0 ? 0 : this.#epochs[this.#epochs.length - 1]!.keyId;
        return { keyId, key: this.#pairs.get(keyId)! };
    }

    /**
     * The newest epoch of `suite` this CSP holds, and its key pair: the one Algorithm 1 issues a
     * request of that suite under (the current epoch, unless the CA moved to another suite after
     * the request was paid for).
     * @throws {ServiceError} cspKeyMismatch when no epoch of that suite is held
     */
    newestOf(suite: Suite): { keyId: number; key: ServiceKey } {
        const keyId = epochOfSuite(this.#epochs, this.suite, suite)?.keyId ?? (suite.tag === this.suite.tag ? 0 : -1);
        return { keyId, key: this.#heldOf(suite, keyId) };
    }

    /**
     * The CSP's key that stands for it in `suite`: epoch 0's (the identity) for the ledger's suite,
     * else the first epoch of that suite. One fixed key per suite: secondaryHash =
     * H(x(d*HashToCurve(ID_i, i))) of a session of the suite is under it (so it never depends on
     * which epoch of the suite issued the certificate), and so are the CSP's communication records of
     * such sessions (their receiver party for the device).
     * @throws {ServiceError} cspKeyMismatch when no epoch of that suite is held
     */
    suiteIdentityOf(suite: Suite): ServiceKey {
        if (suite.tag === this.suite.tag) return this.identity;
        return this.#heldOf(suite, epochOfSuite(this.#epochs, this.suite, suite, 'first')?.keyId ?? -1);
    }

    /** The key pair of epoch `keyId` of `suite`; cspKeyMismatch when none is held. */
    #heldOf(suite: Suite, keyId: number): ServiceKey {
        const pair = this.#pairs.get(keyId);
        if (pair === undefined || pair.suite.tag !== suite.tag)
            throw new ServiceError(ServiceErrorCode.CspKeyMismatch, `no CSP key epoch of suite ${suite.id} is held`);
        return pair;
    }

    /** The key pair of an epoch, if this CSP holds it. */
    pair(keyId: number): ServiceKey | undefined {
        return this.#pairs.get(keyId);
    }

    /**
     * Every HPKE recipient of `suite` this CSP holds (the ledger's suite by default), newest epoch
     * first (the one most ciphertexts are sealed to).
     */
    recipients(suite: Suite = this.suite): HpkeRecipient[] {
        return [...this.#pairs.entries()]
            .filter(([, pair]) => pair.suite.tag === suite.tag)
            .sort(([a], [b]) => b - a)
            .map(([, pair]) => pair.recipient);
    }
}

/**
 * Rotates the CSP's CA key: creates (or reuses, after a failed attempt) the key file of the next
 * epoch, signs the rotation statement with the current key and the new one, submits
 * registry:rotateCspKey and reloads the epochs. The new key file is on disk (0600) before the
 * ledger names its key, so a crash in between leaves nothing unusable. `newSuite` moves the CA to
 * another suite (default: the current key's); a key file left by a failed attempt in another
 * suite is refused (corruptFile, as keys.ts) rather than reused.
 *
 * @returns the new epoch as the ledger recorded it.
 * @throws {ServiceError} cspKeyMismatch as {@link CspCaKeys.refresh}; the chaincode's refusals
 *   (invalidStateTransition while an earlier overlap is open, weakKey, alreadyExists) as EndorseError.
 */
export async function rotateCspCaKey(
    ledger: ChaincodeClient,
    keys: CspCaKeys,
    keyFile: (keyId: number) => string,
    overlapSeconds: number,
    newSuite?: Suite,
): Promise<CspKeyEpoch> {
    await keys.refresh(ledger);
    const { keyId, key } = keys.current();
    const suite = key.suite;
    const target = newSuite ?? suite;
    const next = await loadOrCreateServiceKey(keyFile(keyId + 1), target);
    const signatures = signCspKeyRotation(
        {
            suite,
            newSuite: target,
            previousKeyId: keyId,
            previousKey: key.publicKey,
            keyId: keyId + 1,
            newKey: decodePoint(target, fromHex(next.publicKeyHex)),
            overlapSeconds,
        },
        key.privateKey,
        next.privateKey,
    );
    await ledger.rotateCspKey(
        target.id,
        next.publicKeyHex,
        overlapSeconds,
        toHex(encodeSchnorrSignature(suite, signatures.previousSignature)),
        toHex(encodeSchnorrSignature(target, signatures.newSignature)),
    );
    await keys.refresh(ledger);
    const epoch = keys.epochs.find((e) => e.keyId === keyId + 1);
    if (epoch === undefined)
        throw new ServiceError(ServiceErrorCode.CspKeyMismatch, 'the rotation is not on the ledger');
    return epoch;
}
