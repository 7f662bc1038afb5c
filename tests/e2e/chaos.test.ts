import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { runChaos } from "../chaos/chaos.ts";

const FAKETIME = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"].some((p) => existsSync(p));

/** The bounded chaos run (the full one is `bun run chaos`): faults of every kind, then reconciliation. */
test("chaos: kills, pauses past the lease, a store outage and a skewed clock — nothing lost, nothing repeated", async () => {
  const report = await runChaos({ durationMs: 100_000, faultGapMs: [3000, 6000], storeOutageMs: [15_000, 18_000], seed: 7, log: (line) => console.log(line) });
  console.log(JSON.stringify(report));
  expect(report.stuckStops).toEqual([]);
  expect(report.duplicates).toEqual([]);
  // Every occurrence is delivered, or (only inside a store outage and its catch-up) accounted for
  // with a reason; reconcile() lists everything else here, including a lost attempt with no successor.
  expect(report.unaccounted).toEqual([]);
  expect(report.occurrences).toBeGreaterThan(200);
  const accounted = Object.values(report.accounted).reduce((a, b) => a + b, 0);
  expect(report.deliveredOnce + report.rerunAfterLostLease + accounted).toBe(report.occurrences);
  expect(report.faults["kill+restart"]).toBeGreaterThanOrEqual(1);
  expect(report.faults["pause>lease"]).toBeGreaterThanOrEqual(1);
  expect(report.faults["store outage"]).toBeGreaterThanOrEqual(1);
  // Outages excuse at most their own span plus the catch-up after it: most occurrences are delivered.
  expect(report.deliveredOnce + report.rerunAfterLostLease).toBeGreaterThan(report.occurrences / 2);

  // The skew took effect: the fleet measured chaos-c's clock about 2 s ahead of the store's, warned
  // about it, and saw the others' clocks right.
  if (process.env.CI) expect(FAKETIME).toBe(true);
  if (FAKETIME) {
    expect(report.clockSkewedAgent).toBe(true);
    const skewed = report.clocks["chaos-c"];
    expect(skewed?.clock_offset_ms).toBeGreaterThan(1500);
    expect(skewed?.clock_offset_ms).toBeLessThan(2500);
    expect(skewed?.clock_warning ?? "").toContain("2.");
    for (const id of ["chaos-a", "chaos-b"]) expect(Math.abs(report.clocks[id]?.clock_offset_ms ?? Infinity)).toBeLessThan(500);
  }
}, 400_000);
