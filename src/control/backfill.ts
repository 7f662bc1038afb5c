import { FleetCronError, EXIT_FAILED, UsageError } from "../core/errors.ts";
import type { ExecuteContext } from "../coordinator/attempt.ts";
import { occurrenceId } from "../coordinator/occurrence.ts";
import type { Job } from "../jobs/types.ts";
import { firesBetween } from "../schedule/next.ts";
import type { RunStatus, Store } from "../store/types.ts";
import { osActor, recordAudit, type Actor } from "./audit.ts";
import { claimOperatorAttempt, latestAttempts } from "./operator-attempt.ts";

export const BACKFILL_DEFAULT_MAX = 1000;

export interface BackfillItem {
  scheduled_for: string;
  run_id: string;
  /** The latest attempt's status before the backfill, or null when the occurrence has no record. */
  before: RunStatus | null;
  /** `run`: no record or `missed`; `keep`: it ran, failed, was skipped or is running — never redone. */
  action: "run" | "keep";
  attempt: number;
  /** After running: the outcome, or `taken` when another backfill (or an agent) claimed it first. */
  result?: RunStatus | "taken";
  error?: string;
}

export interface BackfillPlan {
  job: string;
  tz: string;
  from: string;
  to: string;
  items: BackfillItem[];
}

export interface BackfillSummary {
  occurrences: number;
  to_run: number;
  ran: number;
  succeeded: number;
  failed: number;
  /** Claimed first by someone else (another backfill, an agent's catch-up): run once, by them. */
  taken: number;
  kept: number;
}

/**
 * The occurrences of [`from`, `to`] and what a backfill does with each: runs those with no record
 * or whose latest attempt is `missed`, keeps every other one. Read-only (`--dry-run` is this).
 */
export async function planBackfill(store: Store, job: Job, tz: string, range: { from: number; to: number; max: number; now: number }): Promise<BackfillPlan> {
  const { from, to, max, now } = range;
  if (!(from <= to)) throw new UsageError(`--from (${new Date(from).toISOString()}) must be before --to (${new Date(to).toISOString()})`);
  if (to > now) throw new UsageError(`--to ${new Date(to).toISOString()} is in the future: a backfill re-runs past occurrences only (the agents fire the rest)`);
  const instants = firesBetween(job.schedule, tz, from - 1, to, max + 1);
  if (instants.length > max) throw new UsageError(`the range holds more than --max ${max} occurrences of "${job.name}": narrow --from/--to or raise --max`);
  const latest = latestAttempts(instants.length ? await store.listOccurrenceRuns(job.id, new Date(instants[0]!), new Date(instants.at(-1)!), 100_000) : []);
  const items = instants.map((instant): BackfillItem => {
    const runId = occurrenceId(job.id, instant);
    const record = latest.get(runId);
    const runs = record === undefined || record.status === "missed";
    return { scheduled_for: new Date(instant).toISOString(), run_id: runId, before: record?.status ?? null, action: runs ? "run" : "keep", attempt: record ? record.attempt + (runs ? 1 : 0) : 1 };
  });
  return { job: job.name, tz, from: new Date(from).toISOString(), to: new Date(to).toISOString(), items };
}

/**
 * `jobs backfill`: runs the plan's `run` items in order, `concurrency` at a time, each under its
 * original occurrence key with trigger `backfill`, claimed by the unique insert of its next
 * attempt — so two operators backfilling the same range run each occurrence once.
 */
export async function runBackfill(ctx: ExecuteContext, job: Job, plan: BackfillPlan, opts: { concurrency: number; onProgress?: (done: number, total: number, item: BackfillItem) => void; actor?: Actor }): Promise<BackfillSummary> {
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) throw new UsageError(`--concurrency must be a whole number of at least 1 (got ${opts.concurrency})`);
  const queue = plan.items.filter((i) => i.action === "run");
  if (queue.length > 0) {
    const note = `${queue.length} occurrence(s) from ${plan.from} to ${plan.to}`;
    await recordAudit(ctx.store, opts.actor ?? osActor(), [{ action: "backfill", job: job.name, job_id: job.id, note }], ctx.clock.now()).catch((e: Error) => ctx.log.warn(e.message));
  }
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < queue.length && !ctx.signal.aborted) {
      const item = queue[next++]!;
      try {
        const claimed = await claimOperatorAttempt(ctx, job, item.run_id, Date.parse(item.scheduled_for), item.attempt, "backfill");
        item.result = claimed.won ? claimed.outcome.status : "taken";
        if (claimed.won && claimed.outcome.error) item.error = claimed.outcome.error;
      } catch (error) {
        throw new FleetCronError("E_BACKFILL", `backfill of "${job.name}" stopped at ${item.scheduled_for}: ${(error as Error).message} (occurrences already run are recorded; run the same backfill again to continue)`, EXIT_FAILED);
      }
      opts.onProgress?.(++done, queue.length, item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, Math.max(1, queue.length)) }, worker));
  return summarize(plan);
}

export function summarize(plan: BackfillPlan): BackfillSummary {
  const run = plan.items.filter((i) => i.action === "run");
  const ran = run.filter((i) => i.result !== undefined && i.result !== "taken");
  return {
    occurrences: plan.items.length,
    to_run: run.length,
    ran: ran.length,
    succeeded: ran.filter((i) => i.result === "success").length,
    failed: ran.filter((i) => i.result !== "success").length,
    taken: run.filter((i) => i.result === "taken").length,
    kept: plan.items.length - run.length,
  };
}
