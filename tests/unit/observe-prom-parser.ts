/**
 * A strict parser of the Prometheus text exposition format (0.0.4), for the observe tests: it
 * rejects what Prometheus would reject and more (see `parsePrometheusText`).
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  help: string | null;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const FLOAT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

export class ParseError extends Error {}

function parseFloatStrict(text: string, where: string): number {
  if (text === "NaN") return Number.NaN;
  if (text === "+Inf" || text === "Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (!FLOAT.test(text)) throw new ParseError(`${where}: "${text}" is not a float`);
  return Number(text);
}

function unescape(text: string, allowed: string, where: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== "\\") {
      out += c;
      continue;
    }
    const next = text[++i];
    if (next === undefined || !allowed.includes(next)) throw new ParseError(`${where}: invalid escape \\${next ?? "(end)"}`);
    out += next === "n" ? "\n" : next;
  }
  return out;
}

/** Parses `{a="x",b="y"}` at the start of `text`; returns the labels and the rest. */
function parseLabels(text: string, where: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let rest = text.slice(1);
  if (rest.startsWith("}")) return { labels, rest: rest.slice(1) };
  for (;;) {
    const name = LABEL_NAME.exec(rest)?.[0];
    if (!name) throw new ParseError(`${where}: bad label name at "${rest.slice(0, 20)}"`);
    if (name.startsWith("__")) throw new ParseError(`${where}: reserved label name ${name}`);
    if (Object.hasOwn(labels, name)) throw new ParseError(`${where}: label ${name} twice`);
    rest = rest.slice(name.length);
    if (!rest.startsWith('="')) throw new ParseError(`${where}: expected =" after ${name}`);
    rest = rest.slice(2);
    let raw = "";
    for (;;) {
      const c = rest[0];
      if (c === undefined) throw new ParseError(`${where}: unterminated label value`);
      if (c === "\n") throw new ParseError(`${where}: raw newline in a label value`);
      if (c === "\\") {
        raw += rest.slice(0, 2);
        rest = rest.slice(2);
        continue;
      }
      rest = rest.slice(1);
      if (c === '"') break;
      raw += c;
    }
    labels[name] = unescape(raw, '\\"n', `${where} label ${name}`);
    if (rest.startsWith(",")) {
      rest = rest.slice(1);
      continue;
    }
    if (rest.startsWith("}")) return { labels, rest: rest.slice(1) };
    throw new ParseError(`${where}: expected , or } after label ${name}`);
  }
}

function familyOf(name: string, types: Map<string, MetricFamily>): MetricFamily | undefined {
  const direct = types.get(name);
  if (direct && direct.type !== "histogram" && direct.type !== "summary") return direct;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!name.endsWith(suffix)) continue;
    const base = types.get(name.slice(0, -suffix.length));
    if (base?.type === "histogram" || (base?.type === "summary" && suffix !== "_bucket")) return base;
  }
  if (direct?.type === "summary") return direct;
  return undefined;
}

/**
 * Strict: every sample belongs to a family declared by `# TYPE` before it, families are not
 * interleaved, HELP/TYPE appear at most once, escapes are only those the format defines, no
 * series twice, counters non-negative, histograms cumulative with `+Inf` equal to `_count`.
 */
