/**
 * Health and metrics endpoint over node:http: `GET /metrics` (Prometheus text format) and
 * `GET /healthz` (JSON; 200 when every check passes, 503 otherwise). Binds to 127.0.0.1 by default.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MetricsRegistry } from './registry.js';

export type HealthChecks = () => Promise<Record<string, boolean>> | Record<string, boolean>;

export interface MetricsServer {
    readonly url: string;
    close(): Promise<void>;
}

export async function startMetricsServer(
    registry: MetricsRegistry,
    health: HealthChecks,
    port: number,
    host = '127.0.0.1',
): Promise<MetricsServer> {
    const server: Server = createServer((req, res) => {
        const path = (req.url ?? '/').split('?')[0];
        if (req.method !== 'GET') {
            res.writeHead(405).end();
            return;
        }
        if (path === '/metrics') {
            res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
            res.end(registry.render());
            return;
        }
        if (path === '/healthz' || path === '/health') {
            Promise.resolve()
                .then(() => health())
                .then((checks) => {
                    const ok = Object.values(checks).every(Boolean);
                    res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
                    res.end(JSON.stringify({ status: ok ? 'ok' : 'degraded', checks }));
                })
                .catch((err: unknown) => {
                    res.writeHead(503, { 'content-type': 'application/json' });
                    res.end(JSON.stringify({ status: 'error', error: (err as Error).message }));
                });
            return;
        }
        res.writeHead(404).end();
    });
    await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
    });
    const address = server.address() as AddressInfo;
    return {
        url: `http://${host}:${address.port}`,
        close: () =>
            new Promise<void>((resolve) => {
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    };
}
