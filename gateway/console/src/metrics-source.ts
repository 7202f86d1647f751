/**
 * The services' metrics as the fogs-and-CSP view reads them: Prometheus text from a fog gateway's
 * or the CSP backend's registry in this process, or from its `/metrics` and `/healthz` endpoints
 * (metrics/http.ts) when it runs elsewhere.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import type { MetricsRegistry } from '@m2m-fabric/services';

export interface ServiceHealth {
    status: 'ok' | 'degraded' | 'error' | 'unreachable';
    checks: Record<string, boolean>;
    error?: string;
}

/** One service whose metrics the console shows. */
export interface MetricsSource {
    /** e.g. `fog-1` or `csp`. */
    readonly name: string;
    readonly kind: 'fog' | 'csp';
    /** Prometheus text exposition. */
    metrics(): Promise<string>;
    health(): Promise<ServiceHealth>;
}

/** A service in this process: its registry and its health checks. */
export function registrySource(
    name: string,
    kind: 'fog' | 'csp',
    registry: () => MetricsRegistry,
    checks: () => Record<string, boolean>,
): MetricsSource {
    return {
        name,
        kind,
        metrics: async () => registry().render(),
        health: async () => {
            const c = checks();
            return { status: Object.values(c).every(Boolean) ? 'ok' : 'degraded', checks: c };
        },
    };
}

/** A service's metrics endpoint, e.g. `http://127.0.0.1:9464` (its `--metrics.port`). */
export function httpSource(name: string, kind: 'fog' | 'csp', baseUrl: string, timeoutMs = 2000): MetricsSource {
    const base = baseUrl.replace(/\/+$/, '');
    return {
        name,
        kind,
        metrics: async () => {
            const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
            if (!res.ok) throw new Error(`${base}/metrics answered ${res.status}`);
            return res.text();
        },
        health: async () => {
            try {
                const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
                const body = (await res.json()) as Partial<ServiceHealth>;
                return {
                    status: body.status ?? (res.ok ? 'ok' : 'degraded'),
                    checks: body.checks ?? {},
                    ...(body.error !== undefined ? { error: body.error } : {}),
                };
            } catch (err) {
                return { status: 'unreachable', checks: {}, error: (err as Error).message };
            }
        },
    };
}

/** One parsed metric family (parse-prometheus-text-format's shape). */
export interface MetricFamily {
    name: string;
    help: string;
    type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
    metrics: {
        value?: string;
        labels?: Record<string, string>;
        buckets?: Record<string, string>;
        count?: string;
        sum?: string;
    }[];
}

export function parseMetrics(text: string): MetricFamily[] {
    return parsePrometheusTextFormat(text) as MetricFamily[];
}