export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  if (!text.endsWith("\n")) throw new ParseError("the text does not end with a newline");
  if (text.includes("\r")) throw new ParseError("carriage return in the text");
  const families = new Map<string, MetricFamily>();
  const helps = new Map<string, string>();
  const finished = new Set<string>();
  const seen = new Set<string>();
  let current: string | null = null;
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((line, index) => {
    const where = `line ${index + 1}`;
    if (line === "") throw new ParseError(`${where}: empty line`);
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) ([^ ]+)(?: (.*))?$/.exec(line);
      if (!m) throw new ParseError(`${where}: unexpected comment "${line}"`);
      const [, kind, name, rest] = m as unknown as [string, "HELP" | "TYPE", string, string | undefined];
      if (!METRIC_NAME.test(name) || METRIC_NAME.exec(name)![0] !== name) throw new ParseError(`${where}: bad metric name ${name}`);
      if (finished.has(name) || (current !== null && current !== name && families.get(name)?.samples.length)) throw new ParseError(`${where}: ${kind} for ${name} after its samples`);
      if (kind === "HELP") {
        if (helps.has(name)) throw new ParseError(`${where}: second HELP for ${name}`);
        helps.set(name, unescape(rest ?? "", "\\n", where));
        const family = families.get(name);
        if (family) family.help = helps.get(name)!;
      } else {
        if (families.has(name)) throw new ParseError(`${where}: second TYPE for ${name}`);
        if (!rest || !TYPES.has(rest)) throw new ParseError(`${where}: bad type "${rest}"`);
        families.set(name, { name, type: rest as MetricFamily["type"], help: helps.get(name) ?? null, samples: [] });
      }
      if (current !== null && current !== name) finished.add(current);
      current = name;
      return;
    }
    const name = METRIC_NAME.exec(line)?.[0];
    if (!name) throw new ParseError(`${where}: bad sample "${line}"`);
    let rest = line.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith("{")) ({ labels, rest } = parseLabels(rest, where));
    const parts = rest.split(" ");
    if (parts[0] !== "" || parts.length < 2 || parts.length > 3) throw new ParseError(`${where}: expected one space, a value and an optional timestamp: "${rest}"`);
    const value = parseFloatStrict(parts[1]!, where);
    if (parts[2] !== undefined && !/^-?\d+$/.test(parts[2])) throw new ParseError(`${where}: bad timestamp ${parts[2]}`);
    const family = familyOf(name, families);
    if (!family) throw new ParseError(`${where}: sample ${name} has no # TYPE before it`);
    if (finished.has(family.name)) throw new ParseError(`${where}: samples of ${family.name} are not together`);
    if (current !== family.name) {
      if (current !== null) finished.add(current);
      current = family.name;
    }
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new ParseError(`${where}: series ${key} twice`);
    seen.add(key);
    if (family.type === "counter" && (Number.isNaN(value) || value < 0)) throw new ParseError(`${where}: counter ${name} is ${value}`);
    if (family.type === "histogram" && name.endsWith("_bucket") && labels.le === undefined) throw new ParseError(`${where}: bucket without le`);
    family.samples.push({ name, labels, value });
  });
  for (const family of families.values()) if (family.type === "histogram") checkHistogram(family);
  return families;
}

function checkHistogram(family: MetricFamily): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of family.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const group = groups.get(key) ?? { buckets: [] };
    groups.set(key, group);
    if (s.name.endsWith("_bucket")) group.buckets.push([parseFloatStrict(le!, `${family.name} le`), s.value]);
    else if (s.name.endsWith("_sum")) group.sum = s.value;
    else group.count = s.value;
  }
  for (const [key, g] of groups) {
    const where = `${family.name}${key}`;
    if (g.sum === undefined || g.count === undefined) throw new ParseError(`${where}: missing _sum or _count`);
    if (g.buckets.at(-1)?.[0] !== Number.POSITIVE_INFINITY) throw new ParseError(`${where}: last bucket is not +Inf`);
    g.buckets.forEach(([le, n], i) => {
      if (i > 0 && !(le > g.buckets[i - 1]![0])) throw new ParseError(`${where}: le not increasing`);
      if (i > 0 && n < g.buckets[i - 1]![1]) throw new ParseError(`${where}: buckets not cumulative`);
    });
    if (g.buckets.at(-1)![1] !== g.count) throw new ParseError(`${where}: +Inf bucket ${g.buckets.at(-1)![1]} != _count ${g.count}`);
  }
}

/** The value of one series, or undefined. */
export function valueOf(families: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const family of families.values()) {
    for (const s of family.samples) {
      if (s.name !== name) continue;
      const keys = Object.keys(labels);
      if (keys.length === Object.keys(s.labels).length && keys.every((k) => s.labels[k] === labels[k])) return s.value;
    }
  }
  return undefined;
}

