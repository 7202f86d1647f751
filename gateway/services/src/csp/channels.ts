/**
 * The CSP end of each session channel: opened from the stored session, its sequence numbers
 * reserved ahead in the session store so that a restart never reuses a nonce, and sealed frames.
 */
import { fromHex, SessionChannel, type FrameType } from '@m2m-fabric/protocol';
import { ServiceError, ServiceErrorCode } from '@m2m-fabric/common';
import type { CspContext } from './context.js';
import type { CspRecords } from './records.js';
import { sessionSuite, type StoredSession } from './session-store.js';

/** Sequence numbers reserved per store write, so a frame never waits for the disk. */
export const SEQ_RESERVATION = 16n;

export interface ChannelEntry {
    channel: SessionChannel;
    reservedSendSeq: bigint;
}

export class CspChannels {
    private readonly open = new Map<string, ChannelEntry>();
    /** When set, each sealed frame's CSP record is journaled before seal() returns it. */
    records: CspRecords | undefined;

    constructor(private readonly ctx: CspContext) {}

    /**
     * Opens the channel of a just-established session and records it, with its first reserved send
     * sequence numbers, in the session (the caller writes the session).
     */
    async create(key: string, trafficKey: Uint8Array, stored: StoredSession): Promise<ChannelEntry> {
        const channel = await SessionChannel.create(
            sessionSuite(this.ctx.suite, stored),
            trafficKey,
            'csp',
            fromHex(key),
        );
        const entry = { channel, reservedSendSeq: SEQ_RESERVATION };
        stored.channel = { ...channel.exportState(), sendSeq: entry.reservedSendSeq.toString() };
        this.open.set(key, entry);
        return entry;
    }

    /**
     * The channel of an established session (restored from the store after a restart).
     *
     * @throws {ServiceError} unknownSession when no established session is on this route.
     */
    async get(key: string): Promise<ChannelEntry> {
        const cached = this.open.get(key);
        if (cached !== undefined) return cached;
        const s = this.ctx.sessions.get(key);
        // A record without K_i is a session of a release before forward secrecy: not resumed.
        if (s === undefined || s.state !== 'established' || typeof s.trafficKey !== 'string')
            throw new ServiceError(ServiceErrorCode.UnknownSession, 'no established session on this route');
        const symKey = fromHex(s.trafficKey);
        const suite = sessionSuite(this.ctx.suite, s);
        const channel =
            s.channel === undefined
                ? await SessionChannel.create(suite, symKey, 'csp', fromHex(key))
                : await SessionChannel.restore(suite, symKey, 'csp', fromHex(key), s.channel);
        const entry = { channel, reservedSendSeq: BigInt(s.channel?.sendSeq ?? '0') };
        this.open.set(key, entry);
        return entry;
    }

    /** Persists the channel state, reserving send sequence numbers ahead (never reused after a crash). */
    async persist(key: string, entry: ChannelEntry, force = false): Promise<void> {
        const s = this.ctx.sessions.get(key);
        if (s === undefined) return;
        const st = entry.channel.exportState();
        const next = BigInt(st.sendSeq);
        if (!force && next < entry.reservedSendSeq && s.channel?.recvHighest === st.recvHighest) return;
        if (next >= entry.reservedSendSeq) entry.reservedSendSeq = next + SEQ_RESERVATION;
        s.channel = { ...st, sendSeq: entry.reservedSendSeq.toString() };
        await this.ctx.sessions.set(key, s);
    }

    /**
     * Seals one frame on a route, reserving more sequence numbers first when they ran out. With
     * records on, the CSP's record of the frame is durable before the frame is returned to be sent.
     */
    async seal(key: string, type: FrameType, payload: Uint8Array): Promise<Uint8Array> {
        const entry = await this.get(key);
        const st = entry.channel.exportState();
        if (BigInt(st.sendSeq) >= entry.reservedSendSeq) await this.persist(key, entry, true);
        const frame = await entry.channel.seal(type, payload);
        await this.records?.send(key, frame, payload);
        return frame;
    }
}
