/**
 * The session route id: 16 bytes that name an established session on the fog <-> CSP path and in
 * the channel's key derivation. Device, fog and CSP all know IDCert_i (the fog from C1, the CSP
 * from C3 and the ledger), so each computes the same id without sending a new identifier.
 */
import { concatBytes, encodePoint, toHex, type Point, type Suite } from '@m2m-fabric/protocol';
import { ROUTE_ID_BYTES } from './envelope.js';

const ROUTE_LABEL = new TextEncoder().encode('M2M-V1-SESSION-ROUTE\0');

export function routeIdFor(suite: Suite, idCert: Point): Uint8Array {
    return suite.hash(concatBytes(ROUTE_LABEL, encodePoint(suite, idCert))).slice(0, ROUTE_ID_BYTES);
}

export function routeKey(routeId: Uint8Array): string {
    return toHex(routeId);
}
