import { secretScope, templateKeys } from "../../config/load.ts";
import { defineCommand } from "citty";
import { TokenSet } from "../../api/auth.ts";
import { controlLifecycle } from "../../api/lifecycle.ts";
import { Agent } from "../../agent/agent.ts";
import { acquireAgentLock } from "../../agent/lock.ts";
import { applyJobs } from "../../control/jobs.ts";
import { checkJobsFile } from "../../control/jobs-file.ts";
import { appliedConfig, configChanges, describeConfigChanges } from "../../config/changes.ts";
import { osActor } from "../../control/audit.ts";
import { systemClock } from "../../core/clock.ts";
import { ConfigError } from "../../core/errors.ts";
import { logLevelNumber } from "../../core/logger.ts";
import { createRedactor } from "../../core/redact.ts";
import { redactMongoUri } from "../../store/uri-redact.ts";
import { FleetMetrics } from "../../observe/metrics.ts";
import { startObserveServer, type ObserveServer } from "../../observe/server.ts";
import { openStore } from "../../store/index.ts";
import type { Job } from "../../jobs/types.ts";
import type { Store } from "../../store/types.ts";
import { globalArgs } from "../_globals.ts";
import { agentSettings, describeStoreChoice, executeContext, loadRuntime, type Runtime } from "../_runtime.ts";

/** Loopback addresses: the only places an HTTP server without api_tokens may listen. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || h === "::ffff:127.0.0.1";
}

/** With the server reachable from other hosts, the page and the API would be open to the network. */
export function requireTokensOffLoopback(config: Runtime["config"]): void {
  if (config.http_port === null || config.api_tokens.length > 0 || isLoopbackHost(config.http_host)) return;
  throw new ConfigError(
    `http_host "${config.http_host}" is not a loopback address and no api_tokens are configured, so the status page and the API would be open to the network; ` +
      `add tokens to ${config.path ?? "the config file"}, e.g. "api_tokens": {"ops": {"token": "<output of: openssl rand -hex 24>", "role": "operate"}}, or set "http_host": "127.0.0.1"`,
  );
}

export default defineCommand({
  meta: { name: "run", description: "Start the agent in the foreground (what service managers run)" },
  args: { ...globalArgs },
  async run() {
    let rt = loadRuntime();
    requireTokensOffLoopback(rt.config);
    let tokens = new TokenSet(rt.config.api_tokens);
    let redact = createRedactor(Object.values(rt.config.secrets));
    const lock = acquireAgentLock(rt.config.home);
    try {
      // An operation waits for an unreachable server about two heartbeats, not 10 s: the agent
      // retries on its own, and notices a returning store within a heartbeat or two.
      const waitForServerMs = Math.min(10_000, Math.max(2000, 2 * rt.config.heartbeat_sec * 1000));
      const choice = describeStoreChoice(rt.config);
      if (choice) rt.log.info(choice);
      if (rt.config.store.kind === "mongo") rt.log.info(`connecting to ${redactMongoUri(rt.config.store.uri)} (timeout ${waitForServerMs / 1000} s)`);
      const store = await openStore(rt.config.store, { waitForServerMs });
      const applyJobsFile = async () => {
        const file = rt.config.jobs_file;
        if (!file) return;
        try {
          const report = checkJobsFile(file, templateKeys(rt.config), secretScope(rt.config));
          if (report.problems.length) return rt.log.error(`jobs_file not applied, nothing written:\n${report.text}`);
          const changes = (await applyJobs(store, report.jobs, { prune: false, now: Date.now(), defaultTz: rt.config.tz, actor: osActor("jobs_file") })).filter((c) => c.change !== "unchanged");
          if (changes.length) rt.log.info(`jobs_file ${file}: ${changes.map((c) => `${c.change} "${c.name}"`).join(", ")}`);
        } catch (error) {
          rt.log.error(`jobs_file ${file} not applied: ${(error as Error).message}`);
        }
      };
      const metrics = new FleetMetrics();
      const agent = new Agent({
        store,
        observer: metrics,
        clock: systemClock,
        log: rt.log,
        settings: agentSettings(rt.config),
        applyJobsFile,
        reloadConfig: async () => {
          const next = loadRuntime({ log: rt.log });
          const applied = appliedConfig(rt.config, next.config);
          // A reload that would open the server to the network without tokens is refused whole.
          requireTokensOffLoopback(applied);
          const changes = configChanges(rt.config, next.config);
          for (const line of describeConfigChanges(changes)) {
            if (line.warn) rt.log.warn(line.text);
            else rt.log.info(line.text);
          }
          // Said at the old level, then changed in place: the agent, its store and its HTTP server keep this logger.
          rt.log.level = logLevelNumber(next.config.log_level);
          rt = { log: rt.log, config: applied };
          tokens = new TokenSet(rt.config.api_tokens);
          redact = createRedactor(Object.values(rt.config.secrets));
          return agentSettings(rt.config);
        },
      });
      let signals = 0;
      const onSignal = (signal: string) => {
        if (++signals > 1) {
          rt.log.warn(`${signal} again: exiting now`);
          process.exit(130);
        }
        agent.stop(signal);
      };
      process.on("SIGTERM", () => onSignal("SIGTERM"));
      process.on("SIGINT", () => onSignal("SIGINT"));
      // /healthz, /metrics and the status page (issue 7), when `http_port` is set.
      let http: ObserveServer | null = null;
      // A run triggered over HTTP goes to the job's owner (this agent runs its own through its
      // slots and limits); without a fleet in the store, and for retry and backfill, runs execute
      // in this process and are aborted when the agent stops.
      const triggered = new AbortController();
      if (rt.config.http_port !== null) {
        const control = {
          tokens: () => tokens,
          redact: () => redact,
          executeContext: () => executeContext({ ...rt, store }, triggered.signal),
          runHere: (job: Job, runId: string, by: string) => agent.runManual(job, runId, by),
          placement: rt.config.placement,
          lifecycle: controlLifecycle({
            store,
            defaultTz: () => rt.config.tz,
            templateKeys: () => templateKeys(rt.config),
            executeContext: () => executeContext({ ...rt, store }, triggered.signal),
            log: rt.log,
          }),
        };
        http = startObserveServer({ snapshot: () => agent.snapshot(), metrics, store, clock: systemClock, log: rt.log, control }, rt.config.http_host, rt.config.http_port);
        rt.log.info(`http: status page ${http.url}, metrics ${http.url}metrics, health ${http.url}healthz, API ${http.url}api/v1/ (${tokens.configured ? "tokens required" : "read-only: no api_tokens"})`);
      }
      try {
        await agent.run();
      } finally {
        triggered.abort();
        await http?.stop();
      }
      await closeQuietly(store);
    } finally {
      lock.release();
    }
  },
});

async function closeQuietly(store: Store): Promise<void> {
  // The process is exiting: a store that cannot close cleanly (or quickly) has nothing left to lose.
  await Promise.race([store.close().catch(() => {}), Bun.sleep(5000)]);
}
