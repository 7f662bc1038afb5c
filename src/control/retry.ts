import { FleetCronError, EXIT_FAILED } from "../core/errors.ts";
import type { ExecuteContext } from "../coordinator/attempt.ts";
import type { RunRecord, RunStatus, Store } from "../store/types.ts";
import { osActor, recordAudit, type Actor } from "./audit.ts";
import { parseStored } from "./jobs.ts";
import { claimOperatorAttempt, latestAttempts } from "./operator-attempt.ts";

/** Finished outcomes a re-drive may follow; `running` and `success` are refused. */
const RETRYABLE: RunStatus[] = ["error", "lost", "missed", "skipped"];

export interface RetryPlan {
  run_id: string;
  job_name: string;
  scheduled_for: string;
  /** The latest attempt, which the retry follows. */
  previous: { id: string; attempt: number; status: RunStatus };
  attempt: number;
}

export interface RetryResult extends RetryPlan {
  outcome: RunRecord;
}

/** `RUN_ID` as `runs` shows it: an occurrence key, or one attempt's id (`…#2`). */
function occurrenceKeyOf(id: string): string {
  return id.replace(/#\d+$/, "");
}

/** What `runs retry RUN_ID` would do, or why it refuses (FleetCronError naming the run and its status). */
export async function planRetry(store: Store, id: string): Promise<RetryPlan & { job_id: string; scheduledMs: number }> {
  const runId = occurrenceKeyOf(id.trim());
  const first = (await store.getRun(runId)) ?? (await store.getRun(id.trim()));
  if (!first) throw new FleetCronError("E_NO_RUN", `no run "${id}": give a run id as \`fleetcron runs --json\` shows it (_id or run_id)`, EXIT_FAILED);
  const at = first.scheduled_for;
  const latest = latestAttempts(await store.listOccurrenceRuns(first.job_id, at, at, 10_000)).get(first.run_id);
  if (!latest) throw new FleetCronError("E_NO_RUN", `run "${id}" has no attempt to re-drive (only an alert record)`, EXIT_FAILED);
  const label = `run ${first.run_id} (attempt ${latest.attempt})`;
  if (latest.status === "running") throw new FleetCronError("E_RETRY_REFUSED", `${label} is still running on ${latest.machine_id ?? "an unknown machine"}: a running attempt is not re-driven (if its agent died, the fleet takes it over)`, EXIT_FAILED);
  if (latest.status === "success") throw new FleetCronError("E_RETRY_REFUSED", `${label} succeeded: there is nothing to re-drive (\`fleetcron jobs trigger ${latest.job_name}\` runs the job once more under a new key)`, EXIT_FAILED);
  if (!RETRYABLE.includes(latest.status)) throw new FleetCronError("E_RETRY_REFUSED", `${label} is ${latest.status}, which cannot be re-driven`, EXIT_FAILED);
  return {
    run_id: first.run_id,
    job_id: first.job_id,
    job_name: latest.job_name,
    scheduled_for: at.toISOString(),
    scheduledMs: at.getTime(),
    previous: { id: latest._id, attempt: latest.attempt, status: latest.status },
    attempt: latest.attempt + 1,
  };
}

/**
 * `runs retry`: re-runs a finished occurrence as its next attempt (trigger `retry`, the same run
 * id and Idempotency-Key), claimed by the unique insert of that attempt: two operators retrying at
 * the same moment produce one new attempt, and the one that lost is told so.
 */
export async function retryRun(ctx: ExecuteContext, id: string, secretKeys: string[], actor: Actor = osActor()): Promise<RetryResult> {
  const plan = await planRetry(ctx.store, id);
  const doc = await ctx.store.getJob(plan.job_id);
  if (!doc) throw new FleetCronError("E_NO_JOB", `run ${plan.run_id} belongs to job "${plan.job_name}", which no longer exists`, EXIT_FAILED);
  const parsed = parseStored(doc, secretKeys);
  if (!parsed.job) throw new FleetCronError("E_INVALID_JOB", `job "${plan.job_name}" is invalid and cannot run:\n${parsed.problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")}`, EXIT_FAILED);
  const now = ctx.clock.now();
  await recordAudit(ctx.store, actor, [{ action: "retry", job: plan.job_name, job_id: plan.job_id, run_id: plan.run_id, note: `attempt ${plan.attempt}` }], now).catch((e: Error) => ctx.log.warn(e.message));
  const claimed = await claimOperatorAttempt(ctx, parsed.job, plan.run_id, plan.scheduledMs, plan.attempt, "retry");
  if (!claimed.won) {
    throw new FleetCronError("E_RETRY_RACE", `attempt ${plan.attempt} of run ${plan.run_id} was claimed by someone else a moment ago (another retry, or a takeover): it runs once; \`fleetcron runs --job ${plan.job_name}\` shows it`, EXIT_FAILED);
  }
  const { job_id: _j, scheduledMs: _s, ...shown } = plan;
  return { ...shown, outcome: claimed.outcome };
}
