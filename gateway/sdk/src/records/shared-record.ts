/**
 * An auditor's offline check of one shared record (docs/records.md "Envelope encryption"): the
 * receipt proves the record was anchored (verified against the channel's MSP roots, no peer), the
 * share carries the record's sealed payload exactly as the CSP stored it and its data key wrapped
 * for the auditor. The payload opens only if the sealed payload names that very record, is signed
 * by the CSP the record names, and the wrap is the auditor's and belongs to this payload.
 */
import {
    decodeRecordShare,
    openRecordShare,
    verifyReceipt,
    type ChannelTrust,
    type CommunicationRecord,
    type HpkeRecipient,
    type OpenedShare,
} from '@m2m-fabric/protocol';

export interface SharedRecord extends OpenedShare {
    /** The record the receipt proves anchored, whose payload this is. */
    record: CommunicationRecord;
}

/**
 * Verifies `receipt` and opens `share` with the auditor's key against the receipt's record.
 * @throws {ReceiptError} when: the receipt does not verify; {DecodeError} / {VerificationError}
 *   `recordMismatch` / `recordSenderMismatch` / `recordSignatureInvalid` when: the share is not that
 *   record's sealed payload as its CSP signed it; {ProtocolError} `decryptionFailed` when: the share
 *   is not for this key or does not open
 */
export async function openSharedRecord(
    trust: ChannelTrust,
    receipt: Uint8Array,
    share: Uint8Array,
    auditor: HpkeRecipient,
): Promise<SharedRecord> {
    const record = verifyReceipt(trust, receipt);
    const opened = await openRecordShare(decodeRecordShare(share), auditor, record);
    return { ...opened, record };
}
