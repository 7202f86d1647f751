/**
 * A machine's communication history as the record query searches it (step 6), and the receipts a
 * machine holds for records it took part in (what step 9 checks an answer against). Records are
 * kept in time order; a search is a binary search for the range plus a kind filter, bounded by the
 * answer's record limit.
 */
import { MAX_ANSWER_RECORDS, equalBytes, type AnsweredRecord } from '@m2m-fabric/protocol';

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

/** The record ids (with time and kind) a machine holds receipts for, per counterpart. */
export class MemoryReceiptBook implements ReceiptBook {
    private readonly held = new Map<string, { recordId: Uint8Array; time: number; kind: string }[]>();

    hold(counterpartId: string, record: { recordId: Uint8Array; time: number; kind: string }): void {
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
