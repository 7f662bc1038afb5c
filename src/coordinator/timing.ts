/**
 * Every timing constant of the coordination protocol in one table, derived from the three the
 * operator sets (`heartbeat_sec`, `dead_after_sec`, `failover_step_sec`). docs/protocol.md
 * ("Timing") explains each symbol and why the inequalities below make takeovers safe.
 */

export interface TimingSettings {
  heartbeatMs: number;
  deadAfterMs: number;
  failoverStepMs: number;
}

export interface Timing extends TimingSettings {
  /** L: how long after the send time of its last acknowledged heartbeat an agent may still write to targets. */
  ownLeaseMs: number;
  /** R: a heartbeat that takes longer than this counts as failed. */
  roundTripMs: number;
  /** M: before each request an attempt checks it is at least this far from its fence deadline. */
  abortMarginMs: number;
  /** J: the largest step of the store's clock we tolerate between two readings. */
  storeClockStepMs: number;
  /** ρ: the clock drift we tolerate (NTP keeps real machines far below it). */
  drift: number;
  /** Final records are flushed at least this often. */
  flushWindowMs: number;
  /** A takeover never starts an attempt beyond this: a job that kills every agent stops somewhere. */
  maxAttempts: number;
  /** Catch-up never runs more than this many missed occurrences of one job at once. */
  catchupCap: number;
  /** How late past its turn an occurrence may still be claimed as an on-time fire. */
  lateToleranceMs: number;
  /** An agent claims this long before its turn and sends at the turn: the claim's round trip is not lateness. */
  claimLeadMs: number;
  /** History and command pruning, off the heartbeat. */
  housekeepingEveryMs: number;
  /**
   * A heartbeat lists commands only when the commands revision changed, and at least this often
   * (12 heartbeats, a minute at the default): a command written by hand or by the Python CLI, which
   * do not change the revision, or whose writer died before it did, is still applied.
   */
  commandListEveryMs: number;
  /** An attempt waits for a run slot at most its job's interval, and never longer than this. */
  slotWaitMaxMs: number;
}

/** Heartbeats an agent may miss in a row (k) and still keep its fence: k·h + R ≤ L. */
export const TOLERATED_HEARTBEATS = 2;
const DRIFT = 0.001;
const MAX_ROUND_TRIP_MS = 2000;
/** Below this, a round trip to any real store would count as failed. */
export const MIN_ROUND_TRIP_MS = 100;

export function deriveTiming(s: TimingSettings): Timing {
  const abortMarginMs = Math.min(1000, s.deadAfterMs / 8);
  const storeClockStepMs = Math.min(1000, s.deadAfterMs / 8);
  // L(1+ρ) + M ≤ D(1−ρ) − J, taken with equality: the longest own lease that is still safe.
  const ownLeaseMs = Math.floor((s.deadAfterMs * (1 - DRIFT) - storeClockStepMs - abortMarginMs) / (1 + DRIFT));
  const slack = ownLeaseMs - TOLERATED_HEARTBEATS * s.heartbeatMs;
  // With too little room for two heartbeats, tolerate none rather than refuse outright (warned).
  const roundTripMs = Math.min(MAX_ROUND_TRIP_MS, slack >= MIN_ROUND_TRIP_MS ? slack : ownLeaseMs - s.heartbeatMs);
  return {
    ...s,
    ownLeaseMs,
    roundTripMs,
    abortMarginMs,
    storeClockStepMs,
    drift: DRIFT,
    flushWindowMs: Math.min(250, s.heartbeatMs / 2),
    maxAttempts: 3,
    catchupCap: 100,
    lateToleranceMs: 2000,
    claimLeadMs: 50,
    housekeepingEveryMs: 3_600_000,
    commandListEveryMs: 12 * s.heartbeatMs,
    slotWaitMaxMs: 60_000,
  };
}

/** Settings that break the protocol's safety: start-up and `config check` refuse them. */
export function timingViolations(s: TimingSettings): { path: string; message: string }[] {
  const t = deriveTiming(s);
  if (t.roundTripMs >= MIN_ROUND_TRIP_MS) return [];
  // The margins grow with D, so the least safe D is found by trying, a tenth of a second at a time.
  let neededMs = s.heartbeatMs;
  while (deriveTiming({ ...s, deadAfterMs: neededMs }).roundTripMs < MIN_ROUND_TRIP_MS) neededMs += 100;
  const needed = neededMs / 1000;
  return [
    {
      path: "dead_after_sec",
      message:
        `too short for heartbeat_sec ${s.heartbeatMs / 1000}: an agent must be able to renew its heartbeat and stop writing to its targets ` +
        `before another may take over (heartbeat + round trip + margins ≤ dead_after); use at least ${needed}, ideally 3 × heartbeat_sec (got ${s.deadAfterMs / 1000})`,
    },
  ];
}

/** Safe but fragile settings: one slow heartbeat already fences this agent's running work. */
export function timingWarnings(s: TimingSettings): string[] {
  const t = deriveTiming(s);
  if (t.roundTripMs < MIN_ROUND_TRIP_MS) return [];
  if (t.ownLeaseMs - TOLERATED_HEARTBEATS * s.heartbeatMs < MIN_ROUND_TRIP_MS) {
    return [`dead_after_sec (${s.deadAfterMs / 1000}) leaves room for no missed heartbeat at heartbeat_sec ${s.heartbeatMs / 1000}: one slow heartbeat stops this agent's running work; 3 × heartbeat_sec or more is safer`];
  }
  return [];
}

/**
 * G of docs/protocol.md ("Overlap"): how long before the next instant the runner of a still running
 * `overlap: skip` job records that occurrence as skipped, so no other agent starts it. It must land
 * before the owner's claim (the claim lead, plus the write's round trip as last measured, plus a
 * margin), and no earlier than needed: a run that ends in between would be skipped for nothing.
 */
export function overlapGuardMs(t: Timing, intervalMs: number, measuredRoundTripMs: number): number {
  const needed = t.claimLeadMs + 2 * Math.min(measuredRoundTripMs, t.roundTripMs) + 100;
  return Math.max(1, Math.min(intervalMs / 2, needed));
}

/** How long after an instant the last agent in a job's order would try: older occurrences are catch-up. */
export function staggerWindowMs(t: Timing, orderLength: number): number {
  return Math.max(1, orderLength) * t.failoverStepMs + 1000;
}
