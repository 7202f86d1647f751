/**
 * The embedded store's in-memory index: sha2-256 digest → a number (the entry's location and pin
 * bit), as an open-addressing hash table in typed arrays.
 *
 * A `Map<string, number>` of 10⁶ digests held 10⁶ strings and, for locations above 2^30, 10⁶ boxed
 * numbers on the JavaScript heap, and the open built it by insertion beside the scan's own garbage
 * (an entry object and a digest view per entry): every major GC traced all of it, so the rebuild
 * cost grew with the heap the process already had — 3.9-4.6 s alone at 10⁶ on the loaded machine,
 * 23 s in a process that had just made 10⁶ CID strings (docs/storage.md). Here the digests, values
 * and slots live in three typed arrays (about 48 bytes per object at 10⁶), which the GC never traces.
 *
 * Digests are SHA-256 outputs, so their first four bytes are already a uniform hash; linear probing
 * at a load factor of at most one half. Entries keep insertion order (like a Map), and an update
 * keeps an entry's position. There is no delete: gc rebuilds the whole index.
 */

const DIGEST_BYTES = 32;
const INITIAL_ENTRIES = 1024;

export class DigestIndex {
    private digests = new Uint8Array(INITIAL_ENTRIES * DIGEST_BYTES);
    private values = new Float64Array(INITIAL_ENTRIES);
    /** Entry number + 1 per slot (0 = empty). */
    private slots = new Int32Array(INITIAL_ENTRIES * 2);
    private mask = INITIAL_ENTRIES * 2 - 1;
    private count = 0;

    /** Number of digests held. */
    get size(): number {
        return this.count;
    }

    private slotOf(bytes: Uint8Array, at: number): number {
        return (
            (((bytes[at] as number) << 24) |
                ((bytes[at + 1] as number) << 16) |
                ((bytes[at + 2] as number) << 8) |
                (bytes[at + 3] as number)) &
            this.mask
        );
    }

    private sameDigest(entry: number, bytes: Uint8Array, at: number): boolean {
        const base = entry * DIGEST_BYTES;
        const digests = this.digests;
        for (let i = 0; i < DIGEST_BYTES; i++) if (digests[base + i] !== bytes[at + i]) return false;
        return true;
    }

    /** The entry number of the digest at `bytes[at..at+32)`, or -1. */
    find(bytes: Uint8Array, at = 0): number {
        for (let slot = this.slotOf(bytes, at); ; slot = (slot + 1) & this.mask) {
            const held = this.slots[slot] as number;
            if (held === 0) return -1;
            if (this.sameDigest(held - 1, bytes, at)) return held - 1;
        }
    }

    /** The value of the digest at `bytes[at..at+32)`, or undefined. */
    get(bytes: Uint8Array, at = 0): number | undefined {
        const entry = this.find(bytes, at);
        return entry === -1 ? undefined : this.values[entry];
    }

    /** Sets the value of the digest at `bytes[at..at+32)`, adding it when new; returns its entry number. */
    set(bytes: Uint8Array, at: number, value: number): number {
        const found = this.find(bytes, at);
        if (found !== -1) {
            this.values[found] = value;
            return found;
        }
        if (this.count === this.values.length) this.growEntries(this.count + 1);
        if ((this.count + 1) * 2 > this.slots.length) this.growSlots(this.count + 1);
        const entry = this.count++;
        // A byte loop, not set(subarray): no view object per insert (10⁶ of them at an open).
        const digests = this.digests;
        const base = entry * DIGEST_BYTES;
        for (let i = 0; i < DIGEST_BYTES; i++) digests[base + i] = bytes[at + i] as number;
        this.values[entry] = value;
        this.place(entry);
        return entry;
    }

    /** The value of entry `entry` (0 ≤ entry < size). */
    valueAt(entry: number): number {
        return this.values[entry] as number;
    }

    setValueAt(entry: number, value: number): void {
        this.values[entry] = value;
    }

    /** A copy of entry `entry`'s digest. */
    digestAt(entry: number): Uint8Array {
        return this.digests.slice(entry * DIGEST_BYTES, (entry + 1) * DIGEST_BYTES);
    }

    /** Copies of the digests and values held now, in entry order (for iteration that may outlive a gc). */
    snapshot(): { digests: Uint8Array; values: Float64Array } {
        return {
            digests: this.digests.slice(0, this.count * DIGEST_BYTES),
            values: this.values.slice(0, this.count),
        };
    }

    clear(): void {
        this.digests = new Uint8Array(INITIAL_ENTRIES * DIGEST_BYTES);
        this.values = new Float64Array(INITIAL_ENTRIES);
        this.slots = new Int32Array(INITIAL_ENTRIES * 2);
        this.mask = this.slots.length - 1;
        this.count = 0;
    }

    private place(entry: number): void {
        let slot = this.slotOf(this.digests, entry * DIGEST_BYTES);
        while (this.slots[slot] !== 0) slot = (slot + 1) & this.mask;
        this.slots[slot] = entry + 1;
    }

    /** Makes room for `entries` digests at once (an open knows the count from the segment indexes). */
    reserve(entries: number): void {
        if (entries > this.values.length) this.growEntries(entries);
        if (entries * 2 > this.slots.length) this.growSlots(entries);
    }

    private growEntries(entries: number): void {
        let capacity = this.values.length * 2;
        while (capacity < entries) capacity *= 2;
        const digests = new Uint8Array(capacity * DIGEST_BYTES);
        digests.set(this.digests);
        this.digests = digests;
        const values = new Float64Array(capacity);
        values.set(this.values);
        this.values = values;
    }

    private growSlots(entries: number): void {
        let capacity = this.slots.length * 2;
        while (capacity < entries * 2) capacity *= 2;
        this.slots = new Int32Array(capacity);
        this.mask = this.slots.length - 1;
        for (let entry = 0; entry < this.count; entry++) this.place(entry);
    }
}
