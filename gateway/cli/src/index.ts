/**
 * @m2m-fabric/cli: the `m2m` command (dist/main.js) and the all-in-one demo deployment it runs
 * with `npm start`, exported for tests and benchmarks.
 */
export * from './demo/network.js';
export * from './demo/run.js';
export { serviceStorageConfig } from './services.js';
export * from './settings.js';
export { runSpinning, formatSpinningSummary, type SpinningSummary } from './demo/spinning.js';
