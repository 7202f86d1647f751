/**
 * Typed calls to the chaincode's `materials` and `queryAccess` contracts (docs/traceability.md)
 * over any LedgerConnection — the embedded ledger or a real Fabric network. A transformation is
 * recorded either by the equipment's owner organisation, or with the machine's own signature: the
 * caller passes the equipment's static secret and the exact JSON argument is signed with it.
 */
import {
    SchnorrContext,
    encodeSchnorrSignature,
    schnorrSign,
    type LotRecord,
    type Suite,
    type TransformationRecord,
    type TransformationSpec,
} from '@m2m-fabric/protocol';

import {
    submitVisibleTo,
    type LedgerConnection,
    type LedgerContract,
    type TransactionOptions,
} from './ledger/index.js';
import { DEFAULT_CHAINCODE_NAME } from './chaincode-client.js';

export type { LotRecord, TransformationKind, TransformationRecord, TransformationSpec } from '@m2m-fabric/protocol';

export interface TraceStep extends TransformationRecord {
    /** Steps between the traced lot and this transformation (1 = made it / consumed it). */
    distance: number;
}

export interface TracePage {
    lotId: string;
    direction: 'backward' | 'forward';
    lot: LotRecord;
    steps: TraceStep[];
    count: number;
    bookmark: string;
}

export interface Trace {
    lot: LotRecord;
    steps: TraceStep[];
}

export interface QueryAccessVerdict {
    targetId: string;
    askerId: string;
    allowed: boolean;
    targetStatus: string;
    askerStatus: string;
    askerPublicKey: string;
    targetPublicKey: string;
}

/**
 * Options of a call that changes the ledger. The submit returns once the caller's own peer has
 * committed; Fabric promises nothing of the other organisations' peers, which get the block moments
 * (or, after a restart, long) later. Name the connections of the parties that act on the change
 * next (a fog recording from a lot the owner just registered, the fog that checks a grant) and the
 * call returns only once their peers have committed it too.
 */
export interface LedgerChangeOptions {
    /** Connections (other organisations' peers) that must have committed the change before the call returns. */
    visibleOn?: readonly LedgerConnection[];
}

/** The machine's own authority: its M-EB static key (whose public half is registered). */
export interface EquipmentSigner {
    suite: Suite;
    secretKey: bigint;
}

export const DEFAULT_TRACE_DEPTH = 32;
const PAGE = 100;

const decoder = new TextDecoder();
function parse<T>(bytes: Uint8Array): T {
    return JSON.parse(decoder.decode(bytes)) as T;
}

export class MaterialsClient {
    readonly materials: LedgerContract;
    readonly queryAccess: LedgerContract;

    constructor(
        readonly connection: LedgerConnection,
        readonly chaincodeName = DEFAULT_CHAINCODE_NAME,
        readonly deadlineMs = 30_000,
    ) {
        this.materials = connection.getContract(chaincodeName, 'materials');
        this.queryAccess = connection.getContract(chaincodeName, 'queryAccess');
    }

    private opts(args: string[], transientData?: Record<string, Uint8Array>): TransactionOptions {
        const o: TransactionOptions = { arguments: args, deadlineMs: this.deadlineMs };
        if (transientData !== undefined) o.transientData = transientData;
        return o;
    }

    /**
     * A manufacturer registers a raw lot (a bale). Safe to retry after MVCC: a repeat is alreadyExists.
     *
     * @throws EndorseError from the chaincode (alreadyExists, unauthorisedMsp, invalid fields).
     * @throws CommitWaitTimeoutError when a `visibleOn` peer has not committed within `deadlineMs`.
     */
    async registerLot(
        lot: {
            lotId: string;
            kind: string;
            quantity: number;
            unit: string;
            origin: string;
        },
        options: LedgerChangeOptions = {},
    ): Promise<LotRecord> {
        return await this.change(
            this.materials,
            'registerLot',
            this.opts([lot.lotId, lot.kind, String(lot.quantity), lot.unit, lot.origin]),
            4,
            options,
        );
    }

    /**
     * Records a transformation. Never retried on MVCC: a lost race over an input lot is the
     * "consumed at most once" verdict, and the caller decides whether to try again with what is left.
     * @throws EndorseError (lotOverConsumed, lotCycle, equipmentRetired, unauthorisedMsp, ...) or
     *   CommitError (MVCC_READ_CONFLICT) when a concurrent transformation drew from the same lot.
     * @throws CommitWaitTimeoutError when a `visibleOn` peer has not committed within `deadlineMs`.
     */
    async recordTransformation(
        spec: TransformationSpec,
        signer?: EquipmentSigner,
        options: LedgerChangeOptions = {},
    ): Promise<TransformationRecord> {
        const argument = JSON.stringify(spec);
        const transient =
            signer === undefined
                ? undefined
                : {
                      equipmentSignature: encodeSchnorrSignature(
                          signer.suite,
                          schnorrSign(
                              signer.suite,
                              SchnorrContext.MaterialTransformation,
                              signer.secretKey,
                              new TextEncoder().encode(argument),
                          ),
                      ),
                  };
        return await this.change(this.materials, 'recordTransformation', this.opts([argument], transient), 1, options);
    }

