/**
 * Records of the messages a fog relays between machines (paper 000 §4.3, information type relay).
 * The device-to-device messages a fog relays are the record query's packets (record-query.ts):
 * the query packet from the asker to the target's private area (step 4) and the answer back to
 * the asker (step 8). For each, the fog signs a record with its service key:
 *
 *   type relay | encryption: cleartext (a query packet, signed by its sender, or a target's
 *   failure packet) or hpke (an information packet, sealed to the asker) | sender and receiver:
 *   the packet's two ends | sequence: the fog's relay counter | size and SHA-256 of the packet
 *
 * The relayed packet is the record's stripped payload, stored under the record's CID. A machine is
 * named by H(Q) of its static M-EB key — the key the query protocol names and verifies it by — and
 * the CSP answering for an offline machine by H(Q_c). Records stay off-chain in the fog's log;
 * only its batch roots are anchored (writer `fog:<fog id>`), so no machine identity reaches the
 * ledger. The signer is the relayer, not the sender ({@link verifyRecord}); a verifier holding the
 * fog's Q_f checks that binding with {@link checkRelayRecord}.
 */
import { equalBytes } from './encoding.js';
import { ErrorCode, VerificationError } from './errors.js';
import {
    RecordType,
    decodeRecord,
    partyKeyId,
    payloadDigest,
    relayerKeyId,
    verifyRecord,
    type CommunicationRecord,
    type EncryptionType,
    type Party,
    type RecordSigner,
} from './record.js';
import type { Point } from './suite.js';

/** One packet a fog relays. */
export interface RelayedPacket {
    /** The packet's bytes as the fog relays them (what the digest covers and the store keeps). */
    readonly packet: Uint8Array;
    readonly sender: Party;
    readonly receiver: Party;
    /** EncryptionType.Cleartext or EncryptionType.Hpke. */
    readonly encryption: EncryptionType;
    /** The fog's relay counter. */
    readonly sequence: bigint;
    readonly timestampMs?: number;
}

/** What a verifier expects of a relay record: the fog that relayed it and the packet's ends. */
export interface ExpectedRelayRecord {
    /** The relaying fog's key Q_f (registered on the ledger for writer `fog:<id>`). */
    readonly relayer: Point;
    readonly sender?: Party;
    readonly receiver?: Party;
}

/** The fog's signed record of one packet it relays; `signer` is the fog's key. */
export function recordRelay(signer: RecordSigner, relay: RelayedPacket): CommunicationRecord {
    return signer.sign({
        suite: signer.suite,
        type: RecordType.Relay,
        encryption: relay.encryption,
        sender: relay.sender,
        receiver: relay.receiver,
        sequence: relay.sequence,
        timestamp: BigInt(relay.timestampMs ?? Date.now()),
        size: relay.packet.length,
        digest: payloadDigest(relay.packet),
    });
}

/**
 * Decodes and verifies a relay record against the packet it describes: its signature, that it was
 * signed by the expected fog and names the expected ends (recordSenderMismatch otherwise), and
 * that it is a relay record of exactly this packet (recordMismatch otherwise).
 * @throws DecodeError, VerificationError
 */
export function checkRelayRecord(
    recordBytes: Uint8Array,
    packet: Uint8Array,
    expected: ExpectedRelayRecord,
): CommunicationRecord {
    const record = decodeRecord(recordBytes);
    verifyRecord(record);
    const same = (a: Party, b: Party | undefined): boolean =>
        b === undefined || (a.role === b.role && equalBytes(a.keyId, b.keyId));
    if (
        !equalBytes(relayerKeyId(record), partyKeyId(record.suite, expected.relayer)) ||
        !same(record.sender, expected.sender) ||
        !same(record.receiver, expected.receiver)
    ) {
        throw new VerificationError(
            ErrorCode.RecordSenderMismatch,
            'the relay record is not signed by the fog or names other ends',
        );
    }
    if (
        record.type !== RecordType.Relay ||
        record.size !== packet.length ||
        !equalBytes(record.digest, payloadDigest(packet))
    ) {
        throw new VerificationError(ErrorCode.RecordMismatch, 'the record does not describe the relayed packet');
    }
    return record;
}
