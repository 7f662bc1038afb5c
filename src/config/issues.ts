/**
 * Turns valibot issues into `path: what is wrong and what is valid` lines. Shared by the config
 * file and job documents so both speak the same way: every schema's message says what would be
 * valid ("must be …"), and this adds where and what was found.
 */
import * as v from "valibot";
import type { BaseIssue } from "valibot";

export interface PathProblem {
  /** Dotted path with `[i]` for array items, e.g. `actions[1].retry.retries`; "" = the whole value. */
  path: string;
  message: string;
}

const IDENTIFIER = /^[A-Za-z_$][\w$-]*$/;

/** `["actions", 1, "retry"]` → `actions[1].retry`; odd keys are quoted: `headers["X Y"]`. */
export function formatPath(segments: readonly unknown[]): string {
  let out = "";
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (IDENTIFIER.test(String(segment))) out += out ? `.${String(segment)}` : String(segment);
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

export function joinPath(base: string, ...segments: unknown[]): string {
  const rest = formatPath(segments);
  if (!base) return rest;
  return rest.startsWith("[") || !rest ? base + rest : `${base}.${rest}`;
}

const SHOWN_CHARS = 40;

/**
 * What was found, short enough for one line. `redact` shows only the kind of value: used for
 * secrets and connection strings, whose values must never reach a message.
 */
export function describeValue(value: unknown, redact = false): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return value.length === 0 ? "an empty array" : `an array (${value.length} item${value.length === 1 ? "" : "s"})`;
  if (typeof value === "object") return "an object";
  if (redact) return typeof value === "string" ? "a string" : `a ${typeof value}`;
  if (typeof value === "string") {
    if (value.length <= SHOWN_CHARS) return JSON.stringify(value);
    return `${JSON.stringify(value.slice(0, SHOWN_CHARS))}… (${value.length} characters)`;
  }
  return String(value);
}

/** A required key absent from its object: valibot reports it on the object schema. */
function isMissingKey(issue: BaseIssue<unknown>): boolean {
  return issue.kind === "schema" && issue.input === undefined && (issue.expected ?? "").startsWith('"');
}

/**
 * One problem per path (the first issue found there): a value that fails a union or a pipe
 * would otherwise be reported several times.
 */
export function issuesToProblems(
  issues: readonly BaseIssue<unknown>[],
  options: { basePath?: string; redact?: (path: string) => boolean } = {},
): PathProblem[] {
  const seen = new Set<string>();
  const problems: PathProblem[] = [];
  for (const issue of issues) {
    const path = joinPath(options.basePath ?? "", ...(issue.path ?? []).map((item) => item.key));
    if (seen.has(path)) continue;
    seen.add(path);
    const shown = describeValue(issue.input, options.redact?.(path) ?? false);
    // Messages built from the value (a cron parser's explanation) already quote it.
    const quoted = typeof issue.input === "string" && issue.message.includes(JSON.stringify(issue.input));
    const message = isMissingKey(issue) ? "is required" : quoted ? issue.message : `${issue.message} (got ${shown})`;
    problems.push({ path, message });
  }
  return problems;
}

/**
 * The known key a typo most likely meant: one sharing most of its start (`timeout` → `timeout_sec`,
 * `retry` → `retries`), or one a couple of edits away. A wrong guess is worse than none, so short
 * words must be very close.
 */
export function closestKey(word: string, known: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const byPrefix = known.filter((k) => {
    const shared = commonPrefix(lower, k.toLowerCase());
    return shared >= 4 && shared >= (2 / 3) * Math.min(lower.length, k.length);
  });
  if (byPrefix.length === 1) return byPrefix[0];
  let best: string | undefined;
  let bestDistance = (lower.length <= 4 ? 1 : lower.length <= 8 ? 2 : 3) + 1;
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return Number.MAX_SAFE_INTEGER;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** What to tell someone who wrote an unknown key: the likely intended key, or every valid one. */
export function unknownKeyHint(key: string, known: readonly string[]): string {
  const guess = closestKey(key, known);
  return guess ? `did you mean "${guess}"?` : `valid keys: ${known.join(", ")}`;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** valibot's `object` and `record` accept arrays (they are objects); a config or job never means one. */
export function notArray<T extends v.GenericSchema>(schema: T, message: string) {
  return v.pipe(v.custom<v.InferInput<T>>(isPlainObject, message), schema);
}
