/**
 * Finds, reads, validates and resolves the config file into the one object the rest of FleetCron
 * reads. Every problem in the file is reported at once (fixing them one run at a time is a slow
 * way to learn a schema); doubtful but workable settings come back as warnings instead.
 */
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { ConfigError } from "../core/errors.ts";
import type { HttpSettings } from "../executor/chain.ts";
import type { SecretScope } from "../executor/secret-hosts.ts";
import { shellQuote } from "../core/private-files.ts";
import { BUILTIN_NAMES } from "../executor/template.ts";
import { isPlainObject, issuesToProblems, unknownKeyHint, type PathProblem } from "./issues.ts";
import { describeJsonError, parseJson } from "./json.ts";
import { findConfigPath, resolveFromConfig, resolveHome, type Env } from "./paths.ts";
import {
  CONFIG_DEFAULTS,
  CONFIG_KEYS,
  configFileSchema,
  isSensitivePath,
  parseRate,
  timingProblems,
  timingWarnings,
  type ApiRole,
  type ConfigFile,
  type LogFormat,
  type LogLevel,
  type Placement,
  type Rate,
} from "./schema.ts";

export const SECRET_ENV_PREFIX = "FLEETCRON_SECRET_";
export const SQLITE_FILE_NAME = "fleetcron.db";

export type StoreConfig = { kind: "sqlite"; path: string } | { kind: "mongo"; uri: string; dbName: string };

/** Every key resolved to the value in force; paths are absolute. */
export interface ResolvedConfig {
  /** The file read, or null when none was found (all defaults). */
  path: string | null;
  /** `$FLEETCRON_HOME` or `~/.fleetcron`. */
  home: string;
  store: StoreConfig;
  mongodb_uri: string | null;
  db_name: string;
  tz: string;
  max_serial: number;
  /** File secrets overlaid with `FLEETCRON_SECRET_<KEY>` from the environment: name → value. */
  secrets: Record<string, string>;
  /** Secrets written with `hosts`: name → the lowercased hosts they may be sent to (README, "Secret hosts"). */
  secret_hosts: Record<string, string[]>;
  /** Non-secret template values, shown unmasked. */
  vars: Record<string, string>;
  strict_secrets: boolean;
  /** The first signs every request; the others are kept for rotation. */
  signing_keys: { id: string; secret: string }[];
  /** The embedded database file (used only when `store.kind` is "sqlite"). */
  sqlite_path: string;
  /** null = generated once and kept in `<home>/machine_id` by the agent. */
  machine_id: string | null;
  heartbeat_sec: number;
  dead_after_sec: number;
  failover_step_sec: number;
  catchup_window_sec: number;
  history_days: number;
  max_concurrent_runs: number;
  user_agent: string;
  log_level: LogLevel;
  log_format: LogFormat;
  /** Absolute; null = stderr. */
  log_file: string | null;
  log_max_mb: number;
  log_keep: number;
  /** null = no HTTP server; 0 = any free port. */
  http_port: number | null;
  http_host: string;
  jobs_file: string | null;
  shutdown_timeout_sec: number;
  placement: Placement;
  tags: Record<string, string>;
  /** Flow control by name (jobs name one with `limit`); rates parsed. */
  limits: Record<string, FlowLimit>;
  /** HTTP API tokens, each kept as the SHA-256 of its value only. */
  api_tokens: ApiToken[];
}

export interface ApiToken {
  name: string;
  role: ApiRole;
  /** SHA-256 of the token, lower-case hex. */
  sha256: string;
}

/** One `limits` entry: null where the file sets no bound of that kind. */
export interface FlowLimit {
  parallel: number | null;
  rate: Rate | null;
}

export interface LoadOptions {
  /** The `--config` flag, if given. */
  flag?: string;
  env: Env;
  cwd: string;
  /** FleetCron's version, for the default User-Agent. */
  version: string;
}

