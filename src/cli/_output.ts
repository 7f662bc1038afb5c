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

/** Left-aligned columns, widths from the content. */
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? "-" : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n");
}

/** "3 s ago", "in 2 min": how far an instant is from now, for humans. */
export function relative(iso: string | null, now: number): string {
  if (!iso) return "-";
  const delta = Date.parse(iso) - now;
  const abs = Math.abs(delta) / 1000;
  const text = abs < 90 ? `${Math.round(abs)} s` : abs < 5400 ? `${Math.round(abs / 60)} min` : abs < 129600 ? `${Math.round(abs / 3600)} h` : `${Math.round(abs / 86400)} d`;
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}
