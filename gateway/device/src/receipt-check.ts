/**
 * Step 9's receipt check with the records issue's Merkle receipts (docs/records.md, "Receipts"):
 * each answered record must carry a receipt that verifies offline against the channel's trust
 * roots the device was provisioned with (DeviceState.channelTrust) — record signature, Merkle path
 * to the batch root, the anchoring transaction's endorsements under the channel's policy, and the
 * block's orderer signature — and that receipt must be for the record answered, at its signed time
 * (verifyAnsweredRecord in the protocol package). No peer is asked: the device has no ledger access.
 */
import { ReceiptVerifier, verifyAnsweredRecord, type AnsweredRecord, type ChannelTrust } from '@m2m-fabric/protocol';

import type { RecordReceiptCheck } from './query-asker.js';

export class MerkleReceiptCheck implements RecordReceiptCheck {
    /** The verifier (it remembers certificates, blocks and anchoring transactions it checked). */
    readonly verifier: ReceiptVerifier;

    /** @throws {RangeError} when: an MSP is listed twice, or the endorsement policy is not supported */
    constructor(trust: ChannelTrust | ReceiptVerifier) {
        this.verifier = trust instanceof ReceiptVerifier ? trust : new ReceiptVerifier(trust);
    }

    /** @throws ReceiptError naming the check the record's receipt failed */
    verify(_targetId: string, record: AnsweredRecord): boolean {
        verifyAnsweredRecord(this.verifier, record);
        return true;
    }
}
