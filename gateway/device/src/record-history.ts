/**
 * A machine's communication history as the record query searches it (step 6), and the receipts a
 * machine holds for records it took part in (what step 9 checks an answer against). Records are
 * kept in time order; a search is a binary search for the range plus a kind filter, bounded by the
 * answer's record limit.
 */
import {
    MAX_ANSWER_RECORDS,
    answeredRecordOfReceipt,
    equalBytes,
    verifyAnsweredRecord,
    type AnsweredRecord,
    type ReceiptVerifier,
} from '@m2m-fabric/protocol';

import type { ReceiptBook } from './query-asker.js';
import type { RecordHistory } from './query-responder.js';

export class MemoryRecordHistory implements RecordHistory {
    /** Per machine, in time order. */
    private readonly byMachine = new Map<string, AnsweredRecord[]>();

    add(machineId: string, record: AnsweredRecord): void {
        const list = this.byMachine.get(machineId) ?? [];
        let at = list.length;
        while (at > 0 && (list[at - 1]?.time ?? 0) > record.time) at--;
        list.splice(at, 0, record);
        this.byMachine.set(machineId, list);
    }

    search(query: {
        targetId: string;
        since: number;
        until: number;
        kinds: readonly string[];
    }): Promise<AnsweredRecord[]> {
        const list = this.byMachine.get(query.targetId) ?? [];
        let lo = 0;
        let hi = list.length;
        while (lo < hi) {
            const mid = (lo + hi) >> 1;
            if ((list[mid]?.time ?? 0) < query.since) lo = mid + 1;
            else hi = mid;
        }
        const out: AnsweredRecord[] = [];
        for (let k = lo; k < list.length && out.length < MAX_ANSWER_RECORDS; k++) {
            const record = list[k];
            if (record === undefined || record.time > query.until) break;
            if (query.kinds.length === 0 || query.kinds.includes(record.kind)) out.push(record);
        }
        return Promise.resolve(out);
    }
}

/** A receipt held for one record: what step 9 looks for in an answer. */
export interface HeldReceipt {
    recordId: Uint8Array;
    time: number;
    kind: string;
    /** The encoded Merkle receipt (absent for ids recorded with `hold` alone). */
    receipt?: Uint8Array;
}

/** The record ids (with time and kind) a machine holds receipts for, per counterpart. */
export class MemoryReceiptBook implements ReceiptBook {
    private readonly held = new Map<string, HeldReceipt[]>();

    /**
     * Verifies a Merkle receipt for a record of `counterpartId` (handed over by the CSP once the
     * record's batch is anchored, or by the counterpart with a lot) and holds it; a receipt that
     * does not verify is refused and the book is unchanged.
     * @throws ReceiptError naming the failed check
     */
    holdReceipt(counterpartId: string, kind: string, receipt: Uint8Array, verifier: ReceiptVerifier): HeldReceipt {
        const answered = answeredRecordOfReceipt(kind, counterpartId, receipt);
        verifyAnsweredRecord(verifier, answered);
        const held = { recordId: answered.recordId, time: answered.time, kind, receipt };
        this.hold(counterpartId, held);
        return held;
    }

    /** The receipts held for a counterpart's records, in the order they were taken. */
    receiptsOf(counterpartId: string): readonly HeldReceipt[] {
        return this.held.get(counterpartId) ?? [];
    }

    hold(counterpartId: string, record: HeldReceipt): void {
        const list = this.held.get(counterpartId) ?? [];
        if (!list.some((r) => equalBytes(r.recordId, record.recordId))) list.push(record);
        this.held.set(counterpartId, list);
    }

    heldFor(targetId: string, since: number, until: number, kinds: readonly string[]): readonly Uint8Array[] {
        return (this.held.get(targetId) ?? [])
            .filter((r) => r.time >= since && r.time <= until && (kinds.length === 0 || kinds.includes(r.kind)))
            .map((r) => r.recordId);
    }
}
