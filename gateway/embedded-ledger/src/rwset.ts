/**
 * Read-write sets: what a simulation read (with versions) and wrote, in Fabric's
 * `TxReadWriteSet` / `KVRWSet` encoding. Reads and writes are sorted by key, as Fabric's rwset
 * builder sorts them, so every endorser of a deterministic chaincode produces identical bytes.
 */
import { kvrwset, rwset } from './protos.js';

/** A committed state version: the block and the transaction's position in it. */
export interface Version {
    readonly blockNum: number;
    readonly txNum: number;
}

export interface KVRead {
    readonly key: string;
    /** Undefined when the key did not exist. */
    readonly version: Version | undefined;
}

export interface KVWrite {
    readonly key: string;
    readonly isDelete: boolean;
    readonly value: Uint8Array;
}

/** A range query (`getStateByRange`, `getStateByPartialCompositeKey`) and the results it fetched. */
export interface RangeQueryInfo {
    readonly startKey: string;
    /** Exclusive; '' means unbounded. */
    readonly endKey: string;
    /** True if the iterator reached the end of the range. */
    readonly itrExhausted: boolean;
    readonly reads: readonly KVRead[];
}

export interface NsReadWriteSet {
    readonly namespace: string;
    readonly reads: readonly KVRead[];
    readonly rangeQueries: readonly RangeQueryInfo[];
    readonly writes: readonly KVWrite[];
}

export function versionsEqual(a: Version | undefined, b: Version | undefined): boolean {
    if (a === undefined || b === undefined) return a === b;
    return a.blockNum === b.blockNum && a.txNum === b.txNum;
}

/** Fabric's key order: by UTF-8 bytes (JS string comparison orders by UTF-16 units, which differs). */
export function compareKeys(a: string, b: string): number {
    return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function encodeRead(read: KVRead): InstanceType<typeof kvrwset.KVRead> {
    const message = new kvrwset.KVRead();
    message.setKey(read.key);
    if (read.version !== undefined) {
        const version = new kvrwset.Version();
        version.setBlockNum(read.version.blockNum);
        version.setTxNum(read.version.txNum);
        message.setVersion(version);
    }
    return message;
}

function decodeRead(message: InstanceType<typeof kvrwset.KVRead>): KVRead {
    const version = message.getVersion();
    return {
        key: message.getKey(),
        version: version === undefined ? undefined : { blockNum: version.getBlockNum(), txNum: version.getTxNum() },
    };
}

/** Encodes a transaction's read-write sets (`rwset.TxReadWriteSet`, data model KV). */
export function encodeTxReadWriteSet(sets: readonly NsReadWriteSet[]): Uint8Array {
    const tx = new rwset.TxReadWriteSet();
    tx.setDataModel(rwset.TxReadWriteSet.DataModel.KV);
    tx.setNsRwsetList(
        sets.map((set) => {
            const kv = new kvrwset.KVRWSet();
            kv.setReadsList(set.reads.map(encodeRead));
            kv.setRangeQueriesInfoList(
                set.rangeQueries.map((query) => {
                    const info = new kvrwset.RangeQueryInfo();
                    info.setStartKey(query.startKey);
                    info.setEndKey(query.endKey);
                    info.setItrExhausted(query.itrExhausted);
                    const reads = new kvrwset.QueryReads();
                    reads.setKvReadsList(query.reads.map(encodeRead));
                    info.setRawReads(reads);
                    return info;
                }),
            );
            kv.setWritesList(
                set.writes.map((write) => {
                    const message = new kvrwset.KVWrite();
                    message.setKey(write.key);
                    message.setIsDelete(write.isDelete);
                    message.setValue(write.value);
                    return message;
                }),
            );
            const ns = new rwset.NsReadWriteSet();
            ns.setNamespace(set.namespace);
            ns.setRwset(kv.serializeBinary());
            return ns;
        }),
    );
    return tx.serializeBinary();
}

/** Decodes `rwset.TxReadWriteSet` bytes; throws on malformed input. */
export function decodeTxReadWriteSet(bytes: Uint8Array): NsReadWriteSet[] {
    const tx = rwset.TxReadWriteSet.deserializeBinary(bytes);
    if (tx.getDataModel() !== rwset.TxReadWriteSet.DataModel.KV)
        throw new Error('unsupported read-write set data model');
    return tx.getNsRwsetList().map((ns) => {
        if (ns.getCollectionHashedRwsetList().length > 0)
            throw new Error('private data read-write sets are not supported');
        const kv = kvrwset.KVRWSet.deserializeBinary(ns.getRwset_asU8());
        return {
            namespace: ns.getNamespace(),
            reads: kv.getReadsList().map(decodeRead),
            rangeQueries: kv.getRangeQueriesInfoList().map((info) => {
                if (info.hasReadsMerkleHashes()) throw new Error('merkle-summarised range queries are not supported');
                return {
                    startKey: info.getStartKey(),
                    endKey: info.getEndKey(),
                    itrExhausted: info.getItrExhausted(),
                    reads: info.getRawReads()?.getKvReadsList().map(decodeRead) ?? [],
                };
            }),
            writes: kv.getWritesList().map((write) => ({
                key: write.getKey(),
                isDelete: write.getIsDelete(),
                value: write.getValue_asU8(),
            })),
        };
    });
}
