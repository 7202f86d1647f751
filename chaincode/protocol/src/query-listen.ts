/**
 * Where a machine's private area is (paper 000 step 4). Devices are anonymous on the fog's broker:
 * their only handle is a per-connection MQTT client id, so a fog cannot know which connection is
 * machine M2 unless M2 says so. A listen notice is M2's Schnorr signature, by its static M-EB key,
 * over the fog, the client id, a time and whether it starts or stops answering; the fog checks it
 * against the key in the M-EB and from then on delivers M2's queries to that connection. Nobody
 * else can claim M2's queries (no signature), nor replay an old notice to another fog or
 * connection (both are signed) or much later (the time is).
 */
import { ByteReader, ByteWriter } from './encoding.js';
import { DecodeError } from './errors.js';
import {
    SchnorrContext,
    decodeSchnorrSignature,
    encodeSchnorrSignature,
    schnorrSign,
    schnorrVerify,
} from './schnorr.js';
import type { Point, Suite } from './suite.js';

const LISTEN_VERSION = 1;
/** A notice older or further in the future than this is refused. */
export const MAX_LISTEN_SKEW_MS = 120_000;

export interface ListenNotice {
    equipmentId: string;
    fogId: string;
    /** The MQTT client id the queries go to. */
    clientId: string;
    /** ms since the epoch. */
    issuedAt: number;
    /** true: deliver my queries here; false: I stop answering (the CSP answers for me). */
    listening: boolean;
}

function noticeBody(n: ListenNotice): Uint8Array {
    return new ByteWriter()
        .u8(LISTEN_VERSION)
        .string(n.equipmentId)
        .string(n.fogId)
        .string(n.clientId)
        .u64(BigInt(n.issuedAt))
        .u8(n.listening ? 1 : 0)
        .finish();
}

/** The notice signed with the machine's static secret. */
export function encodeListenNotice(suite: Suite, notice: ListenNotice, staticSecret: bigint): Uint8Array {
    const body = noticeBody(notice);
    const signature = encodeSchnorrSignature(suite, schnorrSign(suite, SchnorrContext.QueryListen, staticSecret, body));
    return new ByteWriter().raw(body).raw(signature).finish();
}

/**
 * Parses a notice; its signature is checked by {@link verifyListenNotice}.
 * @throws DecodeError on malformed bytes.
 */
export function decodeListenNotice(suite: Suite, bytes: Uint8Array): ListenNotice & { signature: Uint8Array } {
    const r = new ByteReader(bytes);
    if (r.u8() !== LISTEN_VERSION) throw new DecodeError('unknownVersion', 'listen notice version');
    const equipmentId = r.string();
    const fogId = r.string();
    const clientId = r.string();
    const issuedAt = Number(r.u64());
    const flag = r.u8();
    if (flag > 1) throw new DecodeError('invalidValue', 'listening flag');
    const signature = r.raw(2 * suite.scalarBytes);
    r.end();
    decodeSchnorrSignature(suite, signature);
    return { equipmentId, fogId, clientId, issuedAt, listening: flag === 1, signature };
}

/** True iff `notice` is signed by `machineKey` (the machine's M-EB key). */
export function verifyListenNotice(
    suite: Suite,
    notice: ListenNotice & { signature: Uint8Array },
    machineKey: Point,
): boolean {
    return schnorrVerify(
        suite,
        SchnorrContext.QueryListen,
        machineKey,
        noticeBody(notice),
        decodeSchnorrSignature(suite, notice.signature),
    );
}
