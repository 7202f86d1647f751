/**
 * Fabric's protocol buffers, taken from the copy fabric-shim itself uses so that the messages
 * handed to its `ChaincodeStub` are the classes it expects. Proposals, transactions, read-write
 * sets and blocks of the embedded ledger are these messages, byte for byte what Fabric would hold.
 */
import { createRequire } from 'node:module';

import { common, ledger, msp, peer } from '@hyperledger/fabric-protos';

const require = createRequire(import.meta.url);

export { common, ledger, msp, peer };
export const kvrwset = ledger.rwset.kvrwset;
export const rwset = ledger.rwset;
export const queryresult = ledger.queryresult;

/** google.protobuf.Timestamp, the class fabric-protos builds its messages with. */
export interface TimestampMessage {
    getSeconds(): number;
    setSeconds(value: number): void;
    getNanos(): number;
    setNanos(value: number): void;
    toDate(): Date;
    serializeBinary(): Uint8Array;
}
interface TimestampClass {
    new (): TimestampMessage;
}
const { Timestamp } = require('google-protobuf/google/protobuf/timestamp_pb.js') as { Timestamp: TimestampClass };

/** A Timestamp for a time in milliseconds since the epoch. */
export function newTimestamp(millis: number): TimestampMessage {
    const timestamp = new Timestamp();
    timestamp.setSeconds(Math.floor(millis / 1000));
    timestamp.setNanos((millis % 1000) * 1_000_000);
    return timestamp;
}

/** Header types (common.HeaderType). */
export const HeaderType = { CONFIG: 1, ENDORSER_TRANSACTION: 3 } as const;

/** Block metadata slots (common.BlockMetadataIndex). */
export const BlockMetadataIndex = {
    SIGNATURES: 0,
    LAST_CONFIG: 1,
    TRANSACTIONS_FILTER: 2,
    ORDERER: 3,
    COMMIT_HASH: 4,
} as const;
