/**
 * The org identities a console serves its views under. Each is one of the services' MSP identities
 * with its ledger client; a browser holds one identity's access token (a cookie set by
 * `/login?token=...`), and every ledger read of its pages goes through that identity's client, so
 * the chaincode's access checks decide what it sees.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { ChaincodeClient } from '@m2m-fabric/sdk';
import type { ManufacturerClient } from '@m2m-fabric/services';

export type ConsoleRole = 'csp' | 'fog' | 'manufacturer';

/** Write actions a console may be started with; each is off unless listed. */
export type ConsoleAction = 'register' | 'decommission' | 'grantCredit';
export const CONSOLE_ACTIONS: readonly ConsoleAction[] = ['register', 'decommission', 'grantCredit'];

export interface ConsoleIdentity {
    /** The org's MSP ID, e.g. ManufacturerMSP. */
    readonly mspId: string;
    readonly role: ConsoleRole;
    readonly client: ChaincodeClient;
    /**
     * A manufacturer's own client and data directory (its device records): per-device certificate
     * counts and the register/decommission actions need it.
     */
    readonly manufacturer?: { client: ManufacturerClient; dataDir: string };
    /** Actions enabled for this identity (the role decides which make sense). */
    readonly actions?: readonly ConsoleAction[];
    /** The access token; random when absent. */
    readonly token?: string;
}

/** Which actions each role may be given: the chaincode would refuse the others anyway. */
const ROLE_ACTIONS: Readonly<Record<ConsoleRole, readonly ConsoleAction[]>> = {
    manufacturer: ['register', 'decommission'],
    csp: ['grantCredit'],
    fog: [],
};

export class IdentityTable {
    private readonly byToken = new Map<string, ConsoleIdentity & { token: string; actions: ConsoleAction[] }>();

    constructor(identities: readonly ConsoleIdentity[]) {
        for (const id of identities) {
            const token = id.token ?? randomBytes(24).toString('base64url');
            const actions = (id.actions ?? []).filter((a) => ROLE_ACTIONS[id.role].includes(a));
            this.byToken.set(token, { ...id, token, actions });
        }
    }

    /** The identity of a token, compared in constant time. */
    lookup(token: string | undefined): (ConsoleIdentity & { actions: ConsoleAction[] }) | undefined {
        if (token === undefined) return undefined;
        const given = Buffer.from(token);
        for (const [t, id] of this.byToken) {
            const known = Buffer.from(t);
            if (known.length === given.length && timingSafeEqual(known, given)) return id;
        }
        return undefined;
    }

    /** Token of each identity, by MSP ID (for the login links the console prints). */
    tokens(): { mspId: string; role: ConsoleRole; token: string }[] {
        return [...this.byToken.values()].map((i) => ({ mspId: i.mspId, role: i.role, token: i.token }));
    }
}

/** An identity as the API serves it (its actions resolved), and the Hono environment carrying it. */
export type ServedIdentity = ConsoleIdentity & { actions: ConsoleAction[] };
export type ConsoleEnv = { Variables: { identity: ServedIdentity } };
