/**
 * An independent transcription of RFC 9162 §2.1's recursive definitions (MTH, PATH, PROOF) over
 * the entries themselves, with @noble/hashes' SHA-256 rather than node:crypto's — written from
 * the RFC text, sharing no code with chaincode/src/protocol/merkle.ts, to cross-check it.
 */
import { sha256 } from '@noble/hashes/sha2.js';

function k(n: number): number {
    let p = 1;
    while (p * 2 < n) p *= 2;
    return p;
}

export function refMth(d: readonly Uint8Array[]): Uint8Array {
    const n = d.length;
    if (n === 0) return sha256(new Uint8Array());
    if (n === 1) return sha256(Uint8Array.from([0, ...d[0]!]));
    const split = k(n);
    return sha256(Uint8Array.from([1, ...refMth(d.slice(0, split)), ...refMth(d.slice(split))]));
}

export function refPath(m: number, d: readonly Uint8Array[]): Uint8Array[] {
    const n = d.length;
    if (n === 1) return [];
    const split = k(n);
    return m < split
        ? [...refPath(m, d.slice(0, split)), refMth(d.slice(split))]
        : [...refPath(m - split, d.slice(split)), refMth(d.slice(0, split))];
}

function subproof(m: number, d: readonly Uint8Array[], b: boolean): Uint8Array[] {
    const n = d.length;
    if (m === n) return b ? [] : [refMth(d)];
    const split = k(n);
    return m <= split
        ? [...subproof(m, d.slice(0, split), b), refMth(d.slice(split))]
        : [...subproof(m - split, d.slice(split), false), refMth(d.slice(0, split))];
}

export function refProof(m: number, d: readonly Uint8Array[]): Uint8Array[] {
    return subproof(m, d, true);
}
