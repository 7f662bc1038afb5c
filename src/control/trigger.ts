import { executeAttempt, openFence, type ExecuteContext } from "../coordinator/attempt.ts";
import { newNonce } from "../coordinator/claim.ts";
import { manualOccurrenceId } from "../coordinator/occurrence.ts";
import type { Clock } from "../core/clock.ts";
import type { Job } from "../jobs/types.ts";
import type { RunRecord, Store } from "../store/types.ts";
import { osActor, recordAudit, type Actor } from "./audit.ts";
import { sendCommand } from "./commands.ts";

/** What `jobs trigger` reports as it happens: each request sent, its answer, and each wait before a retry. */
export type TriggerProgress =
  | { kind: "request"; method: string; url: string; try: number }
  | { kind: "response"; status: number; ms: number }
  | { kind: "failed"; error: string; ms: number }
  | { kind: "wait"; ms: number };

export interface TriggerOptions {
  actor?: Actor;
  /** Told the claimed attempt as soon as it is recorded, before it runs (the API answers then). */
  onClaimed?: (run: RunRecord) => void;
  onProgress?: (event: TriggerProgress) => void;
  /** Set when the operator interrupted the run (Ctrl-C): the record says so instead of a bare abort. */
  interrupted?: () => string | null;
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
  const watched = opts.onProgress ? observed(ctx, opts.onProgress) : ctx;
  const interruption = () => opts.interrupted?.() ?? null;
  // The fence stays open: an interrupted attempt still writes its record (a closed fence means
  // "this process lost its session", which a CLI run never has), and ctx.signal stops the requests.
  const outcome = await executeAttempt(watched, job, run, openFence(new AbortController().signal), {
    write: (final) => {
      const why = interruption();
      return ctx.store.finishRuns([why ? { ...final, patch: { ...final.patch, status: "error", error: why } } : final]);
    },
  });
  const why = interruption();
  return why ? { ...outcome, status: "error", error: why } : outcome;
}

/**
 * The context with its fetch and sleep watched: the executor sends every request through
 * `fetch` and waits before every retry with `clock.sleep`, so these two see each step as it happens.
 */
function observed(ctx: ExecuteContext, emit: (event: TriggerProgress) => void): ExecuteContext {
  const base = ctx.fetch ?? fetch;
  let lastUrl = "";
  let tries = 0;
  let waited = false;
  const watchedFetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = ctx.redact(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
    // A request right after a wait, to the same URL, is a retry of the same step.
    tries = waited && url === lastUrl ? tries + 1 : 1;
    waited = false;
    lastUrl = url;
    emit({ kind: "request", method: (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase(), url, try: tries });
    const started = Date.now();
    try {
      const res = await base(input, init);
      emit({ kind: "response", status: res.status, ms: Date.now() - started });
      return res;
    } catch (error) {
      emit({ kind: "failed", error: ctx.redact((error as Error).message), ms: Date.now() - started });
      throw error;
    }
  }) as typeof fetch;
  const clock: Clock = {
    now: () => ctx.clock.now(),
    sleep: (ms, signal) => {
      waited = true;
      emit({ kind: "wait", ms });
      return ctx.clock.sleep(ms, signal);
    },
  };
  return { ...ctx, fetch: watchedFetch, clock };
}

/** How a trigger sent to an agent went. */
export type RemoteTriggerOutcome =
  | { kind: "finished"; run: RunRecord }
  | { kind: "refused"; machine: string; error: string }
  | { kind: "no-answer"; machine: string; waitedMs: number }
  | { kind: "still-running"; run: RunRecord; waitedMs: number };

/**
 * `jobs trigger` through the job's owner (docs/protocol.md, "Commands"): a `trigger` command that
 * names the job and a fresh run id, then the record of that run id, read until it is final. The
 * agent claims the run by unique insert, so it runs once even if the command were applied twice.
 * With `runHere` the owner is the caller's own agent: it claims the run at once, without a command,
 * and a refusal is what it throws.
 */
export async function triggerThroughAgent(
  ctx: { store: Store; clock: Clock },
  job: Pick<Job, "id" | "name">,
  machine: string,
  opts: {
    actor?: Actor;
    answerTimeoutMs: number;
    resultTimeoutMs: number;
    pollMs?: number;
    signal?: AbortSignal;
    onWaiting?: (waitedMs: number, run: RunRecord | null) => void;
    runHere?: (runId: string) => Promise<unknown>;
  },
): Promise<RemoteTriggerOutcome> {
  const started = ctx.clock.now();
  const runId = manualOccurrenceId(job.id, started);
  let commandId: string | undefined;
  if (opts.runHere) {
    try {
      await opts.runHere(runId);
    } catch (error) {
      return { kind: "refused", machine, error: (error as Error).message };
    }
  } else {
    commandId = await sendCommand(ctx.store, "trigger", machine, started, { job_id: job.id, run_id: runId });
  }
  await recordAudit(ctx.store, opts.actor ?? osActor(), [{ action: "trigger", job: job.name, job_id: job.id, run_id: runId, note: `run by ${machine}` }], started).catch(() => {});
  return awaitTriggeredRun(ctx, runId, machine, started, { ...opts, ...(commandId !== undefined ? { commandId } : {}) });
}

/**
 * The record of a manual run, read until it is final or `resultTimeoutMs` after `started` (or the
 * signal): with `commandId`, a refusal acknowledged for that command, or no record within
 * `answerTimeoutMs`, ends the wait too.
 */
async function awaitTriggeredRun(
  ctx: { store: Store; clock: Clock },
  runId: string,
  machine: string,
  started: number,
  opts: { commandId?: string; answerTimeoutMs: number; resultTimeoutMs: number; pollMs?: number; signal?: AbortSignal; onWaiting?: (waitedMs: number, run: RunRecord | null) => void },
): Promise<RemoteTriggerOutcome> {
  let reportAt = started + 5000;
  for (;;) {
    const now = ctx.clock.now();
    const waitedMs = now - started;
    const run = await ctx.store.getRun(runId);
    if (run && run.status !== "running") return { kind: "finished", run };
    if (!run) {
      const refusal = opts.commandId === undefined ? undefined : (await ctx.store.listAcks(opts.commandId)).find((a) => a.error);
      if (refusal) return { kind: "refused", machine, error: refusal.error! };
      if (waitedMs > opts.answerTimeoutMs) return { kind: "no-answer", machine, waitedMs };
    } else if (waitedMs >= opts.resultTimeoutMs || opts.signal?.aborted) {
      return { kind: "still-running", run, waitedMs };
    }
    if (now >= reportAt) {
      opts.onWaiting?.(waitedMs, run);
      reportAt = now + 5000;
    }
    await ctx.clock.sleep(opts.pollMs ?? 250, opts.signal);
  }
}
