import type { ExecuteContext } from "./attempt.ts";
import { attemptId, occurrenceId } from "./occurrence.ts";
import { runChain } from "../executor/chain.ts";
import type { StepOutput } from "../executor/template.ts";
import type { Job } from "../jobs/types.ts";
import { pausedAt } from "../jobs/pause.ts";
import { previousFireBefore } from "../schedule/next.ts";
import { wallParts } from "../schedule/zone.ts";
import type { RunRecord, StepRecord } from "../store/types.ts";
import { safely, type AgentObserver } from "../observe/observer.ts";

/** The `job_runs` id under which an occurrence's dead-man alert is claimed. */
export function alertId(runId: string): string {
  return `${runId}!alert`;
}

export interface DeadManContext extends ExecuteContext {
  /** Attempts an occurrence can have (the agent's takeover limit). */
  maxAttempts: number;
  /** Occurrences older than this are not looked at (their records may be pruned): half the history. */
  lookbackMs: number;
}

/**
 * The dead-man's switch (`alert_after_sec`): on every heartbeat, each agent looks at each such
 * job's newest occurrence whose deadline (instant + alert_after_sec) has passed. When no attempt
 * of it succeeded, and none ended `error` (whose `on_failure` already ran), the agent claims the
 * alert by unique insert of `<run_id>!alert` into `job_runs` — so exactly one agent in the fleet
 * alerts per occurrence — and runs the job's `on_failure` actions with the reason.
 *
 * Only the newest overdue occurrence is looked at: after an outage, a frequent job alerts once,
 * not once per occurrence missed. An occurrence is read once per agent (its verdict is kept).
 */
export class DeadManSwitch {
  /** Per job, the newest occurrence already judged. */
  private readonly judged = new Map<string, number>();

  constructor(private readonly observer: AgentObserver) {}

  /** Claims due alerts; their notifications run through `spawn` (never inside the heartbeat). */
  async check(jobs: Iterable<Job>, updatedAt: Map<string, number>, ctx: DeadManContext, spawn: (work: Promise<unknown>) => void): Promise<void> {
    const now = ctx.clock.now();
    for (const job of jobs) {
      if (!job.alert_after_sec) continue;
      const alertMs = job.alert_after_sec * 1000;
      const tz = job.tz ?? ctx.defaultTz;
      let due: number | null;
      try {
        due = previousFireBefore(job.schedule, tz, now - alertMs + 1);
      } catch (error) {
        // A schedule that cannot be searched must not fail the heartbeat (it would read as a store outage).
        ctx.log.debug(`${job.name}: alert_after_sec not checked: ${(error as Error).message}`);
        continue;
      }
      // An occurrence held back by `jobs pause` was not expected to run: nothing is overdue.
      if (due !== null && pausedAt(job, due)) continue;
      if (due === null || due <= now - ctx.lookbackMs || due < (updatedAt.get(job.id) ?? Number.NEGATIVE_INFINITY)) continue;
      if ((this.judged.get(job.id) ?? Number.NEGATIVE_INFINITY) >= due) continue;
      const runId = occurrenceId(job.id, due);
      const ids = Array.from({ length: ctx.maxAttempts }, (_, i) => attemptId(runId, i + 1));
      const records = await ctx.store.getRuns([...ids, alertId(runId)]);
      const attempts = records.filter((r) => r._id !== alertId(runId)).sort((a, b) => a.attempt - b.attempt);
      const settled = records.length > attempts.length || attempts.some((r) => r.status === "success" || r.status === "error");
      if (!settled) {
        const last = attempts[attempts.length - 1];
        const why = describe(last, ctx.clock.now());
        const alert = alertRecord(job, runId, due, now, ctx.machineId, why.text);
        if (await ctx.store.insertRun(alert)) {
          ctx.log.warn(alert.reason);
          safely(() => this.observer.alertFired(alert));
          spawn(notify(job, alert, why.state, last, ctx));
        }
      }
      this.judged.set(job.id, due);
    }
  }
}

