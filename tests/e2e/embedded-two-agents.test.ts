import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import type { RunRecord } from "../../src/store/types.ts";
import { eventually, makeHome, runCli, startAgent, type AgentProcess, type TestHome } from "../support/cli.ts";
import { startSink, type Delivery, type Sink } from "../support/sink.ts";

/**
 * Two real agent processes, each with its own FLEETCRON_HOME, share one SQLite file: every
 * occurrence of an every-second job reaches the sink exactly once, and when the agent that fires
 * is SIGKILLed partway the other one carries on: no occurrence missing, none delivered twice
 * (except attempt n+1 of the same run id after attempt n was recorded `lost`).
 */
const SECOND = 1000;
let sink: Sink;
let homes: TestHome[] = [];
let agents: AgentProcess[] = [];
let dbPath: string;

const instantOf = (runId: string) => Date.parse(runId.split("@")[1]!);
const attemptOf = (d: Delivery) => Number(d.query.a);
const machineOf = (d: Delivery) => d.query.m;

beforeAll(() => {
  // Each answer takes 300 ms, so the kill usually finds a request in flight.
  sink = startSink({ delayMs: () => 300 });
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop("SIGKILL")));
  await sink.stop();
  for (const h of homes) h.cleanup();
});

test("two agents on one SQLite file: exactly once, and the survivor carries on without a gap when the firing one is SIGKILLed", async () => {
  const settings = { tz: "UTC", heartbeat_sec: 1, dead_after_sec: 4, failover_step_sec: 1, lease_sec: 6, shutdown_timeout_sec: 10 };
  const first = makeHome({ ...settings, machine_id: "agent-a" }, "fleetcron-e2e-a");
  dbPath = join(first.dir, "shared.db");
  const config = { ...settings, sqlite_path: dbPath, secrets: { SINK: sink.url } };
  writeFileSync(first.configPath, JSON.stringify({ ...config, machine_id: "agent-a" }), { mode: 0o600 });
  const second = makeHome({ ...config, machine_id: "agent-b" }, "fleetcron-e2e-b");
  homes = [first, second];

  const jobsFile = join(first.dir, "jobs.json");
  writeFileSync(
    jobsFile,
    JSON.stringify([{ name: "tick", every: "1s", overlap: "allow", method: "POST", url: "{{SINK}}/tick?m={{machine_id}}&a={{attempt}}", body: { run: "{{run_id}}" } }]),
  );
  const applied = await runCli(first, ["jobs", "apply", jobsFile]);
  expect(applied.exitCode).toBe(0);

  const byName = { "agent-a": startAgent(first, "a"), "agent-b": startAgent(second, "b") } as Record<string, AgentProcess>;
  agents = Object.values(byName);
  await Promise.all(agents.map((a) => a.waitForLog(/ running: /)));
  const startedAt = Date.now();
  await eventually(() => sink.deliveries.length >= 8, 30_000, "8 deliveries");

  // Kill the agent that is firing, mid-run; the other must take over the schedule.
  const firing = machineOf(sink.deliveries[sink.deliveries.length - 1]!)!;
  const survivor = firing === "agent-a" ? "agent-b" : "agent-a";
  expect(Object.keys(byName)).toContain(firing);
  const killedAt = Date.now();
  await byName[firing]!.stop("SIGKILL");
  // Well past dead_after_sec and lease_sec, so both failover and any takeover have happened.
  await eventually(() => sink.deliveries.filter((d) => machineOf(d) === survivor && instantOf(d.runId) > killedAt + 8 * SECOND).length >= 4, 40_000, `4 deliveries from ${survivor} after the kill`);
  expect(await byName[survivor]!.stop("SIGTERM")).toBe(0);
  const stoppedAt = Date.now();

  const store = openSqliteStore(dbPath);
  let runs: RunRecord[];
  try {
    runs = await store.listRuns({ job_name: "tick", limit: 1000 });
    const machines = await store.listMachines();
    expect(machines.find((m) => m._id === survivor)?.status).toBe("stopped");
  } finally {
    await store.close();
  }
  if (process.env.DEBUG_E2E) console.log(agents.map((a) => a.log()).join("\n----\n"));

  // Every delivery carries the run id as its idempotency key.
  expect(sink.deliveries.filter((d) => d.idempotencyKey !== d.runId).map((d) => d.runId)).toEqual([]);
  // The survivor took over the schedule: every delivery for an occurrence due after the kill is its own.
  const afterKill = sink.deliveries.filter((d) => instantOf(d.runId) > killedAt + SECOND);
  expect(new Set(afterKill.map(machineOf))).toEqual(new Set([survivor]));

  // Consecutive seconds from the first delivered occurrence to the last: each delivered once, or
  // twice only as attempts n and n+1 with attempt n recorded lost.
  const recordById = new Map(runs.map((r) => [r._id, r]));
  const byInstant = new Map<number, Delivery[]>();
  for (const d of sink.deliveries) byInstant.set(instantOf(d.runId), [...(byInstant.get(instantOf(d.runId)) ?? []), d]);
  const instants = [...byInstant.keys()].sort((a, b) => a - b);
  expect(instants[0]!).toBeGreaterThanOrEqual(startedAt - 5000);
  expect(instants[instants.length - 1]!).toBeGreaterThan(killedAt + 8 * SECOND);
  const problems: string[] = [];
  let reruns = 0;
  for (let at = instants[0]!; at <= instants[instants.length - 1]!; at += SECOND) {
    const got = (byInstant.get(at) ?? []).sort((x, y) => attemptOf(x) - attemptOf(y));
    const what = `${new Date(at).toISOString()}: ${got.map((d) => `attempt ${d.query.a} from ${machineOf(d)}`).join(", ") || "not delivered"}; records ${runs.filter((r) => r.scheduled_for.getTime() === at).map((r) => `${r._id.split("@")[1]}:${r.status}`).join(" ") || "none"}`;
    if (got.length === 1 && attemptOf(got[0]!) === 1) continue;
    const [one, two] = got;
    if (got.length === 2 && one!.runId === two!.runId && attemptOf(two!) === attemptOf(one!) + 1) {
      const n = attemptOf(one!);
      if (recordById.get(n === 1 ? one!.runId : `${one!.runId}#${n}`)?.status === "lost") {
        reruns++;
        continue;
      }
    }
    problems.push(what);
  }
  expect(problems).toEqual([]);
  console.log(`two agents, ${firing} killed: ${instants.length} occurrences, ${reruns} re-run(s) after a lost attempt, stopped ${stoppedAt - killedAt} ms after the kill`);

  // What the sink got is what the store says succeeded.
  const delivered = new Set(sink.deliveries.map((d) => d.runId));
  expect(runs.filter((r) => r.status === "success").map((r) => r.run_id).sort()).toEqual([...delivered].sort());
}, 120_000);
