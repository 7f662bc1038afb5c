import type { Clock } from "../core/clock.ts";
import { StoreError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { runChain, startDeadline, type ChainResult, type HttpSettings } from "../executor/chain.ts";
import { notificationsFor, type Notification } from "./notify.ts";
import type { Redactor } from "../core/redact.ts";
import type { Job } from "../jobs/types.ts";
import { wallParts } from "../schedule/zone.ts";
import type { FinalWrite, RunRecord, StepRecord, Store } from "../store/types.ts";

/**
 * The attempt lifecycle (docs/protocol.md, "Attempts"): a claimed attempt runs its action chain
 * and notifications under its agent's fence, then hands its final record to the batched writer.
 * There is no per-attempt lease: the agent's heartbeat is the lease of all its attempts.
 */

/** What an attempt may do while it runs: the agent's fence, seen from one attempt. */
export interface AttemptFence {
  /** Aborted at the fence deadline (connections close) and on a hard stop. */
  readonly signal: AbortSignal;
  /** A reason not to send a request now (past F − M), or null. */
  mayWrite(): string | null;
}

/** A fence that never closes: for `jobs trigger`, which runs in the CLI's own process. */
export function openFence(signal: AbortSignal): AttemptFence {
  return { signal, mayWrite: () => null };
}

/** Writes final records; the agent's writer batches them (see FinalWriter). */
export interface FinalSink {
  write(final: FinalWrite): Promise<void>;
}

/** What running one attempt needs, and nothing more (the agent and `jobs trigger` both provide it). */
export interface ExecuteContext {
  store: Store;
  clock: Clock;
  machineId: string;
  secrets: Record<string, string>;
  redact: Redactor;
  userAgent: string;
  defaultTz: string;
  log: Logger;
  /** Aborted on a hard stop (shutdown deadline passed). */
  signal: AbortSignal;
  fetch?: typeof fetch;
  /** Config vars, secret hosts and signing keys for the requests. */
  http?: HttpSettings;
}

/**
 * Runs a claimed attempt: the action chain, then `on_success`/`on_failure`, then the final record.
 * Every request is gated by the fence; an attempt cut short by it ends `lost` (its successor, if
 * one is taken over, is decided by the takeover, never by this agent).
 */
export async function executeAttempt(ctx: ExecuteContext, job: Job, run: RunRecord, fence: AttemptFence, finals: FinalSink): Promise<RunRecord> {
  const { clock, log } = ctx;
  const startedAt = clock.now();
  const tz = job.tz ?? ctx.defaultTz;
  const signal = AbortSignal.any([ctx.signal, fence.signal]);
  let fencedReason: string | null = null;
  const mayWrite = () => {
    const refusal = fence.signal.aborted ? "the agent's fence deadline passed" : fence.mayWrite();
    if (refusal !== null) fencedReason ??= refusal;
    return refusal;
  };
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
    mayWrite,
    sleep: (ms: number, s?: AbortSignal) => clock.sleep(ms, s),
    ...(ctx.fetch ? { fetch: ctx.fetch } : {}),
    ...ctx.http,
    // The whole run: every step, retry and notification (README, "Run deadline").
    ...(job.deadline_sec ? { deadline: startDeadline(job.deadline_sec) } : {}),
  };

  let result: ChainResult;
  const steps: StepRecord[] = [];
  try {
    result = await runChain(job.actions, chainOptions);
    steps.push(...result.steps);
    // Thresholds and recovery are counted across the fleet from job_runs (coordinator/notify.ts).
    // A run stopped by its deadline sends nothing more, notifications included.
    const status = result.status;
    const notifications =
      result.reason === "deadline"
        ? []
        : await notificationsFor(ctx.store, job, run, status, ctx.machineId, clock.now()).catch((error): Notification[] => {
            // Unknown streak: a failure is still told (a missed alert is worse than an early one).
            log.warn(`${job.name}: could not read the failure streak (${(error as Error).message}); ${status === "success" ? "on_recovery not sent" : "on_failure sent"}`);
            const steps = status === "success" ? job.on_success : job.on_failure;
            return steps.length ? [{ label: status === "success" ? "on_success" : "on_failure", steps }] : [];
          });
    for (const { label, steps: notify, failures } of notifications) {
      if (signal.aborted || mayWrite() !== null) break;
      const notified = await runChain(notify, { ...chainOptions, initialSteps: result.outputs, ...(failures !== undefined ? { failures } : {}) });
      steps.push(...notified.steps.map((s) => ({ ...s, name: `${label}:${s.name}` })));
      if (notified.status === "error") log.warn(`${job.name}: ${label} notification failed: ${notified.error ?? "see run record"}`);
    }
  } catch (error) {
    result = { status: "error", steps: [], outputs: {}, error: ctx.redact((error as Error).message) };
  }
  if (fence.signal.aborted) fencedReason ??= "the agent's fence deadline passed";

  const finishedAt = clock.now();
  const lost = fencedReason !== null ? `fenced: ${fencedReason} (this agent could not confirm its heartbeat in time); another agent takes the occurrence over` : null;
  const final: Partial<RunRecord> = {
    status: lost ? "lost" : result.status,
    finished_at: new Date(finishedAt),
    duration_ms: finishedAt - startedAt,
    steps,
    ...(lost ? { reason: lost } : result.reason ? { reason: result.reason } : {}),
    ...(result.error ? { error: ctx.redact(result.error) } : {}),
  };
  // A fenced attempt writes nothing: its session is dead, and the taker records it `lost`.
  if (!lost) await finals.write({ id: run._id, patch: final });
  const outcome = { ...run, ...final } as RunRecord;
  logOutcome(log, job, outcome);
  return outcome;
}

