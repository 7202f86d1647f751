/**
 * `npm run test:fabric [-- --embedded | --in-process]`: runs the integration suite (suite.ts) with
 * node's test runner. Targets (targets.ts): FABRIC_CONNECTION=<dir with csp/foga/fogb/manufacturer
 * connection files> for a Fabric network; `--embedded` for the embedded ledger behind its Fabric
 * Gateway endpoints, reached through the same Fabric client code; `--in-process` for the embedded
 * ledger's in-process connections (M2M_FABRIC_TEST_TARGET=fabric|embedded|in-process does the same).
 * With no target, the suite reports itself skipped with the reason. It is not part of `npm test`.
 */
import './suite.js';
