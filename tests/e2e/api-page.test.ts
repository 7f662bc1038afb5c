import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, makeHome, runCli, startAgent, type AgentProcess, type TestHome } from "../support/cli.ts";
import { ARTIFACTS, HAVE_CHROMIUM, launchChromium, warnIfNoChromium } from "../support/chromium.ts";
import { startSink, type Sink } from "../support/sink.ts";
import type { Locator, Page } from "playwright-core";

/**
 * Issue 15's page in headless Chromium (Debian's chromium via playwright-core) against a real
 * agent: sign in with an operate token, Run now and see the run, pause with a note, retry a failed
 * run, a read token sees no buttons, a POST without the CSRF token is refused; screenshots at
 * desktop and 390 px width kept in tests/artifacts/. Pause and retry run the same src/control/
 * functions as the CLI (src/api/lifecycle.ts): the note is shown, and the retry is a new attempt.
 */
const TOKENS = { read: "page-read-token-0123456789", operate: "page-operate-token-0123456789" } as const;
warnIfNoChromium("page actions");

let sink: Sink;
let home: TestHome;
let agent: AgentProcess;
let url: string;

beforeAll(async () => {
  sink = startSink({ status: (req) => (new URL(req.url).pathname === "/fail" ? 500 : 200) });
  home = makeHome(
    {
      http_port: 0,
      heartbeat_sec: 1,
      dead_after_sec: 3,
      failover_step_sec: 1,
      secrets: { SINK: sink.url },
      api_tokens: { "ops-page": { token: TOKENS.operate, role: "operate" }, "viewer-page": { token: TOKENS.read, role: "read" } },
    },
    "fleetcron-api-page",
  );
  writeFileSync(join(home.dir, "jobs.json"), JSON.stringify([
    // Yearly, so the only delivery to /ok is the page's Run now (an hourly job could fire mid-test).
    { name: "Healthy ping", cron: "0 0 1 1 *", url: "{{SINK}}/ok" },
    { name: "Broken export", every: "2s", url: "{{SINK}}/fail" },
  ]));
  expect((await runCli(home, ["jobs", "apply", join(home.dir, "jobs.json")])).exitCode).toBe(0);
  agent = startAgent(home, "page");
  await agent.waitForLog(/http: status page http:\/\/127\.0\.0\.1:\d+\//);
  url = /http: status page (http:\/\/127\.0\.0\.1:\d+\/)/.exec(agent.log())![1]!;
  await eventually(async () => {
    const runs = JSON.parse((await runCli(home, ["runs", "--json", "--status", "error"])).stdout).runs as unknown[];
    return runs.length >= 2;
  }, 30_000, "failed runs of Broken export");
}, 60_000);

afterAll(async () => {
  if (agent) expect(await agent.stop()).toBe(0);
  await sink?.stop();
  home?.cleanup();
});

/**
 * Clicks a form's button and returns the first flash message of the page the POST redirects to.
 * Waiting for the navigation matters: the page before the click already shows a flash (the sign-in
 * one), so waiting for any `.flash` could read the old page's.
 */
async function submit(page: Page, button: Locator): Promise<string> {
  await Promise.all([page.waitForNavigation({ waitUntil: "load" }), button.click()]);
  return page.locator(".flash").first().innerText();
}

test.skipIf(!HAVE_CHROMIUM && !process.env.CI)(
  "sign in, Run now, pause with a note, retry a failed run; read sees no buttons; no CSRF token, no action; screenshots",
  async () => {
    const browser = await launchChromium();
    try {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      const violations: string[] = [];
      page.on("console", (m) => (/Content Security Policy/i.test(m.text()) ? violations.push(m.text()) : undefined));
      const first = await page.goto(url);
      expect(first?.status()).toBe(401);
      await page.fill('input[name="token"]', TOKENS.operate);
      await page.click('button:has-text("Sign in")');
      await page.waitForSelector("#jobs");
      expect(await page.locator(".flash").first().innerText()).toContain("Signed in as ops-page (operate)");
      const cookies = await context.cookies();
      expect(cookies.find((c) => c.name === "fleetcron_session")).toMatchObject({ httpOnly: true, sameSite: "Strict" });

      // Run now: the result is said at the top, and the run is in the table, without reloading by hand.
      const row = page.locator("#jobs tbody tr", { hasText: "Healthy ping" });
      expect(await submit(page, row.locator('button:has-text("Run now")'))).toMatch(/Run now "Healthy ping": success in \d+ ms \(run /);
      const manual = page.locator("#runs tbody tr", { hasText: "Healthy ping" }).filter({ hasText: "manual" });
      expect(await manual.count()).toBe(1);
      expect(sink.deliveries.filter((d) => d.path === "/ok")).toHaveLength(1);

      // Pause with a note.
      await page.locator("#jobs tbody tr", { hasText: "Healthy ping" }).locator('input[name="note"]').fill("db migration tonight");
      expect(await submit(page, page.locator("#jobs tbody tr", { hasText: "Healthy ping" }).locator('button:has-text("Pause")'))).toContain('"Healthy ping" paused: db migration tonight.');
      const pausedRow = page.locator("#jobs tbody tr", { hasText: "Healthy ping" });
      expect(await pausedRow.locator(".badge", { hasText: "paused" }).count()).toBe(1);
      expect(await pausedRow.innerText()).toContain("db migration tonight");
      expect(await pausedRow.locator('button:has-text("Resume")').count()).toBe(1);
      expect(await pausedRow.locator('button:has-text("Pause")').count()).toBe(0);

      // Retry a failed run.
      const failed = page.locator("#runs tbody tr.failed", { hasText: "Broken export" }).first();
      expect(await submit(page, failed.locator('button:has-text("Retry")'))).toMatch(/Retry of run .*: attempt 2 /);
      const retried = page.locator("#runs tbody tr", { hasText: "Broken export" }).filter({ hasText: "retry" });
      expect(await retried.count()).toBeGreaterThanOrEqual(1);

      // Pictures: a strip of squares per job, linking to runs, and the last day's chart.
      const broken = page.locator("#jobs tbody tr", { hasText: "Broken export" });
      expect(await broken.locator(".strip a.sq.bad").count()).toBeGreaterThanOrEqual(2);
      expect(await broken.locator("svg.chart circle.dur").count()).toBeGreaterThanOrEqual(2);
      const square = await broken.locator(".strip a.sq").last().getAttribute("href");
      const runPage = await context.newPage();
      expect((await runPage.goto(new URL(square!, url).toString()))?.status()).toBe(200);
      expect(await runPage.locator("#run").innerText()).toContain("Broken export");
      await runPage.close();

      // The audit section shows the page's change, with its actor.
      expect(await page.locator("#audit tbody tr", { hasText: "trigger" }).first().innerText()).toContain("ops-page");
      expect(await page.evaluate("document.scripts.length")).toBe(0);
      expect(violations).toEqual([]);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "page-actions.png"), fullPage: true });

      // A POST without the CSRF token (the session cookie alone) is refused and runs nothing.
      const before = sink.deliveries.length;
      const forged = await context.request.post(`${url}ui/jobs/Healthy%20ping/trigger`, { form: { note: "x" } });
      expect(forged.status()).toBe(403);
      expect(await forged.text()).toContain("CSRF token is missing or wrong");
      expect(sink.deliveries.length).toBe(before);

      // On a phone: no sideways scrolling, the actions stacked in the cards.
      const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
      await phone.context().addCookies(cookies);
      await phone.goto(url);
      expect(await phone.locator('button:has-text("Run now")').count()).toBe(2);
      expect(await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")).toBe(true);
      await phone.screenshot({ path: join(ARTIFACTS, "page-actions-phone.png"), fullPage: false });

      // A read token: the same page, no action buttons.
      const reader = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await reader.goto(url);
      await reader.fill('input[name="token"]', TOKENS.read);
      await reader.click('button:has-text("Sign in")');
      await reader.waitForSelector("#jobs");
      for (const label of ["Run now", "Pause", "Resume", "Disable", "Retry", "Edit"]) expect([label, await reader.locator(`button:has-text("${label}"), a:has-text("${label}")`).count()]).toEqual([label, 0]);
      expect(await reader.locator("#jobs tbody tr").count()).toBe(2);
      await reader.screenshot({ path: join(ARTIFACTS, "page-read-only.png"), fullPage: true });
    } finally {
      await browser.close();
    }

    // The page's change is in `fleetcron audit` beside the CLI's.
    const audit = JSON.parse((await runCli(home, ["audit", "--json"])).stdout).entries as { action: string; actor: string; via: string; job: string }[];
    expect(audit.find((e) => e.action === "trigger")).toMatchObject({ actor: "ops-page", via: "page", job: "Healthy ping" });
    expect(audit.filter((e) => e.via === "cli" && e.action === "create").map((e) => e.job).sort()).toEqual(["Broken export", "Healthy ping"]);
  },
  90_000,
);
