/**
 * What a job's author (or whoever can write a job) can make FleetCron send, and to whom; and what
 * a run keeps out of its records. Every test here is an attack reproduced on 127.0.0.1 (issue 11
 * items 3-4, issue 13 items 3-5): each fails on the code before these features.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { runChain, startDeadline, type ChainOptions } from "../../src/executor/chain.ts";
import type { HttpAction } from "../../src/jobs/types.ts";

interface Seen {
  server: "a" | "b";
  method: string;
  url: string;
  path: string;
  headers: Headers;
  body: string;
}

const KEY = "key-7Hq2-bound-to-A-only";
const PW = "pw-Zx81-url-password";
let a: Server<undefined>;
let b: Server<undefined>;
let baseA: string;
let baseB: string;
let seen: Seen[] = [];

function serve(label: "a" | "b", handler: (url: URL, req: Request, body: string) => Response | Promise<Response>): Server<undefined> {
  return Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      const body = await req.text();
      seen.push({ server: label, method: req.method, url: req.url, path: url.pathname, headers: req.headers, body });
      return handler(url, req, body);
    },
  });
}

beforeAll(() => {
  a = serve("a", (url, req, body) => {
    const q = url.searchParams;
    switch (url.pathname) {
      case "/login":
        return Response.json({ token: "tok-from-login-Q93kd", evil: "x&admin=1/../y", crlf: "v\r\nX-Injected: 1", quote: 'a","admin":true,"z":"', next: `${baseB}/steal` });
      case "/echo": // reflects what it was sent, credentials included
        return new Response(`auth=${req.headers.get("authorization")} key=${req.headers.get("x-api-key")} body=${body} url=${req.url}`);
      case "/to":
        return new Response(null, { status: Number(q.get("code") ?? 302), headers: { location: q.get("where")! } });
      case "/slow":
        return Bun.sleep(Number(q.get("ms"))).then(() => new Response("late", { status: 503 }));
      default:
        return new Response("ok");
    }
  });
  b = serve("b", () => new Response("b got it"));
  baseA = `http://127.0.0.1:${a.port}`;
  baseB = `http://127.0.0.1:${b.port}`;
});

afterAll(() => {
  a.stop(true);
  b.stop(true);
});
beforeEach(() => {
  seen = [];
});

const action = (name: string, url: string, extra: Partial<HttpAction> = {}): HttpAction => ({
  type: "http",
  name,
  method: "GET",
  url,
  headers: {},
  timeout_sec: 5,
  retry: { retries: 0, delay_sec: 0, backoff: 1, max_delay_sec: 0, jitter: 0 },
  expect_status: [],
  continue_on_failure: false,
  ...extra,
});

const options = (extra: Partial<ChainOptions> = {}): ChainOptions => ({
  runId: "job:2026-01-01T00:00:00.000Z",
  attempt: 1,
  scheduledFor: Date.parse("2026-01-01T00:00:00Z"),
  jobName: "trust",
  machineId: "m1",
  secrets: { KEY, PW },
  userAgent: "FleetCron/test",
  wall: { year: 2026, month: 1, day: 1, hour: 0, minute: 0, second: 0, weekday: 4 },
  signal: new AbortController().signal,
  sleep: (ms, signal) => new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  }),
  ...extra,
});

describe("secret hosts at run time (issue 11.3)", () => {
  test("a URL taken from a step's response cannot carry a bound secret to another host", async () => {
    // The login answers with a "next" URL on another server; KEY may only go to 127.0.0.2.
    const result = await runChain(
      [action("login", `${baseA}/login`), action("use", "{{raw steps.login.json.next}}?k={{KEY}}", { headers: { "X-Api-Key": "{{KEY}}" } })],
      options({ secretHosts: { KEY: ["127.0.0.2"] }, initialSteps: {} }),
    );
    expect(result.status).toBe("error");
    expect(result.steps[1]!.error).toContain('secret "KEY" may only be sent to "127.0.0.2"');
    expect(seen.filter((s) => s.server === "b")).toEqual([]);
  });

  test("the same request goes when the host is allowed (the check is not a blanket refusal)", async () => {
    const result = await runChain([action("use", `${baseA}/echo?k={{KEY}}`)], options({ secretHosts: { KEY: ["127.0.0.1"] } }));
    expect(result.status).toBe("success");
    expect(seen.some((s) => s.url.includes(KEY))).toBe(true);
  });

  test("a redirect hop that would carry a bound secret elsewhere is refused", async () => {
    // 307 keeps the POST body, secret included: following it to another host must not happen.
    const where = encodeURIComponent(`http://localhost:${b.port}/hop`);
    const result = await runChain(
      [action("post", `${baseA}/to?code=307&where=${where}`, { method: "POST", body: { key: "{{KEY}}" }, follow_redirects: "any" })],
      options({ secretHosts: { KEY: ["127.0.0.1"] } }),
    );
    expect(result.status).toBe("error");
    expect(result.steps[0]!.error).toContain('secret "KEY" may only be sent to "127.0.0.1"');
    expect(result.steps[0]!.error).toContain("not followed");
    expect(seen.filter((s) => s.server === "b")).toEqual([]);
  });
});

describe("masking that holds (issue 11.4)", () => {
  test("Basic auth built from a URL's userinfo: its base64 is masked where it is echoed", async () => {
    const result = await runChain([action("basic", `http://robot:{{PW}}@127.0.0.1:${a.port}/echo`)], options());
    expect(result.status).toBe("success");
    const b64 = Buffer.from(`robot:${PW}`).toString("base64");
    expect(seen[0]!.headers.get("authorization")).toBe(`Basic ${b64}`);
    const stored = JSON.stringify(result.steps);
    expect(stored).not.toContain(b64);
    expect(stored).toContain("auth=Basic ***");
  });

  test("a login step's token sent as a header is masked in every record, the login's own included", async () => {
    const result = await runChain(
      [action("login", `${baseA}/login`), action("use", `${baseA}/echo`, { headers: { Authorization: "Bearer {{steps.login.json.token}}" } })],
      options(),
    );
    expect(result.status).toBe("success");
    expect(seen[1]!.headers.get("authorization")).toBe("Bearer tok-from-login-Q93kd");
    expect(JSON.stringify(result.steps)).not.toContain("tok-from-login-Q93kd");
    expect(result.steps[1]!.response).toContain("auth=Bearer ***");
  });

  test('"record_response": false keeps the body out of the record', async () => {
    const result = await runChain([action("quiet", `${baseA}/login`, { record_response: false }), action("loud", `${baseA}/login`)], options());
    expect(result.steps[0]!.response).toBeUndefined();
    expect(result.steps[1]!.response).toContain("evil");
    // Later steps still see the body: only the record goes without it.
    expect(result.outputs.quiet!.body).toContain("evil");
  });
});

describe("templates that cannot be hijacked (issue 13.3)", () => {
  test("a step output lands percent-encoded in a URL; raw opts out", async () => {
    const result = await runChain(
      [
        action("login", `${baseA}/login`),
        action("enc", `${baseA}/echo?q={{steps.login.json.evil}}`),
        action("raw", `${baseA}/echo?q={{raw steps.login.json.evil}}`),
      ],
      options(),
    );
    expect(result.status).toBe("success");
    expect(new URL(seen[1]!.url).search).toBe("?q=x%26admin%3D1%2F..%2Fy");
    expect(new URL(seen[1]!.url).searchParams.get("admin")).toBeNull();
    expect(new URL(seen[2]!.url).searchParams.get("admin")).toBe("1/../y");
  });

  test("a step output with CR/LF is refused in a header, with a clear error and nothing sent", async () => {
    const result = await runChain([action("login", `${baseA}/login`), action("hdr", `${baseA}/echo`, { headers: { "X-Session": "{{steps.login.json.crlf}}" } })], options());
    expect(result.status).toBe("error");
    expect(result.steps[1]!.error).toContain("{{steps.login.json.crlf}} holds a CR or LF");
    expect(result.steps[1]!.error).toContain("nothing was sent");
    expect(seen.map((s) => s.path)).toEqual(["/login"]);
  });

  test("a step output is JSON-escaped in a string body", async () => {
    const result = await runChain(
      [action("login", `${baseA}/login`), action("post", `${baseA}/echo`, { method: "POST", body: '{"name":"{{steps.login.json.quote}}"}' })],
      options(),
    );
    expect(result.status).toBe("success");
    expect(JSON.parse(seen[1]!.body)).toEqual({ name: 'a","admin":true,"z":"' });
  });

  test("vars are inserted as written and shown unmasked; secrets stay masked", async () => {
    const result = await runChain([action("v", "{{BASE}}/nowhere-{{KEY}}", { expect_status: [201] })], options({ vars: { BASE: baseA } }));
    expect(result.steps[0]!.error).toContain(`${baseA}/nowhere-***`);
  });
});

describe("redirects (issue 13.4)", () => {
  test("cross-origin is refused by default, naming the location and the setting", async () => {
    const result = await runChain([action("r", `${baseA}/to?where=${encodeURIComponent(`${baseB}/x`)}`, { headers: { "X-Api-Key": "{{KEY}}" } })], options());
    expect(result.status).toBe("error");
    expect(result.steps[0]!.error).toContain(`redirected to ${baseB}/x`);
    expect(result.steps[0]!.error).toContain('follow_redirects is "same-origin"');
    expect(seen.filter((s) => s.server === "b")).toEqual([]);
  });

  test('"any" reaches the other origin without the secret-derived headers, and the record says so', async () => {
    const result = await runChain(
      [action("r", `${baseA}/to?where=${encodeURIComponent(`${baseB}/x`)}`, { follow_redirects: "any", headers: { "X-Api-Key": "{{KEY}}", "X-Plain": "visible" } })],
      options(),
    );
    expect(result.status).toBe("success");
    const atB = seen.find((s) => s.server === "b")!;
    expect(atB.headers.get("x-api-key")).toBeNull();
    expect(atB.headers.get("x-plain")).toBe("visible");
    expect(seen.find((s) => s.server === "a")!.headers.get("x-api-key")).toBe(KEY);
    expect(result.steps[0]!.redirects).toEqual([`HTTP 302 → ${baseB}/x (another origin: dropped x-api-key)`]);
  });

  test('same-origin redirects are followed; "none" follows nothing', async () => {
    const same = await runChain([action("r", `${baseA}/to?where=/done`)], options());
    expect(same.status).toBe("success");
    seen = [];
    const none = await runChain([action("r", `${baseA}/to?where=/done`, { follow_redirects: "none", expect_status: [302] })], options());
    expect(none.status).toBe("success");
    expect(seen.map((s) => s.path)).toEqual(["/to"]);
  });
});

describe("run deadline (issue 13.5)", () => {
  test("the request in flight is aborted and no retry starts; the result says deadline", async () => {
    const started = Date.now();
    const result = await runChain(
      [action("slow", `${baseA}/slow?ms=700`, { retry: { retries: 5, delay_sec: 0, backoff: 1, max_delay_sec: 0, jitter: 0 } }), action("after", `${baseA}/ok`)],
      options({ deadline: startDeadline(1) }),
    );
    const took = Date.now() - started;
    expect(result.status).toBe("error");
    expect(result.reason).toBe("deadline");
    expect(result.steps[0]!.error).toContain("deadline_sec (1 s) passed");
    expect(result.steps[1]!.status).toBe("skipped");
    expect(took).toBeLessThan(1400);
    expect(seen.filter((s) => s.path === "/slow").length).toBe(2);
  });
});
