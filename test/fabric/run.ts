/**
 * `npm run test:fabric [-- --embedded | --in-process]`: runs every integration suite of this
 * directory (`*.suite.ts`, then suite.ts) with node's test runner, one after the other. Targets
 * (targets.ts): FABRIC_CONNECTION=<dir with csp/foga/fogb/manufacturer connection files> for a Fabric
 * network; `--embedded` for the embedded ledger behind its Fabric Gateway endpoints, reached through
 * the same Fabric client code; `--in-process` for the embedded ledger's in-process connections
 * (M2M_FABRIC_TEST_TARGET=fabric|embedded|in-process does the same). With no target, every suite
 * reports itself skipped with the reason. It is not part of `npm test`.
 *
 * discovery.suite.ts comes first: it checks the network as `network:deploy` left it.
 */
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const FIRST = 'discovery.suite.js';
const here = dirname(fileURLToPath(import.meta.url));
const suites = readdirSync(here)
    .filter((file) => file.endsWith('.suite.js') && file !== FIRST)
    .sort();
for (const file of [FIRST, ...suites, 'suite.js']) await import(`./${file}`);
