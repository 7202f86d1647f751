declare module 'parse-prometheus-text-format' {
    /** Prometheus text exposition to metric families (see metrics-source.ts for the shape). */
    export default function parsePrometheusTextFormat(text: string): unknown[];
}
