/**
 * Configuration by file plus environment, validated with clear messages. Each service declares a
 * schema of dotted keys (`mqtt.url`); a value comes from, in order of precedence, an explicit
 * override (CLI flag), the environment variable named in the schema, the JSON config file (nested
 * objects, `{"mqtt": {"url": ...}}`), then the schema default. Every problem is collected and
 * reported at once; unknown keys in the file are errors (a typo must not silently fall back to a
 * default). Secret values never appear in messages.
 */
import { readFileSync } from 'node:fs';
import { describeSetting, type EnvSetting } from '@m2m-fabric/protocol';

/** A setting of a command's schema: an {@link EnvSetting} with a config key, a type and checks. */
interface BaseField extends Omit<EnvSetting, 'default'> {
    /** Environment variable that sets this key. */
    env: string;
    description: string;
    /** Never echoed in error messages or dumps. */
    secret?: boolean;
}
export interface StringField extends BaseField {
    type: 'string';
    default?: string;
    required?: boolean;
    oneOf?: readonly string[];
    format?: 'url' | 'hex' | 'identifier';
}
export interface NumberField extends BaseField {
    type: 'number' | 'integer';
    default?: number;
    required?: boolean;
    min?: number;
    max?: number;
    /** What the number counts (e.g. 'seconds'), for messages. */
    unit?: string;
}
export interface BooleanField extends BaseField {
    type: 'boolean';
    default?: boolean;
}
export type FieldSpec = StringField | NumberField | BooleanField;
export type ConfigSchema = Record<string, FieldSpec>;

type FieldValue<F> = F extends { type: 'boolean' }
    ? boolean
    : F extends { type: 'number' | 'integer' }
      ? number
      : string;
/** The loaded configuration: keys with a default or `required` are always present. */
export type ConfigValues<S extends ConfigSchema> = {
    [K in keyof S]: S[K] extends { default: unknown } | { required: true }
        ? FieldValue<S[K]>
        : FieldValue<S[K]> | undefined;
};

export class ConfigError extends Error {
    readonly problems: string[];
    constructor(problems: string[]) {
        super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
        this.name = 'ConfigError';
        this.problems = problems;
    }
}

export interface ConfigSources {
    /** Path of a JSON config file (optional). */
    file?: string;
    /** Environment (defaults to process.env). */
    env?: NodeJS.ProcessEnv;
    /** Highest-precedence values, e.g. parsed CLI flags; undefined entries are ignored. */
    overrides?: Record<string, unknown>;
}

function flatten(prefix: string, value: unknown, out: Map<string, unknown>): void {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
            flatten(prefix === '' ? k : `${prefix}.${k}`, v, out);
        }
    } else {
        out.set(prefix, value);
    }
}

function readConfigFile(file: string, problems: string[]): Map<string, unknown> {
    const out = new Map<string, unknown>();
    let text: string;
    try {
        text = readFileSync(file, 'utf8');
    } catch (err) {
        problems.push(`config file ${file}: ${(err as Error).message}`);
        return out;
    }
    let parsed: unknown;
    try {
        parsed = JSON.parse(text);
    } catch (err) {
        problems.push(`config file ${file}: not valid JSON (${(err as Error).message})`);
        return out;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        problems.push(`config file ${file}: must hold a JSON object`);
        return out;
    }
    flatten('', parsed, out);
    return out;
}

function describeSource(key: string, source: string, spec: FieldSpec, raw: unknown): string {
    const shown = spec.secret === true ? '<secret>' : JSON.stringify(raw);
    return `${key} (from ${source}) = ${shown}`;
}

/** What a number field accepts, e.g. "an integer in 1..32" or "seconds >= 0.001". */
function numberExpectation(spec: NumberField): string {
    const what = spec.unit ?? (spec.type === 'integer' ? 'an integer' : 'a number');
    if (spec.min !== undefined && spec.max !== undefined) return `${what} in ${spec.min}..${spec.max}`;
    if (spec.min !== undefined) return `${what} >= ${spec.min}`;
    if (spec.max !== undefined) return `${what} <= ${spec.max}`;
    return what;
}

