import { expect, test } from "bun:test";
import { runChaos } from "../chaos/chaos.ts";

/** The bounded chaos run (the full one is `bun run chaos`): faults of every kind, then reconciliation. */
test("chaos: kills, pauses past the lease, a store outage and a skewed clock — nothing lost, nothing repeated", async () => {
  const report = await runChaos({ durationMs: 100_000, faultGapMs: [3000, 6000], storeOutageMs: [15_000, 18_000], seed: 7, log: (line) => console.log(line) });
  console.log(JSON.stringify(report));
  expect(report.stuckStops).toEqual([]);
  expect(report.duplicates).toEqual([]);
  expect(report.unaccounted).toEqual([]);
  expect(report.occurrences).toBeGreaterThan(200);
  expect(report.deliveredOnce).toBeGreaterThan(report.occurrences / 2);
  expect(report.faults["kill+restart"]).toBeGreaterThanOrEqual(1);
  expect(report.faults["pause>lease"]).toBeGreaterThanOrEqual(1);
  expect(report.faults["store outage"]).toBeGreaterThanOrEqual(1);
  if (process.env.CI) expect(report.clockSkewedAgent).toBe(true);
}, 400_000);
