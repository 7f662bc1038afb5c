import { displayTime } from "../schedule/display.ts";
import { terminalSafe } from "../core/printable.ts";
import { globalFlags } from "./_globals.ts";

// `process.exit` right after `process.stdout.write` loses what a slow reader (a pipe into a
// script) has not taken yet, so `main.ts` awaits `flushOutput()` first: each write's callback
// fires once its bytes are handed over. (`Bun.write(Bun.stdout, …)` is no way out: on a full pipe
// in Bun 1.4.5 it repeats the part already written.)
let pending: Promise<unknown> = Promise.resolve();

function write(stream: NodeJS.WriteStream, text: string): void {
  const written = new Promise<void>((resolve) => stream.write(text, () => resolve()));
  pending = pending.then(() => written);
}

export function writeOut(text: string): void {
  write(process.stdout, text);
}

export function writeErr(text: string): void {
  write(process.stderr, text);
}

export function flushOutput(): Promise<unknown> {
  return pending;
}

/**
 * Data goes to stdout: as one JSON document with `--json`, else as the human rendering. Both carry
 * names and messages from the store, so control characters in them are escaped (core/printable.ts).
 */
export function output(data: unknown, human: () => string): void {
  if (globalFlags.json) writeOut(terminalSafe(`${JSON.stringify(data, null, 2)}\n`));
  else {
    const text = terminalSafe(human());
    if (text) writeOut(text.endsWith("\n") ? text : `${text}\n`);
  }
}

/** Display width in terminal columns: East Asian wide characters and emoji take two. */
export function widthOf(text: string): number {
  return Bun.stringWidth(text);
}

/** Cuts `text` to at most `max` columns, marking the cut with an ellipsis. */
export function truncate(text: string, max: number): string {
  if (widthOf(text) <= max) return text;
  let out = "";
  for (const ch of text) {
    if (widthOf(out + ch) > max - 1) break;
    out += ch;
  }
  return `${out}…`;
}

function padTo(text: string, width: number): string {
  return text + " ".repeat(Math.max(0, width - widthOf(text)));
}

/**
 * Left-aligned columns, widths from the content measured in terminal columns; a cell wider than
 * `maxWidth` (default 40) is truncated with an ellipsis, except in the last column, which is free
 * to run on (details, errors), and in `whole` columns (ids meant to be copied).
 */
export function table(headers: string[], rows: (string | number | null | undefined)[][], options: { maxWidth?: number; whole?: number[] } = {}): string {
  const max = options.maxWidth ?? 40;
  const last = headers.length - 1;
  const whole = new Set([last, ...(options.whole ?? [])]);
  const cells = [headers, ...rows.map((r) => r.map((c, i) => {
    const text = c === null || c === undefined || c === "" ? "-" : String(c).replace(/\s*\n\s*/g, " ");
    return whole.has(i) ? text : truncate(text, max);
  }))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => widthOf(r[i] ?? ""))));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : padTo(c, widths[i]!))).join("  ").trimEnd()).join("\n");
}

/**
 * "42 s ago", "in 3 min", "2 h ago": how far an instant is from now, for humans. The one relative
 * format of every listing.
 */
export function relative(iso: string | Date | null | undefined, now: number): string {
  if (!iso) return "-";
  const delta = (iso instanceof Date ? iso.getTime() : Date.parse(iso)) - now;
  const abs = Math.abs(delta) / 1000;
  const text = abs < 90 ? `${Math.round(abs)} s` : abs < 5400 ? `${Math.round(abs / 60)} min` : abs < 129600 ? `${Math.round(abs / 3600)} h` : `${Math.round(abs / 86400)} d`;
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}

/** A time shown to a person: local time in `tz` with its zone and offset (schedule/display.ts, one format everywhere). */
export function localTime(iso: string | Date, tz: string): string {
  return displayTime(iso instanceof Date ? iso.getTime() : Date.parse(iso), tz);
}

/**
 * A run's detail without saying its status twice (`missed — missed: …`) and in the CLI's words:
 * an "attempt" is a claim of an occurrence, the HTTP retries inside a step are "tries". The
 * executor's messages still say "attempts" for retries (src/executor/chain.ts), so they are
 * reworded here for display; the stored record keeps its text.
 */
export function detailOf(status: string, text: string | null | undefined): string {
  if (!text) return "";
  const stripped = text.startsWith(`${status}: `) ? text.slice(status.length + 2) : text;
  return triesWording(stripped);
}

export function triesWording(text: string): string {
  return text.replace(/\bafter (\d+) attempts?\b/g, (_m, n) => `after ${n} ${n === "1" ? "try" : "tries"}`).replace(/\blast attempt:/g, "last try:");
}

/** `login: error (HTTP 500, 3 tries, 12 ms) — …`, each fact said once. */
export function stepLine(step: { name: string; status: string; http_status?: number; attempts: number; duration_ms?: number; error?: string; reason?: string }): string {
  const detail = triesWording(step.error ?? step.reason ?? "");
  const facts = [
    step.http_status && !detail.includes(`HTTP ${step.http_status}`) ? `HTTP ${step.http_status}` : null,
    step.attempts > 1 && !detail.includes(`${step.attempts} tries`) ? `${step.attempts} tries` : null,
    step.duration_ms !== undefined ? `${step.duration_ms} ms` : null,
  ].filter(Boolean);
  return `${step.name}: ${step.status}${facts.length ? ` (${facts.join(", ")})` : ""}${detail ? ` — ${detail}` : ""}`;
}
