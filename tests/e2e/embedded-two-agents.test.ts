import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import { eventually, makeHome, runCli, startAgent, type AgentProcess, type TestHome } from "../support/cli.ts";
import { startSink, type Sink } from "../support/sink.ts";

/**
 * Two real agent processes, each with its own FLEETCRON_HOME, share one SQLite file: every
 * occurrence of an every-second job reaches the sink exactly once.
 */
let sink: Sink;
let homes: TestHome[] = [];
let agents: AgentProcess[] = [];
let dbPath: string;

beforeAll(() => {
  sink = startSink();
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop("SIGKILL")));
  await sink.stop();
  for (const h of homes) h.cleanup();
});

test("two agents on one SQLite file deliver each occurrence exactly once", async () => {
  const first = makeHome({ tz: "UTC", heartbeat_sec: 1, dead_after_sec: 4, failover_step_sec: 1, lease_sec: 6, secrets: { SINK: sink.url } }, "fleetcron-e2e-a");
  dbPath = join(first.dir, "shared.db");
  const config = { tz: "UTC", sqlite_path: dbPath, heartbeat_sec: 1, dead_after_sec: 4, failover_step_sec: 1, lease_sec: 6, secrets: { SINK: sink.url } };
  writeFileSync(first.configPath, JSON.stringify(config), { mode: 0o600 });
  const second = makeHome(config, "fleetcron-e2e-b");
  homes = [first, second];

  const jobsFile = join(first.dir, "jobs.json");
  writeFileSync(jobsFile, JSON.stringify([{ name: "tick", every: "1s", method: "POST", url: "{{SINK}}/tick?m={{machine_id}}", body: { run: "{{run_id}}" } }]));
  const applied = await runCli(first, ["jobs", "apply", jobsFile]);
  expect(applied.exitCode).toBe(0);

  agents = [startAgent(first, "a"), startAgent(second, "b")];
  await Promise.all(agents.map((a) => a.waitForLog("running: serial")));
  const startedAt = Date.now();
  await eventually(() => sink.deliveries.length >= 12, 30_000, "12 deliveries");
  await Promise.all(agents.map((a) => a.stop("SIGTERM")));
  const exitCodes = agents.map((a) => a.proc.exitCode);
  expect(exitCodes).toEqual([0, 0]);

  const counts = sink.countsByRunId();
  const repeats = [...counts].filter(([, n]) => n > 1);
  expect(repeats).toEqual([]);
  expect(counts.size).toBeGreaterThanOrEqual(12);
  // Consecutive seconds, none missing between the first and the last delivered occurrence.
  const instants = [...counts.keys()].map((id) => Date.parse(id.split("@")[1]!)).sort((a, b) => a - b);
  if (process.env.DEBUG_E2E) console.log(agents.map((a) => a.log()).join("\n----\n"));
  for (let i = 1; i < instants.length; i++) expect(instants[i]! - instants[i - 1]!).toBe(1000);
  expect(instants[0]!).toBeGreaterThanOrEqual(startedAt - 5000);
  // Every delivery carries the run id as its idempotency key.
  expect(sink.deliveries.every((d) => d.idempotencyKey === d.runId)).toBe(true);

  const store = openSqliteStore(dbPath);
  try {
    const runs = await store.listRuns({ job_name: "tick", limit: 1000 });
    const delivered = new Set(counts.keys());
    expect(runs.filter((r) => r.status === "success").map((r) => r.run_id).sort()).toEqual([...delivered].sort());
    const machines = await store.listMachines();
    expect(machines.map((m) => m.status)).toEqual(["stopped", "stopped"]);
    expect(await store.listSerials()).toEqual([]);
  } finally {
    await store.close();
  }
}, 90_000);
