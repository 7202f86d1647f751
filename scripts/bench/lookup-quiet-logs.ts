/**
 * Imported first by the lookup benchmark: process settings that must be in place before the code
 * that reads them runs.
 */
// fabric-contract-api logs every decorator at `info` on stdout when the contracts load, before the
// embedded ledger can lower the level.
process.env.CORE_CHAINCODE_LOGGING_LEVEL ??= 'WARNING';
// The bulk load writes one durable file per object (open, write, fsync, close, rename: all in libuv's
// thread pool); with the default 4 threads the fsyncs queue. libuv reads this when the pool first
// starts, which is after module evaluation. The lookup path hardly uses the pool (store.get and the
// ledger's point reads are synchronous), so idle threads are all this costs it.
process.env.UV_THREADPOOL_SIZE ??= '16';
