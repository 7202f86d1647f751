/**
 * The access matrix as a rerunnable suite (issue 17): every chaincode function × every identity
 * that must not call it — the other organisations, an organisation with no role, identities whose
 * role attribute is missing or wrong, and, for every organisation, an identity issued by a foreign
 * CA under that organisation's MSP ID — is denied; the expected callers are allowed (their call is
 * not refused for access, whatever it then says about the arguments). Denials change nothing.
 */
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { ErrorCode, P256_SHA256 } from '@m2m-fabric/protocol';
import { EndorseError } from '@m2m-fabric/sdk';
import { EmbeddedLedger } from '@m2m-fabric/embedded-ledger';
import { CHAINCODE, ORGANISATIONS, startNetwork, type Parties, type Party } from '../chaincode/network.js';
import { bootstrap } from '../chaincode/scenario.js';
import { TRANSACTIONS, type RoleName } from '../chaincode/transactions.js';

/** The roles each identity legitimately holds. */
const HELD: Record<keyof Parties, RoleName[]> = {
    csp: ['csp'],
    fogA: ['fog'],
    fogB: ['fog'],
    manufacturer: ['manufacturer'],
    outsider: [],
    cspWithoutRole: [],
    fogAsManufacturer: [],
};

export interface AccessCell {
    contract: string;
    transaction: string;
    caller: string;
    expected: 'denied' | 'allowed';
    outcome: 'denied' | 'allowed';
    /** The chaincode's error code, or the endorsement failure for a foreign-CA identity. */
    detail: string;
}

export interface AccessResult {
    functions: number;
    identities: number;
    denied: number;
    wronglyAllowed: number;
    allowed: number;
    wronglyDenied: number;
    stateChanged: boolean;
    failures: AccessCell[];
    cells: AccessCell[];
    durationMs: number;
}

/** Runs the matrix; `sample` (0..1] keeps that share of the functions (the bounded slice of `npm test`). */
export async function runAccessMatrix(options: { sample?: number } = {}): Promise<AccessResult> {
    const started = performance.now();
    const net = await startNetwork(P256_SHA256);
    const foreignDir = mkdtempSync(join(tmpdir(), 'm2m-foreign-ca-'));
    try {
        await bootstrap(net, 5);
        // The same MSP IDs and role attributes, but certificates from CAs the channel does not know.
        const outsider = await EmbeddedLedger.open({
            dataDir: foreignDir,
            organisations: ORGANISATIONS,
            chaincodes: [],
            sync: false,
        });
        const foreign: Party[] = [];
        const roleOf: Record<string, string> = {
            CSPMSP: 'csp',
            FogAMSP: 'fog',
            FogBMSP: 'fog',
            ManufacturerMSP: 'manufacturer',
            OtherMSP: 'csp',
        };
        const connections = [];
        for (const mspId of ORGANISATIONS) {
            const e = await outsider.enrol(mspId, `stranger-${mspId}`, { attributes: { 'm2m.role': roleOf[mspId]! } });
            const connection = await net.ledger.connect({ identity: e.identity, signer: e.signer });
            connections.push(connection);
            foreign.push({
                label: `foreign-CA ${mspId}`,
                mspId,
                contract: (name) => connection.getContract(CHAINCODE, name),
            });
        }
        await outsider.close();

        const before = await net.stateFingerprint();
        const cells: AccessCell[] = [];
        const all = Object.entries(TRANSACTIONS).flatMap(([contract, txs]) =>
            Object.entries(txs).map(([name, spec]) => ({ contract, name, spec })),
        );
        const sample = options.sample ?? 1;
        const chosen = all.filter((_, i) => sample >= 1 || i % Math.round(1 / sample) === 0);
        const call = async (
            party: Party,
            contract: string,
            name: string,
            args: string[],
            submitIt: boolean,
        ): Promise<{ outcome: 'denied' | 'allowed'; detail: string }> => {
            try {
                const c = party.contract(contract);
                if (submitIt) await c.submit(name, { arguments: args });
                else await c.evaluate(name, { arguments: args });
                return { outcome: 'allowed', detail: 'ok' };
            } catch (err) {
                if (!(err instanceof EndorseError)) return { outcome: 'allowed', detail: `untyped: ${String(err)}` };
                if (err.errorCode === ErrorCode.UnauthorisedMsp) return { outcome: 'denied', detail: err.errorCode };
                // Refused before the chaincode ran: the creator's certificate is not from a channel CA.
                if (err.errorCode === undefined && /creator/.test(err.chaincodeMessage))
                    return { outcome: 'denied', detail: 'creator not valid' };
                return { outcome: 'allowed', detail: err.errorCode ?? err.chaincodeMessage.slice(0, 80) };
            }
        };
        for (const { contract, name, spec } of chosen) {
            // Plausible arguments: the role check comes before any argument is read.
            const args = (party: Party): string[] =>
                spec.parameters.map((p) =>
                    p === 'pageSize'
                        ? '10'
                        : p === 'account' || p === 'owner'
                          ? party.mspId
                          : p === 'fogId'
                            ? party.mspId === 'FogBMSP'
                                ? net.fogB.id
                                : net.fogA.id
                            : 'x',
                );
            for (const [label, party] of Object.entries(net.parties) as [keyof Parties, Party][]) {
                const expected = HELD[label].some((role) => spec.roles.includes(role)) ? 'allowed' : 'denied';
                // Denials are submitted (a denial must hold all the way to the ledger); allowed calls are
                // only evaluated, so the matrix does not itself change the state it checks.
                const r = await call(
                    party,
                    contract,
                    name,
                    args(party),
                    expected === 'denied' && spec.evaluate !== true,
                );
                cells.push({ contract, transaction: name, caller: party.label, expected, ...r });
            }
            for (const party of foreign) {
                const r = await call(party, contract, name, args(party), spec.evaluate !== true);
                cells.push({ contract, transaction: name, caller: party.label, expected: 'denied', ...r });
            }
        }
        const stateChanged = (await net.stateFingerprint()) !== before;
        for (const c of connections) c.close();
        const failures = cells.filter((c) => c.outcome !== c.expected);
        return {
            functions: chosen.length,
            identities: Object.keys(net.parties).length + foreign.length,
            denied: cells.filter((c) => c.expected === 'denied' && c.outcome === 'denied').length,
            wronglyAllowed: cells.filter((c) => c.expected === 'denied' && c.outcome === 'allowed').length,
            allowed: cells.filter((c) => c.expected === 'allowed' && c.outcome === 'allowed').length,
            wronglyDenied: cells.filter((c) => c.expected === 'allowed' && c.outcome === 'denied').length,
            stateChanged,
            failures,
            cells,
            durationMs: Math.round(performance.now() - started),
        };
    } finally {
        await net.close();
        rmSync(foreignDir, { recursive: true, force: true });
    }
}
