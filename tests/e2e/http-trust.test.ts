/**
 * Issue 13's done-when, with a real agent and local sinks on 127.0.0.1: signed requests checked by
 * the three shipped verifiers (docs/verify/), OAuth2 tokens cached per agent, step outputs that
 * cannot hijack a request, redirects by origin, and a run deadline. One agent runs every job for a
 * few seconds; the assertions then read what the sinks saw and what `runs --json` recorded.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { makeHome, runCli, startAgent, type TestHome } from "../support/cli.ts";

const VERIFY = resolve(import.meta.dir, "../../docs/verify");
const KEY = "api-key-Vf83-secret-header";
const NEW_KEY = { id: "k2", secret: "new-signing-secret-7d1a9c" };
const OLD_KEY = { id: "k1", secret: "old-signing-secret-3b62e0" };

interface Seen {
  at: number;
  method: string;
  target: string;
  headers: Record<string, string>;
  body: string;
}

const seenA: Seen[] = [];
const seenB: Seen[] = [];
let tokenCalls: Record<string, number> = {};
let issued = 0;
let revoked = new Set<string>();
let home: TestHome;
let runs: { job_name: string; status: string; error?: string; reason?: string; started_at: string; finished_at?: string; steps?: { name: string; error?: string; redirects?: string[]; status: string }[] }[] = [];

function record(list: Seen[], req: Request, body: string): void {
  const url = new URL(req.url);
  list.push({ at: Date.now(), method: req.method, target: url.pathname + url.search, headers: Object.fromEntries(req.headers), body });
}

let a: ReturnType<typeof Bun.serve>;
let b: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  b = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      record(seenB, req, await req.text());
      return new Response("b");
    },
  });
  a = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 30,
    async fetch(req) {
      const url = new URL(req.url);
      const body = await req.text();
      if (url.pathname === "/token") {
        const form = new URLSearchParams(body);
        const [id] = Buffer.from((req.headers.get("authorization") ?? "Basic ").slice(6), "base64").toString().split(":");
        const client = id || form.get("client_id") || "?";
        tokenCalls[client] = (tokenCalls[client] ?? 0) + 1;
        return Response.json({ access_token: `tok-${client}-${++issued}`, token_type: "Bearer", expires_in: client === "short" ? 2 : 3600 });
      }
      record(seenA, req, body);
      switch (url.pathname) {
        case "/api": {
          const token = (req.headers.get("authorization") ?? "").replace(/^Bearer /, "");
          // The fourth call revokes the token it carries: the agent must fetch another, once.
          if (seenA.filter((s) => s.target === "/api").length === 4) revoked.add(token);
          return token.startsWith("tok-") && !revoked.has(token) ? new Response("ok") : new Response("bad token", { status: 401 });
        }
        case "/evil":
          return Response.json({ v: "x&admin=1/../y", crlf: "a\r\nX-Injected: 1" });
        case "/cross":
          return new Response(null, { status: 302, headers: { location: `http://127.0.0.1:${b.port}/landed` } });
        case "/slow":
          await Bun.sleep(2000);
          return new Response("busy", { status: 503 });
        default:
          return new Response("ok");
      }
    },
  });
  const sink = `http://127.0.0.1:${a.port}`;
  home = makeHome(
    { tz: "UTC", heartbeat_sec: 0.5, dead_after_sec: 2, failover_step_sec: 1, secrets: { KEY: { value: KEY, hosts: ["127.0.0.1"] }, CLIENT_SECRET: "client-secret-Qp20" }, vars: { SINK: sink }, signing_keys: [NEW_KEY, OLD_KEY] },
    "fleetcron-http-trust",
  );
  const auth = (client: string) => ({ type: "oauth2_client_credentials", token_url: "{{SINK}}/token", client_id: client, client_secret: "{{CLIENT_SECRET}}" });
  const jobs = [
    { name: "signed", every: "1s", method: "POST", url: "{{SINK}}/signed?x=1&y=two%20words", body: { hello: "wörld" } },
    { name: "unsigned", every: "1s", url: "{{SINK}}/unsigned", sign: false },
    { name: "oauth", every: "1s", url: "{{SINK}}/api", auth: auth("long") },
    { name: "oauth-expiring", every: "1s", url: "{{SINK}}/short", auth: auth("short") },
    { name: "encode", every: "1s", actions: [{ name: "get", url: "{{SINK}}/evil" }, { name: "land", url: "{{SINK}}/land?q={{steps.get.json.v}}" }] },
    { name: "crlf", every: "1s", actions: [{ name: "get", url: "{{SINK}}/evil" }, { name: "hdr", url: "{{SINK}}/hdr", headers: { "X-V": "{{steps.get.json.crlf}}" } }] },
    { name: "cross-default", every: "1s", url: "{{SINK}}/cross", headers: { "X-Api-Key": "{{KEY}}" } },
    { name: "cross-any", every: "1s", url: "{{SINK}}/cross", follow_redirects: "any", headers: { "X-Api-Key": "{{KEY}}", "X-Plain": "plain" } },
    { name: "deadline", every: "5s", url: "{{SINK}}/slow", deadline_sec: 3, timeout_sec: 10, retry: { retries: 5, delay_sec: 0 } },
  ];
  const file = join(home.dir, "jobs.json");
  writeFileSync(file, JSON.stringify(jobs));
  const applied = await runCli(home, ["jobs", "apply", file]);
  expect(applied.stderr + applied.stdout).not.toContain("error");
  expect(applied.exitCode).toBe(0);

  const agent = startAgent(home, "agent");
  await agent.waitForLog(/ running: /);
  // 6.5 s of every-second jobs, and until the deadline job (every 5 s, 3 s long) has ended once.
  const started = Date.now();
  while (Date.now() - started < 40_000) {
    await Bun.sleep(500);
    if (Date.now() - started < 6500) continue;
    const listed = JSON.parse((await runCli(home, ["runs", "--json", "--limit", "500"])).stdout).runs as typeof runs;
    if (listed.some((r) => r.job_name === "deadline" && r.status !== "running")) break;
  }
  expect(await agent.stop("SIGTERM")).toBe(0);
  runs = JSON.parse((await runCli(home, ["runs", "--json", "--limit", "500"])).stdout).runs;
}, 60_000);

afterAll(async () => {
  await a?.stop(true);
  await b?.stop(true);
  home?.cleanup();
});

const finished = (job: string) => runs.filter((r) => r.job_name === job && r.status !== "running");

test("jobs validate and jobs apply refuse a job that would send a bound secret to another host", async () => {
  const file = join(home.dir, "steal.json");
  writeFileSync(file, JSON.stringify([{ name: "steal", every: "1m", url: "http://collector.invalid/x", headers: { "X-Api-Key": "{{KEY}}" } }]));
  for (const command of ["validate", "apply"]) {
    const result = await runCli(home, ["jobs", command, file]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr + result.stdout).toContain('job "steal" › headers.X-Api-Key: would send secret "KEY" to "collector.invalid", but secrets.KEY.hosts allows only "127.0.0.1"');
  }
  expect(JSON.parse((await runCli(home, ["jobs", "list", "--json"])).stdout).jobs.map((j: { name: string }) => j.name)).not.toContain("steal");
});

describe("signed requests: the shipped verifiers check what the agent really sent", () => {
  const goBinary = join(mkdtempSync(join(tmpdir(), "fc-verify-")), "verify");
  const verifiers: Record<string, () => string[]> = {
    node: () => ["node", join(VERIFY, "verify.mjs")],
    python: () => ["python3", join(VERIFY, "verify.py")],
    go: () => [goBinary],
  };

  beforeAll(() => {
    const built = Bun.spawnSync(["go", "build", "-o", goBinary, join(VERIFY, "verify.go")], { stderr: "pipe", env: { ...process.env, GOFLAGS: "-mod=mod" } });
    if (built.exitCode !== 0) throw new Error(`go build of docs/verify/verify.go failed: ${built.stderr.toString()}`);
    // With a cold Go build cache (a fresh CI machine) the build alone takes longer than the 5 s default.
  }, 180_000);

  function verify(which: string, req: Seen, overrides: Record<string, unknown> = {}): string {
    const input = { method: req.method, target: req.target, body: req.body, signature: req.headers["fleetcron-signature"] ?? "", keys: { [NEW_KEY.id]: NEW_KEY.secret, [OLD_KEY.id]: OLD_KEY.secret }, ...overrides };
    const proc = Bun.spawnSync(verifiers[which]!(), { stdin: Buffer.from(JSON.stringify(input)), stdout: "pipe", stderr: "pipe" });
    return `${proc.exitCode} ${proc.stdout.toString().trim()}${proc.stderr.toString().trim()}`;
  }

  test("every request of a signing agent carries the header; sign: false leaves it out", () => {
    const signed = seenA.filter((s) => s.target.startsWith("/signed"));
    expect(signed.length).toBeGreaterThanOrEqual(3);
    for (const s of signed) expect(s.headers["fleetcron-signature"]).toMatch(/^t=\d+,kid=k2,v1=[0-9a-f]{64}$/);
    const unsigned = seenA.filter((s) => s.target === "/unsigned");
    expect(unsigned.length).toBeGreaterThan(0);
    expect(unsigned.every((s) => s.headers["fleetcron-signature"] === undefined)).toBe(true);
  });

  for (const which of ["node", "python", "go"]) {
    test(`${which}: accepts real requests, rejects a wrong key, a changed body, an old timestamp`, () => {
      const req = seenA.find((s) => s.target.startsWith("/signed"))!;
      expect(req.target).toBe("/signed?x=1&y=two%20words");
      const t = Number(/t=(\d+)/.exec(req.headers["fleetcron-signature"]!)![1]);
      expect(verify(which, req)).toBe("0 ok");
      expect(verify(which, req, { keys: { k2: "not-the-secret" } })).toBe("1 rejected: signature does not match");
      // Rotation: a receiver that knows only the old key cannot check the new key's signature.
      expect(verify(which, req, { keys: { k1: OLD_KEY.secret } })).toBe('1 rejected: unknown key id "k2"');
      expect(verify(which, req, { body: req.body.replace("w", "W") })).toBe("1 rejected: signature does not match");
      expect(verify(which, req, { target: "/signed?x=2&y=two%20words" })).toBe("1 rejected: signature does not match");
      expect(verify(which, req, { now: t + 301 })).toStartWith("1 rejected: timestamp");
      expect(verify(which, req, { now: t + 299 })).toBe("0 ok");
    });
  }
});

describe("OAuth2 client credentials", () => {
  test("one token for at least five runs; fetched again after a 401 (the run still succeeds) and after expiry", () => {
    const ok = finished("oauth");
    expect(ok.length).toBeGreaterThanOrEqual(5);
    expect(ok.every((r) => r.status === "success")).toBe(true);
    // Once at first, once after the fourth call's 401.
    expect(tokenCalls.long).toBe(2);
    expect(seenA.filter((s) => s.target === "/api").length).toBe(ok.length + 1);
    // expires_in 2 s: renewed before it runs out, every couple of seconds.
    expect(finished("oauth-expiring").length).toBeGreaterThanOrEqual(5);
    expect(tokenCalls.short).toBeGreaterThanOrEqual(2);
    expect(tokenCalls.short).toBeLessThan(finished("oauth-expiring").length);
  });
});

describe("templates and redirects", () => {
  test("a step output of x&admin=1/../y arrives percent-encoded", () => {
    const landed = seenA.filter((s) => s.target.startsWith("/land"));
    expect(landed.length).toBeGreaterThan(0);
    expect(landed[0]!.target).toBe("/land?q=x%26admin%3D1%2F..%2Fy");
  });

  test("a header value with CR/LF is refused with a clear error", () => {
    const failed = finished("crlf");
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0]!.status).toBe("error");
    expect(failed[0]!.error).toContain("{{steps.get.json.crlf}} holds a CR or LF");
    expect(seenA.some((s) => s.target === "/hdr")).toBe(false);
  });

  test("a cross-origin redirect fails by default; with any it lands without the secret header", () => {
    const refused = finished("cross-default");
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]!.error).toContain(`redirected to http://127.0.0.1:${b.port}/landed, another origin`);
    expect(refused[0]!.error).toContain('follow_redirects is "same-origin"');
    const landed = seenB.filter((s) => s.target === "/landed");
    expect(landed.length).toBe(finished("cross-any").length);
    expect(landed.length).toBeGreaterThan(0);
    for (const s of landed) {
      expect(s.headers["x-api-key"]).toBeUndefined();
      expect(s.headers["x-plain"]).toBe("plain");
    }
    expect(finished("cross-any")[0]!.steps![0]!.redirects).toEqual([`HTTP 302 → http://127.0.0.1:${b.port}/landed (another origin: dropped x-api-key)`]);
  });
});

describe("run deadline", () => {
  test("a 3 s deadline stops a run that retries a 2 s target 5 times within ~3 s", () => {
    const run = finished("deadline").at(-1); // newest first: the earliest finished run
    expect(run).toBeDefined();
    expect(run!.status).toBe("error");
    expect(run!.reason).toBe("deadline");
    const took = Date.parse(run!.finished_at!) - Date.parse(run!.started_at);
    expect(took).toBeGreaterThanOrEqual(2900);
    expect(took).toBeLessThan(4000);
    // The first attempt (2 s) and the retry cut off at 3 s: no third (a later run may have begun).
    const during = seenA.filter((s) => s.target === "/slow" && s.at >= Date.parse(run!.started_at) - 100 && s.at <= Date.parse(run!.finished_at!) + 100);
    expect(during.length).toBe(2);
  });
});
