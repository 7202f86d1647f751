/** What a CSP link-message or chaincode-event handler works with. */
import type { CspChannels } from '../channels.js';
import type { CspContext } from '../context.js';
import type { InstructionDelivery } from '../instruction-delivery.js';
import type { CspRecords } from '../records.js';
import type { CspReceiptDelivery } from '../receipt-delivery.js';
import type { CspSynchroniser } from '../synchronisation.js';
import type { TelemetryRecord } from '../session-store.js';
import type { QueryPrivateArea } from '@m2m-fabric/device';

export interface CspHandlerContext {
    ctx: CspContext;
    channels: CspChannels;
    synchroniser: CspSynchroniser;
    delivery: InstructionDelivery;
    /** Communication records of the session channel, when the CSP keeps them. */
    records?: CspRecords;
    /** Receipts of devices' uploaded records, sent once anchored (with a record batcher). */
    receipts?: CspReceiptDelivery;
    /** Called with every telemetry record stored. */
    onTelemetry(record: TelemetryRecord): void;
    /** Paper 000 step 4: the CSP's private area for an offline machine, if it answers for it. */
    queryArea(equipmentId: string): QueryPrivateArea | undefined;
}
