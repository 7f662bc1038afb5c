import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { runChain, type ChainOptions } from "../../src/executor/chain.ts";
import type { HttpAction } from "../../src/jobs/types.ts";
import type { StepRecord } from "../../src/store/types.ts";

interface Seen {
  method: string;
  path: string;
  search: string;
  headers: Headers;
  body: string;
}

const SECRET = "zq9-VERY-distinctive-s3cret-XK";
let server: Server<undefined>;
let base: string;
let seen: Seen[] = [];
const counters = new Map<string, number>();

beforeAll(() => {
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const body = await req.text();
      seen.push({ method: req.method, path: url.pathname, search: url.search, headers: req.headers, body });
      const hit = (counters.get(url.pathname) ?? 0) + 1;
      counters.set(url.pathname, hit);
      const q = url.searchParams;
      switch (url.pathname) {
        case "/login":
          return Response.json({ token: "tok-abc", user: { id: 42 } }, { status: 201 });
        case "/ok":
          return new Response("fine");
        case "/status":
          return new Response(`status ${q.get("code")}`, {
            status: Number(q.get("code")),
            headers: q.has("after") ? { "Retry-After": q.get("after")! } : {},
          });
        case "/flaky": // 503 until the Nth hit
          return hit < Number(q.get("until")) ? new Response("busy", { status: 503 }) : new Response("done");
        case "/echo": // reflects everything it was sent, secrets included
          return new Response(`url=${req.url} auth=${req.headers.get("authorization")} body=${body}`, { status: Number(q.get("code") ?? 200) });
        case "/hang":
          return new Promise<Response>(() => {});
        case "/loop":
          return new Response(null, { status: 302, headers: { location: "/loop" } });
        case "/big": {
          const chunk = new TextEncoder().encode("y".repeat(64 * 1024));
          let sent = 0;
          return new Response(
            new ReadableStream({
              pull(c) {
                if (sent >= 50 * 1024 * 1024) return c.close();
                c.enqueue(chunk);
                sent += chunk.byteLength;
              },
            }),
          );
        }
        case "/cut-secret": // the secret straddles the response cap
          return new Response("a".repeat(90) + SECRET + "b".repeat(100));
        default:
          return new Response("not found", { status: 404 });
      }
    },
  });
  base = `http://127.0.0.1:${server.port}`;
});

afterAll(() => server.stop(true));
beforeEach(() => {
  seen = [];
  counters.clear();
});

const action = (name: string, path: string, extra: Partial<HttpAction> = {}): HttpAction => ({
  type: "http",
  name,
  method: "GET",
  url: base + path,
  headers: {},
  timeout_sec: 5,
  retry: { retries: 0, delay_sec: 1, backoff: 2, max_delay_sec: 60, jitter: 0 },
  expect_status: [],
  continue_on_failure: false,
  ...extra,
});

function options(extra: Partial<ChainOptions> = {}) {
  const sleeps: number[] = [];
  const opts: ChainOptions = {
    runId: "job-1:2025-03-09T14:30:00.000Z",
    attempt: 3,
    scheduledFor: Date.parse("2025-03-09T14:30:00Z"),
    jobName: "nightly sync",
    machineId: "machine-a",
    secrets: { API_TOKEN: SECRET, BASE: base },
    userAgent: "FleetCron/test",
    // Sunday 10:30 local
    wall: { year: 2025, month: 3, day: 9, hour: 10, minute: 30, second: 0, weekday: 0 },
    signal: new AbortController().signal,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    rand: () => 0.5,
    ...extra,
  };
  return { opts, sleeps };
}

