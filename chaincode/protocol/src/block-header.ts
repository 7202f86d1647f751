/**
 * Fabric's block header encoding (protoutil.BlockHeaderBytes): the ASN.1 DER
 * SEQUENCE { INTEGER number, OCTET STRING previousHash, OCTET STRING dataHash } that the block
 * hash and the orderer's signature cover. One implementation for the embedded ledger that writes
 * blocks, the SDK that verifies receipts offline, and the chaincode that verifies imported
 * checkpoints.
 */

function derLength(length: number): Uint8Array {
    if (length < 0x80) return Uint8Array.of(length);
    const bytes: number[] = [];
    for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
    return Uint8Array.from([0x80 | bytes.length, ...bytes]);
}

function derTlv(tag: number, content: Uint8Array): Uint8Array {
    return Buffer.concat([Uint8Array.of(tag), derLength(content.length), content]);
}

/** A non-negative INTEGER: big-endian, minimal, with a 0x00 in front when the top bit is set. */
function derUnsignedInteger(value: number | bigint): Uint8Array {
    let hex = BigInt(value).toString(16);
    if (hex.length % 2 === 1) hex = `0${hex}`;
    let bytes: Uint8Array = Buffer.from(hex, 'hex');
    if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Uint8Array.of(0), bytes]);
    return derTlv(0x02, bytes);
}

/**
 * The bytes of a block header as Fabric hashes and signs them.
 * @throws {RangeError} when: `number` is negative
 */
export function blockHeaderBytes(number: number | bigint, previousHash: Uint8Array, dataHash: Uint8Array): Uint8Array {
    if (BigInt(number) < 0n) throw new RangeError(`block number ${number} is negative`);
    return derTlv(
        0x30,
        Buffer.concat([derUnsignedInteger(number), derTlv(0x04, previousHash), derTlv(0x04, dataHash)]),
    );
}
