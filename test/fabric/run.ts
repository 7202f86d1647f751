/**
 * `npm run test:fabric [-- --embedded]`: runs the integration suite (suite.ts) with node's test
 * runner. Target: `--embedded` or M2M_FABRIC_TEST_TARGET=embedded for the embedded ledger;
 * FABRIC_CONNECTION=<dir with csp/foga/fogb/manufacturer connection files> for a Fabric network.
 * With neither, the suite reports itself skipped with the reason. It is not part of `npm test`.
 */
import './suite.js';