function coerce(key: string, spec: FieldSpec, raw: unknown, source: string, problems: string[]): unknown {
    // A flag is named as the user typed it: `--fogs must be an integer in 1..32, got 0`.
    if (source === 'command line' && (spec.type === 'number' || spec.type === 'integer')) {
        const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
        const ok =
            Number.isFinite(n) &&
            (spec.type !== 'integer' || Number.isInteger(n)) &&
            (spec.min === undefined || n >= spec.min) &&
            (spec.max === undefined || n <= spec.max);
        if (ok) return n;
        const shown = spec.secret === true ? '<secret>' : String(raw);
        problems.push(`--${key} must be ${numberExpectation(spec)}, got ${shown}`);
        return undefined;
    }
    const where = describeSource(key, source, spec, raw);
    switch (spec.type) {
        case 'boolean': {
            if (typeof raw === 'boolean') return raw;
            if (raw === 'true' || raw === '1' || raw === 'yes') return true;
            if (raw === 'false' || raw === '0' || raw === 'no') return false;
            problems.push(`${where}: expected a boolean (true/false)`);
            return undefined;
        }
        case 'number':
        case 'integer': {
            const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
            if (!Number.isFinite(n)) {
                problems.push(`${where}: expected a number`);
                return undefined;
            }
            if (spec.type === 'integer' && !Number.isInteger(n)) {
                problems.push(`${where}: expected an integer`);
                return undefined;
            }
            if (spec.min !== undefined && n < spec.min) {
                problems.push(`${where}: must be >= ${spec.min}`);
                return undefined;
            }
            if (spec.max !== undefined && n > spec.max) {
                problems.push(`${where}: must be <= ${spec.max}`);
                return undefined;
            }
            return n;
        }
        case 'string': {
            if (typeof raw !== 'string' && typeof raw !== 'number') {
                problems.push(`${where}: expected a string`);
                return undefined;
            }
            const s = String(raw);
            if (spec.oneOf !== undefined && !spec.oneOf.includes(s)) {
                problems.push(`${where}: must be one of ${spec.oneOf.join(', ')}`);
                return undefined;
            }
            if (spec.format === 'url') {
                try {
                    new URL(s);
                } catch {
                    problems.push(`${where}: not a URL (e.g. mqtt://127.0.0.1:1883)`);
                    return undefined;
                }
            } else if (spec.format === 'hex' && !/^([0-9a-f]{2})+$/.test(s)) {
                problems.push(`${where}: expected lowercase hex`);
                return undefined;
            } else if (spec.format === 'identifier' && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(s)) {
                problems.push(`${where}: expected 1-64 characters [A-Za-z0-9._-], starting alphanumeric`);
                return undefined;
            }
            return s;
        }
    }
}

/**
 * Loads and validates configuration for `schema`; throws ConfigError listing every problem.
 * @throws {ConfigError}
 */
export function loadConfig<S extends ConfigSchema>(schema: S, sources: ConfigSources = {}): ConfigValues<S> {
    const problems: string[] = [];
    const env = sources.env ?? process.env;
    const fileValues = sources.file !== undefined ? readConfigFile(sources.file, problems) : new Map<string, unknown>();
    for (const key of fileValues.keys()) {
        if (!(key in schema)) problems.push(`config file ${sources.file}: unknown key "${key}"`);
    }
    const out: Record<string, unknown> = {};
    for (const [key, spec] of Object.entries(schema)) {
        const override = sources.overrides?.[key];
        const envValue = env[spec.env];
        let raw: unknown;
        let source: string;
        if (override !== undefined) {
            raw = override;
            source = 'command line';
        } else if (envValue !== undefined && envValue !== '') {
            raw = envValue;
            source = `env ${spec.env}`;
        } else if (fileValues.has(key)) {
            raw = fileValues.get(key);
            source = 'config file';
        } else {
            if (spec.default !== undefined) out[key] = spec.default;
            else if ('required' in spec && spec.required === true) {
                problems.push(
                    `${key}: required (set ${spec.env} or "${key}" in the config file) — ${spec.description}`,
                );
            }
            continue;
        }
        const value = coerce(key, spec, raw, source, problems);
        if (value !== undefined) out[key] = value;
    }
    if (problems.length > 0) throw new ConfigError(problems);
    return out as ConfigValues<S>;
}

/** One line per key, for `--help`: key, env var, description, default (see describeSetting). */
export function describeSchema(schema: ConfigSchema): string {
    return Object.entries(schema)
        .map(([key, spec]) => describeSetting(key, spec))
        .join('\n');
}