/** Why an attempt whose late result landed after a takeover is marked lost again (unguarded stores). */
const SUPERSEDED_REASON = "lost: its result arrived after the next attempt was taken over (the target was called by both)";

/** How the batched writer treats results that reach the store late (docs/protocol.md, "Final writes"). */
export interface FinalWriterOptions {
  /**
   * A result is kept and retried through a store outage this long. It is written even after the
   * agent's fence deadline: the attempt finished before it, and where the store guards its final
   * update the write applies only while the attempt is still `running`, so a takeover that came first wins.
   */
  giveUpAfterMs?: number;
  /**
   * Where the store's final update is not guarded (FerretDB v1): which of these attempts a takeover
   * already superseded (their next attempt exists). A batch retried after a failure leaves those
   * out, and a batch that landed late (retried, or slower than `lateAfterMs`) marks them `lost`
   * again, in case it overwrote the taker's mark.
   */
  superseded?: (finals: FinalWrite[]) => Promise<Set<string>>;
  lateAfterMs?: number;
  /** Also check after a batch that was not late, when this says so (the agent's fence is in doubt). */
  recheck?: () => boolean;
}

/**
 * Batches final records (docs/protocol.md, "Final writes"): everything handed in within one flush
 * window goes in one `finishRuns` call. A failed flush is retried with backoff, so a short outage
 * does not leave attempts `running`; `write` resolves once its record is stored or given up.
 */
export class FinalWriter implements FinalSink {
  private pending: { final: FinalWrite; done: () => void }[] = [];
  private flushing: Promise<void> | null = null;
  private timer: AbortController | null = null;
  private backoff = new AbortController();
  private readonly giveUpAfterMs: number;

  constructor(
    private readonly store: Pick<Store, "finishRuns">,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly windowMs: number,
    private readonly options: FinalWriterOptions = {},
  ) {
    this.giveUpAfterMs = options.giveUpAfterMs ?? 600_000;
  }

  /** Results not yet stored (pending or in a batch being retried). */
  get size(): number {
    return this.pending.length + (this.flushing ? 1 : 0);
  }

  /** The store is back: a batch waiting out its backoff is sent now. */
  retryNow(): void {
    this.backoff.abort();
  }

