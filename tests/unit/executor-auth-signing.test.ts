/** Signed requests and OAuth2 client credentials, against a local server (issue 13 items 1-2). */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import type { Server } from "bun";
import { runChain, type ChainOptions } from "../../src/executor/chain.ts";
import { TokenCache } from "../../src/executor/oauth.ts";
import type { HttpAction, OAuth2ClientCredentials } from "../../src/jobs/types.ts";

const CLIENT_SECRET = "client-secret-R7c2-xyz";
const SIGNING_SECRET = "signing-key-secret-Q9z3";
let server: Server<undefined>;
let base: string;
let tokenRequests: { auth: string | null; form: URLSearchParams }[] = [];
let apiRequests: Headers[] = [];
let signed: { method: string; target: string; body: string; signature: string | null }[] = [];
let tokenStatus = 200;

beforeAll(() => {
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      const body = await req.text();
      if (url.pathname === "/token") {
        tokenRequests.push({ auth: req.headers.get("authorization"), form: new URLSearchParams(body) });
        if (tokenStatus !== 200) return Response.json({ error: "invalid_client", error_description: `bad secret ${CLIENT_SECRET}` }, { status: tokenStatus });
        return Response.json({ access_token: `token-${tokenRequests.length}`, expires_in: 3600 });
      }
      if (url.pathname === "/echo") {
        // A target that echoes what it was configured with: the signing secret must not reach a record.
        const status = Number(url.searchParams.get("status") ?? 200);
        return Response.json({ echo: SIGNING_SECRET, note: `key ${SIGNING_SECRET} rejected` }, { status, headers: { "x-echo": SIGNING_SECRET } });
      }
      if (url.pathname === "/api") {
        apiRequests.push(req.headers);
        return req.headers.get("authorization") === "Bearer token-1" || req.headers.get("authorization") === "Bearer token-2" ? new Response(`ok ${req.headers.get("authorization")}`) : new Response("no", { status: 401 });
      }
      signed.push({ method: req.method, target: url.pathname + url.search, body, signature: req.headers.get("fleetcron-signature") });
      return new Response("ok");
    },
  });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(() => server.stop(true));
beforeEach(() => {
  tokenRequests = [];
  apiRequests = [];
  signed = [];
  tokenStatus = 200;
});

const action = (url: string, extra: Partial<HttpAction> = {}): HttpAction => ({
  type: "http",
  name: "s",
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
  runId: "r1",
  attempt: 1,
  scheduledFor: 0,
  jobName: "j",
  machineId: "m",
  secrets: { CS: CLIENT_SECRET },
  userAgent: "t",
  wall: { year: 2026, month: 1, day: 1, hour: 0, minute: 0, second: 0, weekday: 4 },
  signal: new AbortController().signal,
  sleep: async () => {},
  ...extra,
});
const auth = (over: Partial<OAuth2ClientCredentials> = {}): OAuth2ClientCredentials => ({
  type: "oauth2_client_credentials",
  token_url: `${base}/token`,
  client_id: "my client",
  client_secret: "{{CS}}",
  client_auth: "basic",
  ...over,
});

describe("signed requests", () => {
  test("v1 is HMAC-SHA256 over t.METHOD.path?query.body with the first key; sign: false sends none", async () => {
    const keys = [{ id: "k2", secret: "second-key-secret-0001" }, { id: "k1", secret: "first-key-secret-00002" }];
    await runChain([action(`${base}/hook?a=1&b=x%20y`, { method: "POST", body: { n: 1 } }), action(`${base}/plain`, { name: "p", sign: false })], options({ signingKeys: keys }));
    const [one, two] = signed;
    const m = /^t=(\d+),kid=k2,v1=([0-9a-f]{64})$/.exec(one!.signature!)!;
    expect(m).not.toBeNull();
    expect(Math.abs(Number(m[1]) - Date.now() / 1000)).toBeLessThan(5);
    const expected = createHmac("sha256", keys[0]!.secret).update(`${m[1]}.POST./hook?a=1&b=x%20y.${one!.body}`).digest("hex");
    expect(m[2]).toBe(expected);
    expect(one!.body).toBe('{"n":1}');
    expect(two!.signature).toBeNull();
  });

  test("a signing secret a target echoes back is masked in the step records, outputs and error", async () => {
    const keys = [{ id: "k1", secret: SIGNING_SECRET }];
    const ok = await runChain([action(`${base}/echo`, { name: "first" })], options({ signingKeys: keys }));
    const failed = await runChain([action(`${base}/echo?status=500`, { name: "second" })], options({ signingKeys: keys }));
    expect(ok.status).toBe("success");
    expect(failed.status).toBe("error");
    expect(JSON.stringify(failed)).toContain("rejected"); // the body did reach the record, masked
    for (const result of [ok, failed]) expect(JSON.stringify(result)).not.toContain(SIGNING_SECRET);
  });

  test("without signing_keys nothing is signed", async () => {
    await runChain([action(`${base}/x`)], options());
    expect(signed[0]!.signature).toBeNull();
  });
});

