/**
 * Merkle tree hashing of RFC 9162 §2.1 (certificate transparency v2; the same tree as RFC 6962):
 * SHA-256, leaf hash H(0x00 || entry), node hash H(0x01 || left || right), so a leaf can never be
 * passed off as an interior node (second-preimage resistance). A writer's communication records
 * form one append-only log; each anchored batch commits to the root of the whole log at its size,
 * so successive anchors of one writer are linked by consistency proofs (§2.1.4) and a single
 * record by an inclusion proof (§2.1.3).
 *
 * Pinned by the transparency-dev/merkle test vectors (test/crypto/merkle.test.ts) and
 * cross-checked against a literal transcription of the RFC's recursive definitions.
 */
import { createHash } from 'node:crypto';

import { ErrorCode, VerificationError } from './errors.js';

/** SHA-256 output length: every leaf, node and root hash. */
export const MERKLE_HASH_BYTES = 32;

/** Largest tree size handled (2^53 - 1): sizes and indices are JavaScript safe integers. */
const MAX_TREE_SIZE = Number.MAX_SAFE_INTEGER;

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** MTH({}) = SHA-256() — the root of the empty tree. */
export const EMPTY_ROOT: Uint8Array = new Uint8Array(createHash('sha256').digest());

/** Leaf hash of an entry: SHA-256(0x00 || entry). */
export function merkleLeafHash(entry: Uint8Array): Uint8Array {
    return new Uint8Array(createHash('sha256').update(LEAF_PREFIX).update(entry).digest());
}

/** Interior node hash: SHA-256(0x01 || left || right). */
export function merkleNodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
    return new Uint8Array(createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest());
}

/** Largest power of two strictly below n (n >= 2): the RFC's split point k. */
function splitPoint(n: number): number {
    let k = 1;
    while (k * 2 < n) k *= 2;
    return k;
}

function checkSize(name: string, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0 || value > MAX_TREE_SIZE) {
        throw new RangeError(`${name} must be a non-negative safe integer, got ${value}`);
    }
}

/** A size or index of a proof to verify: anything but a safe non-negative integer is a bad proof. */
function checkProofSize(name: string, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) fail(`${name} ${value} is not a tree size or index`);
}

function fail(message: string): never {
    throw new VerificationError(ErrorCode.MerkleProofInvalid, message);
}

function checkHash(name: string, hash: Uint8Array): void {
    if (hash.length !== MERKLE_HASH_BYTES) fail(`${name} is ${hash.length} bytes, not ${MERKLE_HASH_BYTES}`);
}

/**
 * An append-only Merkle tree over leaf hashes, keeping every complete subtree's hash (2n hashes
 * for n leaves), so roots of any earlier size and both kinds of proof cost O(log n) hashes for
 * complete subtrees plus O(log^2 n) for the ragged right edge — never a rescan of the leaves.
 */
export class MerkleTree {
    /** levels[h][i] = hash of the complete subtree of 2^h leaves starting at leaf i * 2^h. */
    readonly #levels: Uint8Array[][] = [[]];

    /** Builds a tree from leaf hashes (each 32 bytes). */
    constructor(leafHashes: Iterable<Uint8Array> = []) {
        for (const hash of leafHashes) this.appendLeafHash(hash);
    }

    /** Number of leaves. */
    get size(): number {
        return this.#levels[0]!.length;
    }

    /** Appends an entry (hashed as a leaf); returns its index. */
    append(entry: Uint8Array): number {
        return this.appendLeafHash(merkleLeafHash(entry));
    }

