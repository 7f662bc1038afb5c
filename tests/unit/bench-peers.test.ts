import { describe, expect, test } from "bun:test";
import { bullmqPrefix } from "../../bench/lib/bullmq.ts";
import { pgbossSchema } from "../../bench/lib/pgboss.ts";
import type { Arrival } from "../../bench/lib/sink.ts";
import { burstForTarget, peerBurstRatios, peerFailoverRatios, peerLatenessRatios } from "../../bench/report.ts";
import { rowOrder, type BurstResult } from "../../bench/scenarios/burst.ts";
import type { FailoverResult } from "../../bench/scenarios/failover.ts";
import type { LatenessResult } from "../../bench/scenarios/lateness.ts";
import { summarizeMinutes } from "../../bench/scenarios/pgboss-minute.ts";

/** The pure parts of the pg-boss and BullMQ peers of bench/ (issue 16): no PostgreSQL or Redis needed. */
const MINUTE = 60_000;
const from = Date.UTC(2026, 0, 5, 9, 0);
const arrival = (machine: string, scheduled: number, lateMs: number): Arrival => ({ sys: "pb", machine, key: `pb:tick@${scheduled}`, scheduled, arrived: scheduled + lateMs, path: "/pgboss" });

describe("bench peers: pg-boss's every-minute rows", () => {
  test("counts each minute once, a second arrival of a minute as a duplicate, a minute with none as missed, and nothing outside the window", () => {
    const arrivals = [
      arrival("w-a", from - MINUTE, 40_000), // the start-up occurrence before the window
      arrival("w-a", from, 1200),
      arrival("w-b", from, 1500), // the same minute again
      arrival("w-b", from + 2 * MINUTE, 900), // from + 1 min is missing
      arrival("w-c", from + 3 * MINUTE, 1000), // outside [from, from + 3 min)
    ];
    const row = summarizeMinutes(arrivals, from, from + 3 * MINUTE, "pg-boss (tight)", 3, "tight", ["w-a", "w-b", "w-c"], 0.0123);
    expect(row).toMatchObject({ due: 3, n: 2, missed: 1, duplicates: 1, p50_ms: 900, max_ms: 1200, per_agent: "1/2/0", cpu_pct: 1.23, precision: "minute", store: "PostgreSQL" });
    // The duplicate is counted, not measured: lateness comes from the first arrival of each minute.
    expect(row.p99_ms).toBe(1200);
  });

  test("one worker has no per-agent split", () => {
    const row = summarizeMinutes([arrival("w-a", from, 10)], from, from + MINUTE, "pg-boss (default)", 1, "defaults", ["w-a"], null);
    expect(row.per_agent).toBeUndefined();
    expect(row.cpu_pct).toBeNull();
  });
});

describe("bench peers: names of the schemas and key prefixes a run may drop", () => {
  test("a pg-boss schema and a BullMQ prefix carry the bench's marker and this process id", () => {
    expect(pgbossSchema("Burst-1/X")).toBe(`fcbench_${process.pid}_burst_1_x`);
    expect(pgbossSchema("x".repeat(100)).length).toBe(63);
    expect(bullmqPrefix("lat bullmq:3")).toBe(`fcbench:${process.pid}:lat_bullmq_3`);
  });
});

const lat = (system: string, agents: number, p99: number | null, precision?: "minute"): LatenessResult => ({
  system,
  store: system === "FleetCron" ? "sqlite" : "Redis",
  agents,
  settings: "",
  due: 20,
  n: 20,
  p50_ms: p99,
  p99_ms: p99,
  max_ms: p99,
  min_ms: p99,
  missed: 0,
  duplicates: 0,
  by_machine: {},
  cpu_pct: null,
  ...(precision ? { precision } : {}),
});

