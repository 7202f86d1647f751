/**
 * @m2m-fabric/services: the long-running services of an m2m deployment.
 *
 * - {@link FogGateway}: Algorithm 2 at the fog (M1, M2, activation with M3, M4 to the CSP);
 * - {@link CspBackend}: Algorithm 1 issuance, Algorithm 3 synchronisation, the session channel;
 * - {@link ManufacturerClient}: equipment registration, session purchases, delivery to devices;
 * - the fog-CSP link, service keys, metrics and the embedded MQTT broker.
 */
export * from './fog/gateway.js';
export * from './csp/backend.js';
export { CspCaKeys, cspCaKeyPath, rotateCspCaKey } from './csp/ca-keys.js';
export * from './csp/instruction-outbox.js';
export * from './csp/records.js';
export * from './manufacturer/client.js';
export * from './metrics/registry.js';
export * from './metrics/http.js';
export * from './link.js';
export * from './keys.js';
export * from './broker.js';
export * from './util/durable-map.js';
export * from './util/fifo-limiter.js';
export * from './util/rate-limiter.js';
export * from './records/index.js';
export * from './fog/query-handler.js';
export * from './fog/query-ledger.js';
export * from './fog/query-routes.js';
export * from './fog/relay-records.js';
export { ensureFogSuiteKeys, fogSuiteKeyPath } from './fog/suite-keys.js';
