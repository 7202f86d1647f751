/**
 * Imported first by the lookup benchmark: fabric-contract-api logs every decorator at `info` on
 * stdout when the contracts load, before the embedded ledger can lower the level.
 */
process.env.CORE_CHAINCODE_LOGGING_LEVEL ??= 'WARNING';
