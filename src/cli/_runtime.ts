import { hostname } from "node:os";
import { resolve } from "node:path";
import type { AgentSettings } from "../agent/agent.ts";
import { loadMachineId } from "../agent/machine-id.ts";
import { httpSettings, loadConfig, secretScope, type ResolvedConfig } from "../config/load.ts";
import type { ExecuteContext } from "../coordinator/attempt.ts";
import { systemClock } from "../core/clock.ts";
import { createLogger, type Logger } from "../core/logger.ts";
import { createRedactor } from "../core/redact.ts";
import { openStore } from "../store/index.ts";
import type { Store } from "../store/types.ts";
import { VERSION } from "../version.ts";
import { globalFlags } from "./_globals.ts";

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
  if (!options.quietWarnings) for (const warning of warnings) log.warn(warning);
  return { config, log };
}

/** Runs `fn` with the configured store open, and always closes it. */
export async function withStore<T>(fn: (rt: Runtime & { store: Store }) => Promise<T>): Promise<T> {
  const rt = loadRuntime();
  const store = await openStore(rt.config.store);
  try {
    return await fn({ ...rt, store });
  } finally {
    await store.close();
  }
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
