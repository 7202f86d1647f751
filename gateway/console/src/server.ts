/**
 * The console's HTTP server (Hono on node:http): the page and its static files, a JSON API per
 * view, and `/api/events`, a server-sent event stream of new blocks and chaincode events. Every
 * API call runs under the caller's org identity (identity.ts); writes exist only for actions the
 * console was started with and go through the same client calls as the CLI.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { streamSSE } from 'hono/streaming';
import type { Suite } from '@m2m-fabric/protocol';
import type { EquipmentSpec } from '@m2m-fabric/sdk';
import { errorCodeOf } from '@m2m-fabric/common';
import type { ActivityFeed, FeedMessage } from './activity-feed.js';
import { summariseBlockView } from './activity-feed.js';
import type { BlockSource } from './block-source.js';
import { decodeBlockView } from './blocks.js';
import { countCertificates } from './certificate-counts.js';
import { IdentityTable, type ConsoleEnv, type ConsoleIdentity, type ServedIdentity } from './identity.js';
import { parseMetrics, type MetricFamily, type MetricsSource } from './metrics-source.js';
import { addRecordRoutes, type RecordsOptions } from './records-routes.js';
import { addTraceRoutes } from './trace-routes.js';

export interface ConsoleOptions {
    identities: readonly ConsoleIdentity[];
    feed: ActivityFeed;
    /** Blocks for the ledger view; the view answers 503 without it. */
    blocks?: BlockSource;
    /** The services' metrics for the fogs-and-CSP view and the outcome counts. */
    services?: readonly MetricsSource[];
    suite: Suite;
    /** The records view: the channel's trust roots for receipts and the writers' journals it may read. */
    records?: Omit<RecordsOptions, 'chaincodeName'>;
    /** The chaincode's name on the channel (default m2m). */
    chaincodeName?: string;
    /** Default 127.0.0.1. */
    host?: string;
    /** Default 0 (any free port). */
    port?: number;
}

export interface ConsoleServer {
    readonly url: string;
    /** One login link per identity: opening it sets that identity's cookie. */
    readonly logins: { mspId: string; role: string; url: string }[];
    close(): Promise<void>;
}

type Identity = ServedIdentity;
type Env = ConsoleEnv;

const COOKIE = 'm2m_console';
/** Equipment page size (the chaincode caps pages at 100). */
const PAGE_SIZE = 25;
const BLOCK_PAGE = 20;

const require = createRequire(import.meta.url);

/** The root folder of an installed package (its package.json may not export itself). */
function packageDir(name: string): string {
    let dir = dirname(require.resolve(name));
    for (;;) {
        try {
            const pkg = require(join(dir, 'package.json')) as { name?: string };
            if (pkg.name === name) return dir;
        } catch {
            // no package.json here
        }
        const up = dirname(dir);
        if (up === dir) throw new Error(`package ${name} not found`);
        dir = up;
    }
}

const WEB_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'web');

