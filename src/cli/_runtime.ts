import { hostname } from "node:os";
import { resolve } from "node:path";
import type { AgentSettings } from "../agent/agent.ts";
import { loadMachineId } from "../agent/machine-id.ts";
import { httpSettings, loadConfig, secretScope, type ResolvedConfig } from "../config/load.ts";
import type { ExecuteContext } from "../coordinator/attempt.ts";
import { systemClock } from "../core/clock.ts";
import { createLogger, type Logger } from "../core/logger.ts";
import { createRedactor } from "../core/redact.ts";
import { redactMongoUri } from "../store/uri-redact.ts";
import { isAlive } from "../control/machines.ts";
import { openStore } from "../store/index.ts";
import type { Store } from "../store/types.ts";
import { VERSION } from "../version.ts";
import { globalFlags, invocation } from "./_globals.ts";

export interface Runtime {
  config: ResolvedConfig;
  log: Logger;
}

/** Config loaded and resolved, warnings said once, logger ready: what every command starts from. */
export function loadRuntime(options: { quietWarnings?: boolean; log?: Logger } = {}): Runtime {
  const { config, warnings } = loadConfig({ flag: globalFlags.config, env: process.env, cwd: process.cwd(), version: VERSION });
  const logFile = globalFlags.logFile ? resolve(globalFlags.logFile) : config.log_file;
  // A running agent re-reading its config (reload-config) keeps its logger and its open log file.
  const log = options.log ?? createLogger({
    level: config.log_level,
    format: config.log_format,
    ...(logFile ? { file: { path: logFile, maxBytes: Math.round(config.log_max_mb * 1024 * 1024), keep: config.log_keep } } : {}),
  });
  if (!options.quietWarnings) for (const warning of warnings) if (!isPermissionWarning(warning) || warnsAboutPermissions()) log.warn(warning);
  return { config, log };
}

/**
 * A config readable by others is said where it matters, by the agent that runs with it and by
 * `config check`, not by every listing. (The warning's text comes from config/load.ts.)
 */
const PERMISSION_WARNING = /: readable by other users \(mode \d+\)/;
const isPermissionWarning = (warning: string) => PERMISSION_WARNING.test(warning);
function warnsAboutPermissions(): boolean {
  const path = invocation.path.slice(1).join(" ");
  return path === "" || path === "run" || path === "config check";
}

/** How long a CLI command waits for an unreachable store server before it gives up. */
export const STORE_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Where the store is, said before using it when nothing chose it explicitly: without a config file
 * a command works on the embedded database of $FLEETCRON_HOME, which may not be the fleet's.
 */
export function describeStoreChoice(config: ResolvedConfig): string | null {
  if (config.path) return null;
  const home = process.env.FLEETCRON_HOME ? "$FLEETCRON_HOME" : "the default home ~/.fleetcron";
  return `no config file found (--config, $FLEETCRON_CONFIG, ./fleetcron.config.json, ${config.home}/config.json); using the embedded store ${config.store.kind === "sqlite" ? config.store.path : "?"} of ${home}`;
}

/** Runs `fn` with the configured store open, and always closes it. */
export async function withStore<T>(fn: (rt: Runtime & { store: Store }) => Promise<T>): Promise<T> {
  const rt = loadRuntime();
  const choice = describeStoreChoice(rt.config);
  if (choice) rt.log.info(choice);
  if (rt.config.store.kind === "mongo") rt.log.info(`connecting to ${redactMongoUri(rt.config.store.uri)} (timeout ${STORE_CONNECT_TIMEOUT_MS / 1000} s)`);
  const store = await openStore(rt.config.store, { waitForServerMs: STORE_CONNECT_TIMEOUT_MS });
  try {
    return await fn({ ...rt, store });
  } finally {
    await store.close();
  }
}

/**
 * After a write: a change no agent is alive to pick up does nothing yet, and a CLI pointed at the
 * wrong store looks exactly like this. Said on stderr; returns whether one is alive.
 */
export async function warnIfNoAgentAlive(rt: Runtime & { store: Store }): Promise<boolean> {
  const now = Date.now();
  const alive = (await rt.store.listMachines()).filter((m) => isAlive(m, now, rt.config.dead_after_sec * 1000));
  if (alive.length === 0) rt.log.warn(`no agent is alive on this store (${rt.store.kind} ${rt.store.location}): the change takes effect when one starts (\`fleetcron run\` with this config)`);
  return alive.length > 0;
}

export function agentSettings(config: ResolvedConfig): AgentSettings {
  return {
    machineId: loadMachineId(config.home, config.machine_id),
    hostname: hostname(),
    version: VERSION,
    maxSerial: config.max_serial,
    heartbeatMs: config.heartbeat_sec * 1000,
    deadAfterMs: config.dead_after_sec * 1000,
    failoverStepMs: config.failover_step_sec * 1000,
    catchupWindowMs: config.catchup_window_sec * 1000,
    historyDays: config.history_days,
    maxConcurrentRuns: config.max_concurrent_runs,
    shutdownTimeoutMs: config.shutdown_timeout_sec * 1000,
    defaultTz: config.tz,
    secrets: config.secrets,
    http: httpSettings(config),
    secretScope: secretScope(config),
    userAgent: config.user_agent,
    placement: config.placement,
    tags: config.tags,
    limits: config.limits,
  };
}

export function executeContext(rt: Runtime & { store: Store }, signal: AbortSignal): ExecuteContext {
  const settings = agentSettings(rt.config);
  return {
    store: rt.store,
    clock: systemClock,
    machineId: settings.machineId,
    secrets: settings.secrets,
    redact: createRedactor(Object.values(settings.secrets)),
    ...(settings.http ? { http: settings.http } : {}),
    userAgent: settings.userAgent,
    defaultTz: settings.defaultTz,
    log: rt.log,
    signal,
  };
}
