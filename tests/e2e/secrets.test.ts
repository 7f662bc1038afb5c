import { afterAll, beforeAll, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeHome, runCli, startAgent, type CliResult, type TestHome } from "../support/cli.ts";

/**
 * Secret values never appear in run records, logs or `--json` output. Every path that
 * records or logs runs here with distinctive secrets in headers, URL, body and the MongoDB URI
 * password; then every output and the store file itself are searched for them, and so are the
 * agent's /healthz, /metrics and status page (`http_port`). The agent itself must have fired
 * scheduled occurrences, not only the CLI's triggers, so the agent's own paths are covered.
 */
const SECRETS = { TOKEN: "tok-9f8e7d6c5b4a3921", PATH_KEY: "pk-1a2b3c4d5e6f7081", BODY_KEY: "bk-0z9y8x7w6v5u4t31" };
const MONGO_PASSWORD = "mongo-pw-5d4c3b2a1908";
const outputs: { what: string; text: string }[] = [];
let home: TestHome;
let server: ReturnType<typeof Bun.serve>;
let flaky = 0;

beforeAll(() => {
  // Echoes what it was sent, so secrets come back in response bodies and error texts too.
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const echo = JSON.stringify({ path: url.pathname, auth: req.headers.get("authorization"), body: await req.text() });
      if (url.pathname.startsWith("/hang")) return new Promise<Response>(() => {});
      if (url.pathname.startsWith("/fail")) return new Response(echo, { status: 500 });
      if (url.pathname.startsWith("/flaky") && flaky++ % 2 === 0) return new Response(echo, { status: 503 });
      if (url.pathname.startsWith("/redirect")) return Response.redirect(`${url.origin}/redirect/${SECRETS.PATH_KEY}`, 302);
      return new Response(echo, { status: 200, headers: { "content-type": "application/json" } });
    },
  });
  home = makeHome({ tz: "UTC", heartbeat_sec: 0.5, dead_after_sec: 2, lease_sec: 3, failover_step_sec: 1, log_level: "debug", http_port: 0, secrets: { ...SECRETS, SINK: `http://127.0.0.1:${server.port}` } }, "fleetcron-secrets");
});

afterAll(async () => {
  await server.stop(true);
  home.cleanup();
});

function request(path: string, extra: Record<string, unknown> = {}) {
  return {
    method: "POST",
    url: `{{SINK}}/${path}/{{PATH_KEY}}?token={{TOKEN}}`,
    headers: { Authorization: "Bearer {{TOKEN}}", "X-Body-Key": "{{BODY_KEY}}" },
    body: { secret: "{{BODY_KEY}}", token: "{{TOKEN}}" },
    timeout_sec: 0.5,
    ...extra,
  };
}

async function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
  const result = await runCli(home, args, extraEnv);
  outputs.push({ what: `fleetcron ${args.join(" ")}`, text: result.stdout + result.stderr });
  return result;
}

