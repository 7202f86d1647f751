/**
 * The manufacturer client: registers, replaces and decommissions equipment on the M-EB, buys n
 * sessions for a device (Alg. 1: generates I_alpha and the counter proofs from the device's w,
 * stores the request in IPFS, calls requestSessions, waits for the CSP-CA's issuance) and
 * provisions the device's state file. The manufacturer keeps its own 0600 record of each device's
 * w and the next counter to buy, so purchases continue where the last one ended.
 */
import { join } from 'node:path';
import {
    bigIntToBytes,
    contentAddress,
    createCertificateRequest,
    decodeScalar,
    encodeCertificateRequest,
    encodePoint,
    fromHex,
    getSuite,
    randomScalar,
    suiteOr,
    suiteSecrets,
    toHex,
    type CounterSuiteRange,
    type Suite,
    ErrorCode,
    revocationSeed,
    revocationTags,
} from '@m2m-fabric/protocol';
import type { ObjectStore } from '@m2m-fabric/sdk';
import type { ChaincodeClient, EquipmentRecord, EquipmentSpec } from '@m2m-fabric/sdk';
import type { ChannelTrust, RevocationRecord } from '@m2m-fabric/protocol';
import { errorCodeOf, ServiceError, ServiceErrorCode } from '@m2m-fabric/common';
import { readJsonFile, writeJsonAtomic } from '@m2m-fabric/common';
import { readDeviceState, writeDeviceState, type DeviceStateFile } from '@m2m-fabric/device';
import { DeviceStateLock } from '@m2m-fabric/device';
import { deliverGrant, mergeInbox } from '@m2m-fabric/device';

export interface ManufacturerClientOptions {
    suite: Suite;
    ledger: ChaincodeClient;
    store: ObjectStore;
    /** Where the manufacturer keeps each device's w (0600 files). */
    dataDir: string;
    /** How long to wait for the CSP-CA to issue a purchase. */
    issuanceTimeoutMs?: number;
    /**
     * The channel's trust roots, written into every state file provisioned (the device verifies
     * record-query receipts against them offline, with no ledger access of its own).
     */
    channelTrust?: ChannelTrust;
}

interface DeviceRecord {
    equipmentId: string;
    w: string;
    /** First counter not yet bought. */
    nextPurchase: string;
    /**
     * Purchases made in another suite than the device's (after the CSP moved its CA to another
     * suite): the device state's counterSuites, delivered with the grants.
     */
    suiteRanges?: CounterSuiteRange[];
}

export interface ProvisionResult {
    statePath: string;
    /** One past the last purchased counter, as delivered. */
    endCounter: bigint;
    /**
     * `state`: no agent was running, the state file was written (under its lock);
     * `inbox`: an agent runs on the file, the purchase was left in its provisioning inbox and the
     * agent merges it before its next session.
     */
    delivery: 'state' | 'inbox';
}

export interface PurchaseResult {
    requestId: string;
    firstCounter: bigint;
    n: number;
}

export class ManufacturerClient {
    /**
     * Purchases are submitted one at a time (each still waits for issuance in parallel), so that a
     * device's counters are handed out in order. (Credit is no reason any more: purchases consume
     * credit lots of their own, chaincode state.ts.)
     */
    private purchases: Promise<unknown> = Promise.resolve();

    constructor(private readonly options: ManufacturerClientOptions) {}

    private recordPath(equipmentId: string): string {
        return join(this.options.dataDir, 'devices', `${equipmentId}.json`);
    }

    private async deviceRecord(equipmentId: string): Promise<DeviceRecord> {
        const existing = (await readJsonFile(this.recordPath(equipmentId))) as DeviceRecord | undefined;
        if (existing !== undefined) return existing;
        const suite = this.options.suite;
        const rec = { equipmentId, w: toHex(bigIntToBytes(randomScalar(suite), suite.scalarBytes)), nextPurchase: '1' };
        await writeJsonAtomic(this.recordPath(equipmentId), rec);
        return rec;
    }

    /** Registers equipment; an id that already exists is returned as it is (idempotent re-runs). */
    async registerEquipment(spec: Omit<EquipmentSpec, 'publicKey'> & { publicKey?: string }): Promise<EquipmentRecord> {
        const suite = this.options.suite;
        const publicKey = spec.publicKey ?? toHex(encodePoint(suite, suite.Point.BASE.multiply(randomScalar(suite))));
        try {
            return await this.options.ledger.registerEquipment({ ...spec, publicKey });
        } catch (err) {
            if (errorCodeOf(err) === 'alreadyExists') return this.options.ledger.getEquipment(spec.equipmentId);
            throw err;
        }
    }

    async replaceEquipment(oldEquipmentId: string, spec: EquipmentSpec): Promise<unknown> {
        return this.options.ledger.replaceEquipment(oldEquipmentId, spec);
    }

    async decommission(equipmentId: string): Promise<EquipmentRecord> {
        return this.options.ledger.updateEquipmentStatus(equipmentId, 'decommissioned');
    }

