/**
 * Minimal structured logger (one JSON line per event on stderr). Callers pass ids and codes, never
 * key material: nothing here inspects values, so secrets must simply not be handed to it.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
    debug(msg: string, fields?: Record<string, unknown>): void;
    info(msg: string, fields?: Record<string, unknown>): void;
    warn(msg: string, fields?: Record<string, unknown>): void;
    error(msg: string, fields?: Record<string, unknown>): void;
    child(component: string): Logger;
}

export function createLogger(component: string, level: LogLevel = 'info'): Logger {
    const emit = (l: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
        if (ORDER[l] < ORDER[level]) return;
        process.stderr.write(
            `${JSON.stringify({ t: new Date().toISOString(), level: l, component, msg, ...fields })}\n`,
        );
    };
    return {
        debug: (m, f) => emit('debug', m, f),
        info: (m, f) => emit('info', m, f),
        warn: (m, f) => emit('warn', m, f),
        error: (m, f) => emit('error', m, f),
        child: (c) => createLogger(`${component}.${c}`, level),
    };
}

export const silentLogger: Logger = createLogger('silent', 'silent');
