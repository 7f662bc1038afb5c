import type { Job } from "../jobs/types.ts";

/**
 * The catch-up planner (docs/protocol.md, "Catch-up"): a pure decision, for one job, about the
 * occurrences of a gap (every agent down, or this agent cut off from the store) that have no record
 * yet. Each one either runs now or is recorded `missed` with the reason, so nothing is left silent.
 */

export interface CatchupPlan {
  run: number[];
  missed: { instant: number; reason: string }[];
}

export interface CatchupOptions {
  /** `catchup_window_sec`: older occurrences never run. */
  windowMs: number;
  /** At most this many run for `catchup: all`. */
  cap: number;
  /** Why the gap happened, in words for the record. */
  cause: string;
}

export function planCatchup(job: Pick<Job, "catchup">, instants: readonly number[], claimed: ReadonlySet<number>, now: number, opts: CatchupOptions): CatchupPlan {
  const open = [...new Set(instants)].filter((at) => !claimed.has(at)).sort((a, b) => a - b);
  const plan: CatchupPlan = { run: [], missed: [] };
  if (open.length === 0) return plan;
  const windowStart = now - opts.windowMs;
  const inWindow = open.filter((at) => at >= windowStart);
  let runnable: number[] = [];
  if (job.catchup === "last") runnable = inWindow.slice(-1);
  else if (job.catchup === "all") runnable = inWindow.slice(-opts.cap);
  const running = new Set(runnable);
  const latest = runnable[runnable.length - 1];
  for (const at of open) {
    if (running.has(at)) continue;
    const iso = new Date(at).toISOString();
    let reason: string;
    if (job.catchup === "skip") reason = `missed: ${opts.cause} at ${iso}; catchup "skip"`;
    else if (at < windowStart) reason = `missed: ${opts.cause} at ${iso}; older than catchup_window_sec (${opts.windowMs / 1000} s)`;
    else if (job.catchup === "last") reason = `missed: ${opts.cause}; catchup "last" ran only the latest missed occurrence (${new Date(latest!).toISOString()})`;
    else reason = `missed: ${opts.cause} at ${iso}; beyond the catch-up cap of ${opts.cap} occurrences`;
    plan.missed.push({ instant: at, reason });
  }
  plan.run = runnable;
  return plan;
}