    /**
     * Revokes the device's certificates of counters [fromCounter, toCounter) (default: every one
     * bought so far) with its revocation seed rs_α, derived from w and never sent but in the
     * transaction's transient map.
     *
     * @throws EndorseError with the chaincode's alreadyRevoked, unknownCertificate, unauthorisedMsp,
     *   malformedInput.
     */
    async revokeDevice(equipmentId: string, fromCounter = 1n, toCounter?: bigint): Promise<RevocationRecord> {
        const suite = this.options.suite;
        const rec = await this.deviceRecord(equipmentId);
        const secrets = { w: decodeScalar(suite, fromHex(rec.w)), equipmentId };
        return this.options.ledger.revokeDevice(
            revocationSeed(suite, secrets),
            fromCounter,
            toCounter ?? BigInt(rec.nextPurchase),
        );
    }

    async setStatus(equipmentId: string, status: string): Promise<EquipmentRecord> {
        return this.options.ledger.updateEquipmentStatus(equipmentId, status);
    }

    async listEquipment(): Promise<EquipmentRecord[]> {
        return this.options.ledger.listEquipmentByOwner(this.options.ledger.connection.identity.mspId);
    }

    async history(equipmentId: string): Promise<unknown> {
        return this.options.ledger.getEquipmentHistory(equipmentId);
    }

    /**
     * Resolves once this client's own peer shows a balance of at least `credits`: a grant the CSP
     * committed on its peer reaches the manufacturer's peer moments later, and a purchase endorsed
     * before then would find no credit.
     *
     * @throws ServiceError `timeout` when the balance is still short after `timeoutMs` (default 60 s).
     */
    async waitForCredit(credits: number, timeoutMs = 60_000): Promise<number> {
        const deadline = Date.now() + timeoutMs;
        const account = this.options.ledger.connection.identity.mspId;
        for (;;) {
            const { balance } = await this.options.ledger.getCredit(account);
            if (balance >= credits) return balance;
            if (Date.now() > deadline)
                throw new ServiceError(
                    ServiceErrorCode.Timeout,
                    `the account holds ${balance} credits on this peer, ${credits} expected`,
                );
            await new Promise((r) => setTimeout(r, 100));
        }
    }

    /**
     * Buys n sessions for a device: Alg. 1 request, then waits until the CSP-CA issued them.
     * @throws {ServiceError} `storageUnavailable` when: storing the request: …
     */
    async buySessions(equipmentId: string, n: number): Promise<PurchaseResult> {
        const suite = this.options.suite;
        const rec = await this.deviceRecord(equipmentId);
        const firstCounter = BigInt(rec.nextPurchase);
        const secrets = { w: decodeScalar(suite, fromHex(rec.w)), equipmentId };
        // The request is in the current CA key's suite (the chaincode refuses any other); after a
        // rotation to another suite, with the device's owner secret derived for that suite. The
        // revocation tags stay in the device's own suite, so one revocation covers both.
        const issuing = await this.currentIssuingSuite();
        const request = encodeCertificateRequest(
            createCertificateRequest(issuing, suiteSecrets(suite, secrets, issuing), firstCounter, n),
        );
        const requestId = contentAddress(request);
        try {
            await this.options.store.put(request);
        } catch (err) {
            throw new ServiceError(
                ServiceErrorCode.StorageUnavailable,
                `storing the request: ${(err as Error).message}`,
            );
        }
        const submitted = this.purchases.then(async () => {
            const tags = revocationTags(suite, revocationSeed(suite, secrets), firstCounter, n);
            await this.options.ledger.requestSessions(n, requestId, request, tags);
            // The counters are committed to this request now; never buy them again.
            rec.nextPurchase = (firstCounter + BigInt(n)).toString();
            if (issuing.tag !== suite.tag)
                rec.suiteRanges = [
                    ...(rec.suiteRanges ?? []),
                    { from: firstCounter.toString(), to: rec.nextPurchase, suite: issuing.id },
                ];
            await writeJsonAtomic(this.recordPath(equipmentId), rec);
        });
        this.purchases = submitted.catch(() => undefined);
        await submitted;
        await this.waitIssued(requestId);
        return { requestId, firstCounter, n };
    }

    /** The suite of the CSP's current CA key epoch: the one a purchase is made in. */
    private async currentIssuingSuite(): Promise<Suite> {
        const csp = await this.options.ledger.getCsp();
        const current = csp.keys?.[csp.keys.length - 1];
        return suiteOr(current?.suite, getSuite(csp.suite));
    }

    private async waitIssued(requestId: string): Promise<void> {
        const deadline = Date.now() + (this.options.issuanceTimeoutMs ?? 60_000);
        for (;;) {
            const req = await this.options.ledger.getRequest(requestId);
            if (req.status === 'issued') return;
            if (Date.now() > deadline)
                throw new ServiceError(ServiceErrorCode.Timeout, `request ${requestId} not issued yet`);
            await new Promise((r) => setTimeout(r, 100));
        }
    }

