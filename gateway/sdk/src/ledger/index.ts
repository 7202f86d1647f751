/** Ledger client interface: types, typed errors, checkpointers and the MVCC retry helper. */
export * from './types.js';
export * from './errors.js';
export * from './checkpointers.js';
export * from './retry.js';
export * from './commit-wait.js';
export * from './signers.js';
