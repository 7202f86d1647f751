/**
 * MQTT topic layout and the access rules the brokers enforce (aedes hooks for the embedded broker,
 * an ACL file for mosquitto). Devices are anonymous: before a session exists they carry no stable
 * identifier (docs/design.md#transport), so a device's only handle is its per-connection MQTT client id; it
 * may publish only to its own request topic and read only its own reply topic and the fog's
 * announcement. Everything else belongs to authenticated service accounts.
 *
 *   fog broker   <prefix>/fog/<fogId>/info             fog -> devices, retained: fog id, suite, Q_f
 *                <prefix>/fog/<fogId>/req/<clientId>   device -> fog: M1, M3, session frames
 *                <prefix>/fog/<fogId>/rep/<clientId>   fog -> device: M2, results, session frames
 *   CSP broker   <prefix>/csp/in/<fogId>               fog -> CSP: M4, relayed frames (signed)
 *                <prefix>/csp/out/<fogId>              CSP -> fog: results, relayed frames (signed)
 */

export const DEFAULT_TOPIC_PREFIX = 'm2m/v1';

/** Client ids and fog ids become topic levels: no wildcards, separators or control characters. */
const TOPIC_LEVEL = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function isValidTopicLevel(s: string): boolean {
    return TOPIC_LEVEL.test(s);
}

export type Principal =
    | { kind: 'device'; clientId: string }
    | { kind: 'fog'; fogId: string; clientId: string }
    | { kind: 'csp'; clientId: string };

export type TopicAction = 'publish' | 'subscribe';

export class TopicLayout {
    /**
     * @throws {RangeError} when: invalid topic prefix "…"
     */
    constructor(readonly prefix: string = DEFAULT_TOPIC_PREFIX) {
        if (prefix.includes('+') || prefix.includes('#') || prefix.endsWith('/') || prefix === '') {
            throw new RangeError(`invalid topic prefix "${prefix}"`);
        }
    }

    fogInfo(fogId: string): string {
        return `${this.prefix}/fog/${fogId}/info`;
    }
    fogRequest(fogId: string, clientId: string): string {
        return `${this.prefix}/fog/${fogId}/req/${clientId}`;
    }
    fogReply(fogId: string, clientId: string): string {
        return `${this.prefix}/fog/${fogId}/rep/${clientId}`;
    }
    /** Subscription the fog service uses for every device request. */
    fogRequestFilter(fogId: string): string {
        return `${this.prefix}/fog/${fogId}/req/+`;
    }
    cspInbound(fogId: string): string {
        return `${this.prefix}/csp/in/${fogId}`;
    }
    cspInboundFilter(): string {
        return `${this.prefix}/csp/in/+`;
    }
    cspOutbound(fogId: string): string {
        return `${this.prefix}/csp/out/${fogId}`;
    }

    /** Parses `<prefix>/fog/<fogId>/req/<clientId>`; undefined for anything else. */
    parseFogRequest(topic: string): { fogId: string; clientId: string } | undefined {
        const m = this.match(topic, ['fog', '*', 'req', '*']);
        return m === undefined ? undefined : { fogId: m[0]!, clientId: m[1]! };
    }
    /** Parses `<prefix>/csp/in/<fogId>`. */
    parseCspInbound(topic: string): { fogId: string } | undefined {
        const m = this.match(topic, ['csp', 'in', '*']);
        return m === undefined ? undefined : { fogId: m[0]! };
    }
    parseCspOutbound(topic: string): { fogId: string } | undefined {
        const m = this.match(topic, ['csp', 'out', '*']);
        return m === undefined ? undefined : { fogId: m[0]! };
    }

    private match(topic: string, pattern: string[]): string[] | undefined {
        if (!topic.startsWith(`${this.prefix}/`)) return undefined;
        const levels = topic.slice(this.prefix.length + 1).split('/');
        if (levels.length !== pattern.length) return undefined;
        const captured: string[] = [];
        for (let i = 0; i < pattern.length; i++) {
            const level = levels[i]!;
            if (pattern[i] === '*') {
                if (!isValidTopicLevel(level)) return undefined;
                captured.push(level);
            } else if (pattern[i] !== level) return undefined;
        }
        return captured;
    }

    /**
     * The access rule, shared by the embedded broker's hooks and the tests. Exact topics only for
     * devices: a device may not subscribe with wildcards (it could otherwise read other replies).
     */
    isAllowed(principal: Principal, action: TopicAction, topic: string): boolean {
        switch (principal.kind) {
            case 'device': {
                if (action === 'publish') {
                    const req = this.parseFogRequest(topic);
                    return req !== undefined && req.clientId === principal.clientId;
                }
                const rep = this.match(topic, ['fog', '*', 'rep', '*']);
                if (rep !== undefined) return rep[1] === principal.clientId;
                return this.match(topic, ['fog', '*', 'info']) !== undefined;
            }
            case 'fog': {
                const f = principal.fogId;
                if (action === 'publish') {
                    const rep = this.match(topic, ['fog', f, 'rep', '*']);
                    return rep !== undefined || topic === this.fogInfo(f) || topic === this.cspInbound(f);
                }
                return (
                    topic === this.fogRequestFilter(f) ||
                    this.match(topic, ['fog', f, 'req', '*']) !== undefined ||
                    topic === this.fogInfo(f) ||
                    topic === this.cspOutbound(f)
                );
            }
            case 'csp': {
                if (action === 'publish') return this.parseCspOutbound(topic) !== undefined;
                return topic === this.cspInboundFilter() || this.parseCspInbound(topic) !== undefined;
            }
        }
    }

    /**
     * The same rules as a mosquitto `acl_file` (used with `allow_anonymous true` for devices and a
     * `password_file` for the service accounts: one user per fog id, and `cspUser`).
     */
    mosquittoAcl(fogIds: readonly string[], cspUser = 'csp'): string {
        const p = this.prefix;
        const lines = [
            '# m2m-fabric ACL (generated). Anonymous clients are devices: own request/reply topics only.',
            `topic read ${p}/fog/+/info`,
            `pattern write ${p}/fog/+/req/%c`,
            `pattern read ${p}/fog/+/rep/%c`,
            '',
        ];
        for (const f of fogIds) {
            lines.push(
                `user ${f}`,
                `topic read ${p}/fog/${f}/req/+`,
                `topic write ${p}/fog/${f}/rep/+`,
                `topic readwrite ${p}/fog/${f}/info`,
                `topic write ${p}/csp/in/${f}`,
                `topic read ${p}/csp/out/${f}`,
                '',
            );
        }
        lines.push(`user ${cspUser}`, `topic read ${p}/csp/in/+`, `topic write ${p}/csp/out/+`, '');
        return lines.join('\n');
    }
}