describe("OAuth2 client credentials", () => {
  test("one token endpoint call for many runs; Basic client auth form-encodes id and secret", async () => {
    const tokens = new TokenCache();
    for (let i = 0; i < 5; i++) expect((await runChain([action(`${base}/api`, { auth: auth() })], options({ tokens }))).status).toBe("success");
    expect(tokenRequests.length).toBe(1);
    expect(tokenRequests[0]!.auth).toBe(`Basic ${Buffer.from(`my+client:${CLIENT_SECRET}`).toString("base64")}`);
    expect(tokenRequests[0]!.form.get("grant_type")).toBe("client_credentials");
    expect(apiRequests.every((h) => h.get("authorization") === "Bearer token-1")).toBe(true);
  });

  test("client_auth body, scope and audience go in the form; concurrent runs share one fetch", async () => {
    const tokens = new TokenCache();
    const a = auth({ client_auth: "body", scope: "read write", audience: "https://api" });
    await Promise.all([1, 2, 3].map(() => runChain([action(`${base}/api`, { auth: a })], options({ tokens }))));
    expect(tokenRequests.length).toBe(1);
    const form = tokenRequests[0]!.form;
    expect([form.get("client_id"), form.get("client_secret"), form.get("scope"), form.get("audience")]).toEqual(["my client", CLIENT_SECRET, "read write", "https://api"]);
    expect(tokenRequests[0]!.auth).toBeNull();
  });

  test("a 401 renews the token once and repeats the request once", async () => {
    const tokens = new TokenCache();
    await runChain([action(`${base}/api`, { auth: auth() })], options({ tokens }));
    // The endpoint now refuses token-1 (only token-2 and later work): simulate by revoking.
    let calls = 0;
    const revoking: typeof fetch = Object.assign(async (input: string | URL | Request, init?: RequestInit) => {
      const headers = new Headers(init?.headers);
      if (String(input).endsWith("/api") && headers.get("authorization") === "Bearer token-1") {
        calls++;
        return new Response("expired", { status: 401 });
      }
      return fetch(input, init);
    }, { preconnect: fetch.preconnect });
    const result = await runChain([action(`${base}/api`, { auth: auth() })], options({ tokens, fetch: revoking }));
    expect(result.status).toBe("success");
    expect(calls).toBe(1);
    expect(tokenRequests.length).toBe(2);
    expect(result.steps[0]!.attempts).toBe(1);
  });

  test("a token endpoint failure fails the step with its status, never the secret", async () => {
    tokenStatus = 401;
    const result = await runChain([action(`${base}/api`, { auth: auth() })], options({ tokens: new TokenCache() }));
    expect(result.status).toBe("error");
    expect(result.steps[0]!.error).toBe(`token endpoint ${base}/token answered HTTP 401 (error "invalid_client"); the request was not sent`);
    expect(JSON.stringify(result)).not.toContain(CLIENT_SECRET);
    expect(apiRequests.length).toBe(0);
  });

  test("the token is masked in records; the client secret only goes where its hosts allow", async () => {
    const echo = await runChain([action(`${base}/api`, { auth: auth() })], options({ tokens: new TokenCache() }));
    expect(echo.steps[0]!.response).toBe("ok Bearer ***");
    expect(JSON.stringify(echo.steps)).not.toContain("token-1");
    const refused = await runChain([action(`${base}/api`, { auth: auth() })], options({ tokens: new TokenCache(), secretHosts: { CS: ["auth.example.com"] } }));
    expect(refused.steps[0]!.error).toContain('auth: secret "CS" may only be sent to "auth.example.com"');
    expect(tokenRequests.length).toBe(1);
  });
});
