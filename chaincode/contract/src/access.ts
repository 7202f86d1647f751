/**
 * Access control: a caller acts in a role (csp, fog, manufacturer) when its MSP is one of the
 * role's organisations AND its certificate carries the role attribute (`m2m.role`, issued by the
 * organisation's Fabric CA). The MSP check stops other organisations; the attribute stops an
 * organisation's other identities (a peer admin, a client of another service) from acting in a
 * role the organisation did not give them.
 *
 * The MSP lists come from the chaincode's environment at start-up (every endorsing peer must run
 * the chaincode with the same values, as with any chaincode parameter); defaults match the
 * project's network: CSPMSP, FogAMSP, FogBMSP, ManufacturerMSP.
 */
import type { Context } from 'fabric-contract-api';
import type { EnvSetting } from '@m2m-fabric/protocol';

import { ErrorCode, reject } from './errors.js';

export const Role = {
    Csp: 'csp',
    Fog: 'fog',
    Manufacturer: 'manufacturer',
} as const;
export type Role = (typeof Role)[keyof typeof Role];

export const ROLE_ATTRIBUTE = 'm2m.role';

export interface AccessPolicy {
    /** MSP ids per role. */
    readonly msps: Readonly<Record<Role, readonly string[]>>;
    /** When false only the MSP is checked (networks whose CA issues no attributes, e.g. cryptogen). */
    readonly requireRoleAttribute: boolean;
}

export const DEFAULT_ACCESS_POLICY: AccessPolicy = {
    msps: {
        csp: ['CSPMSP'],
        fog: ['FogAMSP', 'FogBMSP'],
        manufacturer: ['ManufacturerMSP'],
    },
    requireRoleAttribute: true,
};

/**
 * The access policy's settings, read from the chaincode process's environment (the peer's
 * chaincode environment, or the `m2m peer` / `m2m demo` / `m2m serve` process that hosts the
 * embedded peers); `--help` of those commands lists them from here.
 */
export const ACCESS_POLICY_SETTINGS = {
    cspMsps: {
        env: 'M2M_CSP_MSPS',
        description: 'chaincode: MSP ids acting as the CSP (comma-separated)',
        default: DEFAULT_ACCESS_POLICY.msps.csp.join(','),
    },
    fogMsps: {
        env: 'M2M_FOG_MSPS',
        description: 'chaincode: MSP ids of fog operators (comma-separated)',
        default: DEFAULT_ACCESS_POLICY.msps.fog.join(','),
    },
    manufacturerMsps: {
        env: 'M2M_MANUFACTURER_MSPS',
        description: 'chaincode: MSP ids of manufacturers (comma-separated)',
        default: DEFAULT_ACCESS_POLICY.msps.manufacturer.join(','),
    },
    requireRoleAttribute: {
        env: 'M2M_REQUIRE_ROLE_ATTRIBUTE',
        description: "chaincode: 'false' checks the MSP only, not the m2m.role attribute (CAs without attributes)",
        default: DEFAULT_ACCESS_POLICY.requireRoleAttribute,
    },
} as const satisfies Record<string, EnvSetting>;

function mspList(value: string | undefined, fallback: readonly string[]): readonly string[] {
    if (value === undefined || value.trim() === '') {
        return fallback;
    }
    return value
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '');
}

/**
 * Reads the {@link ACCESS_POLICY_SETTINGS} once, when the chaincode process starts: the MSP lists
 * (comma-separated; unset or blank: the default) and whether the role attribute is required
 * (anything but 'false': required).
 */
export function accessPolicyFromEnv(env: NodeJS.ProcessEnv = process.env): AccessPolicy {
    const s = ACCESS_POLICY_SETTINGS;
    return {
        msps: {
            csp: mspList(env[s.cspMsps.env], DEFAULT_ACCESS_POLICY.msps.csp),
            fog: mspList(env[s.fogMsps.env], DEFAULT_ACCESS_POLICY.msps.fog),
            manufacturer: mspList(env[s.manufacturerMsps.env], DEFAULT_ACCESS_POLICY.msps.manufacturer),
        },
        requireRoleAttribute: env[s.requireRoleAttribute.env] !== 'false',
    };
}

/** Who is calling, once a role check has passed. */
export interface Caller {
    role: Role;
    mspId: string;
}

function holdsRole(ctx: Context, policy: AccessPolicy, role: Role): boolean {
    if (!policy.msps[role].includes(ctx.clientIdentity.getMSPID())) {
        return false;
    }
    return !policy.requireRoleAttribute || ctx.clientIdentity.getAttributeValue(ROLE_ATTRIBUTE) === role;
}

/** The first of `roles` the caller holds; UnauthorisedMsp when it holds none. */
export function requireRole(ctx: Context, policy: AccessPolicy, ...roles: Role[]): Caller {
    for (const role of roles) {
        if (holdsRole(ctx, policy, role)) {
            return { role, mspId: ctx.clientIdentity.getMSPID() };
        }
    }
    return reject(
        ErrorCode.UnauthorisedMsp,
        `caller from ${ctx.clientIdentity.getMSPID()} may not do this (requires role ${roles.join(' or ')})`,
    );
}

/** A manufacturer may act on its own account only; the CSP (and, where allowed, a fog) on any. */
export function requireOwnerOrRole(caller: Caller, owner: string, what: string): void {
    if (caller.role === Role.Manufacturer && caller.mspId !== owner) {
        reject(ErrorCode.UnauthorisedMsp, `${what} belongs to another organisation`);
    }
}
