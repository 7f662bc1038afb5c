import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, makeHome, runCli, startAgent, type AgentProcess, type TestHome } from "../support/cli.ts";
import { startSink, type Sink } from "../support/sink.ts";

/**
 * A stopping agent says what it still waits for and how long is left (issue 12, item 5), with a
 * real agent process: SIGTERM while a request is in flight to a slow target.
 */
let sink: Sink;
let home: TestHome;
let agent: AgentProcess;

afterAll(async () => {
  await agent?.stop("SIGKILL");
  await sink?.stop();
  home?.cleanup();
});

test("SIGTERM during a slow request: the agent names the attempt and the seconds left, then stops when it ends", async () => {
  sink = startSink({ delayMs: (req) => (new URL(req.url).pathname === "/slow" ? 7000 : 0) });
  home = makeHome({ tz: "UTC", heartbeat_sec: 1, dead_after_sec: 4, failover_step_sec: 1, shutdown_timeout_sec: 20, secrets: { SINK: sink.url } }, "fleetcron-stop-progress");
  const jobs = join(home.dir, "jobs.json");
  writeFileSync(jobs, JSON.stringify([{ name: "Slow export", every: "1h", url: "{{SINK}}/slow", timeout_sec: 30 }]));
  expect((await runCli(home, ["jobs", "apply", jobs])).exitCode).toBe(0);
  agent = startAgent(home, "agent");
  await agent.waitForLog(/ running: /);
  const triggered = runCli(home, ["jobs", "trigger", "Slow export"]);
  await eventually(() => sink.deliveries.some((d) => d.path === "/slow"), 15_000, "the slow request to arrive");
  agent.proc.kill("SIGTERM");
  await agent.waitForLog(/stopping: waiting for 1 running attempt\(s\) \(Slow export @ \S+\); (19|20) s left before they are aborted \(shutdown_timeout_sec\)/, 5000);
  await agent.waitForLog(/stopping: waiting for 1 running attempt\(s\) \(Slow export @ \S+\); 1[45] s left/, 8000);
  expect(await agent.proc.exited).toBe(0);
  expect(agent.log()).toContain("stopped (SIGTERM)");
  expect((await triggered).exitCode).toBe(0);
}, 60_000);
