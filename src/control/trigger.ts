import { executeAttempt, type ExecuteContext } from "../agent/execute.ts";
import { manualOccurrenceId } from "../coordinator/occurrence.ts";
import type { Job } from "../jobs/types.ts";
import type { RunRecord } from "../store/types.ts";

/**
 * `jobs trigger`: one manual occurrence under a fresh key, claimed and run by this process with
 * the same lease and recording as a scheduled one, so it happens once and shows in `runs`.
 */
export async function triggerJob(ctx: ExecuteContext, job: Job): Promise<RunRecord> {
  const now = ctx.clock.now();
  const runId = manualOccurrenceId(job.id, now);
  const run: RunRecord = {
    _id: runId,
    run_id: runId,
    job_id: job.id,
    job_name: job.name,
    scheduled_for: new Date(now),
    attempt: 1,
    trigger: "manual",
    status: "running",
    machine_id: ctx.machineId,
    claimed_at: new Date(now),
    started_at: new Date(now),
    lease_until: new Date(now + ctx.leaseMs),
  };
  if (!(await ctx.store.insertRun(run))) throw new Error(`run ${runId} already exists`);
  return executeAttempt(ctx, job, run);
}
