/** The fog gateway's Prometheus metrics (served by metrics/http.ts). */
import type { Counter, Histogram, MetricsRegistry } from '../metrics/registry.js';

export interface FogMetrics {
    requests: Counter;
    sessions: Counter;
    latency: Histogram;
    ledgerErrors: Counter;
    storeErrors: Counter;
    dropped: Counter;
    relayed: Counter;
}

export function fogMetrics(r: MetricsRegistry): FogMetrics {
    return {
        requests: r.counter('m2m_fog_requests_total', 'Device requests by kind and outcome'),
        sessions: r.counter('m2m_fog_sessions_total', 'Activations by outcome and error code'),
        latency: r.histogram('m2m_fog_activation_seconds', 'M3 to CSP result, seconds'),
        ledgerErrors: r.counter('m2m_fog_ledger_errors_total', 'Ledger calls that failed, by code'),
        storeErrors: r.counter('m2m_fog_store_errors_total', 'Object store reads that failed'),
        dropped: r.counter('m2m_fog_dropped_total', 'Messages dropped without reply, by reason'),
        relayed: r.counter('m2m_fog_relayed_frames_total', 'Session-channel frames relayed, by direction'),
    };
}
