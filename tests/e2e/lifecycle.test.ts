import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { occurrenceId } from "../../src/coordinator/occurrence.ts";
import { openMongoStore } from "../../src/store/mongo.ts";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import type { RunRecord, RunStatus, Store } from "../../src/store/types.ts";
import { eventually, makeHome, runCli, startAgent, type AgentProcess, type CliResult, type TestHome } from "../support/cli.ts";
import { startMongoForSuite } from "../support/ferretdb.ts";
import { startSink, type Sink } from "../support/sink.ts";

/**
 * Schedule lifecycle (issue 14) with three real agent processes on SQLite (one shared file) and on
 * FerretDB: a one-time job fires once and shows done, a past one is refused; `jobs pause --until
 * 5s` stops every agent with no record and each resumes by itself; two concurrent backfills of 3
 * missed and 2 successful occurrences run the 3 once; two concurrent `runs retry` make one
 * attempt; notify_after_failures 3 notifies once and on_recovery fires once. Operators are real
 * CLI processes started at the same moment.
 */
const SECOND = 1000;
const HOUR = 3_600_000;
const MACHINES = ["a", "b", "c"] as const;
const { mongo, skipReason } = await startMongoForSuite("lifecycle tests");

afterAll(async () => {
  await mongo?.stop();
}, 30_000);

