/**
 * "Nothing acknowledged is lost", checked per upload (issue 17): every telemetry frame a device saw
 * acknowledged must be held by the CSP under the same identity — the session's route ID and the
 * frame's sequence number, which is what the device's Ack names. Comparing counts instead would let
 * one lost upload and one extra (stored, but never acknowledged to the device) cancel out.
 */

/** One upload as the device's Ack and the CSP's telemetry record name it. */
export interface UploadId {
    routeId: string;
    seq: string;
}

const key = (u: UploadId): string => `${u.routeId.toLowerCase()}/${BigInt(u.seq).toString()}`;

/** The acknowledged uploads the CSP does not hold, in the order they were acknowledged. */
export function missingAcknowledged(acknowledged: readonly UploadId[], stored: readonly UploadId[]): UploadId[] {
    const held = new Set(stored.map(key));
    return acknowledged.filter((u) => !held.has(key(u)));
}

const ACK_LINE = /telemetry frame (\d+) acknowledged by the CSP on route ([0-9a-f]+)/g;

/** The uploads a device run's output reports acknowledged (`m2m device` prints one line per Ack). */
export function acknowledgedIn(output: string): UploadId[] {
    return [...output.matchAll(ACK_LINE)].map((m) => ({ seq: m[1]!, routeId: m[2]! }));
}

/** The uploads in `m2m csp telemetry` output (one JSON telemetry record a line). */
export function storedIn(output: string): UploadId[] {
    return output
        .split('\n')
        .filter((l) => l.trim().startsWith('{'))
        .map((l) => {
            const r = JSON.parse(l) as { routeId: string; seq: string };
            return { routeId: r.routeId, seq: r.seq };
        });
}
