/**
 * Endorsement policies in Fabric's syntax, evaluated the way Fabric's policy engine does:
 *
 *  - implicit meta policies over the channel's organisations: `MAJORITY Endorsement` (Fabric's
 *    default), `ANY Endorsement`, `ALL Endorsement`, where each organisation's `Endorsement`
 *    policy is signed by one of its peers;
 *  - signature policies: `AND(...)`, `OR(...)`, `OutOf(n, ...)` over principals `'MSPID.role'`
 *    with role `member`, `peer`, `admin`, `client` or `orderer`.
 *
 * As in Fabric, each signing identity counts at most once (a greedy evaluation with a "used" set),
 * so two endorsements from the same peer do not satisfy `OutOf(2, ...)`.
 */
import type { IdentityRole } from './msp.js';

export type PrincipalRole = IdentityRole | 'member';

export type Policy =
    | { readonly kind: 'signedBy'; readonly mspId: string; readonly role: PrincipalRole }
    | { readonly kind: 'outOf'; readonly n: number; readonly rules: readonly Policy[] };

/** An identity that signed (an endorser), as far as policies care. */
export interface PolicySigner {
    readonly mspId: string;
    readonly role: IdentityRole | undefined;
    /** Distinguishes identities so each counts once. */
    readonly id: string;
}

export class PolicySyntaxError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'PolicySyntaxError';
    }
}

/**
 * Parses a policy. `channelOrganisations` resolves implicit meta policies; their order does not
 * matter. Throws {@link PolicySyntaxError} on anything it does not understand.
 * @throws {PolicySyntaxError} when: an implicit meta policy needs at least one organisation
 */
export function parsePolicy(text: string, channelOrganisations: readonly string[]): Policy {
    const trimmed = text.trim();
    const meta = /^(ANY|ALL|MAJORITY)\s+Endorsement$/.exec(trimmed);
    if (meta) {
        const orgs = [...channelOrganisations].sort();
        if (orgs.length === 0) throw new PolicySyntaxError('an implicit meta policy needs at least one organisation');
        const rules: Policy[] = orgs.map((mspId) => ({ kind: 'signedBy', mspId, role: 'peer' }));
        const n = meta[1] === 'ANY' ? 1 : meta[1] === 'ALL' ? orgs.length : Math.floor(orgs.length / 2) + 1;
        return { kind: 'outOf', n, rules };
    }
    const parser = new Parser(trimmed);
    const policy = parser.parsePolicy();
    parser.expectEnd();
    return policy;
}

class Parser {
    #pos = 0;
    constructor(readonly text: string) {}

    parsePolicy(): Policy {
        this.#skipSpace();
        if (this.#peek() === "'" || this.#peek() === '"') return this.#parsePrincipal();
        const name = this.#parseWord();
        this.#expect('(');
        if (name.toLowerCase() === 'outof') {
            const n = Number(this.#parseWord());
            if (!Number.isInteger(n) || n < 0)
                throw new PolicySyntaxError(`OutOf needs a non-negative integer at ${this.#pos}`);
            this.#expect(',');
            const rules = this.#parseList();
            if (n > rules.length) throw new PolicySyntaxError(`OutOf(${n}, ...) has only ${rules.length} rules`);
            return { kind: 'outOf', n, rules };
        }
        const rules = this.#parseList();
        if (name === 'AND') return { kind: 'outOf', n: rules.length, rules };
        if (name === 'OR') return { kind: 'outOf', n: 1, rules };
        throw new PolicySyntaxError(`unknown policy operator ${JSON.stringify(name)}`);
    }

    expectEnd(): void {
        this.#skipSpace();
        if (this.#pos !== this.text.length)
            throw new PolicySyntaxError(`unexpected text at ${this.#pos}: ${this.text.slice(this.#pos)}`);
    }

    #parseList(): Policy[] {
        const rules = [this.parsePolicy()];
        for (;;) {
            this.#skipSpace();
            if (this.#peek() === ')') {
                this.#pos++;
                return rules;
            }
            this.#expect(',');
            rules.push(this.parsePolicy());
        }
    }

    #parsePrincipal(): Policy {
        const quote = this.#peek();
        const end = this.text.indexOf(quote, this.#pos + 1);
        if (end < 0) throw new PolicySyntaxError('unterminated principal');
        const principal = this.text.slice(this.#pos + 1, end);
        this.#pos = end + 1;
        const dot = principal.lastIndexOf('.');
        const mspId = principal.slice(0, dot);
        const role = principal.slice(dot + 1);
        if (dot <= 0 || !['member', 'peer', 'admin', 'client', 'orderer'].includes(role)) {
            throw new PolicySyntaxError(`bad principal ${JSON.stringify(principal)}: expected 'MSPID.role'`);
        }
        return { kind: 'signedBy', mspId, role: role as PrincipalRole };
    }

    #parseWord(): string {
        this.#skipSpace();
        const match = /^[A-Za-z0-9]+/.exec(this.text.slice(this.#pos));
        if (!match) throw new PolicySyntaxError(`expected a word at ${this.#pos}`);
        this.#pos += match[0].length;
        return match[0];
    }

    #expect(char: string): void {
        this.#skipSpace();
        if (this.#peek() !== char) throw new PolicySyntaxError(`expected '${char}' at ${this.#pos}`);
        this.#pos++;
    }

    #peek(): string {
        return this.text[this.#pos] ?? '';
    }

    #skipSpace(): void {
        while (/\s/.test(this.#peek())) this.#pos++;
    }
}

function satisfiesPrincipal(signer: PolicySigner, mspId: string, role: PrincipalRole): boolean {
    if (signer.mspId !== mspId) return false;
    // Fabric's NodeOUs: an admin also counts as a member; peer/client/admin/orderer must match the OU.
    return role === 'member' || signer.role === role;
}

/** True if the signers satisfy the policy, each signer used at most once (Fabric's evaluation). */
export function evaluatePolicy(policy: Policy, signers: readonly PolicySigner[]): boolean {
    const unique = [...new Map(signers.map((s) => [s.id, s])).values()];
    return evaluate(policy, unique, new Array<boolean>(unique.length).fill(false));
}

function evaluate(policy: Policy, signers: readonly PolicySigner[], used: boolean[]): boolean {
    if (policy.kind === 'signedBy') {
        for (let i = 0; i < signers.length; i++) {
            const signer = signers[i];
            if (!used[i] && signer !== undefined && satisfiesPrincipal(signer, policy.mspId, policy.role)) {
                used[i] = true;
                return true;
            }
        }
        return false;
    }
    let verified = 0;
    for (const rule of policy.rules) {
        const trial = [...used];
        if (evaluate(rule, signers, trial)) {
            verified++;
            trial.forEach((value, i) => (used[i] = value));
        }
    }
    return verified >= policy.n;
}

/**
 * The organisations whose peers a gateway would ask: the smallest prefix of the policy's
 * organisations (in the given preference order) that can satisfy it. Undefined if none can.
 */
export function planEndorsers(policy: Policy, organisations: readonly string[]): string[] | undefined {
    for (let count = 1; count <= organisations.length; count++) {
        const chosen = organisations.slice(0, count);
        const signers = chosen.map((mspId) => ({ mspId, role: 'peer' as const, id: mspId }));
        if (evaluatePolicy(policy, signers)) return chosen;
    }
    return undefined;
}

/** Fabric-style text of a parsed policy, for error messages. */
export function formatPolicy(policy: Policy): string {
    if (policy.kind === 'signedBy') return `'${policy.mspId}.${policy.role}'`;
    return `OutOf(${policy.n}, ${policy.rules.map(formatPolicy).join(', ')})`;
}
