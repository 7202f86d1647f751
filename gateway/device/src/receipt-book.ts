/**
 * A receipt book on disk: the Merkle receipts a machine holds (its own records' receipts from the
 * CSP, those handed on with the lots it received), one file per record under
 * `<dir>/<counterpart>/<kind>.<record id>.receipt` (names URI-encoded, files 0600, written
 * atomically). `open` verifies every file against the channel's trust roots, so a damaged or
 * foreign receipt is refused at load (`corruptFile` naming the file) rather than trusted at step 9.
 * `keep` persists a receipt; the inherited `holdReceipt` / `hold` hold one in memory only.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { PersistedFileError, ServiceErrorCode, ensureSecretDir, writeFileAtomic } from '@m2m-fabric/common';
import { ReceiptError, toHex, type ReceiptVerifier } from '@m2m-fabric/protocol';

import { MemoryReceiptBook, type HeldReceipt } from './record-history.js';

const SUFFIX = '.receipt';

/** A name as one path segment: URI-encoded, dots too (no `..`, and `.` separates kind from id). */
function segment(name: string): string {
    return encodeURIComponent(name).replace(/\./g, '%2E');
}

export class FileReceiptBook extends MemoryReceiptBook {
    private constructor(
        readonly dir: string,
        private readonly verifier: ReceiptVerifier,
    ) {
        super();
    }

    /**
     * Opens (creating when missing) the book in `dir`, verifying every receipt in it.
     * @throws PersistedFileError `corruptFile` when: a file is not a receipt that verifies, or its name does not match it
     */
    static async open(dir: string, verifier: ReceiptVerifier): Promise<FileReceiptBook> {
        await ensureSecretDir(dir);
        const book = new FileReceiptBook(dir, verifier);
        for (const entry of await readdir(dir, { withFileTypes: true })) {
            if (!entry.isDirectory()) continue;
            const counterpart = decodeURIComponent(entry.name);
            for (const name of (await readdir(join(dir, entry.name))).filter((n) => n.endsWith(SUFFIX)).sort()) {
                const path = join(dir, entry.name, name);
                const [kindPart, idPart] = name.slice(0, -SUFFIX.length).split('.');
                let held: HeldReceipt;
                try {
                    held = book.holdReceipt(
                        counterpart,
                        decodeURIComponent(kindPart ?? ''),
                        new Uint8Array(await readFile(path)),
                        verifier,
                    );
                } catch (error) {
                    if (!(error instanceof ReceiptError)) throw error;
                    throw new PersistedFileError(ServiceErrorCode.CorruptFile, path, error.message, { cause: error });
                }
                if (toHex(held.recordId) !== idPart) {
                    throw new PersistedFileError(
                        ServiceErrorCode.CorruptFile,
                        path,
                        'the receipt is of another record',
                    );
                }
            }
        }
        return book;
    }

    /**
     * Verifies a receipt, writes it durably, then holds it. A receipt that does not verify is
     * refused and neither the book nor the directory changes.
     * @throws ReceiptError naming the failed check
     */
    async keep(counterpartId: string, kind: string, receipt: Uint8Array): Promise<HeldReceipt> {
        const probe = new MemoryReceiptBook().holdReceipt(counterpartId, kind, receipt, this.verifier);
        const file = `${segment(kind)}.${toHex(probe.recordId)}${SUFFIX}`;
        await writeFileAtomic(join(this.dir, segment(counterpartId), file), receipt);
        this.hold(counterpartId, probe);
        return probe;
    }
}
