import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { DEFAULT_RESPONSE_CAP_BYTES, isExpectedStatus, sendRequest, type HttpRequest } from "../../src/executor/http.ts";

interface Seen {
  method: string;
  path: string;
  headers: Headers;
  body: string;
}

let server: Server<undefined>;
let base: string;
const seen: Seen[] = [];
let bigSent = 0;
let bigCancelled = false;

beforeAll(() => {
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 0,
    async fetch(req) {
      const url = new URL(req.url);
      seen.push({ method: req.method, path: url.pathname, headers: req.headers, body: await req.text() });
      switch (url.pathname) {
        case "/echo":
          return Response.json({ ok: true });
        case "/status":
          return new Response("nope", { status: Number(url.searchParams.get("code")) });
        case "/hang":
          return new Promise<Response>(() => {});
        case "/drip":
          return new Response(
            new ReadableStream({
              async pull(c) {
                c.enqueue(new TextEncoder().encode("."));
                await Bun.sleep(20);
              },
            }),
          );
        case "/big": {
          const chunk = new Uint8Array(64 * 1024).fill(120);
          const total = 50 * 1024 * 1024;
          return new Response(
            new ReadableStream({
              pull(c) {
                if (bigSent >= total) return c.close();
                c.enqueue(chunk);
                bigSent += chunk.byteLength;
              },
              cancel() {
                bigCancelled = true;
              },
            }),
          );
        }
        case "/utf8":
          return new Response("é".repeat(100));
        case "/loop":
          return new Response(null, { status: 302, headers: { location: "/loop" } });
        case "/moved":
          return new Response(null, { status: 301, headers: { location: "/status?code=404" } });
        default:
          return new Response("not found", { status: 404 });
      }
    },
  });
  base = `http://127.0.0.1:${server.port}`;
});

afterAll(() => server.stop(true));

const request = (path: string, extra: Partial<HttpRequest> = {}): HttpRequest => ({
  method: "GET",
  url: base + path,
  headers: {},
  timeoutMs: 5000,
  expectStatus: [],
  ...extra,
});
const opts = { runId: "job-1:2025-01-01T00:00:00.000Z", userAgent: "FleetCron/test" };

