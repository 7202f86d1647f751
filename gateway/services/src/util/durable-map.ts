/**
 * A small durable key-value map: an append-only JSON-lines log (file mode 0600) replayed on open,
 * with group commit (concurrent writes share one write + fsync) and atomic compaction. The fog's
 * outbox and the CSP's session store use it; it is pure JavaScript (no native addon) and a write
 * resolves only after its record is on disk, so an acknowledged step survives a crash.
 *
 * A crash can tear only the last line; replay ignores a final line that does not parse.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { readFileSync, existsSync } from 'node:fs';
import { ensureSecretDir, SECRET_FILE_MODE, writeFileAtomic } from '@m2m-fabric/common';
import { dirname } from 'node:path';

interface LogRecord {
    k: string;
    v?: unknown;
    /** Deletion marker. */
    d?: 1;
}

export class DurableMap<V> {
    private readonly map = new Map<string, V>();
    private handle: FileHandle | undefined;
    private pending: { line: string; resolve: () => void; reject: (e: Error) => void }[] = [];
    private flushing: Promise<void> | undefined;
    private linesInFile = 0;
    private closed = false;

    private constructor(readonly path: string) {}

    static async open<V>(path: string): Promise<DurableMap<V>> {
        const m = new DurableMap<V>(path);
        await ensureSecretDir(dirname(path));
        if (existsSync(path)) m.replay(readFileSync(path, 'utf8'));
        // Rewrite compactly on open: drops a torn tail and superseded records.
        await m.compact();
        return m;
    }

    /**
     * Reads the map as it is on disk without opening it for writing (no compaction): for another
     * process (a CLI) looking at a running service's file. Undefined when the file does not exist.
     */
    static readSnapshot<V>(path: string): Map<string, V> | undefined {
        if (!existsSync(path)) return undefined;
        const m = new DurableMap<V>(path);
        m.replay(readFileSync(path, 'utf8'));
        return m.map;
    }

    private replay(text: string): void {
        const lines = text.split('\n');
        lines.forEach((line, i) => {
            if (line === '') return;
            let rec: LogRecord;
            try {
                rec = JSON.parse(line) as LogRecord;
            } catch (err) {
                if (i >= lines.length - 2) return; // torn final line from a crash mid-append
                throw new Error(`${this.path}: corrupt record on line ${i + 1}`, { cause: err });
            }
            if (rec.d === 1) this.map.delete(rec.k);
            else this.map.set(rec.k, rec.v as V);
        });
    }

    private async compact(): Promise<void> {
        const body = [...this.map].map(([k, v]) => JSON.stringify({ k, v })).join('\n');
        await this.handle?.close();
        await writeFileAtomic(this.path, body === '' ? '' : `${body}\n`);
        this.handle = await open(this.path, 'a', SECRET_FILE_MODE);
        this.linesInFile = this.map.size;
    }

    get size(): number {
        return this.map.size;
    }
    get(key: string): V | undefined {
        return this.map.get(key);
    }
    has(key: string): boolean {
        return this.map.has(key);
    }
    entries(): IterableIterator<[string, V]> {
        return this.map.entries();
    }
    values(): IterableIterator<V> {
        return this.map.values();
    }

    /** Sets `key` and resolves once the record is durable. */
    async set(key: string, value: V): Promise<void> {
        this.map.set(key, value);
        await this.append({ k: key, v: value });
    }

    /** Deletes `key` durably (no-op when absent). */
    async delete(key: string): Promise<void> {
        if (!this.map.delete(key)) return;
        await this.append({ k: key, d: 1 });
    }

    private append(rec: LogRecord): Promise<void> {
        if (this.closed) return Promise.reject(new Error(`${this.path} is closed`));
        return new Promise<void>((resolve, reject) => {
            this.pending.push({ line: `${JSON.stringify(rec)}\n`, resolve, reject });
            this.flushing ??= this.flushLoop();
        });
    }

    private async flushLoop(): Promise<void> {
        while (this.pending.length > 0) {
            const batch = this.pending;
            this.pending = [];
            try {
                const h = this.handle;
                if (h === undefined) throw new Error(`${this.path} is closed`);
                await h.appendFile(batch.map((b) => b.line).join(''));
                await h.datasync();
                this.linesInFile += batch.length;
                for (const b of batch) b.resolve();
            } catch (err) {
                for (const b of batch) b.reject(err as Error);
            }
            if (this.pending.length === 0 && this.linesInFile > 2 * this.map.size + 1000) await this.compact();
        }
        this.flushing = undefined;
    }

    async close(): Promise<void> {
        if (this.flushing !== undefined) await this.flushing;
        this.closed = true;
        await this.handle?.close();
        this.handle = undefined;
    }
}
