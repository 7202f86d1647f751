/**
 * The CSP's communication records (paper 000 §4.3, docs/records.md): for every frame that crosses
 * a session channel, the sender's signed record goes into the CSP's record batcher with the frame
 * as its stripped payload, before the frame's acknowledgement (or the frame itself) leaves.
 *
 *  - A frame from a device comes with the device's record, signed with the session's d_i and
 *    naming H(Q_i) — the ledger's session record — as its sender: checked against the frame and
 *    the session (recordMismatch / recordSenderMismatch / recordSignatureInvalid otherwise), then
 *    journaled. The CSP answers the frame only once the record is durable.
 *  - A frame the CSP sends (Confirm, Ack, Download) gets the CSP's record, signed with the CSP key
 *    d_c, journaled before the frame is handed to the fog.
 *
 * A record is in its session's suite. For a session of another suite than the ledger's (a
 * certificate of a CA key epoch of another suite, docs/protocol.md#rotation-to-another-suite), the
 * CSP's party is its key of that suite (CspCaKeys.suiteIdentityOf: the first epoch of the suite),
 * and its sealed payloads are sealed for the CSP's storage key only (HPKE needs every reader on the
 * storage key's curve; the device's Q_i is not).
 */
import {
    PartyRole,
    RecordSigner,
    checkFrameRecord,
    encodeFrameRecord,
    decodeRecord,
    fromHex,
    toHex,
    type Party,
    type Suite,
} from '@m2m-fabric/protocol';
import { ServiceError, ServiceErrorCode } from '@m2m-fabric/common';
import { ErrorCode } from '@m2m-fabric/protocol';
import type { RecordEnvelopes } from '../records/envelopes.js';
import type { CspContext } from './context.js';
import { sessionSuite, type StoredSession } from './session-store.js';

/** Where records go: the CSP's RecordBatcher (records/batcher.ts), or anything that journals like it. */
export interface RecordSink {
    /**
     * Resolves once the record is durable (the acknowledgement), with its place in the writer's
     * log when the sink has one (RecordBatcher); rejects for a bad record.
     */
    ingest(record: Uint8Array, payload?: Uint8Array): Promise<unknown>;
}

export class CspRecords {
    readonly #ctx: CspContext;
    readonly #sink: RecordSink;
    /** The CSP's record signer per suite tag (its identity for the ledger's suite). */
    readonly #signers = new Map<number, RecordSigner>();
    /** With envelopes, each record's clear payload is also sealed for the CSP and the device. */
    readonly envelopes: RecordEnvelopes | undefined;
    #received = 0;
    #sent = 0;

    constructor(ctx: CspContext, sink: RecordSink, envelopes?: RecordEnvelopes) {
        this.#ctx = ctx;
        this.#sink = sink;
        this.#signers.set(ctx.suite.tag, new RecordSigner(ctx.suite, ctx.key.privateKey));
        this.envelopes = envelopes;
    }

    /** Records of device frames journaled. */
    get received(): number {
        return this.#received;
    }
    /** Records of the CSP's own frames journaled. */
    get sent(): number {
        return this.#sent;
    }

    /** The CSP's record signer for a session of `suite`. */
    #signer(suite: Suite): RecordSigner {
        let signer = this.#signers.get(suite.tag);
        if (signer === undefined) {
            signer = new RecordSigner(suite, this.#ctx.caKeys.suiteIdentityOf(suite).privateKey);
            this.#signers.set(suite.tag, signer);
        }
        return signer;
    }

    #csp(suite: Suite): Party {
        return this.#signer(suite).party(PartyRole.Csp);
    }

    /** The device as a reader of its sealed payloads: only when its key is on the storage key's curve. */
    #reader(suite: Suite, devicePublicKey: Uint8Array): Uint8Array | undefined {
        return this.envelopes !== undefined && suite.tag === this.envelopes.suite.tag ? devicePublicKey : undefined;
    }

    /** The device party of a session: its H(Q_i), from the store or (older sessions) the ledger. */
    async #device(key: string, s: StoredSession): Promise<Party> {
        if (s.publicKeyCommitment === undefined) {
            const record = await this.#ctx.ledgerCall(() => this.#ctx.ledger.getSession(s.primaryHash));
            s.publicKeyCommitment = record.publicKeyCommitment;
            await this.#ctx.sessions.set(key, s);
        }
        return { role: PartyRole.Device, keyId: fromHex(s.publicKeyCommitment) };
    }

    /**
     * Checks the device's record of a frame it sent on this session and journals it with the frame;
     * resolves with its leaf index in the CSP's log when the sink tells it. With envelopes on,
     * `payload` (the frame's clear payload) is sealed beside it.
     * @throws ServiceError recordMismatch when the frame came without a record; the record's
     *   DecodeError / VerificationError when it does not describe the frame or the session
     */
    async receive(
        key: string,
        frame: Uint8Array,
        record: Uint8Array | undefined,
        payload?: Uint8Array,
    ): Promise<number | undefined> {
        const s = this.#ctx.sessions.get(key);
        if (s === undefined) throw new ServiceError(ServiceErrorCode.UnknownSession, 'no session on this route');
        if (record === undefined) {
            throw new ServiceError(ErrorCode.RecordMismatch, 'the frame came without its communication record');
        }
        const suite = sessionSuite(this.#ctx.suite, s);
        const checked = checkFrameRecord(record, frame, {
            sender: await this.#device(key, s),
            receiver: this.#csp(suite),
        });
        let ingested: unknown;
        if (this.envelopes !== undefined && payload !== undefined) {
            // The record is checked, so its signer key is the session's Q_i: the device reads its own
            // sealed payloads with d_i, and so do the CSP's sealed payloads of the frames it sends later.
            if (s.recordPublicKey === undefined) {
                s.recordPublicKey = toHex(checked.signerKey);
                await this.#ctx.sessions.set(key, s);
            }
            [ingested] = await Promise.all([
                this.#sink.ingest(record, frame),
                this.envelopes.seal(checked, record, payload, this.#reader(suite, checked.signerKey)),
            ]);
        } else {
            ingested = await this.#sink.ingest(record, frame);
        }
        this.#received++;
        const leafIndex = (ingested as { leafIndex?: unknown } | undefined)?.leafIndex;
        return typeof leafIndex === 'number' ? leafIndex : undefined;
    }

    /**
     * Signs the CSP's record of a frame it is about to send on this session and journals it (with
     * envelopes on, also its sealed `payload`).
     * @throws {ServiceError} `unknownSession` when: no session on this route
     */
    async send(key: string, frame: Uint8Array, payload?: Uint8Array): Promise<void> {
        const s = this.#ctx.sessions.get(key);
        if (s === undefined) throw new ServiceError(ServiceErrorCode.UnknownSession, 'no session on this route');
        const suite = sessionSuite(this.#ctx.suite, s);
        const record = encodeFrameRecord(this.#signer(suite), PartyRole.Csp, await this.#device(key, s), frame);
        if (this.envelopes !== undefined && payload !== undefined) {
            // Before the device's first record (the Confirm) Q_i is not known yet: the CSP alone reads it.
            const device = s.recordPublicKey === undefined ? undefined : fromHex(s.recordPublicKey);
            await Promise.all([
                this.#sink.ingest(record, frame),
                this.envelopes.seal(decodeRecord(record), record, payload, device && this.#reader(suite, device)),
            ]);
        } else {
            await this.#sink.ingest(record, frame);
        }
        this.#sent++;
    }
}