describe("sendRequest", () => {
  test("every request carries Idempotency-Key, X-FleetCron-Run-Id and User-Agent", async () => {
    const res = await sendRequest(request("/echo", { headers: { "X-Custom": "1", "idempotency-key": "mine" } }), opts);
    expect(res.ok).toBe(true);
    expect(res.status).toBe(200);
    const h = seen.at(-1)!.headers;
    expect(h.get("idempotency-key")).toBe(opts.runId);
    expect(h.get("x-fleetcron-run-id")).toBe(opts.runId);
    expect(h.get("user-agent")).toBe("FleetCron/test");
    expect(h.get("x-custom")).toBe("1");
  });

  test("a user-set User-Agent wins", async () => {
    await sendRequest(request("/echo", { headers: { "User-Agent": "custom/1" } }), opts);
    expect(seen.at(-1)!.headers.get("user-agent")).toBe("custom/1");
  });

  test("object bodies are JSON with content-type; strings are sent as is; user content-type kept", async () => {
    await sendRequest(request("/echo", { method: "post", body: { a: [1, "x"] } }), opts);
    let s = seen.at(-1)!;
    expect(s.method).toBe("POST");
    expect(s.body).toBe('{"a":[1,"x"]}');
    expect(s.headers.get("content-type")).toBe("application/json");

    await sendRequest(request("/echo", { method: "POST", body: [1, 2], headers: { "Content-Type": "application/vnd.api+json" } }), opts);
    s = seen.at(-1)!;
    expect(s.body).toBe("[1,2]");
    expect(s.headers.get("content-type")).toBe("application/vnd.api+json");

    await sendRequest(request("/echo", { method: "POST", body: "a=1&b=2" }), opts);
    expect(seen.at(-1)!.body).toBe("a=1&b=2");
  });

  test("success is expect_status, or any 2xx when empty", async () => {
    expect(isExpectedStatus(204, [])).toBe(true);
    expect(isExpectedStatus(302, [])).toBe(false);
    expect(isExpectedStatus(404, [404])).toBe(true);
    expect(isExpectedStatus(200, [201])).toBe(false);

    const notFound = await sendRequest(request("/status?code=404", { expectStatus: [404] }), opts);
    expect(notFound.ok).toBe(true);
    const wrong = await sendRequest(request("/echo", { expectStatus: [201, 202] }), opts);
    expect(wrong.ok).toBe(false);
    expect(wrong.failure).toBe("status");
    expect(wrong.error).toContain("HTTP 200");
    expect(wrong.error).toContain("expected 201, 202");
    const err = await sendRequest(request("/status?code=503"), opts);
    expect(err).toMatchObject({ ok: false, status: 503, failure: "status", body: "nope" });
    expect(err.error).toContain(`GET ${base}/status?code=503: HTTP 503`);
  });

  test("a server that never answers fails at timeout_sec", async () => {
    const t0 = performance.now();
    const res = await sendRequest(request("/hang", { timeoutMs: 300 }), opts);
    const took = performance.now() - t0;
    expect(res.failure).toBe("timeout");
    expect(res.status).toBeNull();
    expect(res.error).toContain("0.3 s");
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(3000);
  });

  test("a body that never ends is bounded by the same timeout", async () => {
    const t0 = performance.now();
    const res = await sendRequest(request("/drip", { timeoutMs: 300 }), opts);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(res.failure).toBe("timeout");
    expect(res.status).toBe(200);
    expect(res.error).toContain("body did not complete");
  });

  test("a 50 MB body is cut at the cap and not downloaded", async () => {
    const res = await sendRequest(request("/big"), opts);
    expect(res.ok).toBe(true);
    expect(res.truncated).toBe(true);
    expect(res.body.length).toBe(DEFAULT_RESPONSE_CAP_BYTES);
    await Bun.sleep(200);
    // The stream was cancelled after a few chunks (socket buffers aside), not drained.
    expect(bigSent).toBeLessThan(16 * 1024 * 1024);
    expect(bigCancelled).toBe(true);

    const small = await sendRequest(request("/big"), { ...opts, responseCapBytes: 1000 });
    expect(small.body.length).toBe(1000);
  });

  test("a cap that cuts a multi-byte character drops it instead of inventing U+FFFD", async () => {
    const res = await sendRequest(request("/utf8"), { ...opts, responseCapBytes: 11 });
    expect(res.body).toBe("ééééé");
    expect(res.truncated).toBe(true);
  });

  test("a redirect loop is a clear error, not retried as a network failure", async () => {
    const res = await sendRequest(request("/loop"), opts);
    expect(res.failure).toBe("redirect");
    expect(res.error).toMatch(/too many redirects/);
  });

  test("a followed redirect names where it ended", async () => {
    const res = await sendRequest(request("/moved"), opts);
    expect(res.status).toBe(404);
    expect(res.error).toContain("after redirect to");
  });

  test("refused connection, bad URL, body on GET", async () => {
    const refused = await sendRequest(request("", { url: "http://127.0.0.1:1/x" }), opts);
    expect(refused.failure).toBe("network");
    const bad = await sendRequest(request("", { url: "not a url" }), opts);
    expect(bad.failure).toBe("request");
    const ftp = await sendRequest(request("", { url: "ftp://127.0.0.1/x" }), opts);
    expect(ftp.failure).toBe("request");
    const getBody = await sendRequest(request("/echo", { body: { a: 1 } }), opts);
    expect(getBody.failure).toBe("request");
    expect(getBody.error).toContain("cannot carry a body");
    const badHeader = await sendRequest(request("/echo", { headers: { "X-A": "line\nbreak" } }), opts);
    expect(badHeader.failure).toBe("request");
  });

  test("a caller abort ends the attempt as aborted, with the reason", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("lease lost")), 100);
    const res = await sendRequest(request("/hang", { timeoutMs: 5000 }), { ...opts, signal: ac.signal });
    expect(res.failure).toBe("aborted");
    expect(res.error).toContain("aborted: lease lost");
    const pre = await sendRequest(request("/echo"), { ...opts, signal: AbortSignal.abort() });
    expect(pre.failure).toBe("aborted");
  });

  test("a password written into the URL is hidden in messages", async () => {
    const res = await sendRequest(request("", { url: "http://user:hunter2pass@127.0.0.1:1/x" }), opts);
    expect(res.error).not.toContain("hunter2pass");
  });
});