/** Static files: the page, and the browser builds of the libraries it uses. */
function staticFiles(): Record<string, { path: string; type: string }> {
    const vega = packageDir('vega');
    const vegaLite = packageDir('vega-lite');
    const vegaEmbed = packageDir('vega-embed');
    const lit = packageDir('lit-html');
    const js = 'text/javascript; charset=utf-8';
    return {
        '/': { path: join(WEB_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
        '/app.js': { path: join(WEB_DIR, 'app.js'), type: js },
        '/style.css': { path: join(WEB_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
        '/vendor/vega.min.js': { path: join(vega, 'build', 'vega.min.js'), type: js },
        '/vendor/vega-lite.min.js': { path: join(vegaLite, 'build', 'vega-lite.min.js'), type: js },
        '/vendor/vega-embed.min.js': { path: join(vegaEmbed, 'build', 'vega-embed.min.js'), type: js },
        '/vendor/lit-html.js': { path: join(lit, 'lit-html.js'), type: js },
    };
}

/** HTTP status for a chaincode or service error code. */
function statusOf(code: string): 400 | 403 | 404 | 409 | 500 | 503 {
    switch (code) {
        case 'unauthorisedMsp':
            return 403;
        case 'unknownEquipment':
        case 'unknownCertificate':
        case 'unknownFog':
        case 'unknownRequest':
        case 'unknownBatch':
        case 'unknownLot':
        case 'unknownTransformation':
            return 404;
        case 'malformedInput':
            return 400;
        case 'alreadyExists':
        case 'invalidStateTransition':
        case 'failedPayment':
            return 409;
        case 'ledgerUnavailable':
        case 'timeout':
            return 503;
        default:
            return 500;
    }
}

/** A block source that cannot be read (e.g. a Gateway endpoint without qscc): 503, with its reason. */
function blocksUnavailable(c: Context, err: unknown): Response {
    return c.json({ error: 'ledgerUnavailable', message: err instanceof Error ? err.message : String(err) }, 503);
}

function failure(c: Context, err: unknown): Response {
    const code = errorCodeOf(err);
    const message = err instanceof Error ? err.message : String(err);
    return c.json({ error: code, message }, statusOf(code));
}

const decoder = new TextDecoder();

/** Sum of a counter family's samples by one label. */
function byLabel(family: MetricFamily | undefined, label: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const m of family?.metrics ?? []) {
        const key = m.labels?.[label] ?? '';
        out[key] = (out[key] ?? 0) + Number(m.value ?? 0);
    }
    return out;
}

/** Cumulative histogram buckets (le -> count) summed over label sets, plus count and sum. */
function histogram(family: MetricFamily | undefined): {
    buckets: { le: string; count: number }[];
    count: number;
    sum: number;
} {
    const buckets = new Map<string, number>();
    let count = 0;
    let sum = 0;
    for (const m of family?.metrics ?? []) {
        for (const [le, v] of Object.entries(m.buckets ?? {})) buckets.set(le, (buckets.get(le) ?? 0) + Number(v));
        count += Number(m.count ?? 0);
        sum += Number(m.sum ?? 0);
    }
    const sorted = [...buckets.entries()]
        .map(([le, n]) => ({ le, count: n }))
        .sort((a, b) => Number(a.le) - Number(b.le));
    return { buckets: sorted, count, sum };
}

/** The Hono app (exported for tests that call it without a socket). */
export function createConsoleApp(options: ConsoleOptions, table: IdentityTable): Hono<Env> {
    const app = new Hono<Env>();
    const files = staticFiles();
    const services = options.services ?? [];

    for (const [route, file] of Object.entries(files)) {
        app.get(route, async (c) => {
            const body = await readFile(file.path);
            return c.body(body, 200, { 'content-type': file.type, 'cache-control': 'no-cache' });
        });
    }

    app.get('/login', (c) => {
        const identity = table.lookup(c.req.query('token'));
        if (identity === undefined) return c.text('unknown or missing token', 401);
        setCookie(c, COOKIE, c.req.query('token')!, { httpOnly: true, sameSite: 'Strict', path: '/' });
        return c.redirect('/', 303);
    });

    app.use('/api/*', async (c, next) => {
        const header = c.req.header('authorization');
        // hono's getCookie is declared over Context<any>, which the type-checked rules flag.
        // eslint-disable-next-line @typescript-eslint/no-unsafe-argument
        const token = header?.startsWith('Bearer ') ? header.slice(7) : getCookie(c, COOKIE);
        const identity = table.lookup(token);
        if (identity === undefined) return c.json({ error: 'unauthenticated', message: 'open a login link' }, 401);
        // Writes must be JSON: a cross-site form cannot send that without a CORS preflight.
        if (c.req.method !== 'GET' && !(c.req.header('content-type') ?? '').startsWith('application/json'))
            return c.json({ error: 'malformedInput', message: 'JSON body required' }, 415);
        c.set('identity', identity);
        await next();
    });

    const operatorOnly = (identity: Identity): boolean => identity.role === 'csp' || identity.role === 'fog';

    app.get('/api/me', (c) => {
        const i = c.get('identity');
        return c.json({
            mspId: i.mspId,
            role: i.role,
            actions: i.actions,
            views: ['equipment', 'sessions', 'ledger', 'records', 'trace', ...(operatorOnly(i) ? ['services'] : [])],
        });
    });

    // ---- equipment ----
    app.get('/api/equipment', async (c) => {
        const i = c.get('identity');
        const by = c.req.query('by') ?? (i.role === 'manufacturer' ? 'owner' : 'status');
        const value = c.req.query('value') ?? (by === 'owner' ? i.mspId : by === 'status' ? 'registered' : '');
        const bookmark = c.req.query('bookmark') ?? '';
        const fn =
            by === 'owner'
                ? 'queryEquipmentByOwner'
                : by === 'status'
                  ? 'queryEquipmentByStatus'
                  : by === 'fogGroup'
                    ? 'queryEquipmentByFogGroup'
                    : undefined;
        if (fn === undefined) return c.json({ error: 'malformedInput', message: `unknown filter ${by}` }, 400);
        try {
            const bytes = await i.client.equipment.evaluate(fn, {
                arguments: [value, String(PAGE_SIZE), bookmark],
                deadlineMs: i.client.deadlineMs,
            });
            const page = JSON.parse(decoder.decode(bytes)) as { records: unknown[]; bookmark: string };
            return c.json({ by, value, records: page.records, bookmark: page.bookmark, pageSize: PAGE_SIZE });
        } catch (err) {
            return failure(c, err);
        }
    });

    app.get('/api/equipment/:id', async (c) => {
        const i = c.get('identity');
        const id = c.req.param('id');
        try {
            // getEquipment first: the chaincode refuses another owner's record before anything else is read.
            const record = await i.client.getEquipment(id);
            const history = await i.client.getEquipmentHistory(id);
            const certificates =
                i.manufacturer !== undefined && record.owner === i.mspId
                    ? await countCertificates(options.suite, i.client, i.manufacturer.dataDir, id)
                    : undefined;
            return c.json({ record, history, certificates: certificates ?? null });
        } catch (err) {
            return failure(c, err);
        }
    });

    app.post('/api/equipment', async (c) => {
        const i = c.get('identity');
        if (!i.actions.includes('register') || i.manufacturer === undefined)
            return c.json({ error: 'unauthorisedMsp', message: 'registering is not enabled on this console' }, 403);
        try {
            const spec = await c.req.json<Omit<EquipmentSpec, 'publicKey'> & { publicKey?: string }>();
            const record = await i.manufacturer.client.registerEquipment({
                equipmentId: String(spec.equipmentId),
                kind: String(spec.kind),
                model: String(spec.model),
                fogGroup: String(spec.fogGroup),
                privilegeLevel: Number(spec.privilegeLevel ?? 1),
                serviceType: spec.serviceType ?? 'upload-download',
                accessTime: String(spec.accessTime ?? 'always'),
                ...(spec.publicKey !== undefined ? { publicKey: String(spec.publicKey) } : {}),
            });
            return c.json(record, 201);
        } catch (err) {
            return failure(c, err);
        }
    });

    app.post('/api/equipment/:id/decommission', async (c) => {
        const i = c.get('identity');
        if (!i.actions.includes('decommission') || i.manufacturer === undefined)
            return c.json({ error: 'unauthorisedMsp', message: 'decommissioning is not enabled on this console' }, 403);
        try {
            return c.json(await i.manufacturer.client.decommission(c.req.param('id')));
        } catch (err) {
            return failure(c, err);
        }
    });

    app.post('/api/credit', async (c) => {
        const i = c.get('identity');
        if (!i.actions.includes('grantCredit'))
            return c.json({ error: 'unauthorisedMsp', message: 'granting credit is not enabled on this console' }, 403);
        try {
            const body = await c.req.json<{ account?: unknown; amount?: unknown }>();
            const amount = Number(body.amount);
            if (typeof body.account !== 'string' || !Number.isSafeInteger(amount) || amount < 1)
                return c.json({ error: 'malformedInput', message: 'account and a positive integer amount' }, 400);
            return c.json(await i.client.grantCredit(body.account, amount));
        } catch (err) {
            return failure(c, err);
        }
    });

    // ---- certificates and sessions ----
    const own = (m: Record<string, number>, mspId: string): Record<string, number> =>
        mspId in m ? { [mspId]: m[mspId]! } : {};

    app.get('/api/sessions', async (c) => {
        const i = c.get('identity');
        const t = options.feed.tally;
        const operator = operatorOnly(i);
        const activations = Object.entries(t.activationsByFog).flatMap(([fogId, minutes]) =>
            Object.entries(minutes).map(([minute, count]) => ({ fogId, minute, count })),
        );
        const outcomes: { service: string; code: string; count: number }[] = [];
        if (operator) {
            for (const s of services) {
                try {
                    const families = parseMetrics(await s.metrics());
                    const name = s.kind === 'fog' ? 'm2m_fog_sessions_total' : 'm2m_csp_sessions_total';
                    const family = families.find((f) => f.name === name);
                    for (const m of family?.metrics ?? []) {
                        const code = m.labels?.code || m.labels?.outcome || 'ok';
                        outcomes.push({ service: s.name, code, count: Number(m.value ?? 0) });
                    }
                } catch {
                    // An unreachable service shows in the services view.
                }
            }
        }
        return c.json({
            events: operator ? t.events : {},
            activations,
            synchronisations: t.synchronisationsByFog,
            issuedByOwner: operator ? t.issuedByOwner : own(t.issuedByOwner, i.mspId),
            requestedByOwner: operator ? t.requestedByOwner : own(t.requestedByOwner, i.mspId),
            registeredByOwner: operator ? t.registeredByOwner : own(t.registeredByOwner, i.mspId),
            outcomes,
        });
    });

    // ---- ledger ----
    app.get('/api/ledger', async (c) => {
        const source = options.blocks;
        if (source === undefined) return c.json({ error: 'ledgerUnavailable', message: 'no block source' }, 503);
        try {
            const height = await source.height();
            const beforeRaw = c.req.query('before');
            const before = beforeRaw === undefined ? height : Math.max(0, Math.min(height, Number(beforeRaw) || 0));
            const blocks = [];
            for (let n = before - 1; n >= 0 && n >= before - BLOCK_PAGE; n--) {
                const bytes = await source.block(n);
                if (bytes !== undefined) blocks.push(summariseBlockView(decodeBlockView(bytes)));
            }
            const totals = { transactions: 0, mvccConflicts: 0 };
            for (const b of blocks) {
                totals.transactions += b.transactions;
                totals.mvccConflicts += b.mvccConflicts;
            }
            return c.json({ height, before, blocks, pageSize: BLOCK_PAGE, totals });
        } catch (err) {
            return blocksUnavailable(c, err);
        }
    });

    app.get('/api/ledger/blocks/:n', async (c) => {
        const source = options.blocks;
        if (source === undefined) return c.json({ error: 'ledgerUnavailable', message: 'no block source' }, 503);
        const n = Number(c.req.param('n'));
        if (!Number.isSafeInteger(n) || n < 0) return c.json({ error: 'malformedInput', message: 'block number' }, 400);
        try {
            const bytes = await source.block(n);
            if (bytes === undefined) return c.json({ error: 'unknownBlock', message: `no block ${n}` }, 404);
            return c.json(decodeBlockView(bytes));
        } catch (err) {
            return blocksUnavailable(c, err);
        }
    });

    // ---- fogs and CSP ----
    app.get('/api/services', async (c) => {
        const i = c.get('identity');
        if (!operatorOnly(i))
            return c.json(
                { error: 'unauthorisedMsp', message: 'service metrics are for the CSP and fog operators' },
                403,
            );
        const out = await Promise.all(
            services.map(async (s) => {
                const health = await s.health();
                try {
                    const families = parseMetrics(await s.metrics());
                    const f = (name: string): MetricFamily | undefined => families.find((x) => x.name === name);
                    const fog = s.kind === 'fog';
                    return {
                        name: s.name,
                        kind: s.kind,
                        health,
                        outboxDepth: Number(
                            f(fog ? 'm2m_fog_outbox_depth' : 'm2m_csp_pending_syncs')?.metrics[0]?.value ?? 0,
                        ),
                        sessions: byLabel(f(fog ? 'm2m_fog_sessions_total' : 'm2m_csp_sessions_total'), 'outcome'),
                        ledgerErrors: byLabel(
                            f(fog ? 'm2m_fog_ledger_errors_total' : 'm2m_csp_ledger_errors_total'),
                            'code',
                        ),
                        latency: histogram(f(fog ? 'm2m_fog_activation_seconds' : 'm2m_csp_sync_seconds')),
                    };
                } catch (err) {
                    return { name: s.name, kind: s.kind, health, error: (err as Error).message };
                }
            }),
        );
        return c.json({ services: out });
    });

    // ---- records and traceability ----
    addRecordRoutes(app, { ...options.records, chaincodeName: options.chaincodeName ?? 'm2m' }, failure);
    addTraceRoutes(app, options.chaincodeName ?? 'm2m', failure);

    // ---- live ----
    app.get('/api/events', (c) => {
        const i = c.get('identity');
        const operator = operatorOnly(i);
        return streamSSE(c, async (stream) => {
            const queue: FeedMessage[] = [];
            let wake: (() => void) | undefined;
            const unsubscribe = options.feed.subscribe((m) => {
                // A manufacturer sees blocks and its own account's events only.
                if (m.type === 'event' && !operator && m.owner !== i.mspId) return;
                queue.push(m);
                wake?.();
            });
            stream.onAbort(() => {
                unsubscribe();
                wake?.();
            });
            await stream.writeSSE({ event: 'hello', data: JSON.stringify({ mspId: i.mspId }) });
            while (!stream.aborted) {
                const m = queue.shift();
                if (m === undefined) {
                    await new Promise<void>((r) => {
                        wake = r;
                        setTimeout(r, 15_000);
                    });
                    wake = undefined;
                    if (queue.length === 0 && !stream.aborted) await stream.writeSSE({ event: 'ping', data: '{}' });
                    continue;
                }
                await stream.writeSSE({ event: m.type, data: JSON.stringify(m) });
            }
            unsubscribe();
        });
    });

    return app;
}

/** Starts the console; bound to 127.0.0.1 unless `host` says otherwise. */
export async function startConsole(options: ConsoleOptions): Promise<ConsoleServer> {
    const table = new IdentityTable(options.identities);
    const app = createConsoleApp(options, table);
    const host = options.host ?? '127.0.0.1';
    const server = await new Promise<ServerType>((resolveServer, reject) => {
        const s = serve({ fetch: app.fetch, port: options.port ?? 0, hostname: host }, () => resolveServer(s));
        s.once('error', reject);
    });
    const port = (server.address() as AddressInfo).port;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    return {
        url,
        logins: table.tokens().map((t) => ({
            mspId: t.mspId,
            role: t.role,
            url: `${url}/login?token=${encodeURIComponent(t.token)}`,
        })),
        close: () =>
            new Promise<void>((resolveClose) => {
                const http = server as unknown as { closeAllConnections?: () => void };
                http.closeAllConnections?.();
                server.close(() => resolveClose());
            }),
    };
}
