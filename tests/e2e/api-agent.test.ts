import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { join } from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import { ROUTES } from "../../src/api/router.ts";
import { eventually, makeHome, runCli, startAgent, type AgentProcess, type TestHome } from "../support/cli.ts";
import { startSink, type Sink } from "../support/sink.ts";

/**
 * Issue 15 with a real agent process: the API by role on every endpoint, a PUT that writes
 * nothing when invalid, PUT then trigger reaching the sink and `GET /runs`, the OpenAPI document,
 * `fleetcron audit` naming the CLI's and the API's changes, and the refusal to serve the network
 * without tokens.
 */
const TOKENS = { read: "e2e-read-token-0123456789", operate: "e2e-operate-token-0123456789", admin: "e2e-admin-token-0123456789" } as const;
const SECRET = "e2e-secret-value-8d1f0c";

let sink: Sink;
let home: TestHome;
let agent: AgentProcess;
let base: string;

async function api(method: string, path: string, token?: string, body?: unknown) {
  const res = await fetch(`${base}api/v1${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : null };
}

beforeAll(async () => {
  sink = startSink();
  home = makeHome(
    {
      http_port: 0,
      heartbeat_sec: 1,
      dead_after_sec: 3,
      failover_step_sec: 1,
      secrets: { SINK: sink.url, KEY: SECRET },
      api_tokens: Object.fromEntries(Object.entries(TOKENS).map(([role, token]) => [`${role}-e2e`, { token, role }])),
    },
    "fleetcron-api-agent",
  );
  writeFileSync(join(home.dir, "jobs.json"), JSON.stringify([{ name: "From CLI", every: "1h", url: "{{SINK}}/cli", headers: { "x-key": "{{KEY}}" } }]));
  expect((await runCli(home, ["jobs", "apply", join(home.dir, "jobs.json")])).exitCode).toBe(0);
  agent = startAgent(home, "api");
  await agent.waitForLog(/http: status page http:\/\/127\.0\.0\.1:\d+\//);
  base = /http: status page (http:\/\/127\.0\.0\.1:\d+\/)/.exec(agent.log())![1]!;
}, 60_000);

afterAll(async () => {
  if (agent) expect(await agent.stop()).toBe(0);
  await sink?.stop();
  home?.cleanup();
});

test("PUT of an invalid job: 422 naming each bad field, nothing written", async () => {
  const res = await api("PUT", "/jobs/Bad%20one", TOKENS.admin, { every: "whenever", url: "{{MISSING}}/x", timeout_sec: 0 });
  expect(res.status).toBe(422);
  expect((res.body.problems as { path: string }[]).map((p) => p.path).sort()).toEqual(["every", "timeout_sec", "url"]);
  const jobs = JSON.parse((await runCli(home, ["jobs", "list", "--json"])).stdout).jobs as { name: string }[];
  expect(jobs.map((j) => j.name)).toEqual(["From CLI"]);
});

test("PUT then POST trigger: the run reaches the sink and appears in GET /runs, under the agent's machine id", async () => {
  const put = await api("PUT", "/jobs/From%20API", TOKENS.admin, { every: "1h", url: "{{SINK}}/api", method: "POST", body: { k: "{{KEY}}" } });
  expect(put.status).toBe(201);
  const trigger = await api("POST", "/jobs/From%20API/trigger", TOKENS.operate);
  expect(trigger.status).toBe(202);
  const id = trigger.body.run._id as string;
  await eventually(async () => (await api("GET", `/runs/${encodeURIComponent(id)}`, TOKENS.read)).body.status === "success", 15_000, "the triggered run to succeed");
  const runs = (await api("GET", "/runs?job=From%20API", TOKENS.read)).body.runs as { _id: string; trigger: string; machine_id: string }[];
  expect(runs.map((r) => [r._id, r.trigger])).toEqual([[id, "manual"]]);
  const machine = (await api("GET", "/machines", TOKENS.read)).body.machines[0].machine_id;
  expect(runs[0]!.machine_id).toBe(machine);
  expect(sink.deliveries.filter((d) => d.runId === id).map((d) => [d.path, d.body])).toEqual([["/api", JSON.stringify({ k: SECRET })]]);
  // The CLI reads the same store: the change made over HTTP is the fleet's.
  const cliRuns = JSON.parse((await runCli(home, ["runs", "--json", "--job", "From API"])).stdout).runs as { _id: string }[];
  expect(cliRuns.map((r) => r._id)).toEqual([id]);
}, 30_000);

test("401/403/200 by role on every endpoint of the real agent", async () => {
  const runId = (await api("GET", "/runs?limit=1", TOKENS.read)).body.runs[0]._id as string;
  const rank = { read: 0, operate: 1, admin: 2 } as const;
  for (const route of ROUTES) {
    if (route.operationId === "deleteJob" || route.operationId === "triggerJob") continue; // covered above and below, without side effects here
    const path = route.path.replace("{name}", "From%20CLI").replace("{id}", encodeURIComponent(runId));
    const body = route.operationId === "putJob" ? { every: "1h", url: "{{SINK}}/cli", headers: { "x-key": "{{KEY}}" } } : route.operationId === "backfillJob" ? { from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", dry_run: true } : undefined;
    if (route.role === null) {
      expect((await api(route.method, path)).status).toBe(200);
      continue;
    }
    expect([route.operationId, (await api(route.method, path, undefined, body)).status]).toEqual([route.operationId, 401]);
    for (const role of ["read", "operate", "admin"] as const) {
      const status = (await api(route.method, path, TOKENS[role], body)).status;
      // Retrying a run that succeeded is refused with the reason (409); everything else allowed succeeds.
      const expected = rank[role] < rank[route.role] ? 403 : route.operationId === "retryRun" ? 409 : 200;
      expect([route.operationId, role, status]).toEqual([route.operationId, role, expected]);
    }
  }
  expect((await api("POST", "/jobs/From%20API/trigger", TOKENS.read)).status).toBe(403);
  expect((await api("DELETE", "/jobs/From%20API", TOKENS.operate)).status).toBe(403);
  const deleted = await api("DELETE", "/jobs/From%20API", TOKENS.admin);
  expect([deleted.status, deleted.body.deleted]).toEqual([200, true]);
  // /metrics and the page need a read token; /healthz does not.
  expect((await fetch(`${base}metrics`)).status).toBe(401);
  expect((await fetch(`${base}metrics`, { headers: { authorization: `Bearer ${TOKENS.read}` } })).status).toBe(200);
  expect((await fetch(`${base}healthz`)).status).toBe(200);
}, 60_000);

test("the served OpenAPI document validates", async () => {
  const doc = (await api("GET", "/openapi.json")).body;
  const result = await new Validator().validate(doc);
  expect(result.errors ?? []).toEqual([]);
  expect(result.valid).toBe(true);
});

test("`fleetcron audit` lists the CLI's and the API's changes with their actors; no secret anywhere", async () => {
  const out = await runCli(home, ["audit", "--json"]);
  expect(out.exitCode).toBe(0);
  const entries = JSON.parse(out.stdout).entries as { actor: string; via: string; action: string; job: string }[];
  const me = `${userInfo().username}@${hostname()}`;
  expect(entries.map((e) => [e.action, e.job, e.actor, e.via]).reverse()).toEqual([
    ["create", "From CLI", me, "cli"],
    ["create", "From API", "admin-e2e", "api"],
    ["trigger", "From API", "operate-e2e", "api"],
    // The role sweep: the first enable writes `enabled: true` (the CLI's document had none), the second changes nothing.
    ["enable", "From CLI", "operate-e2e", "api"],
    ["disable", "From CLI", "operate-e2e", "api"],
    // Pause twice (each a change of the note and the actor), resume once (the second finds it running).
    ["pause", "From CLI", "operate-e2e", "api"],
    ["pause", "From CLI", "admin-e2e", "api"],
    ["resume", "From CLI", "operate-e2e", "api"],
    ["delete", "From API", "admin-e2e", "api"],
  ]);
  expect(out.stdout).not.toContain(SECRET);
  const human = await runCli(home, ["audit", "--job", "From API"]);
  expect(human.stdout).toMatch(/WHEN \(UTC\)\s+ACTOR\s+VIA\s+ACTION\s+JOB/);
  expect(human.stdout).toContain("operate-e2e");
  for (const path of ["/jobs", "/runs?limit=100", "/audit?limit=100"]) expect((await api("GET", path, TOKENS.admin)).text).not.toContain(SECRET);
});

test("an agent with http_host off loopback and no api_tokens refuses to start and says what to add", async () => {
  const open = makeHome({ http_port: 0, http_host: "0.0.0.0" }, "fleetcron-api-open");
  try {
    const out = await runCli(open, ["run"]);
    expect(out.exitCode).toBe(2);
    expect(out.stderr).toContain('http_host "0.0.0.0" is not a loopback address and no api_tokens are configured');
    expect(out.stderr).toContain('"api_tokens": {"ops": {"token"');
  } finally {
    open.cleanup();
  }
});
