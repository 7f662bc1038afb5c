import { closeSync, fchmodSync, fstatSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { createConsola, type ConsolaInstance, type LogObject } from "consola/core";
import { terminalSafe } from "./printable.ts";

export type LogFormat = "pretty" | "json";
export type LogLevelName = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

const LEVELS: Record<LogLevelName, number> = { fatal: 0, error: 0, warn: 1, info: 3, debug: 4, trace: 5, silent: -999 };

export type Logger = ConsolaInstance;

/** The consola level of a `log_level` name (to change a running logger's level in place). */
export function logLevelNumber(name: LogLevelName): number {
  return LEVELS[name];
}

/** Where finished log lines go: stderr, or a rotating file (`log_file`). */
export interface LogSink {
  write(line: string): void;
  close(): void;
}

export const stderrSink: LogSink = {
  write: (line) => void process.stderr.write(line),
  close() {},
};

export interface LogFileOptions {
  path: string;
  /** Rotate before a line would take the file past this size (`log_max_mb`). */
  maxBytes: number;
  /** Rotated files kept: `<path>.1` (newest) … `<path>.<keep>` (`log_keep`); 0 keeps none. */
  keep: number;
}

/**
 * A log file rotated by size. It stays correct when the process is killed at any instant:
 * - every line is one write(2) on an O_APPEND descriptor, done before the log call returns, so a
 *   line is either wholly in a file or not written at all, and a kill loses only lines not logged yet;
 * - rotation is nothing but renames (`.4`→`.5`, …, `.1`→`.2`, file→`.1`), each atomic, so at every
 *   instant a line is in exactly one file; a kill between two renames leaves a gap in the numbers,
 *   which the next rotation closes;
 * - another process that rotated first (a CLI command sharing the file) is noticed by the inode
 *   under the path no longer being ours: we reopen instead of rotating again.
 * The file is created with mode 600 (and tightened to it when found looser): logs name jobs, hosts
 * and errors.
 */
export class RotatingFile implements LogSink {
  private fd = -1;
  private size = 0;
  private inode = 0;
  private failed = false;

  /** Opens at the first line: a file that cannot be opened is reported there (and stderr used), not thrown at startup. */
  constructor(private options: LogFileOptions) {}

  get path(): string {
    return this.options.path;
  }

  private open(): void {
    mkdirSync(dirname(this.options.path), { recursive: true, mode: 0o700 });
    this.fd = openSync(this.options.path, "a", 0o600);
    const stat = fstatSync(this.fd);
    if ((stat.mode & 0o077) !== 0) fchmodSync(this.fd, 0o600);
    this.size = stat.size;
    this.inode = stat.ino;
  }

  write(line: string): void {
    const bytes = Buffer.from(line, "utf8");
    try {
      if (this.fd === -1) this.open();
      if (this.size > 0 && this.size + bytes.length > this.options.maxBytes) this.rotate(bytes.length);
      let done = 0;
      while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done);
      this.size += bytes.length;
      this.failed = false;
    } catch (error) {
      // A full disk or a file taken away must not stop the agent, nor swallow its log: say it once
      // on stderr, keep logging there, and try the file again at the next line.
      if (!this.failed) process.stderr.write(`log_file ${this.options.path}: ${(error as Error).message}; logging to stderr meanwhile\n`);
      this.failed = true;
      this.dropDescriptor();
      process.stderr.write(line);
    }
  }

  private rotate(incoming: number): void {
    const { path, keep } = this.options;
    const current = statOrNull(path);
    if (current && current.ino !== this.inode) {
      // Rotated by another process: append to the new file unless it is full already.
      this.dropDescriptor();
      this.open();
      if (this.size === 0 || this.size + incoming <= this.options.maxBytes) return;
    }
    this.dropDescriptor();
    if (keep === 0) unlinkIfExists(path);
    else {
      for (let i = keep - 1; i >= 1; i--) renameIfExists(`${path}.${i}`, `${path}.${i + 1}`);
      renameIfExists(path, `${path}.1`);
    }
    this.open();
  }

  private dropDescriptor(): void {
    if (this.fd === -1) return;
    try {
      closeSync(this.fd);
    } catch {}
    this.fd = -1;
  }

  /** New limits from a reloaded config, for the same file. */
  configure(options: LogFileOptions): void {
    this.options = options;
  }

  close(): void {
    this.dropDescriptor();
  }
}

/**
 * One open file per path in a process: `reload-config` builds a new logger while the agent keeps
 * its first one, and both must append through the same descriptor (not leak one per reload).
 */
const openFiles = new Map<string, RotatingFile>();

export function logFileSink(options: LogFileOptions): RotatingFile {
  const existing = openFiles.get(options.path);
  if (existing) {
    existing.configure(options);
    return existing;
  }
  const file = new RotatingFile(options);
  openFiles.set(options.path, file);
  return file;
}

function statOrNull(path: string) {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

function renameIfExists(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}

function unlinkIfExists(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}

/** One finished line (with its newline) in the given format: the same for stderr and for a log file. */
export function formatLine(entry: LogObject, format: LogFormat): string {
  if (format === "json") {
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
    return `${terminalSafe(JSON.stringify(line))}\n`;
  }
  // A timestamp on every line: launchd and plain log files add none of their own. Names and
  // messages from the store and from responses: no control character reaches the terminal.
  const text = entry.args.map((a) => (a instanceof Error ? a.message : typeof a === "string" ? a : JSON.stringify(a))).join(" ");
  return `${entry.date.toISOString()} ${entry.type.padEnd(7)} ${entry.tag ? `[${entry.tag}] ` : ""}${terminalSafe(text)}\n`;
}

/**
 * Human logs go to stderr so stdout carries only data (`--json`, listings); with `file` they go to
 * that rotating file instead. The JSON format writes one object per line, for log shippers.
 */
export function createLogger(options: { level?: LogLevelName; format?: LogFormat; file?: LogFileOptions; sink?: LogSink } = {}): Logger {
  const level = LEVELS[options.level ?? "info"];
  const format = options.format ?? "pretty";
  const sink = options.sink ?? (options.file ? logFileSink(options.file) : stderrSink);
  return createConsola({
    level,
    reporters: [{ log: (entry: LogObject) => sink.write(formatLine(entry, format)) }],
  });
}

/** A logger that drops everything, for tests and library calls. */
export const silentLogger: Logger = createConsola({ level: LEVELS.silent });