  write(final: FinalWrite): Promise<void> {
    return new Promise((resolve) => {
      this.pending.push({ final, done: resolve });
      if (!this.timer && !this.flushing) this.schedule(this.windowMs);
    });
  }

  private schedule(ms: number): void {
    const timer = new AbortController();
    this.timer = timer;
    void this.clock.sleep(ms, timer.signal).then(() => {
      if (timer.signal.aborted) return;
      this.timer = null;
      void this.flush();
    });
  }

  /** Sends what is pending now (also on SIGTERM); resolves when that batch is settled. */
  async flush(): Promise<void> {
    this.timer?.abort();
    this.timer = null;
    if (this.flushing) await this.flushing;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.flushing = this.send(batch).finally(() => {
      this.flushing = null;
      if (this.pending.length > 0 && !this.timer) this.schedule(this.windowMs);
    });
    await this.flushing;
  }

  private async send(batch: { final: FinalWrite; done: () => void }[]): Promise<void> {
    const startedAt = this.clock.now();
    const deadline = startedAt + this.giveUpAfterMs;
    let finals = batch.map((b) => b.final);
    let tries = 0;
    for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
      try {
        if (tries > 0) finals = await this.withoutSuperseded(finals);
        if (finals.length > 0) await this.store.finishRuns(finals);
        break;
      } catch (error) {
        tries++;
        if (!(error instanceof StoreError) || this.clock.now() > deadline) {
          this.log.error(`could not record ${batch.length} result(s) (${(error as Error).message}); giving up: ${batch.map((b) => b.final.id).join(", ")}`);
          finals = [];
          break;
        }
        this.backoff = new AbortController();
        await this.clock.sleep(delay, this.backoff.signal);
      }
    }
    const late = tries > 0 || this.clock.now() - startedAt > (this.options.lateAfterMs ?? Number.POSITIVE_INFINITY) || this.options.recheck?.() === true;
    if (finals.length > 0 && late) await this.restoreLostMarks(finals);
    for (const b of batch) b.done();
  }

  private async withoutSuperseded(finals: FinalWrite[]): Promise<FinalWrite[]> {
    if (!this.options.superseded) return finals;
    const superseded = await this.options.superseded(finals);
    for (const id of superseded) this.log.warn(`${id}: its result arrived after the next attempt was taken over; not recorded (the target was called by both)`);
    return finals.filter((f) => !superseded.has(f.id));
  }

  /** A late write may have overwritten a taker's `lost` mark (unguarded store): put it back. Never throws. */
  async restoreLostMarks(finals: FinalWrite[]): Promise<void> {
    if (!this.options.superseded) return;
    try {
      const superseded = await this.options.superseded(finals);
      if (superseded.size === 0) return;
      await this.store.finishRuns([...superseded].map((id) => ({ id, patch: { status: "lost" as const, reason: SUPERSEDED_REASON } })));
      for (const id of superseded) this.log.warn(`${id}: ${SUPERSEDED_REASON}; marked lost again`);
    } catch {
      // The store failed again: the record keeps the late result (docs/protocol.md, "Attempts and final writes").
    }
  }
}

function logOutcome(log: Logger, job: Job, run: RunRecord): void {
  const when = run.scheduled_for.toISOString();
  const attempt = run.attempt > 1 ? ` (attempt ${run.attempt})` : "";
  const took = `${run.duration_ms ?? 0} ms`;
  // The same facts as fields, for `log_format: json` (the pretty format prints the message only).
  const fields = { job: job.name, job_id: job.id, run_id: run._id, scheduled_for: when, attempt: run.attempt, trigger: run.trigger, machine_id: run.machine_id ?? null, status: run.status, duration_ms: run.duration_ms ?? null };
  if (run.status === "success") log.info({ message: `${job.name} @ ${when}${attempt}: success in ${took}`, fields });
  else log.warn({ message: `${job.name} @ ${when}${attempt}: ${run.status} in ${took}${run.error ? ` — ${run.error}` : run.reason ? ` — ${run.reason}` : ""}`, fields });
}
