import { describe, expect, test } from "bun:test";
import { deriveTiming, MIN_ROUND_TRIP_MS, overlapGuardMs, staggerWindowMs, timingViolations, timingWarnings, TOLERATED_HEARTBEATS, type TimingSettings } from "../../src/coordinator/timing.ts";

/**
 * The timing table of docs/protocol.md ("Timing"): the derived constants, the settings refused
 * and warned about, and the two inequalities the fence's safety rests on.
 */

const settings = (heartbeatSec: number, deadAfterSec: number, failoverStepSec = 1): TimingSettings => ({
  heartbeatMs: heartbeatSec * 1000,
  deadAfterMs: deadAfterSec * 1000,
  failoverStepMs: failoverStepSec * 1000,
});

describe("deriveTiming", () => {
  test("defaults (h 5 s, D 15 s): L ≈ 12.97 s, R = 2 s, M = J = 1 s", () => {
    const t = deriveTiming(settings(5, 15));
    // (15000 × 0.999 − 1000 − 1000) / 1.001 = 12972.03…, floored.
    expect(t.ownLeaseMs).toBe(12972);
    expect(t.ownLeaseMs / 1000).toBeCloseTo(12.97, 2);
    expect(t.roundTripMs).toBe(2000);
    expect(t.abortMarginMs).toBe(1000);
    expect(t.storeClockStepMs).toBe(1000);
    expect(t.drift).toBe(0.001);
    expect(t.flushWindowMs).toBe(250);
    expect(t.maxAttempts).toBe(3);
    expect(t.catchupCap).toBe(100);
    expect(t.lateToleranceMs).toBe(2000);
    expect(t.housekeepingEveryMs).toBe(3_600_000);
    // The settings themselves pass through.
    expect(t).toMatchObject(settings(5, 15));
  });

  test("L is the longest integer lease with L(1+ρ) + M ≤ D(1−ρ) − J", () => {
    for (const s of [settings(5, 15), settings(1, 4), settings(2, 30), settings(10, 31)]) {
      const t = deriveTiming(s);
      const bound = s.deadAfterMs * (1 - t.drift) - t.storeClockStepMs;
      expect(t.ownLeaseMs * (1 + t.drift) + t.abortMarginMs).toBeLessThanOrEqual(bound);
      expect((t.ownLeaseMs + 1) * (1 + t.drift) + t.abortMarginMs).toBeGreaterThan(bound);
    }
  });

  test("M and J are min(1 s, D/8)", () => {
    expect(deriveTiming(settings(1, 4)).abortMarginMs).toBe(500);
    expect(deriveTiming(settings(1, 4)).storeClockStepMs).toBe(500);
    expect(deriveTiming(settings(1, 8)).abortMarginMs).toBe(1000);
    expect(deriveTiming(settings(1, 60)).storeClockStepMs).toBe(1000);
  });

  test("R is min(2 s, L − 2h) while that leaves 100 ms", () => {
    // h 5, D 13: L = 10976, L − 2h = 976.
    const t = deriveTiming(settings(5, 13));
    expect(t.ownLeaseMs).toBe(10976);
    expect(t.roundTripMs).toBe(976);
    expect(TOLERATED_HEARTBEATS).toBe(2);
    expect(deriveTiming(settings(1, 60)).roundTripMs).toBe(2000);
  });

  test("with no room for a missed heartbeat, R = L − h (tolerating none)", () => {
    const t = deriveTiming(settings(5, 7)); // L = 5237
    expect(t.ownLeaseMs).toBe(5237);
    expect(t.roundTripMs).toBe(t.ownLeaseMs - 5000);
  });

  test("the flush window is min(250 ms, h/2)", () => {
    expect(deriveTiming(settings(0.3, 10)).flushWindowMs).toBe(150);
    expect(deriveTiming(settings(5, 15)).flushWindowMs).toBe(250);
  });
});

