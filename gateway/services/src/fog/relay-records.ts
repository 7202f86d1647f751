/**
 * The fog's communication records of the device-to-device messages it relays (docs/records.md,
 * "The fog's relay records"): the record query's query packets (step 4) and answers (step 8).
 * For each packet the fog signs a relay record with its service key d_f and journals it, with the
 * packet as its stripped payload, in its own RecordBatcher (writer `fog:<fog id>`) — and relays
 * the packet only once the record is durable, so a relay the fog did is never unrecorded after a
 * crash. The fog never opens a packet: an answer is HPKE-sealed to the asker, and its record
 * covers the sealed bytes.
 */
import {
    EncryptionType,
    ErrorCode,
    PartyRole,
    QueryError,
    QueryRetry,
    RecordSigner,
    decodePoint,
    encodeRecord,
    fromHex,
    partyKeyId,
    recordRelay,
    type Party,
    type Point,
    type Suite,
} from '@m2m-fabric/protocol';
import type { RecordSink } from '../csp/records.js';
import type { RelayEnd, RelayRecorder } from './query-handler.js';

export interface FogRelayRecordsOptions {
    suite: Suite;
    /** The fog's secret d_f: relay records are signed with the fog's registered key. */
    secretKey: bigint;
    /** The CSP's Q_c (the CSP answers for an offline machine). */
    cspPublicKey: Point;
    /** The fog's RecordBatcher, or anything that journals like it. */
    sink: RecordSink;
    /** First relay sequence number: the fog's log size when the batcher opened. */
    firstSequence?: number;
    now?: () => number;
}

export class FogRelayRecords implements RelayRecorder {
    readonly #options: FogRelayRecordsOptions;
    readonly #signer: RecordSigner;
    readonly #csp: Party;
    #sequence: bigint;
    #queries = 0;
    #answers = 0;
    #failed = 0;

    constructor(options: FogRelayRecordsOptions) {
        this.#options = options;
        this.#signer = new RecordSigner(options.suite, options.secretKey);
        this.#csp = { role: PartyRole.Csp, keyId: partyKeyId(options.suite, options.cspPublicKey) };
        this.#sequence = BigInt(options.firstSequence ?? 0);
    }

    /** Relay records journaled: of query packets, of answers; and relays refused for want of a record. */
    get counts(): { queries: number; answers: number; failed: number } {
        return { queries: this.#queries, answers: this.#answers, failed: this.#failed };
    }

    /** keyId of the fog's key (the relayer every one of its relay records names by its signer key). */
    get keyId(): Uint8Array {
        return this.#signer.keyId;
    }

    #party(end: RelayEnd): Party {
        if (end.kind === 'csp') return this.#csp;
        return {
            role: PartyRole.Device,
            keyId: partyKeyId(this.#options.suite, decodePoint(this.#options.suite, fromHex(end.publicKey))),
        };
    }

    /**
     * Signs and journals the fog's record of relaying `packet` from `from` to `to`; resolves once
     * it is durable.
     * @throws {QueryError} `recordNotJournaled` (step 4 for a query, 8 for an answer; retry later)
     *   when the record could not be made durable: the caller does not relay the packet.
     */
    async record(
        what: 'query' | 'answer',
        packet: Uint8Array,
        from: RelayEnd,
        to: RelayEnd,
        encryption: EncryptionType,
    ): Promise<void> {
        const step = what === 'query' ? 4 : 8;
        try {
            const record = recordRelay(this.#signer, {
                packet,
                sender: this.#party(from),
                receiver: this.#party(to),
                encryption,
                sequence: this.#sequence++,
                timestampMs: (this.#options.now ?? Date.now)(),
            });
            await this.#options.sink.ingest(encodeRecord(record), packet);
        } catch (error) {
            this.#failed++;
            throw new QueryError(
                ErrorCode.RecordNotJournaled,
                step,
                QueryRetry.Later,
                `the fog could not journal its record of the ${what}: not relayed (${error instanceof Error ? error.message : String(error)})`,
                { cause: error },
            );
        }
        if (what === 'query') this.#queries++;
        else this.#answers++;
    }
}
