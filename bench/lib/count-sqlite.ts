/**
 * Preloaded into an agent (`bun --preload bench/lib/count-sqlite.ts src/main.ts run`) to count its
 * SQLite statements without touching FleetCron's code: every executed prepared statement (run, get,
 * all, values, iterate) and Database.run/exec counts one. The total is written to
 * $BENCH_SQLITE_COUNT_FILE four times a second as JSON `{ total, byVerb, at }`. With
 * $BENCH_SQLITE_TRACE_FILE set, every statement is also appended there as `<epoch ms> <VERB>` (the
 * bench counts the statements between an occurrence's instant and its request with it).
 */
import { Database } from "bun:sqlite";
import { appendFileSync, writeFileSync } from "node:fs";

const out = process.env.BENCH_SQLITE_COUNT_FILE;
const traceFile = process.env.BENCH_SQLITE_TRACE_FILE;
const byVerb: Record<string, number> = {};
let total = 0;
let trace: string[] = [];

function verbOf(sql: unknown): string {
  return typeof sql === "string" ? (/^\s*(\w+)/.exec(sql)?.[1] ?? "?").toUpperCase() : "?";
}

// Bun's Statement sets run/get/all/… on each instance, so each statement is wrapped once, as
// `query`/`prepare` hand it out (query() caches statements: the same object comes back).
const wrapped = new WeakSet<object>();
function wrap(statement: Record<string, unknown>, sql: string): void {
  if (wrapped.has(statement)) return;
  wrapped.add(statement);
  const verb = verbOf(sql);
  for (const method of ["run", "get", "all", "values", "iterate"]) {
    const original = statement[method];
    if (typeof original !== "function") continue;
    statement[method] = function (this: unknown, ...args: unknown[]) {
      total++;
      byVerb[verb] = (byVerb[verb] ?? 0) + 1;
      if (traceFile) trace.push(`${Date.now()} ${verb}`);
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    };
  }
}
for (const name of ["query", "prepare"] as const) {
  const original = Database.prototype[name] as unknown as (...a: unknown[]) => Record<string, unknown>;
  (Database.prototype as unknown as Record<string, unknown>)[name] = function (this: Database, sql: string, ...rest: unknown[]) {
    const statement = original.call(this, sql, ...rest);
    wrap(statement, sql);
    return statement;
  };
}

if (out || traceFile) {
  const flush = () => {
    try {
      if (out) writeFileSync(out, JSON.stringify({ total, byVerb, at: Date.now() }));
      if (traceFile && trace.length) {
        const lines = trace;
        trace = [];
        appendFileSync(traceFile, `${lines.join("\n")}\n`);
      }
    } catch {
      /* the bench may have removed its temp dir */
    }
  };
  setInterval(flush, 250).unref();
  process.on("exit", flush);
}
