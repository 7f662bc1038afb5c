import type { HttpAction, Job } from "../jobs/types.ts";
import type { RunRecord, RunStatus, Store } from "../store/types.ts";

/** Outcomes that count as a failed occurrence; `skipped` and `missed` neither break nor extend a streak. */
const FAILED: RunStatus[] = ["error", "lost"];
/** How far back a streak is counted (occurrence records read at most). */
export const STREAK_LOOKBACK = 200;

export interface Notification {
  label: "on_success" | "on_failure" | "on_recovery";
  steps: HttpAction[];
  /** `{{failures}}`: the streak this failure is part of, or the one this success ended. */
  failures?: number;
}

/**
 * Consecutive failed occurrences of the job before `run`, whichever agent ran them, read from
 * `job_runs` (the latest attempt of each occurrence counts; still-running ones are passed over).
 */
export async function failuresBefore(store: Pick<Store, "listRuns">, job: Job, run: RunRecord): Promise<number> {
  const records = await store.listRuns({ job_id: job.id, limit: STREAK_LOOKBACK });
  const latest = new Map<string, RunRecord>();
  for (const r of records) {
    if (r.run_id === run.run_id || r.trigger === "alert" || r.scheduled_for.getTime() > run.scheduled_for.getTime()) continue;
    const seen = latest.get(r.run_id);
    if (!seen || r.attempt > seen.attempt) latest.set(r.run_id, r);
  }
  const ordered = [...latest.values()].sort((a, b) => b.scheduled_for.getTime() - a.scheduled_for.getTime() || (a._id < b._id ? 1 : -1));
  let streak = 0;
  for (const r of ordered) {
    if (r.status === "success") break;
    if (FAILED.includes(r.status)) streak++;
  }
  return streak;
}

/**
 * Which notification chain an occurrence's outcome runs (README, "Failure notifications"):
 * `on_success` on success, plus `on_recovery` once when the failures it ends had been notified;
 * `on_failure` on every failure with `notify_after_failures` 1 (the default, as before), else only
 * on the failure that makes the streak reach it. The store is read only when a threshold or
 * `on_recovery` needs the streak.
 */
export async function notificationsFor(store: Pick<Store, "listRuns">, job: Job, run: RunRecord, status: "success" | "error"): Promise<Notification[]> {
  const threshold = job.notify_after_failures ?? 1;
  const recovery = job.on_recovery ?? [];
  if (status === "success") {
    const chains: Notification[] = job.on_success.length ? [{ label: "on_success", steps: job.on_success }] : [];
    if (recovery.length === 0) return chains;
    const failures = await failuresBefore(store, job, run);
    return failures >= threshold ? [...chains, { label: "on_recovery", steps: recovery, failures }] : chains;
  }
  if (job.on_failure.length === 0) return [];
  if (threshold === 1 && recovery.length === 0) return [{ label: "on_failure", steps: job.on_failure }];
  const failures = (await failuresBefore(store, job, run)) + 1;
  if (threshold === 1 || failures === threshold) return [{ label: "on_failure", steps: job.on_failure, failures }];
  return [];
}
