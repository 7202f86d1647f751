/**
 * Communication records of session-channel frames (paper 000 §4.3): the record a sender makes of
 * each frame it sends, and the check a receiver makes that a record describes the frame it came
 * with. The record's digest is SHA-256 of the frame as it crossed the channel (AES-256-GCM
 * ciphertext under the session key, header included), its sequence is the frame's sequence number
 * and its size the frame's length, so the frame itself is the stripped payload stored under the
 * record's CID.
 *
 * On the wire a device sends a recorded frame: the frame and its record side by side,
 *
 *   u32 length || frame | u16 length || record
 *
 * so a fog relays both unread and the CSP checks the record against the frame before it journals
 * it and acknowledges the frame.
 */
import { ByteReader, ByteWriter, equalBytes } from './encoding.js';
import { DecodeError, ErrorCode, VerificationError } from './errors.js';
import {
    EncryptionType,
    RecordType,
    decodeRecord,
    encodeRecord,
    payloadDigest,
    verifyRecord,
    type CommunicationRecord,
    type Party,
    type RecordSigner,
    type PartyRole,
} from './record.js';
import { FRAME_HEADER_BYTES, FrameType } from './session-channel.js';

/**
 * Paper 000's information type of a frame: upload, download, or acknowledgement (Ack and Confirm).
 * @throws {DecodeError} `unknownType` when: the frame type is none of those
 */
export function frameRecordType(type: number): RecordType {
    switch (type) {
        case FrameType.Upload:
            return RecordType.Upload;
        case FrameType.Download:
            return RecordType.Download;
        case FrameType.Ack:
        case FrameType.Confirm:
            return RecordType.Acknowledgement;
        default:
            throw new DecodeError('unknownType', `frame type ${type}`);
    }
}

/**
 * The type and sequence number in a frame's clear header (version | type | seq u64).
 * @throws {DecodeError} `truncated` when: the frame is shorter than its header
 */
export function frameHeader(frame: Uint8Array): { type: number; seq: bigint } {
    if (frame.length < FRAME_HEADER_BYTES) throw new DecodeError('truncated', 'frame shorter than its header');
    const view = new DataView(frame.buffer, frame.byteOffset, FRAME_HEADER_BYTES);
    return { type: view.getUint8(1), seq: view.getBigUint64(2) };
}

/**
 * The sender's signed record of one frame it sends.
 * @throws DecodeError for a frame without a valid header
 */
export function recordFrame(
    signer: RecordSigner,
    senderRole: PartyRole,
    receiver: Party,
    frame: Uint8Array,
    timestampMs: number = Date.now(),
): CommunicationRecord {
    const { type, seq } = frameHeader(frame);
    return signer.sign({
        suite: signer.suite,
        type: frameRecordType(type),
        encryption: EncryptionType.SessionChannel,
        sender: signer.party(senderRole),
        receiver,
        sequence: seq,
        timestamp: BigInt(timestampMs),
        size: frame.length,
        digest: payloadDigest(frame),
    });
}

/** What a receiver expects of the record that comes with a frame. */
export interface ExpectedFrameRecord {
    /** The sender: for a device, its session's H(Q_i) as the ledger's session record holds it. */
    sender: Party;
    receiver: Party;
}

/**
 * Decodes and verifies the record that came with `frame`: its signature, its sender and receiver
 * (recordSenderMismatch when it names or is signed by another party), and that it describes this
 * frame — digest, size, sequence number and type (recordMismatch otherwise).
 * @throws DecodeError, VerificationError
 */
export function checkFrameRecord(
    recordBytes: Uint8Array,
    frame: Uint8Array,
    expected: ExpectedFrameRecord,
): CommunicationRecord {
    const record = decodeRecord(recordBytes);
    verifyRecord(record);
    const same = (a: Party, b: Party): boolean => a.role === b.role && equalBytes(a.keyId, b.keyId);
    if (!same(record.sender, expected.sender) || !same(record.receiver, expected.receiver)) {
        throw new VerificationError(ErrorCode.RecordSenderMismatch, 'the record names other parties than the frame');
    }
    const { type, seq } = frameHeader(frame);
    if (
        record.size !== frame.length ||
        record.sequence !== seq ||
        record.type !== frameRecordType(type) ||
        record.encryption !== EncryptionType.SessionChannel ||
        !equalBytes(record.digest, payloadDigest(frame))
    ) {
        throw new VerificationError(ErrorCode.RecordMismatch, 'the record does not describe the frame it came with');
    }
    return record;
}

/** A frame and its sender's record, as a device sends them. */
export interface RecordedFrame {
    frame: Uint8Array;
    record: Uint8Array;
}

export function encodeRecordedFrame(recorded: RecordedFrame): Uint8Array {
    return new ByteWriter().bytes32(recorded.frame).bytes16(recorded.record).finish();
}

/** @throws DecodeError */
export function decodeRecordedFrame(bytes: Uint8Array): RecordedFrame {
    const r = new ByteReader(bytes);
    const frame = r.bytes32();
    const record = r.bytes16();
    r.end();
    return { frame, record };
}

/** Convenience: the encoded record of a frame. */
export function encodeFrameRecord(
    signer: RecordSigner,
    senderRole: PartyRole,
    receiver: Party,
    frame: Uint8Array,
    timestampMs?: number,
): Uint8Array {
    return encodeRecord(recordFrame(signer, senderRole, receiver, frame, timestampMs));
}
