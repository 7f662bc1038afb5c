import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/logger.ts";
import type { LeaseRecord, RunRecord, Store } from "../store/types.ts";
import { attemptId } from "./occurrence.ts";

/**
 * Leases (DESIGN §5): the agent running an attempt renews `lease_until` while it works. When a
 * lease runs out, another agent takes the occurrence over by unique insert of the next attempt;
 * the attempt number is the fencing token, so the older attempt never writes over the newer one.
 */

/** Whether a later attempt of this occurrence exists in `job_runs`, i.e. this attempt was taken over. */
async function laterAttemptExists(store: Pick<Store, "getRun">, run: Pick<RunRecord, "run_id" | "attempt">): Promise<boolean> {
  return (await store.getRun(attemptId(run.run_id, run.attempt + 1))) !== null;
}

/**
 * Whether this attempt was taken over, asked of the small `leases` collection first: a takeover
 * writes the next attempt's lease before it claims, and deletes this attempt's lease only after
 * marking it lost. So a later attempt's lease means fenced; our own lease present (and no later
 * one) means not; our own lease gone is settled by `job_runs`. On FerretDB v1 even a lookup by
 * `_id` reads the whole run history, so renewals and final writes avoid it.
 */
export async function isFenced(store: Pick<Store, "getRun" | "listLeases">, run: RunRecord, machineId: string): Promise<boolean> {
  const leases = (await store.listLeases()).filter((l) => l.run_id === run.run_id);
  if (leases.some((l) => l.attempt > run.attempt)) return true;
  return leases.some((l) => l._id === leaseId(run._id, machineId)) ? false : laterAttemptExists(store, run);
}

/**
 * One lease document per attempt and machine: the primary writes its lease *before* its claim
 * (so a crash right after the claim still leaves a lease to expire and be taken over), and two
 * agents that both try must never remove each other's.
 */
export function leaseId(attempt: string, machineId: string): string {
  return `${attempt}~${machineId}`;
}

export function leaseOf(run: RunRecord, machineId: string, until: number): LeaseRecord {
  return {
    _id: leaseId(run._id, machineId),
    run_id: run.run_id,
    job_id: run.job_id,
    attempt: run.attempt,
    machine_id: machineId,
    claimed_at: run.claimed_at,
    lease_until: new Date(until),
  };
}

export interface LeaseRenewal {
  /** Aborted when the lease is lost (taken over, or not renewable before it runs out). */
  readonly signal: AbortSignal;
  readonly lostReason: string | null;
  stop(): void;
}

/**
 * Renews every third of the lease. An agent that cannot renew aborts its own work just before the
 * lease runs out, rather than racing the attempt that will take over.
 */
export function startLeaseRenewal(opts: {
  store: Pick<Store, "getRun" | "listLeases" | "putLease">;
  clock: Clock;
  run: RunRecord;
  machineId: string;
  leaseMs: number;
  log: Logger;
}): LeaseRenewal {
  const { store, clock, run, machineId, leaseMs, log } = opts;
  const lost = new AbortController();
  const stopped = new AbortController();
  let lostReason: string | null = null;
  let renewedUntil = run.lease_until?.getTime() ?? clock.now() + leaseMs;
  const safetyMs = Math.min(leaseMs / 6, 2000);

  const lose = (reason: string) => {
    if (lost.signal.aborted) return;
    lostReason = reason;
    log.warn(`${run._id}: ${reason}; aborting this attempt`);
    lost.abort(new Error(reason));
  };

  (async () => {
    while (!stopped.signal.aborted && !lost.signal.aborted) {
      const wait = Math.min(leaseMs / 3, Math.max(0, renewedUntil - safetyMs - clock.now()));
      await clock.sleep(wait, stopped.signal);
      if (stopped.signal.aborted) return;
      const now = clock.now();
      try {
        if (await isFenced(store, run, machineId)) return lose(`lease lost: attempt ${run.attempt + 1} has taken over`);
        const until = now + leaseMs;
        // Only the lease document is renewed: the run record keeps its claim-time lease_until
        // until it finishes, so a renewal never rewrites the (large) run history.
        await store.putLease(leaseOf(run, machineId, until));
        renewedUntil = until;
      } catch (error) {
        if (clock.now() >= renewedUntil - safetyMs) {
          return lose(`lease could not be renewed before ${new Date(renewedUntil).toISOString()} (${(error as Error).message})`);
        }
        // Still inside the lease: try again soon rather than after a whole third.
        await clock.sleep(Math.min(1000, leaseMs / 10), stopped.signal);
      }
    }
  })();

  return {
    signal: lost.signal,
    get lostReason() {
      return lostReason;
    },
    stop: () => stopped.abort(),
  };
}

/** Leases whose holder stopped renewing more than `graceMs` ago. */
export function expiredLeases(leases: LeaseRecord[], now: number, graceMs: number): LeaseRecord[] {
  return leases.filter((lease) => lease.lease_until.getTime() + graceMs < now);
}
