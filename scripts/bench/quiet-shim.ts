/** fabric-contract-api logs every decorator at info level unless told otherwise before it loads. */
process.env.CORE_CHAINCODE_LOGGING_LEVEL ??= 'WARNING';
