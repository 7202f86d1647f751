/**
 * Content addresses for off-chain objects: CIDv1, raw codec (0x55), sha2-256 — what Kubo returns for
 * `block.put(bytes, { format: 'raw' })`. Chaincode recomputes it from the bytes (no network).
 *
 * The digest is computed synchronously with @noble/hashes (multiformats' own sha256 hasher is
 * async), so chaincode stays synchronous and deterministic.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import { DecodeError } from './errors.js';

export const MAX_OBJECT_BYTES = 1024 * 1024;

/** Multicodec code of the raw codec. */
const RAW_CODEC = 0x55;
/** Multihash code of sha2-256. */
const SHA2_256 = 0x12;
/** Binary CIDv1 raw sha2-256: version, codec, hash code, digest length (one byte each) + 32. */
const CID_BYTES = 36;

function cidOf(bytes: Uint8Array): CID {
    if (bytes.length > MAX_OBJECT_BYTES) {
        throw new RangeError(`object of ${bytes.length} bytes exceeds the ${MAX_OBJECT_BYTES}-byte limit`);
    }
    return CID.createV1(RAW_CODEC, Digest.create(SHA2_256, sha256(bytes)));
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/**
 * The text of a CID as a flat string. multiformats builds the base32 text one character at a time,
 * which V8 keeps as a rope of ~60 nodes: about 1.5 KB per 59-character address, so a process holding
 * 10⁶ of them (a benchmark, a cache) carried 1.5 GB that every major GC traced. Re-decoding yields
 * the same string, flat (about 100 bytes).
 */
function cidText(cid: CID): string {
    return fromUtf8.decode(utf8.encode(cid.toString()));
}

/** Base32 CIDv1 string (starts with 'bafkrei'). Rejects objects over MAX_OBJECT_BYTES. */
export function contentAddress(bytes: Uint8Array): string {
    return cidText(cidOf(bytes));
}

/** Binary CID (36 bytes) for compact ledger records. */
export function contentAddressBytes(bytes: Uint8Array): Uint8Array {
    return cidOf(bytes).bytes.slice();
}

/** True iff `cid` (string form) is exactly contentAddress(bytes). */
export function matchesContentAddress(cid: string, bytes: Uint8Array): boolean {
    if (bytes.length > MAX_OBJECT_BYTES) return false;
    return cid === contentAddress(bytes);
}

function checkRawSha256(cid: CID, what: string): void {
    if (cid.version !== 1 || cid.code !== RAW_CODEC || cid.multihash.code !== SHA2_256 || cid.multihash.size !== 32) {
        throw new DecodeError('invalidValue', `${what}: not a CIDv1 raw sha2-256 content address`);
    }
}

/**
 * Parses and checks a CID string is v1/raw/sha2-256; DecodeError otherwise.
 * @throws {DecodeError} `nonCanonical` when: content address: not a CID string; content address: not the canonical base32 form
 */
export function parseContentAddress(cid: string): Uint8Array {
    let parsed: CID;
    try {
        parsed = CID.parse(cid);
    } catch (cause) {
        throw new DecodeError('nonCanonical', 'content address: not a CID string', { cause });
    }
    checkRawSha256(parsed, 'content address');
    // Only the canonical base32 lower-case spelling is accepted, so one object has one address string.
    if (parsed.toString() !== cid) {
        throw new DecodeError('nonCanonical', 'content address: not the canonical base32 form');
    }
    return parsed.bytes.slice();
}

/**
 * @throws {DecodeError} `wrongLength` when: binary CID: expected … bytes, got …
 * @throws {DecodeError} `invalidValue` when: binary CID: does not decode
 */
export function formatContentAddress(cidBytes: Uint8Array): string {
    if (cidBytes.length !== CID_BYTES) {
        throw new DecodeError('wrongLength', `binary CID: expected ${CID_BYTES} bytes, got ${cidBytes.length}`);
    }
    let parsed: CID;
    try {
        parsed = CID.decode(cidBytes);
    } catch (cause) {
        throw new DecodeError('invalidValue', 'binary CID: does not decode', { cause });
    }
    checkRawSha256(parsed, 'binary CID');
    return cidText(parsed);
}

/**
 * The CID whose sha2-256 digest is `digest` (a record's digest is the SHA-256 of its payload, so this
 * is the payload's address without the payload).
 * @throws {RangeError} when: the digest is not 32 bytes
 */
export function contentAddressOfDigest(digest: Uint8Array): string {
    if (digest.length !== 32) throw new RangeError('a sha2-256 digest is 32 bytes');
    return CID.createV1(RAW_CODEC, Digest.create(SHA2_256, digest)).toString();
}
