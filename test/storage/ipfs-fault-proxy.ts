/**
 * An HTTP proxy on 127.0.0.1 in front of a real IPFS RPC daemon, to put the daemon's own replies
 * through the failures KuboObjectStore must survive: a slow daemon, dropped connections, a body with
 * a changed byte. Everything else is forwarded unchanged, so what the client parses is what the real
 * daemon sent.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxyFaults {
    /** Delay before forwarding each request, ms. */
    delayMs?: number;
    /** Destroy the socket of the next N requests without forwarding them. */
    dropNext?: number;
    /** Change one byte of every block/get reply body. */
    corruptBlockGet?: boolean;
}

export class IpfsFaultProxy {
    faults: ProxyFaults = {};
    /** Command path of every request received (e.g. "block/put"), dropped ones included. */
    readonly requests: string[] = [];
    private readonly server: Server;
    private port = 0;

    private constructor(private readonly target: URL) {
        this.server = createServer((req, res) => void this.handle(req, res));
    }

    static async start(targetUrl: string): Promise<IpfsFaultProxy> {
        const proxy = new IpfsFaultProxy(new URL(targetUrl));
        await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
        proxy.port = (proxy.server.address() as AddressInfo).port;
        return proxy;
    }

    get url(): string {
        return `http://127.0.0.1:${this.port}`;
    }

    async stop(): Promise<void> {
        this.server.closeAllConnections();
        await new Promise<void>((resolve) => this.server.close(() => resolve()));
    }

    private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
        const command = (req.url ?? '').replace(/^\/api\/v0\//, '').split('?')[0] ?? '';
        this.requests.push(command);
        if ((this.faults.dropNext ?? 0) > 0) {
            this.faults.dropNext = (this.faults.dropNext ?? 0) - 1;
            req.socket.destroy();
            return;
        }
        if (this.faults.delayMs !== undefined) await new Promise((r) => setTimeout(r, this.faults.delayMs));
        if (res.destroyed) return;
        const corrupt = this.faults.corruptBlockGet === true && command === 'block/get';
        const upstream = request(
            {
                host: this.target.hostname,
                port: this.target.port,
                method: req.method,
                path: req.url,
                headers: { ...req.headers, host: this.target.host },
            },
            (reply) => {
                if (!corrupt) {
                    res.writeHead(reply.statusCode ?? 502, reply.headers);
                    reply.pipe(res);
                    return;
                }
                const chunks: Buffer[] = [];
                reply.on('data', (chunk: Buffer) => chunks.push(chunk));
                reply.on('end', () => {
                    const body = Buffer.concat(chunks);
                    if (body.length > 0) body[body.length - 1] = (body[body.length - 1] ?? 0) ^ 0x01;
                    const headers = { ...reply.headers, 'content-length': String(body.length) };
                    delete headers['transfer-encoding'];
                    res.writeHead(reply.statusCode ?? 502, headers);
                    res.end(body);
                });
            },
        );
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
    }
}
