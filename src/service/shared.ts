/**
 * What the three service managers have in common. The generators (systemd.ts, launchd.ts,
 * windows.ts) are pure: they take a `ServiceInput` and return the file to write and the steps to
 * run, so `--dry-run`, `--platform` previews and tests see exactly what `install` would do.
 * apply.ts is the only part that touches the disk or runs commands.
 */
import { posix, win32 } from "node:path";
import { UsageError } from "../core/errors.ts";

export type ServicePlatform = "linux" | "darwin" | "windows";
export type ServiceScope = "user" | "system";

export const SERVICE_PLATFORMS: readonly ServicePlatform[] = ["linux", "darwin", "windows"];
/** systemd unit name, Task Scheduler task name. */
export const SERVICE_NAME = "fleetcron";
/** launchd label (the seed's). */
export const LAUNCHD_LABEL = "com.fleetcron.agent";
export const WINDOWS_TASK_NAME = "FleetCron";
/** The seed's RestartSec; also launchd's ThrottleInterval. */
export const RESTART_DELAY_SEC = 10;
export const DEFAULT_SHUTDOWN_TIMEOUT_SEC = 30;

export interface ServiceInput {
  /** Absolute path of the program the service manager starts: the fleetcron binary (or bun, from source). */
  binaryPath: string;
  /** Arguments before FleetCron's own: `[script]` when running from source under bun; else none. */
  launcherArgs?: string[];
  /** Absolute config file path, or null: the agent then looks for `<home>/config.json`, else runs on defaults. */
  configPath: string | null;
  /** Absolute FLEETCRON_HOME of the service (lock, machine id, embedded store, logs). */
  home: string;
  scope: ServiceScope;
  /** Account the agent runs as: systemd `User=`, launchd `UserName`, Windows principal (S4U). */
  user?: string;
  /** The config's shutdown_timeout_sec: the service manager waits a bit longer before killing. */
  shutdownTimeoutSec?: number;
  /** Home folder of the installing user (where per-user definitions live). */
  userHome: string;
  /** `$XDG_CONFIG_HOME`, when set (systemd --user units live under it). */
  xdgConfigHome?: string;
  /** The installing user's uid: launchd's `gui/<uid>` domain. */
  uid?: number;
  /** The config's `log_file` (absolute), when it sets one: the agent logs there, not to stderr. */
  logFile?: string | null;
}

/** A command as an argv array: run without a shell, shown shell-quoted. */
export interface Command {
  argv: string[];
  /** Failure is expected and harmless (stopping something that is not loaded, say). */
  ignoreFailure?: boolean;
}

export interface ServiceFile {
  path: string;
  content: string;
  /** Task Scheduler reads its XML as UTF-16 (with a byte-order mark). */
  encoding: "utf8" | "utf16le";
  mode: number;
}

export type Step =
  | { kind: "mkdir"; path: string; mode: number }
  | { kind: "write"; file: ServiceFile }
  | { kind: "remove"; path: string }
  | { kind: "run"; command: Command; why: string };

/** What the host knows before installing, so the steps are exactly those that will run. */
export interface InstallState {
  /** A definition is already installed: replace it and restart the running agent. */
  replacing: boolean;
  /** FLEETCRON_HOME exists already (it is then left as it is: never chowned). */
  homeExists: boolean;
}

export interface StatusProbe {
  /** Installed when this file exists… */
  file?: string;
  /** …or when this command succeeds (Task Scheduler keeps its tasks in its own store). */
  installedCommand?: Command;
  runningCommand: Command;
  /** Reads the running command's result: true/false, null when it cannot tell. */
  parseRunning(result: { exitCode: number; stdout: string }): { running: boolean | null; detail: string };
}

export interface ServiceGenerator {
  platform: ServicePlatform;
  defaultScope: ServiceScope;
  /** Short name of the manager, for messages: "systemd", "launchd", "Task Scheduler". */
  manager: string;
  definition(input: ServiceInput): ServiceFile;
  install(input: ServiceInput, state: InstallState): Step[];
  uninstall(input: ServiceInput): Step[];
  status(input: ServiceInput): StatusProbe;
  /** Where the agent's log goes, and how to follow it. */
  logs(input: ServiceInput): string;
  /** The same, read from an installed definition (which may name another home than this shell's). */
  logsFromDefinition?(content: string): string | null;
  /** What an operator should know about this definition (account, limits). */
  notes(input: ServiceInput): string[];
}

/**
 * The agent's command line: what every manager starts. `logFile` adds `--log-file`, for managers
 * that keep no rotated output of their own (a Windows task has no stdout, launchd never rotates).
 */
export function agentArgv(input: ServiceInput, logFile?: string): string[] {
  return [input.binaryPath, ...(input.launcherArgs ?? []), ...(input.configPath ? ["--config", input.configPath] : []), ...(logFile ? ["--log-file", logFile] : []), "run"];
}