    /**
     * Appends an already computed leaf hash; returns its index.
     * @throws {RangeError} when: a leaf hash is 32 bytes
     */
    appendLeafHash(leafHash: Uint8Array): number {
        if (leafHash.length !== MERKLE_HASH_BYTES) throw new RangeError('a leaf hash is 32 bytes');
        const index = this.size;
        this.#levels[0]!.push(leafHash);
        // Each completed pair of subtrees makes a complete subtree one level up.
        let level = 0;
        let position = index;
        while (position % 2 === 1) {
            const row = this.#levels[level]!;
            const parent = merkleNodeHash(row[position - 1]!, row[position]!);
            level += 1;
            if (this.#levels[level] === undefined) this.#levels[level] = [];
            this.#levels[level]!.push(parent);
            position = (position - 1) / 2;
        }
        return index;
    }

    /**
     * Leaf hash at `index`.
     * @throws {RangeError} when: no leaf … in a tree of …
     */
    leafHash(index: number): Uint8Array {
        const hash = this.#levels[0]![index];
        if (hash === undefined) throw new RangeError(`no leaf ${index} in a tree of ${this.size}`);
        return hash;
    }

    /**
     * MTH(D[0:size]): the root of the tree's first `size` leaves (default: all).
     * @throws {RangeError} when: size … exceeds the tree's … leaves
     */
    root(size: number = this.size): Uint8Array {
        checkSize('size', size);
        if (size > this.size) throw new RangeError(`size ${size} exceeds the tree's ${this.size} leaves`);
        return size === 0 ? EMPTY_ROOT : this.#subtree(0, size);
    }

    /** MTH(D[start:end]) for end - start >= 1. */
    #subtree(start: number, end: number): Uint8Array {
        const n = end - start;
        if (n === 1) return this.#levels[0]![start]!;
        // A complete, aligned subtree is stored.
        if ((n & (n - 1)) === 0 && start % n === 0) {
            const level = Math.log2(n);
            return this.#levels[level]![start / n]!;
        }
        const k = splitPoint(n);
        return merkleNodeHash(this.#subtree(start, start + k), this.#subtree(start + k, end));
    }

    /**
     * PATH(index, D[0:size]) of RFC 9162 §2.1.3.1: the inclusion proof of leaf `index`.
     * @throws {RangeError} when: size … exceeds the tree's … leaves; leaf … is not in a tree of …
     */
    inclusionProof(index: number, size: number = this.size): Uint8Array[] {
        checkSize('index', index);
        checkSize('size', size);
        if (size > this.size) throw new RangeError(`size ${size} exceeds the tree's ${this.size} leaves`);
        if (index >= size) throw new RangeError(`leaf ${index} is not in a tree of ${size}`);
        const proof: Uint8Array[] = [];
        this.#path(index, 0, size, proof);
        return proof;
    }

    #path(m: number, start: number, end: number, out: Uint8Array[]): void {
        const n = end - start;
        if (n === 1) return;
        const k = splitPoint(n);
        if (m < k) {
            this.#path(m, start, start + k, out);
            out.push(this.#subtree(start + k, end));
        } else {
            this.#path(m - k, start + k, end, out);
            out.push(this.#subtree(start, start + k));
        }
    }

    /**
     * PROOF(m, D[0:n]) of RFC 9162 §2.1.4.1: proves the tree of size m is a prefix of size n.
     * @throws {RangeError} when: size … exceeds the tree's … leaves; no consistency proof from size … to …
     */
    consistencyProof(m: number, n: number = this.size): Uint8Array[] {
        checkSize('m', m);
        checkSize('n', n);
        if (n > this.size) throw new RangeError(`size ${n} exceeds the tree's ${this.size} leaves`);
        if (m === 0 || m > n) throw new RangeError(`no consistency proof from size ${m} to ${n}`);
        const proof: Uint8Array[] = [];
        if (m < n) this.#subproof(m, 0, n, true, proof);
        return proof;
    }

    #subproof(m: number, start: number, end: number, complete: boolean, out: Uint8Array[]): void {
        const n = end - start;
        if (m === n) {
            if (!complete) out.push(this.#subtree(start, end));
            return;
        }
        const k = splitPoint(n);
        if (m <= k) {
            this.#subproof(m, start, start + k, complete, out);
            out.push(this.#subtree(start + k, end));
        } else {
            this.#subproof(m - k, start + k, end, false, out);
            out.push(this.#subtree(start, start + k));
        }
    }
}

/** MTH of a list of leaf hashes (convenience for one batch). */
export function merkleRoot(leafHashes: readonly Uint8Array[]): Uint8Array {
    return new MerkleTree(leafHashes).root();
}

/**
 * RFC 9162 §2.1.3.2: checks that `leafHash` is leaf `index` of the tree of `size` leaves whose
 * root is `root`. Throws VerificationError(merkleProofInvalid) on any mismatch, including a
 * proof of the wrong length.
 */
export function verifyInclusion(
    leafHash: Uint8Array,
    index: number,
    size: number,
    proof: readonly Uint8Array[],
    root: Uint8Array,
): void {
    checkProofSize('index', index);
    checkProofSize('size', size);
    checkHash('leaf hash', leafHash);
    checkHash('root', root);
    if (index >= size) fail(`leaf index ${index} is not below the tree size ${size}`);
    let fn = index;
    let sn = size - 1;
    let r = leafHash;
    for (const p of proof) {
        checkHash('proof element', p);
        if (sn === 0) fail('inclusion proof is longer than the path');
        if (fn % 2 === 1 || fn === sn) {
            r = merkleNodeHash(p, r);
            if (fn % 2 === 0) {
                while (fn % 2 === 0 && fn !== 0) {
                    fn = Math.floor(fn / 2);
                    sn = Math.floor(sn / 2);
                }
            }
        } else {
            r = merkleNodeHash(r, p);
        }
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
    }
    if (sn !== 0) fail('inclusion proof is shorter than the path');
    if (!Buffer.from(r).equals(root)) fail('inclusion proof does not lead to the root');
}

/**
 * RFC 9162 §2.1.4.2: checks that the tree of size `m` with root `firstRoot` is a prefix of the
 * tree of size `n` with root `secondRoot`. m = 0 is refused (a proof from the empty tree proves
 * nothing), m = n needs an empty proof and equal roots. Throws VerificationError(merkleProofInvalid).
 */
export function verifyConsistency(
    m: number,
    n: number,
    firstRoot: Uint8Array,
    secondRoot: Uint8Array,
    proof: readonly Uint8Array[],
): void {
    checkProofSize('m', m);
    checkProofSize('n', n);
    checkHash('first root', firstRoot);
    checkHash('second root', secondRoot);
    for (const p of proof) checkHash('proof element', p);
    if (m > n) fail(`first size ${m} exceeds second size ${n}`);
    if (m === 0) fail('a consistency proof from the empty tree proves nothing');
    if (m === n) {
        if (proof.length !== 0) fail('equal sizes need an empty consistency proof');
        if (!Buffer.from(firstRoot).equals(secondRoot)) fail('equal sizes with different roots');
        return;
    }
    if (proof.length === 0) fail('empty consistency proof');
    // Step 1: if m is an exact power of two, the first root itself starts the path.
    const path = (m & (m - 1)) === 0 ? [firstRoot, ...proof] : [...proof];
    let fn = m - 1;
    let sn = n - 1;
    while (fn % 2 === 1) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
    }
    let fr = path[0]!;
    let sr = path[0]!;
    for (const c of path.slice(1)) {
        if (sn === 0) fail('consistency proof is longer than the path');
        if (fn % 2 === 1 || fn === sn) {
            fr = merkleNodeHash(c, fr);
            sr = merkleNodeHash(c, sr);
            if (fn % 2 === 0) {
                while (fn % 2 === 0 && fn !== 0) {
                    fn = Math.floor(fn / 2);
                    sn = Math.floor(sn / 2);
                }
            }
        } else {
            sr = merkleNodeHash(sr, c);
        }
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
    }
    if (sn !== 0) fail('consistency proof is shorter than the path');
    if (!Buffer.from(fr).equals(firstRoot)) fail('consistency proof does not lead to the first root');
    if (!Buffer.from(sr).equals(secondRoot)) fail('consistency proof does not lead to the second root');
}
