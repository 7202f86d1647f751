/**
 * Where a bench writes its results. A full run goes to bench/results/, whose files are tracked and
 * quoted by the docs; a `--quick` smoke run goes to bench/results/quick/ (ignored by git), so it
 * never replaces the tracked figures with ones its own header calls not meaningful. `--out DIR`
 * overrides both.
 */
import { join } from 'node:path';

/** The tracked results of full runs. */
export const RESULTS_DIR = join('bench', 'results');
/** Quick smoke runs (gitignored). */
export const QUICK_RESULTS_DIR = join(RESULTS_DIR, 'quick');

/** The directory a run writes to: `--out` if given, else by whether the run is quick. */
export function resultsDir(quick: boolean, out?: string): string {
    return out ?? (quick ? QUICK_RESULTS_DIR : RESULTS_DIR);
}