describe("runChain", () => {
  test("steps run in order; outputs and built-ins feed later steps", async () => {
    const { opts } = options();
    const result = await runChain(
      [
        action("login", "/login", { method: "POST", expect_status: [201] }),
        action("use", "/ok", {
          method: "POST",
          url: "{{BASE}}/ok?run={{run_id}}&m={{machine_id}}",
          headers: { Authorization: "Bearer {{steps.login.json.token}}" },
          body: { user: "{{steps.login.json.user.id}}", was: "{{steps.login.status}}", job: "{{job.name}}", at: "{{scheduled_for}}", attempt: "{{attempt}}" },
        }),
      ],
      opts,
    );
    expect(result.status).toBe("success");
    expect(result.steps.map((s) => [s.name, s.status, s.http_status, s.attempts])).toEqual([
      ["login", "success", 201, 1],
      ["use", "success", 200, 1],
    ]);
    const use = seen[1]!;
    expect(use.headers.get("authorization")).toBe("Bearer tok-abc");
    expect(new URLSearchParams(use.search).get("run")).toBe(opts.runId);
    expect(new URLSearchParams(use.search).get("m")).toBe("machine-a");
    expect(JSON.parse(use.body)).toEqual({ user: "42", was: "201", job: "nightly sync", at: "2025-03-09T14:30:00.000Z", attempt: "3" });
    expect(result.outputs.login?.json).toEqual({ token: "tok-abc", user: { id: 42 } });
    expect(result.steps[1]!.response).toBe("fine");
  });

  test("every request of the chain carries the run id headers", async () => {
    const { opts } = options();
    await runChain([action("a", "/ok"), action("b", "/ok")], opts);
    // Both steps reached the server, once each: the checks below cannot pass on an empty list.
    expect(seen.map((s) => s.path)).toEqual(["/ok", "/ok"]);
    for (const s of seen) {
      expect(s.headers.get("idempotency-key")).toBe(opts.runId);
      expect(s.headers.get("x-fleetcron-run-id")).toBe(opts.runId);
      expect(s.headers.get("user-agent")).toBe("FleetCron/test");
    }
  });

  test("a step whose when does not match is skipped with the reason; the chain goes on", async () => {
    const { opts } = options();
    const result = await runChain(
      [action("noon", "/ok", { when: { hour_in: [0, 12] } }), action("sunday", "/ok", { when: { weekday_in: [7], hour_in: [10] } })],
      opts,
    );
    expect(result.status).toBe("success");
    expect(result.steps[0]).toMatchObject({ name: "noon", status: "skipped", attempts: 0, reason: "when.hour_in [0, 12] does not include 10" });
    expect(result.steps[1]).toMatchObject({ name: "sunday", status: "success" });
    expect(seen).toHaveLength(1);
  });

  test("a referred-to skipped step is a template error in the later step", async () => {
    const { opts } = options();
    const result = await runChain([action("a", "/ok", { when: { hour_in: [1] } }), action("b", "/ok?s={{steps.a.status}}")], opts);
    expect(result.steps[1]).toMatchObject({ status: "error", attempts: 0 });
    expect(result.steps[1]!.error).toContain('step "a" has not run');
  });

  test("a failed step stops the chain; later steps are recorded as skipped", async () => {
    const { opts } = options();
    const result = await runChain([action("a", "/status?code=500"), action("b", "/ok"), action("c", "/ok")], opts);
    expect(result.status).toBe("error");
    expect(result.steps.map((s) => s.status)).toEqual(["error", "skipped", "skipped"]);
    expect(result.steps[1]!.reason).toBe('step "a" failed');
    expect(result.steps[0]).toMatchObject({ http_status: 500, response: "status 500" });
    expect(result.error).toStartWith('step "a": GET ');
    expect(result.error).toContain("HTTP 500");
    expect(seen).toHaveLength(1);
  });

  test("continue_on_failure runs the next step, but the chain still ends in error", async () => {
    const { opts } = options();
    const result = await runChain(
      [action("a", "/status?code=404", { continue_on_failure: true }), action("b", "/ok?prev={{steps.a.status}}")],
      opts,
    );
    expect(result.status).toBe("error");
    expect(result.steps.map((s) => s.status)).toEqual(["error", "success"]);
    expect(seen[1]!.search).toBe("?prev=404");
  });

  test("expect_status decides success", async () => {
    const { opts } = options();
    const ok = await runChain([action("gone", "/status?code=410", { expect_status: [410] })], opts);
    expect(ok.status).toBe("success");
    const strict = await runChain([action("created", "/ok", { expect_status: [201] })], opts);
    expect(strict.status).toBe("error");
    expect(strict.steps[0]!.error).toContain("expected 201");
  });

  test("retries with backoff until success; sleeps go through the injected sleep", async () => {
    const { opts, sleeps } = options();
    const result = await runChain(
      [action("flaky", "/flaky?until=4", { retry: { retries: 5, delay_sec: 1, backoff: 2, max_delay_sec: 60, jitter: 0 } })],
      opts,
    );
    expect(result.status).toBe("success");
    expect(result.steps[0]).toMatchObject({ attempts: 4, http_status: 200 });
    expect(sleeps).toEqual([1000, 2000, 4000]);
  });

  test("retries run out: the last answer is recorded with the attempt count", async () => {
    const { opts, sleeps } = options();
    const result = await runChain([action("down", "/status?code=503", { retry: { retries: 2, delay_sec: 5, backoff: 1, max_delay_sec: 60, jitter: 0 } })], opts);
    expect(result.steps[0]).toMatchObject({ status: "error", attempts: 3, http_status: 503 });
    expect(result.steps[0]!.error).toContain(", after 3 attempts");
    expect(sleeps).toEqual([5000, 5000]);
  });

  test("Retry-After is honoured, within max_delay_sec", async () => {
    const { opts, sleeps } = options();
    const retry = { retries: 1, delay_sec: 1, backoff: 2, max_delay_sec: 60, jitter: 0 };
    await runChain([action("limited", "/status?code=429&after=7", { retry })], opts);
    await runChain([action("far", "/status?code=503&after=86400", { retry })], opts);
    expect(sleeps).toEqual([7000, 60000]);
  });

  test("a considered refusal (404) and a redirect loop are not retried", async () => {
    const { opts, sleeps } = options();
    const retry = { retries: 3, delay_sec: 1, backoff: 2, max_delay_sec: 60, jitter: 0 };
    const r404 = await runChain([action("missing", "/nowhere", { retry })], opts);
    expect(r404.steps[0]).toMatchObject({ attempts: 1, http_status: 404 });
    const loop = await runChain([action("loop", "/loop", { retry })], opts);
    expect(loop.steps[0]).toMatchObject({ status: "error", attempts: 1 });
    expect(loop.steps[0]!.error).toContain("too many redirects");
    expect(sleeps).toEqual([]);
  });

  test("a server that never answers times out at timeout_sec, and the timeout is retried", async () => {
    const { opts, sleeps } = options();
    const t0 = performance.now();
    const result = await runChain([action("slow", "/hang", { timeout_sec: 0.3, retry: { retries: 1, delay_sec: 2, backoff: 1, max_delay_sec: 60, jitter: 0 } })], opts);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(result.steps[0]).toMatchObject({ status: "error", attempts: 2 });
    expect(result.steps[0]!.http_status).toBeUndefined();
    expect(result.steps[0]!.error).toContain("within 0.3 s");
    expect(sleeps).toEqual([2000]);
  });

  test("a 50 MB streaming response is capped in the record", async () => {
    const { opts } = options({ responseCapBytes: 4096 });
    const small = await runChain([action("big", "/big")], opts);
    expect(small.steps[0]!.status).toBe("success");
    expect(small.steps[0]!.response!.length).toBeLessThanOrEqual(4096 + 20);
    expect(small.steps[0]!.response).toEndWith("…[truncated]");
    expect(small.outputs.big?.json).toBeUndefined();

    const dflt = await runChain([action("big", "/big")], options().opts);
    expect(dflt.steps[0]!.response!.length).toBeLessThanOrEqual(64 * 1024 + 20);
    expect(dflt.steps[0]!.response!.length).toBeGreaterThanOrEqual(64 * 1024);
  });

  test("an unknown template name fails the step and sends nothing", async () => {
    const { opts } = options();
    const result = await runChain([action("bad", "/ok", { headers: { Authorization: "Bearer {{API_SECRET}}" }, retry: { retries: 3, delay_sec: 1, backoff: 1, max_delay_sec: 9, jitter: 0 } })], opts);
    expect(result.steps[0]).toMatchObject({ status: "error", attempts: 0 });
    expect(result.steps[0]!.error).toContain("unknown template name {{API_SECRET}}");
    expect(result.steps[0]!.error).toContain("nothing was sent");
    expect(seen).toHaveLength(0);
  });

  test("an abort during the wait between retries stops the step and the chain", async () => {
    const ac = new AbortController();
    const { opts } = options({
      signal: ac.signal,
      sleep: async () => {
        ac.abort(new Error("lease lost"));
      },
    });
    const result = await runChain(
      [action("down", "/status?code=503", { retry: { retries: 5, delay_sec: 1, backoff: 1, max_delay_sec: 9, jitter: 0 }, continue_on_failure: true }), action("next", "/ok")],
      opts,
    );
    expect(result.status).toBe("error");
    expect(result.steps[0]).toMatchObject({ status: "error", attempts: 1 });
    expect(result.steps[0]!.error).toMatch(/^aborted after 1 attempt; last attempt: .*HTTP 503/);
    expect(result.steps[1]).toMatchObject({ status: "skipped", reason: "the run was aborted" });
    expect(seen).toHaveLength(1);
  });

  test("an abort between steps skips the rest and fails the run", async () => {
    const ac = new AbortController();
    const { opts } = options({ signal: ac.signal, onStep: () => ac.abort() });
    const result = await runChain([action("a", "/ok"), action("b", "/ok")], opts);
    expect(result.status).toBe("error");
    expect(result.steps.map((s) => s.status)).toEqual(["success", "skipped"]);
    expect(result.error).toBe('aborted before step "b"');
  });

  test("an abort during a request is recorded as aborted", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("lease lost")), 100);
    const { opts } = options({ signal: ac.signal });
    const result = await runChain([action("slow", "/hang", { retry: { retries: 3, delay_sec: 1, backoff: 1, max_delay_sec: 9, jitter: 0 } })], opts);
    expect(result.steps[0]!.status).toBe("error");
    expect(result.steps[0]!.error).toContain("aborted: lease lost");
    expect(result.steps[0]!.attempts).toBe(1);
  });

  test("initialSteps let on_failure refer to the main chain; onStep sees each record", async () => {
    const { opts } = options();
    const main = await runChain([action("sync", "/status?code=502")], opts);
    const recorded: StepRecord[] = [];
    const notify = await runChain(
      [action("alert", "/ok", { method: "POST", body: "sync failed with {{steps.sync.status}}: {{steps.sync.body}}" })],
      { ...opts, initialSteps: main.outputs, onStep: (s) => recorded.push(s) },
    );
    expect(notify.status).toBe("success");
    expect(seen.at(-1)!.body).toBe("sync failed with 502: status 502");
    expect(recorded.map((s) => s.name)).toEqual(["alert"]);
    expect(Object.keys(notify.outputs)).toEqual(["alert"]);
  });
});

