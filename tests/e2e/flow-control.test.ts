import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import type { RunRecord } from "../../src/store/types.ts";
import { eventually, makeHome, runCli, startAgent, type AgentProcess, type TestHome } from "../support/cli.ts";
import { startSink, type Delivery, type Sink } from "../support/sink.ts";

/**
 * Flow control and jitter with real agent processes (three FLEETCRON_HOMEs on one SQLite file) and
 * a local sink: jobs sharing a limit never exceed it at the sink, each runs once, and jittered jobs
 * arrive spread over their window (docs/protocol.md, "Flow control").
 */
const REQUEST_MS = 300;
let sink: Sink;
let homes: TestHome[] = [];
let agents: AgentProcess[] = [];
let sqlitePath = "";

beforeAll(async () => {
  sink = startSink({ delayMs: (req) => (new URL(req.url).pathname.startsWith("/partner/") ? REQUEST_MS : 0) });
  const base = {
    tz: "UTC",
    heartbeat_sec: 1,
    dead_after_sec: 4,
    failover_step_sec: 1,
    placement: "spread",
    secrets: { SINK: sink.url },
    limits: { partner: { parallel: 2, rate: "5/s" } },
  };
  const first = makeHome(base, "fleetcron-flow-a");
  sqlitePath = join(first.dir, "shared.db");
  const config = { ...base, sqlite_path: sqlitePath };
  homes = ["a", "b", "c"].map((m, i) => (i === 0 ? first : makeHome(config, `fleetcron-flow-${m}`)));
  homes.forEach((h, i) => writeFileSync(h.configPath, JSON.stringify({ ...config, machine_id: `agent-${"abc"[i]}` }), { mode: 0o600 }));
  const jobs = [
    ...Array.from({ length: 12 }, (_, i) => ({ name: `partner ${i}`, every: "15s", limit: "partner", method: "POST", url: `{{SINK}}/partner/${i}?m={{machine_id}}` })),
    ...Array.from({ length: 100 }, (_, i) => ({ name: `spread ${i}`, every: "15s", jitter_sec: 10, method: "POST", url: `{{SINK}}/spread/${i}?m={{machine_id}}` })),
  ];
  const jobsFile = join(first.dir, "jobs.json");
  writeFileSync(jobsFile, JSON.stringify(jobs));
  const applied = await runCli(first, ["jobs", "apply", jobsFile]);
  expect(applied.exitCode).toBe(0);
  agents = homes.map((h, i) => startAgent(h, `agent-${"abc"[i]}`));
  await Promise.all(agents.map((a) => a.waitForLog(/ running: /)));
}, 30_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop("SIGKILL")));
  await sink.stop();
  for (const h of homes) h.cleanup();
});

const instantOf = (d: Delivery) => d.runId.split("@")[1]!;

/** The deliveries of the first instant at which all of `count` jobs under `prefix` arrived. */
function firstCompleteInstant(prefix: string, count: number): Delivery[] | null {
  const byInstant = new Map<string, Delivery[]>();
  for (const d of sink.deliveries.filter((x) => x.path.startsWith(prefix))) byInstant.set(instantOf(d), [...(byInstant.get(instantOf(d)) ?? []), d]);
  for (const [, list] of [...byInstant].sort((a, b) => a[0].localeCompare(b[0]))) if (new Set(list.map((d) => d.path)).size === count) return list;
  return null;
}

test(
  "12 same-instant jobs sharing { parallel: 2, rate: \"5/s\" } on 3 agents: at most 2 in flight and 5 starts a second at the sink, each once",
  async () => {
    await eventually(() => firstCompleteInstant("/partner/", 12) !== null, 40_000, "one instant of all 12 partner jobs");
    const list = firstCompleteInstant("/partner/", 12)!;
    expect(list).toHaveLength(12); // each once
    expect(new Set(list.map((d) => d.query.m)).size).toBe(1); // one agent enforces the limit
    const starts = list.map((d) => d.arrivedAt).sort((a, b) => a - b);
    const inFlight = Math.max(...starts.map((t) => starts.filter((s) => s <= t && t < s + REQUEST_MS).length));
    expect(inFlight).toBeLessThanOrEqual(2);
    // The limiter admits at most 5 starts in any second (exact on the fake clock: agent-flow-control
    // tests). Here the sends are read from the records (a chain starts at finished_at −
    // duration_ms), which trail their admissions by a few ms of the agent's own work, and arrivals
    // at the sink trail the sends by loopback and scheduling noise, tens of ms on a loaded CI
    // machine: 6 sends within 950 ms, or 6 arrivals within 900 ms, would be a limiter letting
    // through more than 5 a second.
    const store = openSqliteStore(sqlitePath);
    try {
      const ids = list.map((d) => d.runId);
      let runs: RunRecord[] = [];
      await eventually(async () => (runs = await store.getRuns(ids)).length === 12 && runs.every((r) => r.finished_at !== undefined), 10_000, "the 12 results written");
      expect(runs.every((r) => r.limit === "partner" && typeof r.duration_ms === "number")).toBe(true);
      const sent = runs.map((r) => r.finished_at!.getTime() - r.duration_ms!).sort((a, b) => a - b);
      expect(Math.max(...sent.map((t) => sent.filter((s) => s >= t && s < t + 950).length))).toBeLessThanOrEqual(5);
      // 12 sends at 5 a second take more than 2 s: the limit did bind.
      expect(sent[11]! - sent[0]!).toBeGreaterThanOrEqual(2000);
    } finally {
      await store.close();
    }
    expect(Math.max(...starts.map((t) => starts.filter((s) => s >= t && s < t + 900).length))).toBeLessThanOrEqual(5);
    for (const [, n] of sink.countsByRunId()) expect(n).toBe(1);
  },
  60_000,
);

test(
  "100 jobs with jitter_sec 10 arrive spread over the 10 s after their instant, each once, named by the instant",
  async () => {
    await eventually(() => firstCompleteInstant("/spread/", 100) !== null, 40_000, "one instant of all 100 jittered jobs");
    const list = firstCompleteInstant("/spread/", 100)!;
    const instant = Date.parse(instantOf(list[0]!));
    const offsets = list.map((d) => d.arrivedAt - instant);
    expect(Math.min(...offsets)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...offsets)).toBeLessThan(10_000 + 1000);
    // Spread: at least 8 of the 10 seconds of the window saw arrivals.
    expect(new Set(offsets.map((o) => Math.floor(o / 1000))).size).toBeGreaterThanOrEqual(8);
  },
  60_000,
);
