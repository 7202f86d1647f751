/**
 * A test double for an IPFS daemon's RPC API on 127.0.0.1: just enough of Kubo's /api/v0 (version,
 * block/put|get|stat, pin/add|rm|ls) for KuboObjectStore, plus switches to misbehave (slow, dropped
 * connections, wrong bytes, wrong CID, errors). The client under test (kubo-rpc-client and
 * KuboObjectStore) is real; only the daemon is simulated. It computes CIDs with multiformats'
 * own sha256 hasher, independently of the protocol module.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';

export interface Misbehaviour {
    /** Delay before answering any request, in ms. */
    delayMs?: number;
    /** Destroy the socket of the next N requests without answering. */
    dropNext?: number;
    /** block/get answers with one byte changed. */
    corruptGet?: boolean;
    /** block/put answers with the CIDv0 (dag-pb style address) of the bytes. */
    wrongPutCid?: boolean;
    /** Every request fails with HTTP 500 and this message. */
    failWith?: string;
    /** block/get answers with this many bytes (Content-Length announced unless `hideLength`). */
    oversizeGet?: number;
    /** With oversizeGet: send the body chunked, no Content-Length. */
    hideLength?: boolean;
    /** block/get streams an endless body (64 KiB chunks, chunked encoding) until the client goes away. */
    endlessGet?: boolean;
}

const RAW = 0x55;

export class FakeIpfsDaemon {
    readonly blocks = new Map<string, Uint8Array>();
    readonly pins = new Set<string>();
    /** Command path of every request received (e.g. "block/put"), dropped ones included. */
    readonly requests: string[] = [];
    behaviour: Misbehaviour = {};
    /** Bytes of the endless body written so far (what the client let through before aborting). */
    endlessBytesSent = 0;
    private readonly server: Server;
    private port = 0;

    private constructor() {
        this.server = createServer((req, res) => {
            this.handle(req, res).catch((err: unknown) => {
                if (!res.headersSent) res.writeHead(500).end(String(err));
            });
        });
    }

    static async start(): Promise<FakeIpfsDaemon> {
        const daemon = new FakeIpfsDaemon();
        await new Promise<void>((resolve) => daemon.server.listen(0, '127.0.0.1', resolve));
        daemon.port = (daemon.server.address() as AddressInfo).port;
        return daemon;
    }

    get url(): string {
        return `http://127.0.0.1:${this.port}`;
    }

    async stop(): Promise<void> {
        this.server.closeAllConnections();
        await new Promise<void>((resolve) => this.server.close(() => resolve()));
    }

