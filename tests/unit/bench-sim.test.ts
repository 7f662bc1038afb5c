import { describe, expect, test } from "bun:test";
import { MemoryStore } from "../../bench/lib/memory-store.ts";
import { simulate } from "../../bench/sim.ts";

/** Smoke test of the placement simulation (bench/sim.ts) at a size that runs in well under a second. */
describe("bench/sim.ts", () => {
  test("the in-memory store's claim insert fails on a duplicate _id", () => {
    const store = new MemoryStore();
    expect(store.insertClaim("job@2026-01-05T00:00:00.000Z", 1, 0)).toBe(true);
    expect(store.insertClaim("job@2026-01-05T00:00:00.000Z", 2, 0)).toBe(false);
    expect(store.winnerOf("job@2026-01-05T00:00:00.000Z")).toBe(1);
    expect(store.counts).toMatchObject({ claimDocs: 2, claimsRejected: 1 });
    store.prune(1);
    expect(store.claimsHeld).toBe(0);
  });

  test("5 agents, 5,000 jobs, 1 hour with a join, a leave, a death and a restart: exactly once, nothing missed, even spread", () => {
    const r = simulate({ agents: 5, jobs: 5000, hours: 1, seed: 3 });
    expect(r.occurrences).toBeGreaterThan(10_000);
    expect(r.duplicates).toBe(0);
    expect(r.misses).toBe(0);
    expect(r.runs).toBe(r.occurrences);
    expect(r.store.finalDocs).toBe(r.runs);
    expect(r.share.staticJobsMaxRatio).toBeLessThan(1.1);
    expect(r.share.staticJobsMinRatio).toBeGreaterThan(0.9);
    expect(r.moved.unexplained).toBe(0);
    expect(r.moved.onLeave).toBeGreaterThan(0.15);
    expect(r.moved.onLeave).toBeLessThan(0.25);
    for (const cause of ["join", "leave", "death"] as const) expect(r.lateness.byCause[cause].events).toBe(1);
    // Nobody waits longer than the standbys' stagger: one dead or stopped owner costs one step.
    expect(r.lateness.maxMs).toBeLessThanOrEqual(5000);
    // Heartbeats: one renewal and two reads (membership, revisions) per agent per 5 s, give or take the churn.
    expect(r.store.heartbeatRoundTripsPerSec).toBeGreaterThan(2.5);
    expect(r.store.heartbeatRoundTripsPerSec).toBeLessThan(3.5);
  });

  test("deaths and a leave just before an instant: the next in order fires one step late per lost owner, nothing missed", () => {
    const r = simulate({
      agents: 6, // two stay up after three deaths and a leave
      jobs: 2000,
      hours: 0.25,
      seed: 5,
      events: [
        { at: 119_500, type: "die" }, // its jobs at 120 s: pos 1 fires at 125 s
        { at: 239_500, type: "leave" }, // others read "stopped" within h: its jobs at 240 s are 5 s late
        { at: 358_000, type: "die" }, // the first two gone: the third checks and catches those jobs up
        { at: 358_500, type: "die" },
      ],
    });
    expect(r.duplicates).toBe(0);
    expect(r.misses).toBe(0);
    expect(r.runs).toBe(r.occurrences);
    expect(r.lateness.byCause.death.lateOccurrences).toBeGreaterThan(0);
    expect(r.lateness.byCause.leave.lateOccurrences).toBeGreaterThan(0);
    expect(r.lateness.byCause.leave.maxLateMs).toBe(5000);
    // Only the first two try: with both dead, no on-time or staggered fire, but a catch-up.
    expect(r.caughtUp).toBeGreaterThan(0);
    expect(r.lateness.maxMs).toBe(5000);
    expect(Object.keys(r.lateness.histogram).sort()).toEqual(["0s", "5s"]);
    const everyTries = simulate({ agents: 6, jobs: 2000, hours: 0.25, seed: 5, standbys: Infinity, events: [{ at: 358_000, type: "die" }, { at: 358_500, type: "die" }] });
    expect(everyTries.caughtUp).toBe(0);
    expect(everyTries.lateness.maxMs).toBe(10_000);
    // Judged at last_seen + D: between D − h and D after the death.
    expect(r.lateness.deathToMovedMs.min).toBeGreaterThanOrEqual(10_000);
    expect(r.lateness.deathToMovedMs.max).toBeLessThanOrEqual(15_001);
  });

  test("the same seed gives the same figures", () => {
    const a = simulate({ agents: 4, jobs: 1000, hours: 1, seed: 9 });
    const b = simulate({ agents: 4, jobs: 1000, hours: 1, seed: 9 });
    expect({ ...a, wallMs: 0 }).toEqual({ ...b, wallMs: 0 });
  });
});
