import { executeAttempt, openFence, type ExecuteContext } from "../coordinator/attempt.ts";
import { newNonce } from "../coordinator/claim.ts";
import { manualOccurrenceId } from "../coordinator/occurrence.ts";
import type { Job } from "../jobs/types.ts";
import type { RunRecord } from "../store/types.ts";
import { osActor, recordAudit, type Actor } from "./audit.ts";

export interface TriggerOptions {
  actor?: Actor;
  /** Told the claimed attempt as soon as it is recorded, before it runs (the API answers then). */
  onClaimed?: (run: RunRecord) => void;
}

/**
 * `jobs trigger`: one manual occurrence under a fresh key, claimed by unique insert and run by this
 * process, recorded as a scheduled one is, so it happens once and shows in `runs`. The CLI is not a
 * fleet member: its attempt carries no session, so no agent takes it over (docs/protocol.md).
 */
export async function triggerJob(ctx: ExecuteContext, job: Job, opts: TriggerOptions = {}): Promise<RunRecord> {
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
    nonce: newNonce(),
    claimed_at: new Date(now),
    started_at: new Date(now),
  };
  if (!(await ctx.store.insertRun(run))) throw new Error(`run ${runId} already exists`);
  opts.onClaimed?.(run);
  // The attempt is recorded and must run: a refused audit record is said, not a reason to leave it `running`.
  await recordAudit(ctx.store, opts.actor ?? osActor(), [{ action: "trigger", job: job.name, job_id: job.id, run_id: runId }], now).catch((e: Error) => ctx.log.warn(e.message));
  return executeAttempt(ctx, job, run, openFence(ctx.signal), { write: (final) => ctx.store.finishRuns([final]) });
}
