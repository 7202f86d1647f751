/** Off-chain certificate object storage: one interface, an embedded and a Kubo backend. */
export * from './errors.js';
export type * from './object-store.js';
export { MAX_OBJECT_BYTES, addressOf, verifiedObject } from './content.js';
export { EmbeddedObjectStore, type EmbeddedStoreStats, type EmbeddedStoreRecovery } from './embedded-store.js';
export { KuboObjectStore, type KuboStoreOptions } from './kubo-store.js';
export {
    exportCar,
    importCar,
    exportStoreToCar,
    importCarToStore,
    INDEX_FANOUT,
    type CarExportResult,
    type CarExportOptions,
    type CarImportResult,
} from './car.js';
export { storageConfigFromEnv, openObjectStore, type StorageConfig } from './config.js';
