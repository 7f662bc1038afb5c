import { afterEach, describe, expect, test } from "bun:test";
import { restoreMasked } from "../../src/observe/page-actions.ts";
import { durationChart, runStrip } from "../../src/observe/page.ts";
import type { RunView } from "../../src/observe/status-data.ts";
import { apiHarness, TOKENS, type ApiHarness } from "./api-support.ts";

/** Issue 15, the page in process: sign-in, forms with CSRF by role, the editor, strips and charts. */
let h: ApiHarness;
afterEach(async () => {
  await h?.close();
});

const ping = () => ({ every: "1h", url: "{{SINK}}/ok", method: "POST" });

async function page(path: string, opts: { cookie?: string; method?: string; form?: Record<string, string>; origin?: string; token?: string } = {}) {
  const headers: Record<string, string> = { host: "127.0.0.1:8080" };
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.origin) headers.origin = opts.origin;
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const body = opts.form ? new URLSearchParams(opts.form).toString() : undefined;
  if (body !== undefined) headers["content-type"] = "application/x-www-form-urlencoded";
  const res = await h.handler(new Request(`http://127.0.0.1:8080${path}`, { method: opts.method ?? (body !== undefined ? "POST" : "GET"), headers, ...(body !== undefined ? { body } : {}) }), { address: "127.0.0.1" });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function signIn(role: keyof typeof TOKENS): Promise<{ cookie: string; csrf: string }> {
  const res = await page("/login", { form: { token: TOKENS[role] } });
  expect(res.status).toBe(303);
  const setCookie = res.headers.get("set-cookie")!;
  expect(setCookie).toContain("HttpOnly");
  expect(setCookie).toContain("SameSite=Strict");
  expect(setCookie).not.toContain(TOKENS[role]);
  const cookie = setCookie.split(";")[0]!;
  const home = await page("/", { cookie });
  expect(home.status).toBe(200);
  const csrf = /name="csrf" value="([^"]+)"/.exec(home.text)?.[1] ?? "";
  return { cookie, csrf };
}

