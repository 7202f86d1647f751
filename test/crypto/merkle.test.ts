import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
    EMPTY_ROOT,
    ErrorCode,
    MerkleTree,
    VerificationError,
    merkleLeafHash,
    merkleRoot,
    verifyConsistency,
    verifyInclusion,
} from '@m2m-fabric/protocol';
import { refMth, refPath, refProof } from './merkle-reference.js';
import { hex, toHexString } from './protocol-helpers.js';
import { CONSISTENCY_VECTORS, INCLUSION_VECTORS, LEAF_INPUTS, ROOT_HASHES } from './vectors/transparency-merkle.js';

const h = (s: string | null): Uint8Array => (s === null ? new Uint8Array() : hex(s));

function throwsMerkle(fn: () => unknown, message: string): void {
    assert.throws(
        fn,
        (e: unknown) => e instanceof VerificationError && e.code === ErrorCode.MerkleProofInvalid,
        message,
    );
}

void describe('RFC 9162 Merkle tree', () => {
    const leaves = LEAF_INPUTS.map(hex);

    void it('reproduces the transparency-dev roots for sizes 0-8', () => {
        assert.equal(toHexString(EMPTY_ROOT), ROOT_HASHES[0]);
        const tree = new MerkleTree();
        leaves.forEach((leaf) => tree.append(leaf));
        for (let size = 0; size <= 8; size++) {
            assert.equal(toHexString(tree.root(size)), ROOT_HASHES[size], `size ${size}`);
            assert.equal(toHexString(merkleRoot(leaves.slice(0, size).map(merkleLeafHash))), ROOT_HASHES[size]);
        }
    });

    void it(`passes the ${INCLUSION_VECTORS.length} transparency-dev inclusion vectors`, () => {
        let valid = 0;
        for (const v of INCLUSION_VECTORS) {
            const verify = (): void =>
                verifyInclusion(h(v.leafHash), Number(v.leafIdx), Number(v.treeSize), v.proof.map(hex), h(v.root));
            if (v.wantErr) {
                throwsMerkle(verify, v.name);
            } else {
                verify();
                valid += 1;
            }
        }
        assert.ok(valid >= 5, `only ${valid} valid inclusion vectors`);
    });

    void it(`passes the ${CONSISTENCY_VECTORS.length} transparency-dev consistency vectors`, () => {
        let valid = 0;
        for (const v of CONSISTENCY_VECTORS) {
            const verify = (): void =>
                verifyConsistency(Number(v.size1), Number(v.size2), h(v.root1), h(v.root2), v.proof.map(hex));
            // One deviation: transparency-dev accepts equal sizes with equal roots of any length
            // ("don't care"); a root here is always 32 bytes, so such a case is refused.
            const odd = [v.root1, v.root2].some((r) => r === null || r.length !== 64);
            if (v.wantErr || odd) {
                throwsMerkle(verify, v.name);
            } else {
                verify();
                valid += 1;
            }
        }
        assert.ok(valid >= 5, `only ${valid} valid consistency vectors`);
    });

    void it("generates the vectors' happy-path proofs over the vector leaves", () => {
        const tree = new MerkleTree();
        leaves.forEach((leaf) => tree.append(leaf));
        for (const v of INCLUSION_VECTORS.filter((x) => !x.wantErr && Number(x.treeSize) <= 8)) {
            const proof = tree.inclusionProof(Number(v.leafIdx), Number(v.treeSize)).map(toHexString);
            if (toHexString(tree.leafHash(Number(v.leafIdx))) === v.leafHash) assert.deepEqual(proof, v.proof, v.name);
        }
        for (const v of CONSISTENCY_VECTORS.filter((x) => !x.wantErr && Number(x.size2) <= 8 && Number(x.size1) > 0)) {
            if (toHexString(tree.root(Number(v.size2))) !== v.root2) continue;
            assert.deepEqual(tree.consistencyProof(Number(v.size1), Number(v.size2)).map(toHexString), v.proof, v.name);
        }
    });

    void it('agrees with an independent transcription of the RFC for every size, index and prefix up to 70', () => {
        const entries = Array.from({ length: 70 }, (_, i) => randomBytes(i % 7));
        const tree = new MerkleTree();
        for (let n = 1; n <= entries.length; n++) {
            tree.append(entries[n - 1]!);
            const d = entries.slice(0, n);
            const root = refMth(d);
            assert.deepEqual(tree.root(), root, `root ${n}`);
            for (let m = 0; m < n; m++) {
                const proof = tree.inclusionProof(m, n);
                assert.deepEqual(proof, refPath(m, d), `path ${m}/${n}`);
                verifyInclusion(merkleLeafHash(entries[m]!), m, n, proof, root);
            }
            for (let m = 1; m <= n; m++) {
                const proof = tree.consistencyProof(m, n);
                assert.deepEqual(proof, m === n ? [] : refProof(m, d), `consistency ${m}/${n}`);
                verifyConsistency(m, n, refMth(entries.slice(0, m)), root, proof);
            }
        }
    });

    void it('rejects every single-bit change of an inclusion or consistency proof', () => {
        const tree = new MerkleTree(Array.from({ length: 37 }, () => merkleLeafHash(randomBytes(8))));
        const root = tree.root();
        const proof = tree.inclusionProof(21);
        const consistency = tree.consistencyProof(13);
        for (let i = 0; i < proof.length; i++) {
            for (let bit = 0; bit < 256; bit += 17) {
                const bad = proof.map((p) => p.slice());
                bad[i]![bit >> 3]! ^= 1 << (bit & 7);
                throwsMerkle(() => verifyInclusion(tree.leafHash(21), 21, 37, bad, root), `path ${i} bit ${bit}`);
            }
        }
        for (let i = 0; i < consistency.length; i++) {
            const bad = consistency.map((p) => p.slice());
            bad[i]![0]! ^= 0x80;
            throwsMerkle(() => verifyConsistency(13, 37, tree.root(13), root, bad), `consistency ${i}`);
        }
        throwsMerkle(() => verifyInclusion(tree.leafHash(21), 22, 37, proof, root), 'wrong index');
        throwsMerkle(() => verifyInclusion(tree.leafHash(21), 21, 30, proof, root), 'wrong size');
        throwsMerkle(() => verifyInclusion(tree.leafHash(21), 21, 37, proof.slice(1), root), 'truncated');
        throwsMerkle(() => verifyInclusion(tree.leafHash(21), 21, 37, [...proof, root], root), 'extended');
        throwsMerkle(() => verifyConsistency(0, 37, EMPTY_ROOT, root, []), 'from empty');
        throwsMerkle(() => verifyConsistency(37, 13, root, tree.root(13), consistency), 'shrinking');
    });

    void it('keeps a leaf from passing as an interior node (domain separation)', () => {
        const a = merkleLeafHash(Uint8Array.of(1));
        const b = merkleLeafHash(Uint8Array.of(2));
        const root = merkleRoot([a, b]);
        // The 64-byte concatenation a||b hashed as a leaf differs from the node over a and b.
        assert.notDeepEqual(merkleLeafHash(new Uint8Array([...a, ...b])), root);
    });
});