/** `<home>/logs/fleetcron.log`: where a service logs when the config names no `log_file`. */
export function defaultServiceLogFile(input: ServiceInput): string {
  return joinLike(input.home, "logs", "fleetcron.log");
}

/** The file a Windows task or a launchd job logs to: the config's `log_file`, else the default under the home. */
export function serviceLogFile(input: ServiceInput): { path: string; flag?: string } {
  if (input.logFile) return { path: input.logFile };
  const path = defaultServiceLogFile(input);
  return { path, flag: path };
}

/** `--log-file PATH` as written into a definition's argument list, read back (null when absent). */
export function logFileFromArgv(argv: string[]): string | null {
  const at = argv.indexOf("--log-file");
  return at !== -1 && argv[at + 1] ? argv[at + 1]! : null;
}

/** A bit above the agent's own shutdown timeout: it finishes running work, then releases its serial. */
export function stopTimeoutSec(input: ServiceInput): number {
  return Math.ceil(input.shutdownTimeoutSec ?? DEFAULT_SHUTDOWN_TIMEOUT_SEC) + 15;
}

/** Paths that will be written into a definition: absolute for that OS, one line, no NUL. */
export function checkInput(input: ServiceInput, platform: ServicePlatform): void {
  const isAbsolute = platform === "windows" ? (p: string) => win32.isAbsolute(p) && /^([A-Za-z]:[\\/]|\\\\)/.test(p) : posix.isAbsolute;
  const paths: [string, string | null][] = [
    ["binary", input.binaryPath],
    ["config", input.configPath],
    ["home", input.home],
    ...(input.launcherArgs ?? []).map((a): [string, string] => ["script", a]),
  ];
  for (const [what, path] of paths) {
    if (path === null) continue;
    // Control characters would break the definition's syntax (and could inject a line into it).
    if (/[\u0000-\u001f\u007f]/.test(path)) throw new UsageError(`the ${what} path ${JSON.stringify(path)} contains a control character; a service definition cannot hold it`);
    if (!isAbsolute(path)) throw new UsageError(`the ${what} path "${path}" must be absolute for a ${platform} service definition`);
  }
  if (input.user !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.@\\ -]*\$?$/.test(input.user)) {
    throw new UsageError(`--run-as "${input.user}" is not a valid account name`);
  }
}

/** `a/b` joined in the style of `base` (a Windows base keeps backslashes, even when previewed elsewhere). */
export function joinLike(base: string, ...parts: string[]): string {
  return /^[A-Za-z]:[\\/]|^\\\\/.test(base) ? win32.join(base, ...parts) : posix.join(base, ...parts);
}

export function xmlUnescape(text: string): string {
  return text.replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&quot;", '"').replaceAll("&apos;", "'").replaceAll("&amp;", "&");
}

export function xmlEscape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;").replaceAll("'", "&apos;");
}

/** POSIX shell quoting, for showing commands the operator can paste. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** One argument as CommandLineToArgvW (and so a Windows program) reads it back. */
export function windowsArg(arg: string): string {
  if (arg !== "" && !/[\s"]/.test(arg)) return arg;
  let out = '"';
  let backslashes = 0;
  for (const ch of arg) {
    if (ch === "\\") {
      backslashes++;
      continue;
    }
    out += ch === '"' ? `${"\\".repeat(backslashes * 2 + 1)}"` : `${"\\".repeat(backslashes)}${ch}`;
    backslashes = 0;
  }
  return `${out}${"\\".repeat(backslashes * 2)}"`;
}

export type QuoteStyle = "posix" | "windows";

export function quoteStyle(platform: ServicePlatform): QuoteStyle {
  return platform === "windows" ? "windows" : "posix";
}

export function showCommand(command: Command, style: QuoteStyle = "posix"): string {
  return command.argv.map(style === "windows" ? windowsArg : shellQuote).join(" ");
}

/** How a step reads in `--dry-run` output: as a command an operator could type on that OS. */
export function describeStep(step: Step, style: QuoteStyle = "posix"): string {
  const q = style === "windows" ? windowsArg : shellQuote;
  switch (step.kind) {
    case "mkdir":
      return style === "windows" ? `mkdir ${q(step.path)}` : `mkdir -p -m ${step.mode.toString(8)} ${q(step.path)}`;
    case "write":
      return `write ${q(step.file.path)} (${style === "windows" ? "" : `mode ${step.file.mode.toString(8)}, `}${step.file.encoding === "utf16le" ? "UTF-16LE with BOM" : "UTF-8"})`;
    case "remove":
      return style === "windows" ? `del ${q(step.path)}` : `rm -f ${q(step.path)}`;
    case "run":
      return `${showCommand(step.command, style)}${step.command.ignoreFailure ? "   # may fail harmlessly" : ""}   # ${step.why}`;
  }
}
