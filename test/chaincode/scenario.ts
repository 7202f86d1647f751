/**
 * Steps of the protocol as the services will run them, on a test network: each one builds the
 * off-chain messages with the protocol module and submits the chaincode transaction.
 */
import assert from 'node:assert/strict';

import { fromHex, toHex } from '@m2m-fabric/protocol';
import type { DeviceSecrets, ErrorCode } from '@m2m-fabric/protocol';
import { EndorseError } from '@m2m-fabric/sdk';

import {
    buildRequest,
    cspFogAddress,
    issuanceTransient,
    issueObjects,
    prepareActivation,
    prepareSynchronisation,
} from './actors.js';
import type { FogActor, PreparedActivation, SessionRequest } from './actors.js';
import type { Party, TestNetwork } from './network.js';

export type Json = Record<string, unknown>;

const decoder = new TextDecoder();

export interface Call {
    args?: string[];
    transient?: Record<string, Uint8Array>;
}

/** Submits `contract:transaction` as `party` and parses the JSON result. */
export async function submit(party: Party, contract: string, transaction: string, call: Call = {}): Promise<Json> {
    const payload = await party.contract(contract).submit(transaction, {
        arguments: call.args ?? [],
        transientData: call.transient ?? {},
    });
    return JSON.parse(decoder.decode(payload)) as Json;
}

/** Evaluates `contract:transaction` as `party` and parses the JSON result. */
export async function evaluate(party: Party, contract: string, transaction: string, call: Call = {}): Promise<Json> {
    const payload = await party.contract(contract).evaluate(transaction, {
        arguments: call.args ?? [],
        transientData: call.transient ?? {},
    });
    return JSON.parse(decoder.decode(payload)) as Json;
}

/** Asserts the call is refused by the chaincode with `code` (recovered from the Fabric error string). */
export async function assertRejected(call: Promise<unknown>, code: ErrorCode): Promise<void> {
    await assert.rejects(call, (error: unknown) => {
        assert.ok(error instanceof EndorseError, `expected an EndorseError, got ${String(error)}`);
        assert.equal(error.errorCode, code, error.chaincodeMessage);
        return true;
    });
}

/**
 * Submits a transaction that must be refused with `code` and checks that the world state and the
 * chain height are exactly what they were before.
 */
export async function assertRejectedUnchanged(
    net: TestNetwork,
    call: () => Promise<unknown>,
    code: ErrorCode,
): Promise<void> {
    const before = await net.stateFingerprint();
    await assertRejected(call(), code);
    assert.equal(await net.stateFingerprint(), before, `state changed after a ${code} rejection`);
}

/** Registers Q_c, both fogs (approved) and grants the manufacturer `credit`. */
export async function bootstrap(net: TestNetwork, credit = 1000): Promise<void> {
    const { parties, csp } = net;
    await submit(parties.csp, 'registry', 'registerCsp', { args: [csp.suite.id, csp.publicKeyHex] });
    for (const [fog, party] of [
        [net.fogA, parties.fogA],
        [net.fogB, parties.fogB],
    ] as const) {
        await registerFog(party, fog);
        await submit(parties.csp, 'registry', 'approveFog', { args: [fog.id, cspFogAddress(csp, fog)] });
    }
    if (credit > 0) {
        await submit(parties.csp, 'registry', 'grantCredit', { args: [parties.manufacturer.mspId, String(credit)] });
    }
}

export async function registerFog(party: Party, fog: FogActor): Promise<Json> {
    return submit(party, 'registry', 'registerFog', { args: [fog.id, fog.publicKeyHex, fog.addressHex] });
}

/** Alg. 1 for one device: request n sessions from `first`, then the CSP issues them. */
export async function purchase(
    net: TestNetwork,
    device: DeviceSecrets,
    first: bigint,
    n: number,
): Promise<{ request: SessionRequest; objects: Uint8Array[] }> {
    const request = buildRequest(net.csp.suite, device, first, n);
    await submit(net.parties.manufacturer, 'certificates', 'requestSessions', {
        args: [String(n), request.cid],
        transient: { request: request.bytes },
    });
    const objects = issueObjects(net.csp, request);
    await submit(net.parties.csp, 'certificates', 'issueCertificates', {
        args: [request.cid],
        transient: issuanceTransient(request, objects),
    });
    return { request, objects };
}

/** The fog party of a fog actor. */
export function fogParty(net: TestNetwork, fog: FogActor): Party {
    return fog.id === net.fogA.id ? net.parties.fogA : net.parties.fogB;
}

export async function activate(net: TestNetwork, fog: FogActor, prepared: PreparedActivation): Promise<Json> {
    return submit(fogParty(net, fog), 'sessions', 'activateSession', {
        args: [fog.id],
        transient: { activation: prepared.bytes },
    });
}

/** Alg. 2 + 3 for one session: activation at `fog`, then the CSP's synchronisation. */
export async function runSession(
    net: TestNetwork,
    fog: FogActor,
    device: DeviceSecrets,
    counter: bigint,
    object: Uint8Array,
): Promise<{ prepared: PreparedActivation; primaryHash: string; secondaryHash: string; sync: Uint8Array }> {
    const prepared = await prepareActivation(net.csp, fog, device, counter, object);
    const activated = await activate(net, fog, prepared);
    const primaryHash = activated.primaryHash as string;
    const sync = await prepareSynchronisation(net.csp, fog, prepared, fromHex(primaryHash));
    await submit(net.parties.csp, 'sessions', 'synchroniseSession', { transient: { synchronisation: sync.bytes } });
    return { prepared, primaryHash, secondaryHash: toHex(sync.secondaryHash), sync: sync.bytes };
}
