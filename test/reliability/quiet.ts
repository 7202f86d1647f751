// Imported first: fabric-contract-api reads its log level when it loads.
process.env.CORE_CHAINCODE_LOGGING_LEVEL ??= 'ERROR';
export {};
