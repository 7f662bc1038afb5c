import { executeAttempt, openFence, type ExecuteContext } from "../coordinator/attempt.ts";
import { newNonce } from "../coordinator/claim.ts";
import { attemptId } from "../coordinator/occurrence.ts";
import type { Job } from "../jobs/types.ts";
import type { RunRecord, RunTrigger } from "../store/types.ts";

/**
 * The latest attempt of each occurrence key among `records` (alert and notification markers
 * left out): what an operator's re-run is decided from.
 */
export function latestAttempts(records: RunRecord[]): Map<string, RunRecord> {
  const latest = new Map<string, RunRecord>();
  for (const r of records) {
    if (r.attempt < 1) continue; // alert and notification markers
    const seen = latest.get(r.run_id);
    if (!seen || r.attempt > seen.attempt) latest.set(r.run_id, r);
  }
  return latest;
}

export type OperatorAttempt = { won: true; outcome: RunRecord } | { won: false; attempt: number };

/**
 * Claims attempt `attempt` of an existing occurrence key by the unique insert every claim uses
 * (docs/protocol.md, "The one primitive") and runs it in this process. Two operators (or an
 * operator and an agent) asking at once: one insert wins, the other is told it lost, so the
 * occurrence runs once. Like `jobs trigger`, the attempt has no session: no agent takes it over.
 */
export async function claimOperatorAttempt(ctx: ExecuteContext, job: Job, runId: string, scheduledFor: number, attempt: number, trigger: RunTrigger): Promise<OperatorAttempt> {
  const now = ctx.clock.now();
  const run: RunRecord = {
    _id: attemptId(runId, attempt),
    run_id: runId,
    job_id: job.id,
    job_name: job.name,
    scheduled_for: new Date(scheduledFor),
    attempt,
    trigger,
    status: "running",
    machine_id: ctx.machineId,
    nonce: newNonce(),
    claimed_at: new Date(now),
    started_at: new Date(now),
  };
  if (!(await ctx.store.insertRun(run))) return { won: false, attempt };
  const outcome = await executeAttempt(ctx, job, run, openFence(ctx.signal), { write: (final) => ctx.store.finishRuns([final]) });
  return { won: true, outcome };
}
