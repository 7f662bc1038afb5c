import type { Job } from "./types.ts";

/**
 * Whether a paused job's occurrence at `instant` is held back. Every agent decides this alone from
 * the job document and the occurrence's own instant, so all agents agree without coordinating and
 * resume together at `until` (README, "Pause and resume").
 */
export function pausedAt(job: Pick<Job, "paused">, instant: number): boolean {
  const paused = job.paused;
  if (!paused) return false;
  return paused.until === undefined || instant < paused.until;
}

/** The instant a paused job may fire again: `until`, or null while it waits for `jobs resume`. */
export function resumesAt(job: Pick<Job, "paused">): number | null {
  return job.paused ? (job.paused.until ?? null) : null;
}
