import { globalFlags } from "./_globals.ts";

/** Data goes to stdout: as one JSON document with `--json`, else as the human rendering. */
export function output(data: unknown, human: () => string): void {
  if (globalFlags.json) process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
  else {
    const text = human();
    if (text) process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
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