describe("page sign-in", () => {
  test("with tokens the page and /metrics need a read token; /healthz stays open; a wrong token is refused", async () => {
    h = apiHarness();
    const login = await page("/");
    expect(login.status).toBe(401);
    expect(login.text).toContain('<form method="post" action="/login">');
    expect(login.headers.get("content-security-policy")).toBe("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
    expect((await page("/metrics")).status).toBe(401);
    expect((await page("/metrics", { token: TOKENS.read })).status).toBe(200);
    expect((await page("/", { token: TOKENS.read })).status).toBe(200);
    expect((await page("/healthz")).status).toBe(200);
    const wrong = await page("/login", { form: { token: "nope-nope-nope-nope" } });
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain("That token is not one of api_tokens.");
    expect(wrong.headers.get("set-cookie")).toBeNull();
    const { cookie } = await signIn("read");
    expect((await page("/metrics", { cookie })).status).toBe(200);
  });
});

describe("page actions", () => {
  test("an operate session runs a job: CSRF, origin and role checked, the result shown once, the change audited as page", async () => {
    h = apiHarness();
    await h.call("PUT", "/api/v1/jobs/Ping", { token: TOKENS.admin, body: ping() });
    const { cookie, csrf } = await signIn("operate");
    expect(csrf.length).toBeGreaterThan(20);
    const home = await page("/", { cookie });
    expect(home.text).toContain('action="/ui/jobs/Ping/trigger"');
    expect(home.text).toContain("Run now");
    expect(home.text).not.toContain('href="/ui/jobs/Ping/edit"'); // admin only
    expect(home.text).not.toContain('http-equiv="refresh"'); // forms: no self-reload

    expect((await page("/ui/jobs/Ping/trigger", { cookie, form: {} })).status).toBe(403);
    expect((await page("/ui/jobs/Ping/trigger", { cookie, form: { csrf: `${csrf}x` } })).status).toBe(403);
    expect((await page("/ui/jobs/Ping/trigger", { cookie, form: { csrf }, origin: "http://evil.example" })).status).toBe(403);
    expect((await page("/ui/jobs/Ping/trigger", { form: { csrf } })).status).toBe(401);
    expect(h.sink.deliveries).toHaveLength(0);

    const done = await page("/ui/jobs/Ping/trigger", { cookie, form: { csrf }, origin: "http://127.0.0.1:8080" });
    expect(done.status).toBe(303);
    expect(done.headers.get("location")).toBe("/#job-Ping");
    expect(h.sink.deliveries).toHaveLength(1);
    const after = await page("/", { cookie });
    expect(after.text).toMatch(/class="flash good" role="status"><p>Run now &quot;Ping&quot;: success in \d+ ms \(run /);
    expect((await page("/", { cookie })).text).not.toContain('class="flash good"'); // said once
    const audit = await h.store.listAudit({ job: "Ping", limit: 5 });
    expect(audit.map((a) => [a.action, a.actor, a.via])).toEqual([
      ["trigger", "operate-bot", "page"],
      ["create", "admin-bot", "api"],
    ]);
    expect(after.text).toContain('id="audit"');

    // Pause answers "not available in this build" as a message, not an error page.
    await page("/ui/jobs/Ping/pause", { cookie, form: { csrf, note: "db migration" } });
    expect((await page("/", { cookie })).text).toContain("pause is not available in this build");
    // Disable, then the button turns into Enable.
    await page("/ui/jobs/Ping/disable", { cookie, form: { csrf } });
    expect(await h.store.findJobByName("Ping").then((d) => d?.enabled)).toBe(false);
    expect((await page("/", { cookie })).text).toContain('action="/ui/jobs/Ping/enable"');
  });

  test("a read session sees no action buttons and cannot post one", async () => {
    h = apiHarness();
    await h.call("PUT", "/api/v1/jobs/Ping", { token: TOKENS.admin, body: ping() });
    await h.call("POST", "/api/v1/jobs/Ping/trigger?wait=10", { token: TOKENS.operate });
    const { cookie, csrf } = await signIn("read");
    const home = await page("/", { cookie });
    for (const action of ["Run now", "Disable", "Pause", "Resume", "Retry", "/ui/jobs/"]) expect(home.text).not.toContain(action);
    expect(home.text).toContain("Sign out");
    const refused = await page("/ui/jobs/Ping/trigger", { cookie, form: { csrf } });
    expect(refused.status).toBe(403);
    expect(refused.text).toContain("needs role operate");
    expect(h.sink.deliveries).toHaveLength(1);
  });

  test("the admin's editor shows problems by field before saving and keeps masked values", async () => {
    h = apiHarness();
    await h.store.createJob({ name: "Ping", ...ping(), headers: { authorization: "Bearer hand-written-literal" } });
    const { cookie, csrf } = await signIn("admin");
    const editor = await page("/ui/jobs/Ping/edit", { cookie });
    expect(editor.status).toBe(200);
    expect(editor.text).toContain("&quot;authorization&quot;: &quot;***&quot;");
    expect(editor.text).not.toContain("hand-written-literal");
    const bad = await page("/ui/jobs/Ping/edit", { cookie, form: { csrf, intent: "check", document: JSON.stringify({ name: "Ping", every: "sometimes", url: "{{NOPE}}" }) } });
    expect(bad.status).toBe(422);
    expect(bad.text).toContain('<span class="mono">every</span>');
    expect(bad.text).toContain('<span class="mono">url</span>');
    expect(bad.text).toContain("nothing saved");
    const ok = await page("/ui/jobs/Ping/edit", { cookie, form: { csrf, intent: "check", document: JSON.stringify({ name: "Ping", every: "5m", url: "{{SINK}}/ok", headers: { authorization: "***" } }) } });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain("Valid: nothing saved yet.");
    expect((await h.store.findJobByName("Ping"))?.every).toBe("1h");
    const saved = await page("/ui/jobs/Ping/edit", { cookie, form: { csrf, intent: "save", document: JSON.stringify({ name: "Ping", every: "5m", url: "{{SINK}}/ok", headers: { authorization: "***" } }) } });
    expect(saved.status).toBe(303);
    const stored = await h.store.findJobByName("Ping");
    expect(stored?.every).toBe("5m");
    expect((stored?.headers as Record<string, string>).authorization).toBe("Bearer hand-written-literal");
    const { cookie: opCookie } = await signIn("operate");
    expect((await page("/ui/jobs/Ping/edit", { cookie: opCookie })).status).toBe(403);
  });
});

describe("pictures", () => {
  const T = Date.parse("2026-03-02T12:00:00Z");
  const run = (i: number, status: RunView["status"], attempt = 1): RunView => ({
    id: `j@${i}${attempt > 1 ? `#${attempt}` : ""}`, run_id: `j@${i}`, job: "J", job_id: "j", scheduled_for: new Date(T - i * 60_000).toISOString(), status, attempt, trigger: "schedule",
    machine_id: "m", started_at: new Date(T - i * 60_000 + 40).toISOString(), finished_at: null, duration_ms: 100 + i, lateness_ms: 40, error: null, reason: null, steps: [],
  });

  test("the run strip: one square per occurrence (its latest attempt), at most 30, oldest first, each linking to its run", () => {
    const history = [run(0, "success"), run(1, "success", 2), run(1, "error"), ...Array.from({ length: 40 }, (_, i) => run(i + 2, i % 3 === 0 ? "error" : "success"))];
    const strip = runStrip(history);
    const squares = [...strip.matchAll(/<a class="sq (\w+)" href="([^"]+)"/g)];
    expect(squares).toHaveLength(30);
    expect(squares.at(-1)![2]).toBe(`/ui/runs/${encodeURIComponent("j@0")}`);
    // The retried occurrence shows its second attempt's success, not its first's error.
    expect(squares.at(-2)!.slice(1)).toEqual(["good", `/ui/runs/${encodeURIComponent("j@1#2")}`]);
    expect(squares.at(-3)![1]).toBe("bad");
  });

  test("the chart: an SVG of the last day's durations and lateness, scaled to the largest, nothing older", () => {
    const svg = durationChart([run(0, "success"), run(10, "success"), run(60 * 25, "success")], T);
    expect(svg).toStartWith('<svg class="chart"');
    expect(svg).toContain("2 runs over the last 24 h");
    expect(svg.match(/<circle class="dur"/g)).toHaveLength(2);
    expect(svg.match(/<circle class="late"/g)).toHaveLength(2);
    expect(svg).toContain(">0.11 s<"); // the top: 110 ms, the largest value drawn
    expect(durationChart([run(60 * 25, "success")], T)).toBe("");
  });

  test("editor values shown masked are put back from the stored document", () => {
    expect(restoreMasked({ a: "***", b: { c: "***", d: 2 }, e: ["***"] }, { a: "x", b: { c: "y" }, e: ["z"] })).toEqual({ a: "x", b: { c: "y", d: 2 }, e: ["z"] });
    expect(restoreMasked({ a: "***" }, {})).toEqual({ a: "***" });
  });
});