function describe(last: RunRecord | undefined, now: number): { state: string; text: string } {
  if (!last) return { state: "none", text: "no agent claimed it (no run record)" };
  if (last.status === "running") {
    const since = last.started_at ?? last.claimed_at;
    return { state: "running", text: `attempt ${last.attempt} is still running on ${last.machine_id ?? "?"} (for ${Math.round((now - since.getTime()) / 1000)} s)` };
  }
  return { state: last.status, text: `attempt ${last.attempt} ended ${last.status}${last.reason ? `: ${last.reason}` : ""}` };
}

function alertRecord(job: Job, runId: string, due: number, now: number, machineId: string, why: string): RunRecord & { reason: string } {
  const iso = new Date(due).toISOString();
  return {
    _id: alertId(runId),
    run_id: runId,
    job_id: job.id,
    job_name: job.name,
    scheduled_for: new Date(due),
    // Not an attempt: 0 keeps it from ever counting as the occurrence's latest attempt.
    attempt: 0,
    trigger: "alert",
    status: "error",
    reason: `alert_after_sec: "${job.name}" @ ${iso} has not succeeded ${job.alert_after_sec} s after its instant — ${why}${job.on_failure.length ? "; on_failure notified" : "; the job has no on_failure actions to notify"}`,
    machine_id: machineId,
    claimed_at: new Date(now),
    started_at: new Date(now),
    steps: [],
  };
}

/** The occurrence's last attempt's step results, so `on_failure` templates `{{steps.NAME.…}}` work where they ran. */
function outputsOf(run: RunRecord | undefined): Record<string, StepOutput> {
  const outputs: Record<string, StepOutput> = {};
  for (const step of run?.steps ?? []) {
    if (step.name.startsWith("on_success:") || step.name.startsWith("on_failure:") || step.status === "skipped") continue;
    let json: unknown;
    try {
      json = step.response === undefined ? undefined : JSON.parse(step.response);
    } catch {
      json = undefined;
    }
    outputs[step.name] = { status: step.http_status ?? null, body: step.response ?? "", ...(json !== undefined ? { json } : {}) };
  }
  return outputs;
}

async function notify(job: Job, alert: RunRecord & { reason: string }, state: string, last: RunRecord | undefined, ctx: DeadManContext): Promise<void> {
  const started = ctx.clock.now();
  // ASCII only and no names: a header value cannot carry every character a job name may hold.
  const header = `alert_after_sec=${job.alert_after_sec}; scheduled_for=${alert.scheduled_for.toISOString()}; state=${state.replace(/[^a-z]/g, "")}`;
  let steps: StepRecord[] = [];
  let failure: string | undefined;
  if (job.on_failure.length > 0) {
    try {
      const result = await runChain(
        job.on_failure.map((a) => ({ ...a, headers: { ...a.headers, "X-FleetCron-Alert": header } })),
        {
          runId: alert._id,
          attempt: 0,
          scheduledFor: alert.scheduled_for.getTime(),
          jobName: job.name,
          machineId: ctx.machineId,
          secrets: ctx.secrets,
          userAgent: ctx.userAgent,
          wall: wallParts(alert.scheduled_for.getTime(), job.tz ?? ctx.defaultTz),
          signal: ctx.signal,
          sleep: (ms, s) => ctx.clock.sleep(ms, s),
          initialSteps: outputsOf(last),
          ...(ctx.fetch ? { fetch: ctx.fetch } : {}),
          ...ctx.http,
        },
      );
      steps = result.steps.map((s) => ({ ...s, name: `on_failure:${s.name}` }));
      failure = result.error;
    } catch (error) {
      failure = ctx.redact((error as Error).message);
    }
    if (failure) ctx.log.warn(`${job.name}: alert notification (on_failure) failed: ${failure}`);
  }
  const finished = ctx.clock.now();
  try {
    await ctx.store.updateRun(alert._id, {
      finished_at: new Date(finished),
      duration_ms: finished - started,
      steps,
      ...(failure ? { reason: `${alert.reason}; the notification failed: ${ctx.redact(failure)}` } : {}),
    });
  } catch (error) {
    ctx.log.warn(`${alert._id}: could not record the alert's notification result (${(error as Error).message})`);
  }
}
