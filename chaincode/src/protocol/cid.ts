/**
 * Content addresses for off-chain objects: CIDv1, raw codec (0x55), sha2-256 — what Kubo returns for
 * `block.put(bytes, { format: 'raw' })`. Chaincode recomputes it from the bytes (no network).
 */
export const MAX_OBJECT_BYTES = 1024 * 1024;

/** Base32 CIDv1 string (starts with 'bafkrei'). Rejects objects over MAX_OBJECT_BYTES. */
export declare function contentAddress(bytes: Uint8Array): string;
/** Binary CID (36 bytes) for compact ledger records. */
export declare function contentAddressBytes(bytes: Uint8Array): Uint8Array;
/** True iff `cid` (string form) is exactly contentAddress(bytes). */
export declare function matchesContentAddress(cid: string, bytes: Uint8Array): boolean;
/** Parses and checks a CID string is v1/raw/sha2-256; DecodeError otherwise. */
export declare function parseContentAddress(cid: string): Uint8Array;
export declare function formatContentAddress(cidBytes: Uint8Array): string;
