import type { ArgsDef } from "citty";
import { UsageError } from "../core/errors.ts";

/**
 * Flags every command accepts wherever they stand on the line (`fleetcron --json runs` and
 * `fleetcron runs --json` alike). They are taken out before citty parses the rest, because citty
 * gives each subcommand only the arguments after its own name.
 */
export interface GlobalFlags {
  config?: string;
  /** Overrides the config's `log_file`: how a service (a Windows task has no stdout) names its log. */
  logFile?: string;
  json: boolean;
}

export const globalFlags: GlobalFlags = { json: false };

export function extractGlobalFlags(argv: string[]): { flags: GlobalFlags; rest: string[] } {
  const flags: GlobalFlags = { json: false };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === "--json") flags.json = true;
    else if (arg === "--config" || arg === "-c") {
      const value = argv[++i];
      if (value === undefined || value.startsWith("-")) throw new UsageError(`${arg} needs a file path, e.g. --config /etc/fleetcron/config.json`);
      flags.config = value;
    } else if (arg.startsWith("--config=")) flags.config = arg.slice("--config=".length);
    else if (arg === "--log-file") {
      const value = argv[++i];
      if (value === undefined || value.startsWith("-")) throw new UsageError(`${arg} needs a file path, e.g. --log-file /var/log/fleetcron/fleetcron.log`);
      flags.logFile = value;
    } else if (arg.startsWith("--log-file=")) flags.logFile = arg.slice("--log-file=".length);
    else rest.push(arg);
  }
  return { flags, rest };
}

/** Shown in every command's --help; the values themselves are read by `extractGlobalFlags`. */
export const globalArgs = {
  config: { type: "string", alias: ["c"], valueHint: "path", description: "Config file (else $FLEETCRON_CONFIG, ./fleetcron.config.json, ~/.fleetcron/config.json)" },
  json: { type: "boolean", description: "One JSON document on stdout, for scripts" },
  "log-file": { type: "string", description: "Log to this file, rotated (overrides the config's log_file; default stderr)" },
} satisfies ArgsDef;

/** The command being run (`["fleetcron", "jobs", "list"]`), set by main.ts once the line is parsed. */
export const invocation: { path: string[] } = { path: [] };
