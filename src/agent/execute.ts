import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/logger.ts";
import { isFenced, leaseId, leaseOf, startLeaseRenewal } from "../coordinator/lease.ts";
import { runChain, type ChainResult } from "../executor/chain.ts";
import type { Redactor } from "../executor/redact.ts";
import type { Job } from "../jobs/types.ts";
import { wallParts } from "../schedule/zone.ts";
import type { RunRecord, StepRecord, Store } from "../store/types.ts";

/** What running one attempt needs, and nothing more (the agent and `jobs trigger` both provide it). */
export interface ExecuteContext {
  store: Store;
  clock: Clock;
  machineId: string;
  secrets: Record<string, string>;
  redact: Redactor;
  userAgent: string;
  leaseMs: number;
  defaultTz: string;
  log: Logger;
  /** Aborted on a hard stop (shutdown deadline passed). */
  signal: AbortSignal;
  fetch?: typeof fetch;
}

/**
 * Runs a claimed attempt: the action chain under a renewed lease, then `on_success`/`on_failure`,
 * then the final record — unless a later attempt has taken over, in which case this one writes
 * nothing (its record already says `lost`).
 */
export async function executeAttempt(ctx: ExecuteContext, job: Job, run: RunRecord, opts: { leaseWritten?: boolean } = {}): Promise<RunRecord> {
  const { store, clock, log } = ctx;
  const startedAt = clock.now();
  const tz = job.tz ?? ctx.defaultTz;
  // A primary's claim and a takeover write the lease before claiming; only other claims lack one.
  if (!opts.leaseWritten) {
    try {
      await store.putLease(leaseOf(run, ctx.machineId, run.lease_until?.getTime() ?? startedAt + ctx.leaseMs));
    } catch (error) {
      log.warn(`${run._id}: could not record its lease (${(error as Error).message}); running anyway`);
    }
  }
  const renewal = startLeaseRenewal({ store, clock, run, machineId: ctx.machineId, leaseMs: ctx.leaseMs, log });
  const signal = AbortSignal.any([ctx.signal, renewal.signal]);
  const chainOptions = {
    runId: run.run_id,
    attempt: run.attempt,
    scheduledFor: run.scheduled_for.getTime(),
    jobName: job.name,
    machineId: ctx.machineId,
    secrets: ctx.secrets,
    userAgent: ctx.userAgent,
    wall: wallParts(run.scheduled_for.getTime(), tz),
    signal,
    sleep: (ms: number, s?: AbortSignal) => clock.sleep(ms, s),
    ...(ctx.fetch ? { fetch: ctx.fetch } : {}),
  };

  let result: ChainResult;
  const steps: StepRecord[] = [];
  try {
    result = await runChain(job.actions, chainOptions);
    steps.push(...result.steps);
    const notify = result.status === "success" ? job.on_success : job.on_failure;
    if (notify.length > 0 && !signal.aborted) {
      const label = result.status === "success" ? "on_success" : "on_failure";
      const notified = await runChain(notify, { ...chainOptions, initialSteps: result.outputs });
      steps.push(...notified.steps.map((s) => ({ ...s, name: `${label}:${s.name}` })));
      if (notified.status === "error") log.warn(`${job.name}: ${label} notification failed: ${notified.error ?? "see run record"}`);
    }
  } catch (error) {
    result = { status: "error", steps: [], outputs: {}, error: ctx.redact((error as Error).message) };
  } finally {
    renewal.stop();
  }

  const finishedAt = clock.now();
  const lost = renewal.lostReason;
  const final: Partial<RunRecord> = {
    status: lost ? "lost" : result.status,
    finished_at: new Date(finishedAt),
    duration_ms: finishedAt - startedAt,
    steps,
    lease_until: new Date(finishedAt),
    ...(lost ? { reason: lost } : {}),
    ...(result.error ? { error: ctx.redact(result.error) } : {}),
  };
  await writeFinal(ctx, run, final);
  const outcome = { ...run, ...final } as RunRecord;
  logOutcome(log, job, outcome);
  return outcome;
}

/**
 * The final write waits out a short store outage: losing it would leave the attempt `running` and
 * invite a needless takeover. A takeover that did happen wins (fencing).
 */
async function writeFinal(ctx: ExecuteContext, run: RunRecord, final: Partial<RunRecord>): Promise<void> {
  const deadline = ctx.clock.now() + Math.max(ctx.leaseMs * 4, 60_000);
  for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
    try {
      if (await isFenced(ctx.store, run, ctx.machineId)) {
        ctx.log.warn(`${run._id}: a later attempt took over; not recording this attempt's result (${final.status})`);
      } else {
        await ctx.store.updateRun(run._id, final);
        // A takeover may have marked this attempt lost between the check and the write: look
        // again, so the record says `lost` whenever a later attempt exists.
        if (await isFenced(ctx.store, run, ctx.machineId)) {
          await ctx.store.updateRun(run._id, { status: "lost", reason: `finished (${final.status}) after its lease had run out and attempt ${run.attempt + 1} took over` });
        }
      }
      await ctx.store.deleteLease(leaseId(run._id, ctx.machineId));
      return;
    } catch (error) {
      if (ctx.clock.now() > deadline) {
        ctx.log.error(`${run._id}: could not record the result (${(error as Error).message}); giving up`);
        return;
      }
      await ctx.clock.sleep(delay);
    }
  }
}

function logOutcome(log: Logger, job: Job, run: RunRecord): void {
  const when = run.scheduled_for.toISOString();
  const attempt = run.attempt > 1 ? ` (attempt ${run.attempt})` : "";
  const took = `${run.duration_ms ?? 0} ms`;
  if (run.status === "success") log.info(`${job.name} @ ${when}${attempt}: success in ${took}`);
  else log.warn(`${job.name} @ ${when}${attempt}: ${run.status} in ${took}${run.error ? ` — ${run.error}` : run.reason ? ` — ${run.reason}` : ""}`);
}
