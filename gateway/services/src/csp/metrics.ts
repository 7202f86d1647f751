/** The CSP backend's Prometheus metrics (served by metrics/http.ts). */
import type { Counter, Histogram, MetricsRegistry } from '../metrics/registry.js';

export interface CspMetrics {
    sessions: Counter;
    latency: Histogram;
    ledgerErrors: Counter;
    storeErrors: Counter;
    issued: Counter;
    frames: Counter;
    instructions: Counter;
    linkRefused: Counter;
}

export function cspMetrics(r: MetricsRegistry): CspMetrics {
    return {
        sessions: r.counter('m2m_csp_sessions_total', 'Algorithm 3 outcomes by error code'),
        latency: r.histogram('m2m_csp_sync_seconds', 'M4 received to session stored, seconds'),
        ledgerErrors: r.counter('m2m_csp_ledger_errors_total', 'Ledger calls that failed, by code'),
        storeErrors: r.counter('m2m_csp_store_errors_total', 'Object store operations that failed'),
        issued: r.counter('m2m_csp_certificates_issued_total', 'Certificate objects issued (Alg. 1)'),
        frames: r.counter('m2m_csp_frames_total', 'Session-channel frames by type and outcome'),
        linkRefused: r.counter(
            'm2m_csp_link_refused_total',
            'Link messages refused (malformed, not signed by the approved fog key, wrong sender), by code',
        ),
        instructions: r.counter(
            'm2m_csp_instructions_total',
            'Instructions queued, sent (each attempt) and acknowledged by the device',
        ),
    };
}