test("no secret value in any output, log or stored document", async () => {
  const jobs = [
    { name: "ok", every: "1s", ...request("ok") },
    { name: "fail", every: "1s", ...request("fail"), on_failure: [{ type: "http", name: "notify", method: "POST", url: "{{SINK}}/ok/notify?k={{TOKEN}}", body: "failed: {{steps.fail.body}}" }] },
    { name: "timeout", every: "1s", ...request("hang") },
    { name: "retry", every: "1s", ...request("flaky", { retry: { retries: 2, delay_sec: 0.05 } }) },
    { name: "redirect", every: "1s", ...request("redirect") },
    {
      name: "chain",
      every: "1s",
      actions: [
        { type: "http", name: "first", ...request("ok") },
        { type: "http", name: "second", method: "POST", url: "{{SINK}}/ok/second", body: "{{steps.first.body}} {{steps.first.json.auth}}" },
      ],
    },
  ];
  const file = join(home.dir, "jobs.json");
  writeFileSync(file, JSON.stringify(jobs));
  expect((await cli(["jobs", "validate", file, "--json"])).exitCode).toBe(0);
  expect((await cli(["jobs", "apply", file, "--json"])).exitCode).toBe(0);

  // A validation error next to secrets.
  const badFile = join(home.dir, "bad.json");
  writeFileSync(badFile, JSON.stringify([{ name: "bad", every: "1s", ...request("ok"), url: `{{SINK}}/{{PATH_KEY}}/{{UNKNOWN}}`, timeout_sec: "x" }]));
  expect((await cli(["jobs", "validate", badFile, "--json"])).exitCode).toBe(1);
  expect((await cli(["jobs", "validate", badFile])).exitCode).toBe(1);

  for (const name of ["ok", "fail", "timeout", "retry", "redirect", "chain"]) await cli(["jobs", "trigger", name, "--json"]);

  const agent = startAgent(home, "agent");
  await agent.waitForLog(/ running: /);
  await Bun.sleep(3500);
  // The agent's HTTP pages, read while it has run and failed jobs: they must not show secrets either.
  const page = /http: status page (http:\/\/127\.0\.0\.1:\d+\/)/.exec(agent.log())?.[1];
  expect(page).toBeDefined();
  for (const path of ["", "metrics", "healthz", "index.html"]) {
    const res = await fetch(`${page}${path}`);
    expect(`${path} ${res.status}`).toBe(`${path} 200`);
    outputs.push({ what: `GET /${path}`, text: await res.text() });
  }
  expect(outputs.find((o) => o.what === "GET /metrics")!.text).toContain("fleetcron_");
  const second = await cli(["run"]); // a second agent on the same home: the lock error path
  expect(second.exitCode).toBe(1);
  expect(second.stderr).toContain("already running");
  expect(await agent.stop("SIGTERM")).toBe(0);
  outputs.push({ what: "agent log", text: agent.log() });

  for (const args of [["runs", "--json", "--limit", "500"], ["runs", "--limit", "500"], ["jobs", "list", "--json"], ["jobs", "show", "fail", "--json"], ["jobs", "show", "chain"], ["status", "--json"], ["status"], ["machines", "--json"], ["config", "check", "--json"]]) {
    expect((await cli(args)).exitCode).toBe(0);
  }

  // The store unreachable, with a password in its URI.
  const mongoConfig = join(home.dir, "mongo.json");
  writeFileSync(mongoConfig, JSON.stringify({ mongodb_uri: `mongodb://fleet:${MONGO_PASSWORD}@127.0.0.1:9/?serverSelectionTimeoutMS=500&connectTimeoutMS=500`, secrets: SECRETS }), { mode: 0o600 });
  const storeDown = await cli(["--config", mongoConfig, "config", "check"]);
  expect(storeDown.exitCode).not.toBe(0);
  await cli(["--config", mongoConfig, "status", "--json"]);

  // The runs really happened, with failures, retries and timeouts among them, and the agent fired
  // scheduled occurrences of every job itself (the triggers above are the CLI's, not the agent's).
  const runs = JSON.parse((await runCli(home, ["runs", "--json", "--limit", "500"])).stdout).runs as { job_name: string; status: string; trigger: string; steps?: { attempts: number }[] }[];
  const scheduled = runs.filter((r) => r.trigger === "schedule");
  for (const name of ["ok", "fail", "timeout", "retry", "redirect", "chain"]) expect(`${name}: ${scheduled.filter((r) => r.job_name === name && r.status !== "running").length > 0}`).toBe(`${name}: true`);
  expect(scheduled.some((r) => r.job_name === "ok" && r.status === "success")).toBe(true);
  expect(scheduled.some((r) => r.job_name === "fail" && r.status === "error")).toBe(true);
  expect(scheduled.some((r) => r.job_name === "chain" && r.status === "success")).toBe(true);
  expect(runs.some((r) => r.job_name === "ok" && r.status === "success")).toBe(true);
  expect(runs.some((r) => r.job_name === "fail" && r.status === "error")).toBe(true);
  expect(runs.some((r) => r.job_name === "timeout" && r.status === "error")).toBe(true);
  expect(runs.some((r) => r.job_name === "retry" && (r.steps?.[0]?.attempts ?? 0) > 1)).toBe(true);

  const stored = readdirSync(home.home)
    .filter((f) => f.startsWith("fleetcron.db"))
    .map((f) => ({ what: `store file ${f}`, text: readFileSync(join(home.home, f)).toString("latin1") }));
  const everything = [...outputs, ...stored];
  expect(everything.length).toBeGreaterThan(20);
  const leaks = everything.flatMap(({ what, text }) =>
    [...Object.values(SECRETS), MONGO_PASSWORD].filter((secret) => text.includes(secret) || text.includes(encodeURIComponent(secret))).map((secret) => `${secret} in ${what}`),
  );
  expect(leaks).toEqual([]);
  // Redaction did happen: responses echoing the secrets were recorded masked.
  expect(stored.some(({ text }) => text.includes("***"))).toBe(true);
}, 120_000);
