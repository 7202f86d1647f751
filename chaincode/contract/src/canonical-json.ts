/**
 * Canonical JSON for world-state values, events and results: object keys sorted, no whitespace,
 * integers only. Two peers that endorse the same transaction must write byte-identical values,
 * which JSON.stringify does not promise for objects built in different orders.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue | undefined };

export function canonicalJson(value: JsonValue): string {
    if (value === null || typeof value === 'boolean' || typeof value === 'string') {
        return JSON.stringify(value);
    }
    if (typeof value === 'number') {
        if (!Number.isSafeInteger(value)) {
            throw new TypeError(`canonical JSON holds safe integers only, got ${value}`);
        }
        return JSON.stringify(value);
    }
    if (Array.isArray(value)) {
        return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
    }
    const fields = Object.keys(value)
        .filter((key) => value[key] !== undefined)
        .sort()
        .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key] as JsonValue)}`);
    return `{${fields.join(',')}}`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function toJsonBytes(value: JsonValue): Uint8Array {
    return encoder.encode(canonicalJson(value));
}

/** Parses a stored JSON value; state written by this chaincode always parses. */
export function fromJsonBytes(bytes: Uint8Array): unknown {
    return JSON.parse(decoder.decode(bytes)) as unknown;
}
