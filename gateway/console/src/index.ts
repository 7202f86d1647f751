/**
 * @m2m-fabric/console — the operator console in the browser: equipment, certificates and sessions,
 * ledger blocks, fogs and CSP, live over server-sent events, served under an org identity.
 */
export { startConsole, createConsoleApp, type ConsoleOptions, type ConsoleServer } from './server.js';
export {
    ActivityFeed,
    summariseBlockView,
    type ActivityFeedOptions,
    type ActivityTally,
    type BlockSummary,
    type FeedMessage,
} from './activity-feed.js';
export { embeddedBlockSource, qsccBlockSource, type BlockSource } from './block-source.js';
export { decodeBlockView, type BlockView, type TransactionView } from './blocks.js';
export { countCertificates, MAX_COUNTED_CERTIFICATES, type CertificateCounts } from './certificate-counts.js';
export {
    IdentityTable,
    CONSOLE_ACTIONS,
    type ConsoleAction,
    type ConsoleIdentity,
    type ConsoleRole,
} from './identity.js';
export {
    httpSource,
    registrySource,
    parseMetrics,
    type MetricsSource,
    type ServiceHealth,
    type MetricFamily,
} from './metrics-source.js';
export {
    startEmbeddedConsole,
    probeBroker,
    type EmbeddedConsole,
    type EmbeddedConsoleOptions,
    type EmbeddedDeployment,
    type DeploymentOrganisations,
} from './embedded.js';
export {
    addRecordRoutes,
    BATCH_PAGE,
    RECORD_PAGE,
    recordView,
    type RecordLog,
    type RecordsOptions,
} from './records-routes.js';
export { addTraceRoutes } from './trace-routes.js';
export { runConsole, CONSOLE_USAGE } from './cli.js';