describe("bench peers: the report's ratio lines name every peer", () => {
  test("lateness: FleetCron's p99 over each pg-boss and BullMQ row, croner and Agenda left to their own line", () => {
    const line = peerLatenessRatios([lat("FleetCron", 1, 10), lat("BullMQ (default)", 3, 100), lat("pg-boss (tight)", 1, 1000, "minute"), lat("croner (timer floor)", 1, 8)]);
    expect(line).toContain("SQLite ×1: 0.100× BullMQ (default) ×3, 0.010× pg-boss (tight) ×1 (every minute)");
    expect(line).not.toContain("croner");
    expect(peerLatenessRatios([lat("FleetCron", 1, 10)])).toBe("No pg-boss or BullMQ rows in this run.");
  });

  test("failover: a minute-precision row is compared by the lateness of its first occurrence after the kill, not by the wait for the next minute", () => {
    const fo = (system: string, settings: string, lateness: number, gap: number, note?: string): FailoverResult => ({ system, settings, kills: 2, samples: [], median_lateness_ms: lateness, median_gap_ms: gap, max_lateness_ms: lateness, missed: 0, duplicates: 0, ...(note ? { note } : {}) });
    const line = peerFailoverRatios([
      fo("FleetCron", "failover_step_sec 1 (others default)", 500, 1200),
      fo("BullMQ (tight)", "x", 100, 800),
      fo("pg-boss (tight)", "y", 1000, 59_000, "minute precision: …"),
      fo("Agenda (tight)", "z", 1900, 2600),
    ]);
    expect(line).toContain("failover_step_sec 1: 1.50× BullMQ (tight), 0.50× pg-boss (tight) (lateness of the first occurrence after the kill");
    expect(line).not.toContain("Agenda");
  });

  test("burst: deliveries per second at the same size only, and a peer that did not finish says so", () => {
    const b = (system: string, store: BurstResult["store"], agents: number, jobs: number, dps: number, all: number | null): BurstResult => ({ system, store, agents, jobs, delivered: jobs, duplicates: 0, all_delivered_s: all, first_delivery_ms: 1, p50_ms: 1, p99_ms: 1, claims_per_s: null, deliveries_per_s: dps, setup_s: 0 });
    const line = peerBurstRatios([b("FleetCron", "sqlite", 3, 1000, 8000, 0.12), b("FleetCron", "ferretdb", 3, 100, 1000, 0.1), b("BullMQ (tight)", "Redis", 3, 1000, 800, 1.25), b("pg-boss (tight)", "PostgreSQL", 1, 1000, 40, null)]);
    expect(line).toContain("1000 jobs, FleetCron SQLite ×3: 10.0× BullMQ (tight) ×3, 200.0× pg-boss (tight) ×1 (not all delivered in its cap)");
    expect(line).not.toContain("FerretDB-sqlite ×3");
    expect(peerBurstRatios([b("BullMQ (tight)", "Redis", 1, 5000, 900, 5.5)])).toContain("5000 jobs: no FleetCron row of that size");
  });
});

describe("bench peers: burst rows", () => {
  test("come out in the usual order whatever order the cases ran in around the pg-boss minutes", () => {
    const row = (system: string, store: BurstResult["store"], agents: number, jobs: number): BurstResult => ({ system, store, agents, jobs, delivered: 0, duplicates: 0, all_delivered_s: null, first_delivery_ms: null, p50_ms: null, p99_ms: null, claims_per_s: null, deliveries_per_s: null, setup_s: 0 });
    const ran = [
      row("pg-boss (tight)", "PostgreSQL", 3, 1000),
      row("FleetCron", "ferretdb-pg", 3, 100),
      row("BullMQ (default)", "Redis", 1, 1000),
      row("FleetCron", "sqlite", 3, 1000),
      row("Agenda (tight)", "ferretdb", 1, 100),
      row("BullMQ (tight)", "Redis", 3, 1000),
      row("FleetCron", "ferretdb", 1, 100),
      row("FleetCron", "sqlite", 1, 10000),
      row("FleetCron", "sqlite", 1, 1000),
      row("BullMQ (tight)", "Redis", 1, 5000),
      row("BullMQ (tight)", "Redis", 1, 1000),
    ];
    const sorted = [...ran].sort((a, b) => rowOrder(a).localeCompare(rowOrder(b))).map((x) => `${x.system} ${x.store} ×${x.agents} ${x.jobs}`);
    expect(sorted).toEqual([
      "FleetCron sqlite ×1 1000",
      "FleetCron sqlite ×3 1000",
      "FleetCron sqlite ×1 10000",
      "FleetCron ferretdb ×1 100",
      "FleetCron ferretdb-pg ×3 100",
      "Agenda (tight) ferretdb ×1 100",
      "BullMQ (tight) Redis ×1 1000",
      "BullMQ (tight) Redis ×3 1000",
      "BullMQ (default) Redis ×1 1000",
      "BullMQ (tight) Redis ×1 5000",
      "pg-boss (tight) PostgreSQL ×3 1000",
    ]);
  });
});

describe("burst size targets", () => {
  test("judged on the target's own size, else the largest smaller burst, else the smallest larger one", () => {
    const rows = (...sizes: number[]) => sizes.map((jobs) => ({ jobs }));
    expect(burstForTarget(rows(100, 1000, 5000), 1000)?.jobs).toBe(1000);
    expect(burstForTarget(rows(5000, 100, 500), 1000)?.jobs).toBe(500);
    expect(burstForTarget(rows(20000, 5000), 1000)?.jobs).toBe(5000);
    expect(burstForTarget([], 1000)).toBeUndefined();
  });
});