function lifecycleSuite(backend: "sqlite" | "ferretdb") {
  let sink: Sink;
  let store: Store;
  const homes: TestHome[] = [];
  const agents: AgentProcess[] = [];
  let operator: TestHome;
  let flakyCount = 0;

  const cli = async (args: string[]): Promise<CliResult> => runCli(operator, args);
  const json = async (args: string[]) => {
    const result = await cli([...args, "--json"]);
    if (result.exitCode !== 0) throw new Error(`fleetcron ${args.join(" ")} failed (${result.exitCode}): ${result.stderr}`);
    return JSON.parse(result.stdout);
  };
  const apply = async (jobs: Record<string, unknown>[]) => {
    const file = join(operator.dir, `jobs-${Date.now()}-${Math.random()}.json`);
    writeFileSync(file, JSON.stringify(jobs));
    return cli(["jobs", "apply", file]);
  };
  const deliveries = (path: string) => sink.deliveries.filter((d) => d.path === path);
  const logs = () => agents.map((a, i) => `--- ${MACHINES[i]}\n${a.log().slice(-2000)}`).join("\n");

  beforeAll(async () => {
    sink = startSink({
      status: (req) => {
        if (new URL(req.url).pathname !== "/flaky") return 200;
        flakyCount++;
        return flakyCount <= 4 ? 500 : 200;
      },
    });
    const shared = { tz: "UTC", heartbeat_sec: 0.5, dead_after_sec: 3, failover_step_sec: 1, shutdown_timeout_sec: 5, secrets: { SINK: sink.url } };
    let storeConfig: Record<string, unknown>;
    if (backend === "sqlite") {
      const first = makeHome({}, "fleetcron-lifecycle");
      homes.push(first);
      storeConfig = { sqlite_path: join(first.dir, "shared.db") };
      store = openSqliteStore(storeConfig.sqlite_path as string);
    } else {
      const dbName = mongo!.dbName("lifecycle");
      storeConfig = { mongodb_uri: mongo!.uri, db_name: dbName };
      store = await openMongoStore({ uri: mongo!.uri, dbName });
    }
    for (const [i, machine] of MACHINES.entries()) {
      const config = { ...shared, ...storeConfig, machine_id: `agent-${machine}`, tags: { name: machine } };
      if (i === 0 && homes[0]) writeFileSync(homes[0].configPath, JSON.stringify(config), { mode: 0o600 });
      else homes.push(makeHome(config, `fleetcron-lifecycle-${machine}`));
    }
    operator = makeHome({ ...shared, ...storeConfig, machine_id: "operator" }, "fleetcron-lifecycle-op");
    homes.push(operator);
    for (const [i, machine] of MACHINES.entries()) agents.push(startAgent(homes[i]!, machine));
    await Promise.all(agents.map((a) => a.waitForLog(" running: ", 30_000)));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop("SIGKILL")));
    await store?.close();
    await sink?.stop();
    for (const home of homes) home.cleanup();
  }, 30_000);

  test("an at job fires once across three agents and then shows done; a past at is refused", async () => {
    const at = Math.ceil((Date.now() + 4 * SECOND) / SECOND) * SECOND;
    const applied = await apply([{ name: "once", at: new Date(at).toISOString(), url: "{{SINK}}/once?m={{machine_id}}" }]);
    expect(applied.exitCode).toBe(0);
    await eventually(async () => (await json(["jobs", "list"])).jobs.some((j: { name: string; state: string }) => j.name === "once" && j.state === "done"), 20_000, `"once" done\n${logs()}`);
    await Bun.sleep(3 * SECOND); // every agent had its turn
    expect(deliveries("/once").map((d) => d.runId)).toHaveLength(1);
    expect(deliveries("/once")[0]!.arrivedAt).toBeGreaterThanOrEqual(at);
    const shown = await json(["jobs", "show", "once"]);
    expect([shown.state, shown.done.status, shown.next_fire]).toEqual(["done", "success", null]);
    const list = await cli(["jobs", "list"]);
    expect(list.stdout).toMatch(/once\s+done \(success\)\s+once at /);

    const past = await apply([{ name: "late", at: "2026-01-01T09:00", tz: "Europe/Berlin", url: "{{SINK}}/late" }]);
    expect(past.exitCode).toBe(1);
    expect(past.stderr).toContain('job "late": at: "2026-01-01T09:00" is 2026-01-01 09:00:00 (+01:00) (read in Europe/Berlin), which is already past');
    expect(await store.findJobByName("late")).toBeNull();
  }, 60_000);

  test("pause --until 5s: no agent fires or records anything, then each resumes by itself", async () => {
    // One job per agent (run_on its tag), so each agent's own resumption is seen.
    const jobs = MACHINES.map((m) => ({ name: `tick-${m}`, every: "1s", overlap: "allow", run_on: { name: m }, url: `{{SINK}}/tick-${m}?m={{machine_id}}` }));
    expect((await apply(jobs)).exitCode).toBe(0);
    await eventually(() => MACHINES.every((m) => deliveries(`/tick-${m}`).length >= 2), 20_000, `ticks from every agent\n${logs()}`);
    const untils = new Map<string, number>();
    for (const m of MACHINES) {
      const paused = await json(["jobs", "pause", `tick-${m}`, "--until", "5s", "--note", "deploy"]);
      expect(paused.paused.note).toBe("deploy");
      expect(paused.paused.by).toMatch(/.+@.+/);
      untils.set(m, Date.parse(paused.paused.until));
    }
    const heldFrom = Date.now() + 1500; // a heartbeat (0.5 s) later every agent has read it
    const listed = await json(["jobs", "list"]);
    for (const m of MACHINES) expect(listed.jobs.find((j: { name: string }) => j.name === `tick-${m}`)).toMatchObject({ state: "paused", paused: { note: "deploy" } });
    const latestUntil = Math.max(...untils.values());
    await eventually(() => Date.now() > latestUntil + 4 * SECOND, 20_000, "the pause to end");
    for (const m of MACHINES) {
      const until = untils.get(m)!;
      const instantOf = (runId: string) => Date.parse(runId.split("@")[1]!);
      const sent = deliveries(`/tick-${m}`).map((d) => instantOf(d.runId));
      expect(sent.filter((t) => t >= heldFrom && t < until)).toEqual([]);
      const resumed = sent.filter((t) => t >= until);
      expect(resumed.length).toBeGreaterThanOrEqual(3);
      expect(new Set(deliveries(`/tick-${m}`).filter((d) => instantOf(d.runId) >= until).map((d) => d.query.m))).toEqual(new Set([`agent-${m}`]));
      const jobId = (await store.findJobByName(`tick-${m}`))!._id;
      const records = await store.listOccurrenceRuns(jobId, new Date(heldFrom), new Date(until - 1), 1000);
      expect(records).toEqual([]);
    }
  }, 60_000);

  test("backfill of 3 missed and 2 successful occurrences runs exactly the 3, once, with two backfills at once", async () => {
    expect((await apply([{ name: "hourly", cron: "0 * * * *", url: "{{SINK}}/hourly?m={{machine_id}}" }])).exitCode).toBe(0);
    const job = (await store.findJobByName("hourly"))!;
    const top = Math.floor(Date.now() / HOUR) * HOUR;
    const instants = [5, 4, 3, 2, 1].map((n) => top - n * HOUR);
    const statuses: RunStatus[] = ["missed", "success", "missed", "success", "missed"];
    for (const [i, at] of instants.entries()) await store.insertRun(record(job._id, "hourly", at, statuses[i]!));
    const range = ["--from", new Date(instants[0]!).toISOString(), "--to", new Date(instants[4]!).toISOString()];

    // The agents fire this job on the hour too; only deliveries of the range's occurrences count.
    const inRange = () => deliveries("/hourly").filter((d) => Date.parse(d.runId.split("@")[1]!) <= instants[4]!);
    const dry = await json(["jobs", "backfill", "hourly", ...range, "--dry-run"]);
    expect(dry.summary).toMatchObject({ occurrences: 5, to_run: 3, kept: 2 });
    expect(inRange()).toEqual([]);

    const both = await Promise.all([cli(["jobs", "backfill", "hourly", ...range, "--json"]), cli(["jobs", "backfill", "hourly", ...range, "--json"])]);
    for (const r of both) expect(r.exitCode, r.stderr).toBe(0);
    const summaries = both.map((r) => JSON.parse(r.stdout).summary);
    expect(summaries[0].ran + summaries[1].ran).toBe(3);
    const missedKeys = [0, 2, 4].map((i) => occurrenceId(job._id, instants[i]!));
    expect(inRange().map((d) => d.runId).sort()).toEqual(missedKeys.sort());
    const runs = await store.listOccurrenceRuns(job._id, new Date(instants[0]!), new Date(instants[4]!), 100);
    expect(runs.filter((r) => r.trigger === "backfill").map((r) => [r.run_id, r.attempt, r.status]).sort()).toEqual(missedKeys.sort().map((k) => [k, 2, "success"]));
  }, 60_000);

  test("runs retry by two processes at once produces one new attempt", async () => {
    const job = (await store.findJobByName("hourly"))!;
    const at = Math.floor(Date.now() / HOUR) * HOUR - 10 * HOUR;
    await store.insertRun(record(job._id, "hourly", at, "error"));
    const runId = occurrenceId(job._id, at);
    const both = await Promise.all([cli(["runs", "retry", runId, "--json"]), cli(["runs", "retry", runId, "--json"])]);
    const won = both.filter((r) => r.exitCode === 0);
    const lost = both.filter((r) => r.exitCode !== 0);
    expect(won.length, both.map((r) => r.stderr).join("\n")).toBe(1);
    // The loser lost the insert of attempt 2, or (started a moment later) read attempt 2 running or
    // finished: each way it ran nothing.
    expect(lost[0]!.stderr).toMatch(new RegExp(`attempt 2 of run ${runId} was claimed by someone else|\\(attempt 2\\) (is still running|succeeded)`));
    const result = JSON.parse(won[0]!.stdout);
    expect([result.attempt, result.previous.status, result.outcome.status, result.outcome.trigger]).toEqual([2, "error", "success", "retry"]);
    expect(deliveries("/hourly").filter((d) => d.runId === runId)).toHaveLength(1);
    const attempts = await store.listOccurrenceRuns(job._id, new Date(at), new Date(at), 10);
    expect(attempts.map((r) => [r._id, r.status])).toEqual([[runId, "error"], [`${runId}#2`, "success"]]);
    const refused = await cli(["runs", "retry", runId]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain("succeeded: there is nothing to re-drive");
  }, 60_000);

  test("notify_after_failures 3 notifies on the third failure only; on_recovery fires once on the next success", async () => {
    flakyCount = 0;
    const applied = await apply([
      {
        name: "flaky",
        every: "1s",
        url: "{{SINK}}/flaky?m={{machine_id}}",
        notify_after_failures: 3,
        on_failure: [{ url: "{{SINK}}/alert?f={{failures}}" }],
        on_recovery: [{ url: "{{SINK}}/recovered?f={{failures}}" }],
      },
    ]);
    expect(applied.exitCode).toBe(0);
    await eventually(() => deliveries("/flaky").length >= 8, 30_000, `8 flaky runs\n${logs()}`);
    await Bun.sleep(SECOND);
    const flaky = deliveries("/flaky");
    expect(deliveries("/alert").map((d) => d.query.f)).toEqual(["3"]);
    expect(deliveries("/alert")[0]!.arrivedAt).toBeGreaterThanOrEqual(flaky[2]!.arrivedAt);
    expect(deliveries("/alert")[0]!.arrivedAt).toBeLessThan(flaky[3]!.arrivedAt);
    expect(deliveries("/recovered").map((d) => d.query.f)).toEqual(["4"]);
    expect(deliveries("/recovered")[0]!.arrivedAt).toBeGreaterThanOrEqual(flaky[4]!.arrivedAt);
  }, 60_000);
}

function record(jobId: string, name: string, at: number, status: RunStatus): RunRecord {
  const runId = occurrenceId(jobId, at);
  return { _id: runId, run_id: runId, job_id: jobId, job_name: name, scheduled_for: new Date(at), attempt: 1, trigger: "schedule", status, machine_id: "earlier", claimed_at: new Date(at), finished_at: new Date(at), ...(status === "missed" ? { reason: "missed: no agent was running" } : {}) };
}

describe("schedule lifecycle, three agents on SQLite", () => lifecycleSuite("sqlite"));
describe.skipIf(!mongo)(`schedule lifecycle, three agents on FerretDB${skipReason}`, () => lifecycleSuite("ferretdb"));