describe("secrets never reach the result", () => {
  const leaks = (value: unknown) => {
    const text = JSON.stringify(value);
    return text.includes(SECRET) || text.includes(encodeURIComponent(SECRET)) || text.includes(SECRET.slice(0, 12));
  };

  test("in URL, headers and body, echoed back in the response", async () => {
    const { opts } = options();
    const result = await runChain(
      [
        action("echo", `/echo?key={{API_TOKEN}}&code=500`, {
          method: "POST",
          headers: { Authorization: "Bearer {{API_TOKEN}}" },
          body: { token: "{{API_TOKEN}}" },
          continue_on_failure: true,
        }),
        action("echo-ok", `/echo?key={{API_TOKEN}}`, { method: "POST", body: "t={{API_TOKEN}}" }),
      ],
      opts,
    );
    // the receiver really got the secret…
    expect(seen[0]!.headers.get("authorization")).toBe(`Bearer ${SECRET}`);
    expect(seen[0]!.body).toContain(SECRET);
    // …but the records (error with the URL, response echo) and outputs do not hold it
    expect(result.steps[0]!.error).toContain("key=***");
    expect(result.steps[0]!.response).toContain("auth=Bearer ***");
    expect(leaks(result)).toBe(false);
  });

  test("in error messages of timeouts, refused connections and redirect loops", async () => {
    const { opts } = options();
    const result = await runChain(
      [
        action("t", `/hang?k={{API_TOKEN}}`, { timeout_sec: 0.2, continue_on_failure: true }),
        action("r", `http://127.0.0.1:1/{{API_TOKEN}}`, { continue_on_failure: true }),
        action("l", `/loop?k={{API_TOKEN}}`, { continue_on_failure: true }),
        action("u", `http://user:{{API_TOKEN}}@127.0.0.1:1/`, { continue_on_failure: true }),
        action("h", `/ok`, { headers: { "X-Bad": "{{API_TOKEN}}\nInjected: 1" }, continue_on_failure: true }),
      ],
      opts,
    );
    expect(result.steps.every((s) => s.status === "error")).toBe(true);
    // a header that cannot be sent is not an attempt
    expect(result.steps[4]).toMatchObject({ attempts: 0 });
    expect(result.steps[4]!.error).toContain("nothing was sent");
    expect(leaks(result)).toBe(false);
  });

  test("a secret cut by the response cap is masked", async () => {
    const { opts } = options({ responseCapBytes: 100 });
    const result = await runChain([action("cut", "/cut-secret")], opts);
    expect(result.steps[0]!.response).toStartWith("a".repeat(90) + "***");
    expect(leaks(result)).toBe(false);
  });
});