export function loadConfig(options: LoadOptions): { config: ResolvedConfig; warnings: string[] } {
  const { env, cwd } = options;
  const lookupWarnings: string[] = [];
  const path = findConfigPath({ flag: options.flag, env, cwd, warnings: lookupWarnings });
  const raw = path ? readConfigFile(path) : {};
  const { file, warnings } = validateConfig(raw, path ?? "(defaults)");
  warnings.unshift(...lookupWarnings);
  if (path) warnings.push(...permissionWarnings(path));
  const { secrets, secret_hosts } = resolveSecrets(file, envSecrets(env), path ?? "(defaults)");
  warnings.push(...unusableSecretWarnings([...Object.keys(secrets), ...Object.keys(file.vars)]));
  const home = resolveHome(env, cwd);
  const sqlitePath = file.sqlite_path ? resolveFromConfig(file.sqlite_path, path, cwd, env) : join(home, SQLITE_FILE_NAME);
  const config: ResolvedConfig = {
    ...file,
    path,
    home,
    store: file.mongodb_uri ? { kind: "mongo", uri: file.mongodb_uri, dbName: file.db_name } : { kind: "sqlite", path: sqlitePath },
    tz: file.tz ?? hostTimeZone(),
    secrets,
    secret_hosts,
    sqlite_path: sqlitePath,
    user_agent: file.user_agent ?? `FleetCron/${options.version}`,
    jobs_file: file.jobs_file ? resolveFromConfig(file.jobs_file, path, cwd, env) : null,
    limits: Object.fromEntries(Object.entries(file.limits).map(([name, l]) => [name, { parallel: l.parallel ?? null, rate: l.rate ? parseRate(l.rate) : null }])),
    log_file: file.log_file ? resolveFromConfig(file.log_file, path, cwd, env) : null,
    api_tokens: Object.entries(file.api_tokens).map(([name, t]) => ({
      name,
      role: t.role,
      sha256: t.token_sha256?.toLowerCase() ?? createHash("sha256").update(t.token!).digest("hex"),
    })),
  };
  return { config, warnings };
}

/** Names a job's templates may use from the config: secrets and vars. */
export function templateKeys(config: Pick<ResolvedConfig, "secrets" | "vars">): string[] {
  return [...Object.keys(config.secrets), ...Object.keys(config.vars)];
}

/** What validation needs to refuse a job that would send a secret to a host it may not go to. */
export function secretScope(config: Pick<ResolvedConfig, "secrets" | "vars" | "secret_hosts">): SecretScope {
  return { values: { ...config.vars, ...config.secrets }, hosts: config.secret_hosts };
}

/** What the executor adds to requests from the config. */
export function httpSettings(config: Pick<ResolvedConfig, "vars" | "secret_hosts" | "signing_keys">): HttpSettings {
  return { vars: config.vars, secretHosts: config.secret_hosts, signingKeys: config.signing_keys };
}

export function hostTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "EACCES" ? "permission denied" : code === "ENOENT" ? "it does not exist" : (error as Error).message;
    throw new ConfigError(`cannot read config file ${path}: ${why}`);
  }
  const parsed = parseJson(text);
  if (!parsed.ok) throw new ConfigError(describeJsonError(path, parsed));
  return parsed.value;
}

/**
 * Checks a parsed config object; `source` names it in messages (the file path). Throws one
 * ConfigError listing every problem, one `FILE: key: message` line each.
 */
export function validateConfig(raw: unknown, source: string): { file: ConfigFile; warnings: string[] } {
  const result = v.safeParse(configFileSchema, raw, { abortPipeEarly: true });
  const timing = usableTiming(raw);
  const problems = [
    ...(result.success ? [] : issuesToProblems(result.issues, { redact: isSensitivePath })),
    ...(timing ? timingProblems(timing) : []),
  ];
  if (problems.length || !result.success) throw configProblems(source, problems);
  const warnings = unknownKeys(raw as Record<string, unknown>).map(
    (key) => `${source}: unknown key "${key}" is ignored (${unknownKeyHint(key, CONFIG_KEYS)})`,
  );
  warnings.push(...timingWarnings(result.output, raw as Record<string, unknown>).map((w) => `${source}: ${w}`));
  return { file: result.output, warnings };
}

/** The timings as they will apply, when each is valid, so their relations are checked alongside type errors. */
function usableTiming(raw: unknown): Parameters<typeof timingProblems>[0] | null {
  if (!isPlainObject(raw)) return null;
  const value = (key: "heartbeat_sec" | "dead_after_sec" | "failover_step_sec") => {
    const given = raw[key] ?? CONFIG_DEFAULTS[key];
    return typeof given === "number" && Number.isFinite(given) && given > 0 ? given : null;
  };
  const [heartbeat_sec, dead_after_sec, failover_step_sec] = [value("heartbeat_sec"), value("dead_after_sec"), value("failover_step_sec")];
  return heartbeat_sec && dead_after_sec && failover_step_sec ? { heartbeat_sec, dead_after_sec, failover_step_sec } : null;
}