    async getLot(lotId: string): Promise<LotRecord> {
        return parse(await this.materials.evaluate('getLot', this.opts([lotId])));
    }

    async getTransformation(transformationId: string): Promise<TransformationRecord> {
        return parse(await this.materials.evaluate('getTransformation', this.opts([transformationId])));
    }

    /** One page of a trace; `bookmark` '' for the first. */
    async tracePage(
        direction: 'backward' | 'forward',
        lotId: string,
        options: { maxDepth?: number; pageSize?: number; bookmark?: string } = {},
    ): Promise<TracePage> {
        const name = direction === 'backward' ? 'traceBackward' : 'traceForward';
        return parse(
            await this.materials.evaluate(
                name,
                this.opts([
                    lotId,
                    String(options.maxDepth ?? DEFAULT_TRACE_DEPTH),
                    String(options.pageSize ?? PAGE),
                    options.bookmark ?? '',
                ]),
            ),
        );
    }

    /** Every ancestor of a lot (all pages). @throws EndorseError traceDepthExceeded / traceTooLarge / unknownLot. */
    traceBackward(lotId: string, maxDepth = DEFAULT_TRACE_DEPTH): Promise<Trace> {
        return this.allPages('backward', lotId, maxDepth);
    }

    /** Every descendant of a lot (the recall question), all pages. */
    traceForward(lotId: string, maxDepth = DEFAULT_TRACE_DEPTH): Promise<Trace> {
        return this.allPages('forward', lotId, maxDepth);
    }

    private async allPages(direction: 'backward' | 'forward', lotId: string, maxDepth: number): Promise<Trace> {
        const steps: TraceStep[] = [];
        let bookmark = '';
        for (;;) {
            const page = await this.tracePage(direction, lotId, { maxDepth, bookmark });
            steps.push(...page.steps);
            if (page.bookmark === '') return { lot: page.lot, steps };
            bookmark = page.bookmark;
        }
    }

    /** Every transformation a machine recorded in [from, until] (all pages), oldest first. */
    async machineSteps(equipmentId: string, from: Date, until: Date): Promise<TransformationRecord[]> {
        const out: TransformationRecord[] = [];
        let bookmark = '';
        for (;;) {
            const page = parse<{ records: TransformationRecord[]; bookmark: string }>(
                await this.materials.evaluate(
                    'queryMachineSteps',
                    this.opts([equipmentId, from.toISOString(), until.toISOString(), String(PAGE), bookmark]),
                ),
            );
            out.push(...page.records);
            if (page.bookmark === '') return out;
            bookmark = page.bookmark;
        }
    }

    // query access (paper 000 Fig. 8 step 5)
    /**
     * The owner lets `askerId` query `targetId`'s records. The submit returns once the owner's own
     * peer has committed; pass the connections of the parties that act on the grant next (the fog
     * that runs the query protocol) as `visibleOn`, and it returns only once their peers have the
     * block too. Safe to retry after MVCC.
     *
     * @throws EndorseError from the chaincode (unknownEquipment, unauthorisedMsp, ...).
     * @throws CommitWaitTimeoutError when a `visibleOn` peer has not committed within `deadlineMs`.
     */
    async grantQueryAccess(targetId: string, askerId: string, options: LedgerChangeOptions = {}): Promise<unknown> {
        return await this.changeQueryAccess('grantQueryAccess', targetId, askerId, options);
    }
    /**
     * The owner withdraws `askerId`'s right to query `targetId`; `visibleOn` as for
     * {@link grantQueryAccess}.
     *
     * @throws EndorseError from the chaincode (unknownEquipment, unauthorisedMsp, ...).
     * @throws CommitWaitTimeoutError when a `visibleOn` peer has not committed within `deadlineMs`.
     */
    async revokeQueryAccess(targetId: string, askerId: string, options: LedgerChangeOptions = {}): Promise<unknown> {
        return await this.changeQueryAccess('revokeQueryAccess', targetId, askerId, options);
    }
    private async changeQueryAccess(
        transaction: 'grantQueryAccess' | 'revokeQueryAccess',
        targetId: string,
        askerId: string,
        options: LedgerChangeOptions,
    ): Promise<unknown> {
        return await this.change(this.queryAccess, transaction, this.opts([targetId, askerId]), 4, options);
    }

    /** Submits (retrying read conflicts `attempts` times in all), then waits for `visibleOn`. */
    private async change<T>(
        contract: LedgerContract,
        transaction: string,
        transactionOptions: TransactionOptions,
        attempts: number,
        options: LedgerChangeOptions,
    ): Promise<T> {
        const { result } = await submitVisibleTo(
            contract,
            transaction,
            transactionOptions,
            { ...options, timeoutMs: this.deadlineMs },
            { attempts, backoffMs: 20 },
        );
        return parse<T>(result);
    }
    async checkQueryAccess(targetId: string, askerId: string): Promise<QueryAccessVerdict> {
        return parse(await this.queryAccess.evaluate('checkQueryAccess', this.opts([targetId, askerId])));
    }
}
