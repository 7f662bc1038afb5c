import type { Actor } from "../control/audit.ts";
import { BACKFILL_DEFAULT_MAX, planBackfill, runBackfill, summarize } from "../control/backfill.ts";
import { parseStored, requireJob } from "../control/jobs.ts";
import { pauseJob, resumeJob } from "../control/pause.ts";
import { retryRun } from "../control/retry.ts";
import type { ExecuteContext } from "../coordinator/attempt.ts";
import { FleetCronError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { Store } from "../store/types.ts";

/**
 * The schedule lifecycle operations (pause, resume, backfill, retry) as the API and the page call
 * them: the functions of `src/control/` the CLI calls (`controlLifecycle`, wired by
 * src/cli/commands/run.ts). A server built without them (tests) answers 501. Each returns a JSON-able result and throws a FleetCronError (E_NO_JOB → 404,
 * E_NO_RUN → 404, E_USAGE → 400, other refusals → 409) when it does not act.
 */
export interface LifecycleOps {
  pause(input: { job: string; note?: string; until?: string; actor: Actor; now: number }): Promise<unknown>;
  resume(input: { job: string; actor: Actor; now: number }): Promise<unknown>;
  backfill(input: { job: string; from: string; to: string; dryRun?: boolean; max?: number; concurrency?: number; actor: Actor; now: number }): Promise<unknown>;
  retry(input: { runId: string; actor: Actor; now: number }): Promise<unknown>;
}

export const LIFECYCLE_OPERATIONS = ["pause", "resume", "backfill", "retry"] as const;

function unavailable(operation: string): never {
  throw new FleetCronError("E_NOT_AVAILABLE", `${operation} is not available in this build (the lifecycle operations are not wired into the API yet)`);
}

export const UNAVAILABLE_LIFECYCLE: LifecycleOps = {
  pause: async () => unavailable("pause"),
  resume: async () => unavailable("resume"),
  backfill: async () => unavailable("backfill"),
  retry: async () => unavailable("retry"),
};

/** What the real operations need from the agent that serves the API. */
export interface LifecycleDeps {
  store: Store;
  /** The agent's config `tz` and template names (secrets and vars), as they are now. */
  defaultTz: () => string;
  templateKeys: () => string[];
  /** A context for runs this process executes (retries, backfills), aborted when the agent stops. */
  executeContext: () => ExecuteContext;
  log: Logger;
}

/**
 * The operations of src/control/, as the CLI runs them, for the API and the page. A backfill runs
 * in the background (it may take long): the answer is its plan, and its progress is in `runs`.
 */
export function controlLifecycle(deps: LifecycleDeps): LifecycleOps {
  const jobOf = async (name: string) => {
    const parsed = parseStored(await requireJob(deps.store, name), deps.templateKeys());
    if (!parsed.job) throw new FleetCronError("E_INVALID_JOB", `job "${name}" is invalid and cannot run: ${parsed.problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`);
    return parsed.job;
  };
  const instant = (field: string, text: string) => {
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) throw new FleetCronError("E_USAGE", `${field} must be an ISO time such as 2026-03-08T00:00:00Z (got "${text}")`, 2);
    return ms;
  };
  return {
    pause: ({ job, note, until, actor, now }) =>
      pauseJob(deps.store, job, { ...(note ? { note } : {}), ...(until ? { until } : {}), by: actor.name, defaultTz: deps.defaultTz(), now, actor }),
    resume: ({ job, actor, now }) => resumeJob(deps.store, job, now, actor),
    retry: ({ runId, actor }) => retryRun(deps.executeContext(), runId, deps.templateKeys(), actor),
    async backfill({ job: name, from, to, dryRun, max, concurrency, actor, now }) {
      const job = await jobOf(name);
      const plan = await planBackfill(deps.store, job, job.tz ?? deps.defaultTz(), { from: instant("from", from), to: instant("to", to), max: max ?? BACKFILL_DEFAULT_MAX, now });
      if (dryRun) return { dry_run: true, ...plan, summary: summarize(plan) };
      const run = runBackfill(deps.executeContext(), job, plan, { concurrency: concurrency ?? 1, actor });
      run.then(
        (summary) => deps.log.info(`backfill of "${job.name}" by ${actor.name}: ${summary.ran} of ${summary.to_run} run`),
        (error: Error) => deps.log.error(`backfill of "${job.name}" by ${actor.name} stopped: ${error.message}`),
      );
      return { started: true, ...plan, summary: summarize(plan) };
    },
  };
}
