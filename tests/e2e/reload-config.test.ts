import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, makeHome, runCli, startAgent, type AgentProcess, type TestHome } from "../support/cli.ts";
import { startSink, type Sink } from "../support/sink.ts";

/**
 * `reload-config` with a real agent: it logs what changed and what needs a restart, applies
 * `log_level` at once, and keeps `http_port` (its server keeps listening where it was).
 */
let home: TestHome;
let agent: AgentProcess;
let sink: Sink;

afterAll(async () => {
  await agent?.stop("SIGKILL");
  await sink?.stop();
  home?.cleanup();
});

test("reload-config says what it applied and what needs a restart, and a new log_level takes effect at once", async () => {
  sink = startSink();
  const config = { tz: "UTC", heartbeat_sec: 1, dead_after_sec: 4, failover_step_sec: 1, http_port: 0, log_level: "info", secrets: { SINK: sink.url, TOKEN: "first-token" } };
  home = makeHome(config, "fleetcron-reload-config");
  const jobs = join(home.dir, "jobs.json");
  writeFileSync(jobs, JSON.stringify([{ name: "tick", every: "1s", url: "{{SINK}}/tick" }]));
  expect((await runCli(home, ["jobs", "apply", jobs])).exitCode).toBe(0);
  agent = startAgent(home, "agent");
  await agent.waitForLog(/http: status page (http:\/\/\S+)/);
  const pageUrl = /http: status page (http:\/\/[^\s,]+)/.exec(agent.log())![1]!;
  await agent.waitForLog(/tick @ .*: success/);

  writeFileSync(home.configPath, JSON.stringify({ ...config, http_port: 1, log_level: "warn", tz: "Asia/Seoul", secrets: { SINK: sink.url, TOKEN: "second-token" } }), { mode: 0o600 });
  const sent = await runCli(home, ["reload-config", "--wait", "--timeout", "10"]);
  expect(sent.exitCode).toBe(0);
  await agent.waitForLog("a restart; the running agent keeps");
  const log = agent.log();
  expect(log).toContain('reload-config: applied log_level ("info" → "warn"), secrets (1 changed: TOKEN; values not shown), tz ("UTC" → "Asia/Seoul")');
  expect(log).toContain("reload-config: http_port (0 → 1) needs a restart; the running agent keeps the values it started with");
  expect(log).not.toContain("first-token");
  expect(log).not.toContain("second-token");
  // warn: the every-second job's success lines stop; the server still answers on its old port.
  const linesAfter = () => agent.log().split("\n").slice(log.split("\n").length).filter((l) => l.includes("tick @"));
  const deliveredBefore = sink.deliveries.length;
  await eventually(() => sink.deliveries.length >= deliveredBefore + 3, 10_000, "three more deliveries");
  expect(linesAfter()).toEqual([]);
  expect((await fetch(`${pageUrl}healthz`)).status).toBe(200);
}, 60_000);
