/**
 * Where FleetCron keeps its files. `$FLEETCRON_HOME` replaces `~/.fleetcron` so several agents can
 * share one host in tests, each with its own lock, machine id and embedded database.
 */
import { lstatSync, statSync, type Stats } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { ConfigError } from "../core/errors.ts";
import { checkParentDir, checkPrivateFile, checksApply, currentUser, ownedBySafeUser, shellQuote } from "../core/private-files.ts";

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

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
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
 *
 * The config decides where secrets are sent, so no other user may have written it (README,
 * "Security"): a file writable by group or others is refused wherever it comes from, and
 * `./fleetcron.config.json` (picked up from wherever the command happens to start, /tmp say) is
 * used only when the running user (or root) owns it and the link to it if it is one; another
 * user's is ignored, and `warnings` says why. `<home>/config.json` follows the home's rules
 * (core/private-files.ts): a link, another user's file or a folder others may write is refused.
 */
export function findConfigPath(options: { flag?: string; env: Env; cwd: string; warnings?: string[] }): string | null {
  const { flag, env, cwd } = options;
  const explicit = flag ? { path: flag, source: "--config" } : env[CONFIG_ENV] ? { path: env[CONFIG_ENV], source: `$${CONFIG_ENV}` } : null;
  if (explicit) {
    const path = resolve(cwd, expandTilde(explicit.path, env));
    const kind = kindOf(path);
    if (kind === "missing") throw new ConfigError(`config file ${path} (from ${explicit.source}) does not exist; create it with "fleetcron config init" or fix the path`);
    if (kind === "dir") throw new ConfigError(`config file ${path} (from ${explicit.source}) is a folder; give the path of a JSON file`);
    refuseWritableByOthers(path);
    return path;
  }
  const local = join(cwd, LOCAL_CONFIG_NAME);
  if (kindOf(local) === "file") {
    const foreign = foreignOwner(local);
    if (!foreign) {
      refuseWritableByOthers(local);
      return local;
    }
    options.warnings?.push(
      `${local} ignored: ${foreign}, not by you (${currentUser()}), so another user could have written it; it would decide where your secrets are sent. To use it after checking it, pass --config ${shellQuote(local)}`,
    );
  }
  const inHome = join(resolveHome(env, cwd), HOME_CONFIG_NAME);
  // In the home, the home's rules: never a link, nobody else's, nobody else may write it or its folder.
  if (lstatOrNull(inHome)) {
    checkParentDir(inHome);
    checkPrivateFile(inHome);
    if (kindOf(inHome) === "file") return inHome;
  }
  return null;
}

/** Why the file (or the link to it) is not the running user's, or null when it is. */
function foreignOwner(path: string): string | null {
  if (!checksApply) return null;
  const link = lstatSync(path);
  if (link.isSymbolicLink() && !ownedBySafeUser(link)) return `it is a link owned by uid ${link.uid}`;
  const file = statSync(path);
  return ownedBySafeUser(file) ? null : `it is owned by uid ${file.uid}`;
}

function refuseWritableByOthers(path: string): void {
  if (!checksApply) return;
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o022) === 0) return;
  throw new ConfigError(
    `config file ${path} is writable by ${mode & 0o002 ? "all users" : "its group"} (mode ${mode.toString(8).padStart(3, "0")}), so another user could have changed where your secrets are sent; refusing it. Check it, then run: chmod 600 ${shellQuote(path)}`,
    "E_CONFIG_UNSAFE",
  );
}
