/**
 * Imported first by the modules that load fabric-contract-api / fabric-shim: their loggers read
 * CORE_CHAINCODE_LOGGING_LEVEL when created, and at the default level they print every decorator
 * of the chaincode at load time.
 */
process.env.CORE_CHAINCODE_LOGGING_LEVEL ??= 'ERROR';
export {};
