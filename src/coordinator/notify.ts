import type { HttpAction, Job } from "../jobs/types.ts";
import type { RunRecord, RunStatus, Store } from "../store/types.ts";

/** Outcomes that count as a failed occurrence; `skipped` and `missed` neither break nor extend a streak. */
const FAILED: RunStatus[] = ["error", "lost"];
/** How far back a streak is counted (records of the job read at most). */
export const STREAK_LOOKBACK = 200;

export interface Notification {
  label: "on_success" | "on_failure" | "on_recovery";
  steps: HttpAction[];
  /** `{{failures}}`: the streak this failure is part of, or the one this success ended. */
  failures?: number;
}

export interface Streak {
  /** Consecutive failed occurrences before the run. */
  failures: number;
  /** The streak's oldest failed occurrence: its run id names the streak for the markers below. */
  first?: RunRecord;
}

/**
 * The failed occurrences right before `run`, whichever agent ran them, read from `job_runs` (the
 * latest attempt of each occurrence counts; still-running ones and markers are passed over).
 */
export async function streakBefore(store: Pick<Store, "listRuns">, job: Job, run: RunRecord): Promise<Streak> {
  const records = await store.listRuns({ job_id: job.id, limit: STREAK_LOOKBACK });
  const latest = new Map<string, RunRecord>();
  for (const r of records) {
    if (r.run_id === run.run_id || r.attempt < 1 || r.scheduled_for.getTime() > run.scheduled_for.getTime()) continue;
    const seen = latest.get(r.run_id);
    if (!seen || r.attempt > seen.attempt) latest.set(r.run_id, r);
  }
  const newestFirst = [...latest.values()].sort((a, b) => b.scheduled_for.getTime() - a.scheduled_for.getTime() || (a._id < b._id ? 1 : -1));
  const streak: Streak = { failures: 0 };
  for (const r of newestFirst) {
    if (r.status === "success") break;
    if (!FAILED.includes(r.status)) continue;
    streak.failures++;
    streak.first = r;
  }
  return streak;
}

/**
 * A notification sent for a streak is claimed by the unique insert of a marker record
 * (`<first failed run id>!notified` or `!recovered`, attempt 0, trigger `notify`), as every decision
 * about an occurrence is (docs/protocol.md): two agents finishing failures of one streak at once
 * send it once.
 */
function marker(job: Job, first: RunRecord, kind: "notified" | "recovered", failures: number, machineId: string, now: number): RunRecord {
  return {
    _id: `${first.run_id}!${kind}`,
    run_id: first.run_id,
    job_id: job.id,
    job_name: job.name,
    scheduled_for: first.scheduled_for,
    // Not an attempt: 0 keeps it from ever counting as an occurrence's latest attempt.
    attempt: 0,
    trigger: "notify",
    status: "success",
    reason: kind === "notified" ? `on_failure sent: ${failures} consecutive failed occurrences (notify_after_failures ${job.notify_after_failures ?? 1})` : `on_recovery sent after ${failures} consecutive failed occurrences`,
    machine_id: machineId,
    claimed_at: new Date(now),
    finished_at: new Date(now),
  };
}

/**
 * Which notification chains an occurrence's outcome runs (README, "Failure thresholds and
 * recovery"): `on_success` on success, plus `on_recovery` once for a streak of at least
 * `notify_after_failures`; `on_failure` on every failure with the default threshold 1 (as before),
 * else once per streak, when it reaches the threshold. The store is read on a failure that has
 * `on_failure` (for `{{failures}}`) and on a success only when the job has `on_recovery`.
 */
export async function notificationsFor(store: Pick<Store, "listRuns" | "insertRun">, job: Job, run: RunRecord, status: "success" | "error", machineId: string, now: number): Promise<Notification[]> {
  const threshold = job.notify_after_failures ?? 1;
  const recovery = job.on_recovery ?? [];
  if (status === "success") {
    const chains: Notification[] = job.on_success.length ? [{ label: "on_success", steps: job.on_success }] : [];
    if (recovery.length === 0) return chains;
    const before = await streakBefore(store, job, run);
    if (before.failures < threshold || !before.first) return chains;
    const won = await store.insertRun(marker(job, before.first, "recovered", before.failures, machineId, now));
    return won ? [...chains, { label: "on_recovery", steps: recovery, failures: before.failures }] : chains;
  }
  if (job.on_failure.length === 0) return [];
  const before = await streakBefore(store, job, run);
  const failures = before.failures + 1;
  if (threshold === 1) return [{ label: "on_failure", steps: job.on_failure, failures }];
  if (failures < threshold) return [];
  const won = await store.insertRun(marker(job, before.first ?? run, "notified", failures, machineId, now));
  return won ? [{ label: "on_failure", steps: job.on_failure, failures }] : [];
}