describe("timingViolations and timingWarnings", () => {
  test("defaults are accepted without a warning", () => {
    expect(timingViolations(settings(5, 15))).toEqual([]);
    expect(timingWarnings(settings(5, 15))).toEqual([]);
  });

  test("heartbeat 5 s with dead_after 6 s is refused, naming the least safe dead_after", () => {
    const violations = timingViolations(settings(5, 6));
    expect(violations).toHaveLength(1);
    expect(violations[0]!.path).toBe("dead_after_sec");
    expect(violations[0]!.message).toContain("use at least 6.9,");
    expect(violations[0]!.message).toContain("(got 6)");
    expect(violations[0]!.message).toContain("heartbeat_sec 5");
    // 6.9 s is indeed the least accepted value at a tenth of a second.
    expect(timingViolations(settings(5, 6.9))).toEqual([]);
    expect(timingViolations(settings(5, 6.8))).toHaveLength(1);
    // A refused setting is not also warned about.
    expect(timingWarnings(settings(5, 6))).toEqual([]);
  });

  test("the named value is the least accepted one for other heartbeats too", () => {
    for (const h of [1, 2, 3, 10]) {
      const [v] = timingViolations(settings(h, h));
      const needed = Number(/use at least ([\d.]+),/.exec(v!.message)![1]);
      expect(timingViolations(settings(h, needed))).toEqual([]);
      expect(timingViolations(settings(h, Math.round((needed - 0.1) * 10) / 10))).toHaveLength(1);
    }
  });

  test("settings that tolerate no missed heartbeat are accepted with a warning", () => {
    expect(timingViolations(settings(5, 7))).toEqual([]);
    const warnings = timingWarnings(settings(5, 7));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("leaves room for no missed heartbeat");
    expect(warnings[0]).toContain("dead_after_sec (7)");
    // Just enough room for two: no warning (L − 2h = 976 ms at D 13 s).
    expect(timingWarnings(settings(5, 13))).toEqual([]);
    // h 5, D 12: L = 9977, L − 2h < 100 ms.
    expect(timingWarnings(settings(5, 12))).toHaveLength(1);
  });

  test("every accepted setting of a grid satisfies the fence's inequalities", () => {
    let accepted = 0;
    let warned = 0;
    for (let h = 500; h <= 10_000; h += 500) {
      for (let d = h; d <= 6 * h; d += 250) {
        const s: TimingSettings = { heartbeatMs: h, deadAfterMs: d, failoverStepMs: 1000 };
        const t = deriveTiming(s);
        if (timingViolations(s).length > 0) {
          expect(t.roundTripMs).toBeLessThan(MIN_ROUND_TRIP_MS);
          continue;
        }
        accepted++;
        expect(t.roundTripMs).toBeGreaterThanOrEqual(MIN_ROUND_TRIP_MS);
        expect(t.roundTripMs).toBeLessThanOrEqual(2000);
        // L(1+ρ) + M ≤ D(1−ρ) − J: F + M is before anyone may judge this agent dead.
        expect(t.ownLeaseMs * (1 + t.drift) + t.abortMarginMs).toBeLessThanOrEqual(d * (1 - t.drift) - t.storeClockStepMs + 1e-6);
        // k·h + R ≤ L with k = 2, or k = 1 where a warning says so.
        const k = timingWarnings(s).length > 0 ? 1 : TOLERATED_HEARTBEATS;
        if (k === 1) warned++;
        expect(k * h + t.roundTripMs).toBeLessThanOrEqual(t.ownLeaseMs);
      }
    }
    expect(accepted).toBeGreaterThan(100);
    expect(warned).toBeGreaterThan(10);
  });
});

describe("overlapGuardMs and staggerWindowMs", () => {
  const t = deriveTiming(settings(5, 15));
  test("G = min(interval/2, claim lead + 2 × the measured round trip (at most R) + 100 ms), at least 1 ms", () => {
    expect(overlapGuardMs(t, 60_000, 10)).toBe(50 + 20 + 100);
    expect(overlapGuardMs(t, 60_000, 60_000)).toBe(50 + 2 * t.roundTripMs + 100);
    expect(overlapGuardMs(t, 200, 10)).toBe(100);
    expect(overlapGuardMs(t, 1, 10)).toBe(1);
  });
  test("the stagger window is one step per position plus a second", () => {
    expect(staggerWindowMs(t, 3)).toBe(4000);
    expect(staggerWindowMs(t, 0)).toBe(2000);
  });
});
