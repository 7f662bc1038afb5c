import { StoreError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { pausedAt } from "../jobs/pause.ts";
import type { Job } from "../jobs/types.ts";
import type { RunRecord, RunStatus, Store } from "../store/types.ts";
import { claimBatch, newNonce } from "./claim.ts";
import type { DeadSession } from "./liveness.ts";
import { attemptId } from "./occurrence.ts";

/**
 * Takeover (docs/protocol.md, "Takeover"): the attempts of a dead session are found from what it
 * last published and from a scan of `job_runs` by its session and the earlier sessions of its
 * machine it inherited (a claim in flight at its death is in the store but not yet in its
 * heartbeat; a restarted agent that dies before taking over its predecessor leaves that to
 * others). Each is taken over by unique insert of the next attempt — the attempt number is the
 * fencing token — and only the winner marks the old attempt `lost` and runs the new one. A taker that loses the insert still marks the old attempt `lost`,
 * so a takeover interrupted between its two writes is completed by whoever looks next.
 */

export interface TakeoverContext {
  store: Pick<Store, "getRuns" | "insertRuns" | "finishRuns" | "listRunning">;
  machineId: string;
  /** This agent's current session: the successor's lease is this agent's heartbeat. */
  session: string;
  serial: number | null;
  now: number;
  maxAttempts: number;
  /** The job as this agent has it loaded (valid and enabled), or undefined. */
  jobOf(jobId: string): Job | undefined;
  /** Attempts not to take over: this agent's own, still writing their results. */
  exclude?: ReadonlySet<string>;
  /** Whether this agent already runs an attempt (a successor it won at an earlier look). */
  runsHere?: (attemptId: string) => boolean;
  log: Logger;
}

export interface TakeoverResult {
  /** Successors this agent won: `running` ones are for it to run; others are recorded reasons. */
  won: { lost: RunRecord; successor: RunRecord }[];
  /** Some attempt is still recorded running (a store error): look at this session again. */
  incomplete: boolean;
}

/** The attempts of `dead`, and of the earlier sessions it inherited, still recorded running. */
export async function attemptsOf(ctx: Pick<TakeoverContext, "store">, dead: DeadSession): Promise<RunRecord[]> {
  const published = new Set((dead.running ?? []).map((r) => r.id));
  const sessions = new Set([dead.session, ...dead.inherited]);
  const scanned = (await ctx.store.listRunning(dead.machineId)).filter((r) => (r.session !== undefined && sessions.has(r.session)) || published.has(r._id));
  const missing = [...published].filter((id) => !scanned.some((r) => r._id === id));
  const fetched = missing.length > 0 ? (await ctx.store.getRuns(missing)).filter((r) => r.status === "running") : [];
  return [...scanned, ...fetched];
}

export function successorOf(ctx: TakeoverContext, run: RunRecord): RunRecord {
  const job = ctx.jobOf(run.job_id);
  const next = run.attempt + 1;
  let status: RunStatus = "running";
  let reason: string | undefined;
  if (!job) (status = "skipped"), (reason = `previous attempt lost; job ${run.job_name} no longer exists, is disabled or is invalid`);
  else if (job.on_lost === "skip") (status = "skipped"), (reason = `previous attempt lost; on_lost: "skip"`);
  // A paused job fires nothing, re-runs included (README, "Pause and resume").
  else if (pausedAt(job, ctx.now)) (status = "skipped"), (reason = `previous attempt lost; job ${job.name} is paused${job.paused?.note ? ` (${job.paused.note})` : ""}`);
  else if (next > ctx.maxAttempts) (status = "skipped"), (reason = `previous attempt lost; no attempt beyond ${ctx.maxAttempts}`);
  const at = new Date(ctx.now);
  return {
    _id: attemptId(run.run_id, next),
    run_id: run.run_id,
    job_id: run.job_id,
    job_name: job?.name ?? run.job_name,
    scheduled_for: run.scheduled_for,
    attempt: next,
    trigger: "takeover",
    status,
    machine_id: ctx.machineId,
    ...(ctx.serial !== null ? { serial: ctx.serial } : {}),
    session: ctx.session,
    nonce: newNonce(),
    claimed_at: at,
    ...(status === "running" ? { started_at: at } : { finished_at: at }),
    ...(reason ? { reason } : {}),
  };
}

/** Takes over every attempt of a dead session: one batched claim, one batched `lost` write. */
export async function takeOverSession(ctx: TakeoverContext, dead: DeadSession): Promise<TakeoverResult> {
  const found = await attemptsOf(ctx, dead);
  const attempts = found.filter((run) => !ctx.exclude?.has(run._id));
  // An attempt still finishing here (this agent's own earlier session, cut off by its fence) is
  // looked at again once it has ended, so it cannot stay recorded running.
  const stillHere = found.length > attempts.length;
  if (attempts.length === 0) return { won: [], incomplete: stillHere };
  const successors = attempts.map((run) => successorOf(ctx, run));
  const claims = await claimBatch(ctx.store, successors);
  // A successor "lost" to this very session is ours: an earlier look inserted it without learning so.
  const lostIds = claims.filter((c) => c.outcome === "lost").map((c) => c.run._id);
  const existing = lostIds.length > 0 ? new Map((await ctx.store.getRuns(lostIds)).map((r) => [r._id, r])) : new Map<string, RunRecord>();
  for (const claim of claims) {
    const found = existing.get(claim.run._id);
    if (claim.outcome === "lost" && found && found.machine_id === ctx.machineId && found.session === ctx.session && found.status === "running" && !ctx.runsHere?.(found._id)) {
      claim.outcome = "won";
      claim.run = found;
    }
  }
  const won: TakeoverResult["won"] = [];
  const lostWrites = [];
  for (let i = 0; i < attempts.length; i++) {
    const old = attempts[i]!;
    const claim = claims[i]!;
    if (claim.outcome === "failed") continue; // still running: the next look tries again
    const successor = claim.run;
    const reason =
      claim.outcome === "won"
        ? `${dead.why}; attempt ${successor.attempt} claimed by ${ctx.machineId}`
        : `${dead.why}; attempt ${successor.attempt} was claimed by another agent`;
    lostWrites.push({ id: old._id, patch: { status: "lost" as const, finished_at: new Date(ctx.now), reason } });
    if (claim.outcome === "won") won.push({ lost: old, successor });
  }
  let incomplete = stillHere || claims.some((c) => c.outcome === "failed");
  try {
    await ctx.store.finishRuns(lostWrites);
  } catch (error) {
    // The successors are won and must run; the old attempts are marked lost by the next look.
    if (!(error instanceof StoreError)) throw error;
    incomplete = true;
    ctx.log.warn(`takeover of ${dead.machineId}: could not mark ${lostWrites.length} attempt(s) lost (${error.message}); trying again`);
  }
  for (const { lost, successor } of won) {
    ctx.log.warn(
      `took over ${lost.run_id}: attempt ${lost.attempt} on ${dead.machineId} lost (${dead.why}); attempt ${successor.attempt} ${successor.status === "running" ? "runs here" : `skipped (${successor.reason})`}`,
    );
  }
  return { won, incomplete };
}