    /**
     * Writes (or extends) the device's state file: secrets, the fog it uses and its key from the
     * ledger, Q_c, and the purchased counter range. The device's own next counter is kept.
     *
     * The state file has one writer at a time (its lock, device/state-lock.ts). When no agent runs
     * the lock is taken for the write; when an agent runs on the file, the purchase goes to the
     * file's provisioning inbox and the agent merges it (device/inbox.ts) — the manufacturer never
     * writes `nextCounter` under a running agent, so no counter is reused or lost. Moving a device
     * to another fog needs its agent stopped (`deviceBusy` otherwise).
     * @throws {ServiceError} `fogNotApproved` when: fog … is …
     * @throws {ServiceError} `deviceBusy` when: a device agent runs on …; stop it before moving the device to fog … or new keys
     */
    async provisionDevice(
        equipmentId: string,
        statePath: string,
        fog: { id: string; brokerUrl?: string },
    ): Promise<ProvisionResult> {
        const rec = await this.deviceRecord(equipmentId);
        const [csp, fogRecord] = await Promise.all([this.options.ledger.getCsp(), this.options.ledger.getFog(fog.id)]);
        if (fogRecord.status !== 'approved')
            throw new ServiceError(ErrorCode.FogNotApproved, `fog ${fog.id} is ${fogRecord.status}`);
        const endCounter = BigInt(rec.nextPurchase);
        const fogEntry = {
            id: fog.id,
            publicKey: fogRecord.publicKey,
            ...(fog.brokerUrl !== undefined ? { brokerUrl: fog.brokerUrl } : {}),
        };
        const checkSameDevice = (existing: DeviceStateFile): void => {
            if (existing.equipmentId !== equipmentId || existing.w !== rec.w)
                throw new ServiceError(
                    ErrorCode.MalformedInput,
                    `${statePath} belongs to equipment ${existing.equipmentId} with other secrets; refusing to overwrite it`,
                );
        };
        let lock: DeviceStateLock;
        try {
            lock = await DeviceStateLock.acquire(statePath, { waitMs: 0 });
        } catch (err) {
            if (errorCodeOf(err) !== ServiceErrorCode.DeviceBusy) throw err;
            // An agent runs on the file: deliver through its inbox, change nothing else.
            const existing = await readDeviceState(statePath);
            if (existing === undefined) throw err;
            checkSameDevice(existing);
            const sameFog =
                existing.fog.id === fogEntry.id &&
                existing.fog.publicKey === fogEntry.publicKey &&
                existing.fog.brokerUrl === fogEntry.brokerUrl &&
                existing.cspPublicKey === csp.caPublicKey;
            if (!sameFog)
                throw new ServiceError(
                    ServiceErrorCode.DeviceBusy,
                    `a device agent runs on ${statePath}; stop it before moving the device to fog ${fog.id} or new keys`,
                );
            // Purchases in another suite first, each with its range, then the end of what was bought.
            for (const range of rec.suiteRanges ?? []) {
                const known = existing.counterSuites?.some((r) => r.from === range.from && r.to === range.to);
                if (known !== true)
                    await deliverGrant(statePath, equipmentId, BigInt(range.to), {
                        suite: range.suite,
                        firstCounter: BigInt(range.from),
                    });
            }
            if (endCounter > BigInt(existing.endCounter)) await deliverGrant(statePath, equipmentId, endCounter);
            return { statePath, endCounter, delivery: 'inbox' };
        }
        try {
            const existing = await readDeviceState(statePath);
            if (existing !== undefined) checkSameDevice(existing);
            const state: DeviceStateFile = {
                version: 1,
                suite: this.options.suite.id,
                equipmentId,
                w: rec.w,
                fog: fogEntry,
                cspPublicKey: csp.caPublicKey,
                nextCounter: existing?.nextCounter ?? '1',
                endCounter: (existing !== undefined && BigInt(existing.endCounter) > endCounter
                    ? BigInt(existing.endCounter)
                    : endCounter
                ).toString(),
                ...(existing?.lastInstructionId !== undefined ? { lastInstructionId: existing.lastInstructionId } : {}),
                ...(existing?.pendingCounter !== undefined ? { pendingCounter: existing.pendingCounter } : {}),
                ...(existing?.session !== undefined ? { session: existing.session } : {}),
                ...(rec.suiteRanges !== undefined ? { counterSuites: rec.suiteRanges } : {}),
                ...(this.options.channelTrust !== undefined
                    ? { channelTrust: this.options.channelTrust }
                    : existing?.channelTrust !== undefined
                      ? { channelTrust: existing.channelTrust }
                      : {}),
            };
            await lock.assertHeld();
            await writeDeviceState(statePath, state);
            // Grants an agent left unmerged (it crashed, or ran while we bought) are folded in too.
            const merged = await mergeInbox(statePath, state, async () => {
                await lock.assertHeld();
                await writeDeviceState(statePath, state);
            });
            return { statePath, endCounter: merged.endCounter, delivery: 'state' };
        } finally {
            await lock.release();
        }
    }
}
