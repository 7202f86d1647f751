/** Public API of the gateway SDK. */
export * from './storage/index.js';
