import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeHome, runCli, startAgent, type AgentProcess, type TestHome } from "../support/cli.ts";
import { startSink, type Sink } from "../support/sink.ts";

/**
 * `jobs trigger` asks the job's owner (issue 12, item 4): a CLI whose config lacks the agents'
 * secrets (and may not reach the target) still triggers the job; the agent runs it and the CLI
 * prints the record, with its run id; `--local` runs it in the CLI's process instead.
 */
let sink: Sink;
let agentHome: TestHome;
let cliHome: TestHome;
let agent: AgentProcess;

beforeAll(async () => {
  sink = startSink();
  const base = { tz: "UTC", heartbeat_sec: 1, dead_after_sec: 4, failover_step_sec: 1 };
  agentHome = makeHome({ ...base, secrets: { SINK: sink.url, TOKEN: "agent-only-token" } }, "fleetcron-trigger-agent");
  const db = join(agentHome.dir, "shared.db");
  writeFileSync(agentHome.configPath, JSON.stringify({ ...base, sqlite_path: db, machine_id: "owner-1", secrets: { SINK: sink.url, TOKEN: "agent-only-token" } }), { mode: 0o600 });
  // The operator's CLI: the same store, none of the secrets.
  cliHome = makeHome({ ...base, sqlite_path: db, machine_id: "laptop" }, "fleetcron-trigger-cli");
  const jobs = join(agentHome.dir, "jobs.json");
  writeFileSync(jobs, JSON.stringify([{ name: "Report", cron: "0 0 1 1 *", method: "POST", url: "{{SINK}}/report", headers: { authorization: "Bearer {{TOKEN}}" } }]));
  expect((await runCli(agentHome, ["jobs", "apply", jobs])).exitCode).toBe(0);
  agent = startAgent(agentHome, "owner");
  await agent.waitForLog(/ running: /);
}, 30_000);

afterAll(async () => {
  await agent?.stop("SIGKILL");
  await sink?.stop();
  agentHome?.cleanup();
  cliHome?.cleanup();
});

test("the owner runs it: the CLI without the secrets gets the record (run_id in --json), the target gets the agent's token", async () => {
  const out = await runCli(cliHome, ["jobs", "trigger", "Report", "--json"]);
  expect(out.stderr).toContain("asked agent owner-1 (the job's owner) to run it");
  expect(out.exitCode).toBe(0);
  const run = JSON.parse(out.stdout);
  expect(run).toMatchObject({ status: "success", trigger: "manual", machine_id: "owner-1", job_name: "Report" });
  expect(run.run_id).toBe(run._id);
  const delivered = sink.deliveries.filter((d) => d.runId === run.run_id);
  expect(delivered.map((d) => d.headers.authorization)).toEqual(["Bearer agent-only-token"]);
  expect(agent.log()).toContain(`Report: triggered by command`);
}, 30_000);

test("--local runs it in the CLI's own process, which lacks the secret: refused as invalid here, nothing sent", async () => {
  const before = sink.deliveries.length;
  const out = await runCli(cliHome, ["jobs", "trigger", "Report", "--local"]);
  expect(out.exitCode).toBe(1);
  expect(out.stderr).toContain('job "Report" is invalid and cannot run');
  expect(sink.deliveries.length).toBe(before);
});

test("with no live agent it runs here and says so", async () => {
  await agent.stop("SIGTERM");
  const out = await runCli(agentHome, ["jobs", "trigger", "Report"]);
  expect(out.stderr).toContain("running it here, in this process, instead");
  expect(out.exitCode).toBe(0);
}, 30_000);
