/**
 * One gRPC client per peer endpoint, shared by every connection to it. A gRPC channel multiplexes
 * any number of concurrent calls over one HTTP/2 connection, so a fog gateway that opens several
 * ledger connections (one per identity) still holds a single TCP/TLS connection to its peer
 * (fabric-gateway's documentation recommends exactly this sharing). The client is closed when the
 * last connection using it is released.
 */
import { createHash } from 'node:crypto';

import * as grpc from '@grpc/grpc-js';

export interface GrpcEndpoint {
    peerEndpoint: string;
    hostAlias: string | undefined;
    tlsCaCert: Uint8Array;
}

interface PoolEntry {
    client: grpc.Client;
    references: number;
}

const pool = new Map<string, PoolEntry>();

function keyOf(endpoint: GrpcEndpoint): string {
    const ca = createHash('sha256').update(endpoint.tlsCaCert).digest('hex');
    return `${endpoint.peerEndpoint}|${endpoint.hostAlias ?? ''}|${ca}`;
}

/** Channel options: keepalive pings let a half-open connection (peer host lost) be noticed within a minute. */
function channelOptions(endpoint: GrpcEndpoint): grpc.ChannelOptions {
    const options: grpc.ChannelOptions = {
        'grpc.keepalive_time_ms': 30_000,
        'grpc.keepalive_timeout_ms': 10_000,
        'grpc.keepalive_permit_without_calls': 1,
    };
    if (endpoint.hostAlias !== undefined) options['grpc.ssl_target_name_override'] = endpoint.hostAlias;
    return options;
}

/** A shared client for `endpoint`, and the function that gives it back. */
export function acquireGrpcClient(endpoint: GrpcEndpoint): { client: grpc.Client; release: () => void } {
    const key = keyOf(endpoint);
    let entry = pool.get(key);
    if (entry === undefined) {
        const credentials = grpc.credentials.createSsl(Buffer.from(endpoint.tlsCaCert));
        entry = {
            client: new grpc.Client(endpoint.peerEndpoint, credentials, channelOptions(endpoint)),
            references: 0,
        };
        pool.set(key, entry);
    }
    entry.references++;
    const held = entry;
    let released = false;
    return {
        client: held.client,
        release: () => {
            if (released) return;
            released = true;
            held.references--;
            if (held.references === 0) {
                pool.delete(key);
                held.client.close();
            }
        },
    };
}

/** Number of distinct gRPC clients currently open (for tests and diagnostics). */
export function openGrpcClientCount(): number {
    return pool.size;
}
