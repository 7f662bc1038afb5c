/**
 * Where FleetCron keeps its files. `$FLEETCRON_HOME` replaces `~/.fleetcron` so several agents can
 * share one host in tests, each with its own lock, machine id and embedded database.
 */
import { statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { ConfigError } from "../core/errors.ts";

export type Env = Record<string, string | undefined>;

export const CONFIG_ENV = "FLEETCRON_CONFIG";
export const HOME_ENV = "FLEETCRON_HOME";
export const LOCAL_CONFIG_NAME = "fleetcron.config.json";
export const HOME_CONFIG_NAME = "config.json";

/** The user's home folder, read from `env` first so tests can point it at a temp dir. */
export function userHome(env: Env): string {
  return env.HOME || env.USERPROFILE || homedir();
}

export function resolveHome(env: Env, cwd: string = process.cwd()): string {
  const fromEnv = env[HOME_ENV];
  if (fromEnv) return resolve(cwd, expandTilde(fromEnv, env));
  return join(userHome(env), ".fleetcron");
}

/** `~/x` → `<home>/x`: config files are often written with the shell's shorthand in mind. */
export function expandTilde(path: string, env: Env): string {
  if (path === "~") return userHome(env);
  if (path.startsWith("~/") || path.startsWith("~\\")) return join(userHome(env), path.slice(2));
  return path;
}

/** A path from the config file, relative to the file's own folder (not to wherever the agent starts). */
export function resolveFromConfig(path: string, configPath: string | null, cwd: string, env: Env): string {
  const expanded = expandTilde(path, env);
  if (isAbsolute(expanded)) return expanded;
  return resolve(configPath ? dirname(configPath) : cwd, expanded);
}

function kindOf(path: string): "file" | "dir" | "missing" {
  try {
    return statSync(path).isDirectory() ? "dir" : "file";
  } catch {
    return "missing";
  }
}

/**
 * `--config`, else `$FLEETCRON_CONFIG`, else `./fleetcron.config.json`, else `<home>/config.json`;
 * null when none exists (the defaults then apply: embedded store). A path the user named
 * explicitly must exist: silently running on defaults would hide a typo in a service unit.
 */
export function findConfigPath(options: { flag?: string; env: Env; cwd: string }): string | null {
  const { flag, env, cwd } = options;
  const explicit = flag ? { path: flag, source: "--config" } : env[CONFIG_ENV] ? { path: env[CONFIG_ENV], source: `$${CONFIG_ENV}` } : null;
  if (explicit) {
    const path = resolve(cwd, expandTilde(explicit.path, env));
    const kind = kindOf(path);
    if (kind === "missing") throw new ConfigError(`config file ${path} (from ${explicit.source}) does not exist; create it with "fleetcron config init" or fix the path`);
    if (kind === "dir") throw new ConfigError(`config file ${path} (from ${explicit.source}) is a folder; give the path of a JSON file`);
    return path;
  }
  for (const candidate of [join(cwd, LOCAL_CONFIG_NAME), join(resolveHome(env, cwd), HOME_CONFIG_NAME)]) {
    if (kindOf(candidate) === "file") return candidate;
  }
  return null;
}