function configProblems(source: string, problems: PathProblem[]): ConfigError {
  return new ConfigError(problems.map((p) => `${source}: ${p.path ? `${p.path}: ` : ""}${p.message}`).join("\n"));
}

function unknownKeys(raw: Record<string, unknown>): string[] {
  return Object.keys(raw).filter((key) => !CONFIG_KEYS.includes(key));
}

/**
 * File secrets (a string, or `{ value, hosts }`) overlaid with the environment's values; a file
 * entry's `hosts` still bind a value given by FLEETCRON_SECRET_<NAME>. Throws for a secret without
 * a value, a name that is also a var, and (with `strict_secrets`) a secret without hosts.
 */
export function resolveSecrets(
  file: Pick<ConfigFile, "secrets" | "vars" | "strict_secrets">,
  fromEnv: Record<string, string>,
  source: string,
): { secrets: Record<string, string>; secret_hosts: Record<string, string[]> } {
  const secrets: Record<string, string> = {};
  const secret_hosts: Record<string, string[]> = {};
  const problems: PathProblem[] = [];
  for (const [name, entry] of Object.entries(file.secrets)) {
    const value = Object.hasOwn(fromEnv, name) ? fromEnv[name] : typeof entry === "string" ? entry : entry.value;
    if (value === undefined) problems.push({ path: `secrets.${name}.value`, message: `is required (or set ${SECRET_ENV_PREFIX}${name})` });
    else secrets[name] = value;
    if (typeof entry !== "string" && entry.hosts) secret_hosts[name] = [...new Set(entry.hosts.map((h) => h.toLowerCase()))];
  }
  for (const [name, value] of Object.entries(fromEnv)) secrets[name] = value;
  for (const name of Object.keys(secrets)) {
    if (Object.hasOwn(file.vars, name)) problems.push({ path: `vars.${name}`, message: `is also a secret (${Object.hasOwn(file.secrets, name) ? `secrets.${name}` : `${SECRET_ENV_PREFIX}${name}`}); a name is either a var (shown) or a secret (masked), rename one` });
    if (file.strict_secrets && !secret_hosts[name]) {
      const where = Object.hasOwn(file.secrets, name) ? `secrets.${name}` : `${SECRET_ENV_PREFIX}${name}`;
      problems.push({ path: `secrets.${name}.hosts`, message: `is required by strict_secrets (${where} has no hosts); write secrets.${name} as { "hosts": ["api.example.com"] } (the value may stay in ${SECRET_ENV_PREFIX}${name})` });
    }
  }
  if (problems.length) throw configProblems(source, problems);
  return { secrets, secret_hosts };
}

/** `FLEETCRON_SECRET_API_KEY=x` → `{ API_KEY: "x" }`; the key is kept as written (case matters in templates). */
export function envSecrets(env: Env): Record<string, string> {
  const secrets: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith(SECRET_ENV_PREFIX) && name.length > SECRET_ENV_PREFIX.length && value !== undefined) {
      secrets[name.slice(SECRET_ENV_PREFIX.length)] = value;
    }
  }
  return secrets;
}

/** The file holds secrets and possibly a database password; other users should not read it. */
function permissionWarnings(path: string): string[] {
  if (process.platform === "win32") return [];
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o044) === 0) return [];
  return [`${path}: readable by other users (mode ${mode.toString(8).padStart(3, "0")}) but holds secrets; restrict it with: chmod 600 ${shellQuote(path)}`];
}

/** A secret no template can reach is almost certainly a typo the user would rather hear about now. */
function unusableSecretWarnings(keys: string[]): string[] {
  return keys.flatMap((key) => {
    if (key !== key.trim() || /[{}]/.test(key) || key === "") return [`secret "${key}" can never be used: {{…}} names cannot contain braces or start/end with spaces`];
    if ((BUILTIN_NAMES as readonly string[]).includes(key)) return [`secret "${key}" is hidden by the built-in {{${key}}}; rename it`];
    if (key.startsWith("steps.")) return [`secret "${key}" is hidden by step references ({{steps.…}}); rename it`];
    return [];
  });
}
