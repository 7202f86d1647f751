/**
 * Prometheus text-format metrics (exposition format 0.0.4) with no dependency: counters, gauges
 * and histograms with labels. Small on purpose: the fog gateway and CSP backend expose sessions by
 * outcome and error code, latency histograms, outbox depth and ledger/store errors.
 */

export type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
    return Object.keys(labels)
        .sort()
        .map((k) => `${k}=${labels[k]}`)
        .join(',');
}

function escapeLabel(v: string): string {
    return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatLabels(labels: Labels, extra?: [string, string]): string {
    const parts = Object.keys(labels)
        .sort()
        .map((k) => `${k}="${escapeLabel(labels[k] ?? '')}"`);
    if (extra !== undefined) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
    return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function formatNumber(n: number): string {
    if (n === Infinity) return '+Inf';
    if (n === -Infinity) return '-Inf';
    return Number.isNaN(n) ? 'NaN' : String(n);
}

interface Metric {
    readonly name: string;
    render(): string;
}

export class Counter implements Metric {
    private readonly values = new Map<string, { labels: Labels; value: number }>();
    constructor(
        readonly name: string,
        readonly help: string,
    ) {}
    /**
     * @throws {RangeError} when: counter … cannot decrease
     */
    inc(labels: Labels = {}, by = 1): void {
        if (by < 0) throw new RangeError(`counter ${this.name} cannot decrease`);
        const key = labelKey(labels);
        const entry = this.values.get(key);
        if (entry === undefined) this.values.set(key, { labels: { ...labels }, value: by });
        else entry.value += by;
    }
    get(labels: Labels = {}): number {
        return this.values.get(labelKey(labels))?.value ?? 0;
    }
    render(): string {
        const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
        for (const { labels, value } of this.values.values()) {
            lines.push(`${this.name}${formatLabels(labels)} ${formatNumber(value)}`);
        }
        return lines.join('\n');
    }
}

export class Gauge implements Metric {
    private readonly values = new Map<string, { labels: Labels; value: number }>();
    private readonly collectors: (() => void)[] = [];
    constructor(
        readonly name: string,
        readonly help: string,
    ) {}
    set(value: number, labels: Labels = {}): void {
        this.values.set(labelKey(labels), { labels: { ...labels }, value });
    }
    get(labels: Labels = {}): number {
        return this.values.get(labelKey(labels))?.value ?? 0;
    }
    /** Called before each render, e.g. to read an outbox depth. */
    onCollect(fn: () => void): void {
        this.collectors.push(fn);
    }
    render(): string {
        for (const fn of this.collectors) fn();
        const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
        for (const { labels, value } of this.values.values()) {
            lines.push(`${this.name}${formatLabels(labels)} ${formatNumber(value)}`);
        }
        return lines.join('\n');
    }
}

/** Default buckets in seconds, spanning a 1 ms crypto step to a multi-block session. */
export const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16];

export class Histogram implements Metric {
    private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
    /**
     * @throws {RangeError} when: histogram buckets must increase
     */
    constructor(
        readonly name: string,
        readonly help: string,
        readonly buckets: readonly number[] = LATENCY_BUCKETS_S,
    ) {
        for (let i = 1; i < buckets.length; i++) {
            if ((buckets[i] ?? 0) <= (buckets[i - 1] ?? 0)) throw new RangeError('histogram buckets must increase');
        }
    }
    observe(value: number, labels: Labels = {}): void {
        const key = labelKey(labels);
        let s = this.series.get(key);
        if (s === undefined) {
            s = { labels: { ...labels }, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
            this.series.set(key, s);
        }
        for (let i = 0; i < this.buckets.length; i++) {
            if (value <= (this.buckets[i] ?? Infinity)) s.counts[i] = (s.counts[i] ?? 0) + 1;
        }
        s.sum += value;
        s.count += 1;
    }
    count(labels: Labels = {}): number {
        return this.series.get(labelKey(labels))?.count ?? 0;
    }
    render(): string {
        const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
        for (const s of this.series.values()) {
            this.buckets.forEach((b, i) => {
                lines.push(`${this.name}_bucket${formatLabels(s.labels, ['le', formatNumber(b)])} ${s.counts[i] ?? 0}`);
            });
            lines.push(`${this.name}_bucket${formatLabels(s.labels, ['le', '+Inf'])} ${s.count}`);
            lines.push(`${this.name}_sum${formatLabels(s.labels)} ${formatNumber(s.sum)}`);
            lines.push(`${this.name}_count${formatLabels(s.labels)} ${s.count}`);
        }
        return lines.join('\n');
    }
}

export class MetricsRegistry {
    private readonly metrics = new Map<string, Metric>();
    private register<M extends Metric>(metric: M): M {
        if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(metric.name)) throw new RangeError(`bad metric name ${metric.name}`);
        if (this.metrics.has(metric.name)) throw new RangeError(`metric ${metric.name} registered twice`);
        this.metrics.set(metric.name, metric);
        return metric;
    }
    counter(name: string, help: string): Counter {
        return this.register(new Counter(name, help));
    }
    gauge(name: string, help: string): Gauge {
        return this.register(new Gauge(name, help));
    }
    histogram(name: string, help: string, buckets?: readonly number[]): Histogram {
        return this.register(new Histogram(name, help, buckets));
    }
    /** The text exposition of every metric. */
    render(): string {
        return `${[...this.metrics.values()].map((m) => m.render()).join('\n')}\n`;
    }
}