    private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
        const url = new URL(req.url ?? '/', 'http://127.0.0.1');
        const command = url.pathname.replace(/^\/api\/v0\//, '');
        this.requests.push(command);
        const body = await readBody(req);
        if ((this.behaviour.dropNext ?? 0) > 0) {
            this.behaviour.dropNext = (this.behaviour.dropNext ?? 0) - 1;
            req.socket.destroy();
            return;
        }
        if (this.behaviour.delayMs !== undefined) {
            await new Promise((resolve) => setTimeout(resolve, this.behaviour.delayMs));
            if (res.destroyed || req.socket.destroyed) return;
        }
        if (this.behaviour.failWith !== undefined) {
            this.error(res, this.behaviour.failWith);
            return;
        }
        if (req.method !== 'POST' || !url.pathname.startsWith('/api/v0/')) {
            res.writeHead(404).end('404 page not found');
            return;
        }
        const arg = url.searchParams.get('arg') ?? '';
        const offline = url.searchParams.get('offline') === 'true';
        switch (command) {
            case 'version':
                return this.json(res, { Version: '0.0.0-fake', Commit: '', Repo: '16', System: 'test', Golang: '' });
            case 'block/put': {
                const bytes = multipartFile(req, body);
                const digest = await sha256.digest(bytes);
                const raw = url.searchParams.get('format') === 'raw' && url.searchParams.get('version') === '1';
                const cid = this.behaviour.wrongPutCid || !raw ? CID.createV0(digest) : CID.createV1(RAW, digest);
                this.blocks.set(CID.createV1(RAW, digest).toString(), bytes);
                if (url.searchParams.get('pin') === 'true') this.pins.add(CID.createV1(RAW, digest).toString());
                return this.json(res, { Key: cid.toString(), Size: bytes.length });
            }
            case 'block/get': {
                if (this.behaviour.endlessGet === true) {
                    res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
                    const chunk = Buffer.alloc(64 * 1024, 0x61);
                    this.endlessBytesSent = 0;
                    const pump = (): void => {
                        while (!res.destroyed && this.endlessBytesSent < 2 ** 31) {
                            this.endlessBytesSent += chunk.length;
                            if (!res.write(chunk)) {
                                res.once('drain', pump);
                                return;
                            }
                        }
                    };
                    pump();
                    return;
                }
                if (this.behaviour.oversizeGet !== undefined) {
                    const out = Buffer.alloc(this.behaviour.oversizeGet, 0x62);
                    const headers: Record<string, string | number> = { 'Content-Type': 'application/octet-stream' };
                    if (this.behaviour.hideLength !== true) headers['Content-Length'] = out.length;
                    res.writeHead(200, headers);
                    if (this.behaviour.hideLength === true) {
                        for (let at = 0; at < out.length; at += 16 * 1024) res.write(out.subarray(at, at + 16 * 1024));
                        res.end();
                    } else res.end(out);
                    return;
                }
                const bytes = this.blocks.get(arg);
                if (bytes === undefined) {
                    // Online, a real daemon searches the network until the client gives up.
                    if (offline)
                        return this.error(res, `block was not found locally (offline): ipld: could not find ${arg}`);
                    return;
                }
                const out = Buffer.from(bytes);
                if (this.behaviour.corruptGet === true) {
                    if (out.length === 0) {
                        res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(Buffer.from([0]));
                        return;
                    }
                    out[0] = (out[0] as number) ^ 0x01;
                }
                res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(out);
                return;
            }
            case 'block/stat': {
                const bytes = this.blocks.get(arg);
                if (bytes === undefined)
                    return this.error(res, `block was not found locally (offline): ipld: could not find ${arg}`);
                return this.json(res, { Key: arg, Size: bytes.length });
            }
            case 'pin/add':
                if (!this.blocks.has(arg))
                    return this.error(res, `pin: block was not found locally (offline): ipld: could not find ${arg}`);
                this.pins.add(arg);
                return this.json(res, { Pins: [arg] });
            case 'pin/rm':
                if (!this.pins.delete(arg)) return this.error(res, 'not pinned or pinned indirectly');
                return this.json(res, { Pins: [arg] });
            case 'pin/ls':
                if (!this.pins.has(arg)) return this.error(res, `path '${arg}' is not pinned`);
                return this.json(res, { Cid: arg, Type: 'recursive' });
            default:
                this.error(res, `unknown command "${command}"`, 404);
        }
    }

    private json(res: ServerResponse, value: unknown): void {
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(value) + '\n');
    }

    private error(res: ServerResponse, message: string, status = 500): void {
        res.writeHead(status, { 'Content-Type': 'application/json' }).end(
            JSON.stringify({ Message: message, Code: 0, Type: 'error' }),
        );
    }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
}

/** The single file part of a multipart/form-data upload (what block/put sends). */
function multipartFile(req: IncomingMessage, body: Buffer): Uint8Array {
    const match = /boundary=(.+)$/.exec(req.headers['content-type'] ?? '');
    if (match?.[1] === undefined) throw new Error('block/put without a multipart boundary');
    const boundary = Buffer.from(`--${match[1]}`);
    const start = body.indexOf(boundary);
    const headersEnd = body.indexOf('\r\n\r\n', start);
    const end = body.indexOf(Buffer.from(`\r\n--${match[1]}`), headersEnd + 4);
    return new Uint8Array(body.subarray(headersEnd + 4, end));
}

/** A 127.0.0.1 URL on which nothing listens (connection refused). */
export async function closedPortUrl(): Promise<string> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return `http://127.0.0.1:${port}`;
}
