/**
 * The storage layer's use of the protocol module's content address (CIDv1, raw, sha2-256). There is
 * one CID computation in the project, `contentAddress` in the protocol module, the same code the
 * chaincode runs; this file only adds the storage error types around it.
 */
import { contentAddress, matchesContentAddress, MAX_OBJECT_BYTES, parseContentAddress } from '@m2m-fabric/protocol';
import { IntegrityError, InvalidAddressError, ObjectTooLargeError } from './errors.js';

export { MAX_OBJECT_BYTES };

/** Throws ObjectTooLargeError for objects the ledger will never reference. */
export function checkObjectSize(bytes: Uint8Array): void {
    if (bytes.length > MAX_OBJECT_BYTES) {
        throw new ObjectTooLargeError(bytes.length, MAX_OBJECT_BYTES);
    }
}

/** The content address of an object, after the size check. */
export function addressOf(bytes: Uint8Array): string {
    checkObjectSize(bytes);
    return contentAddress(bytes);
}

/**
 * Checks a content address string and returns its multihash (sha2-256: 0x12 0x20 ‖ digest), which is
 * what IPFS blockstores key blocks by.
 */
export function multihashOf(cid: string): Uint8Array {
    let binary: Uint8Array;
    try {
        binary = parseContentAddress(cid);
    } catch (cause) {
        throw new InvalidAddressError(cid, { cause });
    }
    // Binary CIDv1: version (0x01), codec (0x55), then the multihash; both varints fit one byte here.
    return binary.subarray(2);
}

/**
 * Returns `bytes` only if they are the object `cid` names; otherwise IntegrityError. Every read path
 * of every backend ends here, so wrong bytes are never handed to a caller.
 * @throws {IntegrityError}
 */
export function verifiedObject(cid: string, bytes: Uint8Array, source: string): Uint8Array {
    if (matchesContentAddress(cid, bytes)) {
        return bytes;
    }
    const actual = bytes.length <= MAX_OBJECT_BYTES ? contentAddress(bytes) : undefined;
    throw new IntegrityError(
        cid,
        actual,
        `${source} returned ${bytes.length} bytes that do not match ${cid}` +
            (actual === undefined ? ' (over the size limit)' : ` (they hash to ${actual})`),
    );
}
