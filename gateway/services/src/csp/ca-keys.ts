/**
 * The CSP's CA key pairs, one per key epoch on the ledger (docs/protocol.md#csp-key-rotation).
 * Epoch 0 is the service key the CSP registered with (keys/csp.json: also its link, login and
 * record signing identity); epoch k > 0 lives in its own key file, `keys/csp-ca-<k>.json` by
 * default, validated at load like every key file. Issuance uses the current (newest) epoch;
 * Algorithm 3 uses the epoch of the session's certificate; M4's C2 and C3 open under whichever key
 * they were sealed to.
 */
import { join } from 'node:path';
import {
    encodeSchnorrSignature,
    fromHex,
    decodePoint,
    signCspKeyRotation,
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
            const pair = await readServiceKey(path, this.suite);
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

    /** The current epoch and its key pair: the one Algorithm 1 issues under. */
    current(): { keyId: number; key: ServiceKey } {
        const keyId = this.#epochs.length === 0 ? 0 : this.#epochs[this.#epochs.length - 1]!.keyId;
        return { keyId, key: this.#pairs.get(keyId)! };
    }

    /** The key pair of an epoch, if this CSP holds it. */
    pair(keyId: number): ServiceKey | undefined {
        return this.#pairs.get(keyId);
    }

    /** Every HPKE recipient this CSP holds, newest epoch first (the one most ciphertexts are sealed to). */
    recipients(): HpkeRecipient[] {
        return [...this.#pairs.entries()].sort(([a], [b]) => b - a).map(([, pair]) => pair.recipient);
    }
}

/**
 * Rotates the CSP's CA key: creates (or reuses, after a failed attempt) the key file of the next
 * epoch, signs the rotation statement with the current key and the new one, submits
 * registry:rotateCspKey and reloads the epochs. The new key file is on disk (0600) before the
 * ledger names its key, so a crash in between leaves nothing unusable.
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
): Promise<CspKeyEpoch> {
    await keys.refresh(ledger);
    const suite = keys.suite;
    const { keyId, key } = keys.current();
    const next = await loadOrCreateServiceKey(keyFile(keyId + 1), suite);
    const signatures = signCspKeyRotation(
        {
            suite,
            previousKeyId: keyId,
            previousKey: key.publicKey,
            keyId: keyId + 1,
            newKey: decodePoint(suite, fromHex(next.publicKeyHex)),
            overlapSeconds,
        },
        key.privateKey,
        next.privateKey,
    );
    await ledger.rotateCspKey(
        suite.id,
        next.publicKeyHex,
        overlapSeconds,
        toHex(encodeSchnorrSignature(suite, signatures.previousSignature)),
        toHex(encodeSchnorrSignature(suite, signatures.newSignature)),
    );
    await keys.refresh(ledger);
    const epoch = keys.epochs.find((e) => e.keyId === keyId + 1);
    if (epoch === undefined)
        throw new ServiceError(ServiceErrorCode.CspKeyMismatch, 'the rotation is not on the ledger');
    return epoch;
}
