import { createConsola, type ConsolaInstance, type LogObject } from "consola";

export type LogFormat = "pretty" | "json";
export type LogLevelName = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

const LEVELS: Record<LogLevelName, number> = { fatal: 0, error: 0, warn: 1, info: 3, debug: 4, trace: 5, silent: -999 };

export type Logger = ConsolaInstance;

/**
 * Human logs go to stderr so stdout carries only data (`--json`, listings). The JSON format writes
 * one object per line, for log shippers.
 */
export function createLogger(options: { level?: LogLevelName; format?: LogFormat } = {}): Logger {
  const level = LEVELS[options.level ?? "info"];
  if (options.format === "json") {
    return createConsola({
      level,
      reporters: [
        {
          log(entry: LogObject) {
            const [first, ...rest] = entry.args;
            const line = {
              time: entry.date.toISOString(),
              level: entry.type,
              ...(entry.tag ? { tag: entry.tag } : {}),
              msg: typeof first === "string" ? first : String(first),
              ...(rest.length ? { data: rest.map((r) => (r instanceof Error ? r.message : r)) } : {}),
              // `log.info({ message, fields: { job, run_id, … } })`: fields a log shipper can filter on.
              ...((entry as { fields?: Record<string, unknown> }).fields ?? {}),
            };
            process.stderr.write(`${JSON.stringify(line)}\n`);
          },
        },
      ],
    });
  }
  // A timestamp on every line: launchd and plain log files add none of their own.
  return createConsola({
    level,
    reporters: [
      {
        log(entry: LogObject) {
          const text = entry.args.map((a) => (a instanceof Error ? a.message : typeof a === "string" ? a : JSON.stringify(a))).join(" ");
          process.stderr.write(`${entry.date.toISOString()} ${entry.type.padEnd(7)} ${entry.tag ? `[${entry.tag}] ` : ""}${text}\n`);
        },
      },
    ],
  });
}

/** A logger that drops everything, for tests and library calls. */
export const silentLogger: Logger = createConsola({ level: LEVELS.silent });
