/**
 * A small metrics registry and the Prometheus text exposition format (version 0.0.4), written by
 * hand: the client libraries pull in Node-specific machinery this binary does not need, and the
 * format is small enough to get exactly right here.
 *
 * Format rules kept (https://prometheus.io/docs/instrumenting/exposition_formats/):
 * - one `# HELP` and one `# TYPE` line per family, before its samples, samples of a family together;
 * - HELP text escapes `\` and newline; label values escape `\`, `"` and newline;
 * - metric and label names match `[a-zA-Z_:][a-zA-Z0-9_:]*` / `[a-zA-Z_][a-zA-Z0-9_]*`, no `__` prefix;
 * - values are Go-parsable floats, with `+Inf`, `-Inf`, `NaN`;
 * - histograms: cumulative `_bucket{le=…}` ending with `le="+Inf"`, then `_sum` and `_count`;
 * - the text ends with a newline.
 */

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export type Labels = Record<string, string>;

export function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  // JS number text (`1e-7`, `1.5e+21`, `0.25`) is what Go's ParseFloat reads.
  return Object.is(value, -0) ? "0" : String(value);
}

function formatLabels(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i]!)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function checkName(name: string): void {
  if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name "${name}"`);
}

function checkLabelNames(names: readonly string[], reserved: string[] = []): void {
  for (const n of names) {
    if (!LABEL_NAME.test(n) || n.startsWith("__")) throw new Error(`invalid label name "${n}"`);
    if (reserved.includes(n)) throw new Error(`label name "${n}" is reserved here`);
  }
  if (new Set(names).size !== names.length) throw new Error(`duplicate label names in ${names.join(", ")}`);
}

interface Family {
  readonly name: string;
  render(): string;
}

/** Series keyed by their label values, in a stable (insertion) order. */
abstract class Labelled<S> implements Family {
  protected readonly series = new Map<string, { values: string[]; state: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    reservedLabels: string[] = [],
  ) {
    checkName(name);
    checkLabelNames(labelNames, reservedLabels);
  }

  protected abstract readonly type: "counter" | "gauge" | "histogram";
  protected abstract fresh(): S;
  protected abstract samples(labels: (extra?: [string, string]) => string, state: S): string[];

  protected stateOf(labels: Labels): S {
    const values = this.labelNames.map((n) => {
      const v = labels[n];
      if (typeof v !== "string") throw new Error(`${this.name}: label "${n}" missing`);
      return v;
    });
    if (Object.keys(labels).length !== this.labelNames.length) throw new Error(`${this.name}: labels must be exactly ${this.labelNames.join(", ")}`);
    const key = JSON.stringify(values);
    let entry = this.series.get(key);
    if (!entry) {
      entry = { values, state: this.fresh() };
      this.series.set(key, entry);
    }
    return entry.state;
  }

  /** Drops every series (gauges recomputed at each scrape). */
  reset(): void {
    this.series.clear();
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    for (const { values, state } of this.series.values()) {
      lines.push(...this.samples((extra) => formatLabels(this.labelNames, values, extra), state));
    }
    return lines.join("\n");
  }
}

export class Counter extends Labelled<{ value: number }> {
  protected readonly type = "counter" as const;

  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, labelNames);
    if (!name.endsWith("_total")) throw new Error(`counter "${name}" must end in _total`);
    // A counter without labels is there from the start at 0, so rate() sees its first increase.
    if (labelNames.length === 0) this.stateOf({});
  }

  protected fresh() {
    return { value: 0 };
  }

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`${this.name}: a counter only goes up (got ${by})`);
    this.stateOf(labels).value += by;
  }

  get(labels: Labels = {}): number {
    return this.series.get(JSON.stringify(this.labelNames.map((n) => labels[n])))?.state.value ?? 0;
  }

  protected samples(labels: (extra?: [string, string]) => string, state: { value: number }): string[] {
    return [`${this.name}${labels()} ${formatValue(state.value)}`];
  }
}

export class Gauge extends Labelled<{ value: number }> {
  protected readonly type = "gauge" as const;

  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, labelNames);
  }

  protected fresh() {
    return { value: 0 };
  }

  set(labels: Labels, value: number): void {
    this.stateOf(labels).value = value;
  }

  get(labels: Labels = {}): number | undefined {
    return this.series.get(JSON.stringify(this.labelNames.map((n) => labels[n])))?.state.value;
  }

  protected samples(labels: (extra?: [string, string]) => string, state: { value: number }): string[] {
    return [`${this.name}${labels()} ${formatValue(state.value)}`];
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Labelled<HistogramState> {
  protected readonly type = "histogram" as const;
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames, ["le"]);
    const sorted = [...buckets].filter((b) => b !== Number.POSITIVE_INFINITY);
    if (sorted.length === 0 || sorted.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= sorted[i - 1]!))) {
      throw new Error(`${name}: buckets must be finite and strictly increasing`);
    }
    this.buckets = sorted;
  }

  protected fresh(): HistogramState {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }

  observe(labels: Labels, value: number): void {
    if (Number.isNaN(value)) return;
    const state = this.stateOf(labels);
    // Counts are kept per bucket and summed when rendered, so `le` buckets come out cumulative.
    const index = this.buckets.findIndex((b) => value <= b);
    if (index !== -1) state.counts[index]!++;
    state.sum += value;
    state.count++;
  }

  count(labels: Labels = {}): number {
    return this.series.get(JSON.stringify(this.labelNames.map((n) => labels[n])))?.state.count ?? 0;
  }

  protected samples(labels: (extra?: [string, string]) => string, state: HistogramState): string[] {
    const lines: string[] = [];
    let cumulative = 0;
    this.buckets.forEach((bound, i) => {
      cumulative += state.counts[i]!;
      lines.push(`${this.name}_bucket${labels(["le", formatValue(bound)])} ${cumulative}`);
    });
    lines.push(`${this.name}_bucket${labels(["le", "+Inf"])} ${state.count}`);
    lines.push(`${this.name}_sum${labels()} ${formatValue(state.sum)}`);
    lines.push(`${this.name}_count${labels()} ${state.count}`);
    return lines;
  }
}

/** Families in registration order; `render()` is the whole `/metrics` body. */
export class Registry {
  private readonly families: Family[] = [];

  register<F extends Family>(family: F): F {
    if (this.families.some((f) => f.name === family.name)) throw new Error(`metric "${family.name}" registered twice`);
    this.families.push(family);
    return family;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.register(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.register(new Gauge(name, help, labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram {
    return this.register(new Histogram(name, help, labelNames, buckets));
  }

  render(): string {
    return `${this.families.map((f) => f.render()).join("\n")}\n`;
  }
}
