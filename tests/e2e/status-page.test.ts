import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parsePrometheusText, valueOf } from "../unit/observe-prom-parser.ts";
import { eventually, makeHome, runCli, startAgent, type AgentProcess, type TestHome } from "../support/cli.ts";
import { ARTIFACTS, HAVE_CHROMIUM, launchChromium, warnIfNoChromium } from "../support/chromium.ts";
import { startSink, type Sink } from "../support/sink.ts";

/**
 * Issue 7 end to end: a real agent process with `http_port` set serves /healthz, /metrics and the
 * status page; the page is driven in headless Chromium (Debian's `chromium` with playwright-core)
 * and a screenshot is kept in tests/artifacts/.
 */
const BROKEN = "Broken <export> & co";
warnIfNoChromium("status page");

let sink: Sink;
let home: TestHome;
let agent: AgentProcess;
let url: string;
let machineId: string;

beforeAll(async () => {
  sink = startSink({ status: (req) => (new URL(req.url).pathname === "/fail" ? 500 : 200) });
  home = makeHome({ tz: "Asia/Seoul", http_port: 0, placement: "serial", heartbeat_sec: 1, dead_after_sec: 3, failover_step_sec: 1, secrets: { SINK: sink.url } }, "fleetcron-status-page");
  const jobs = [
    { name: "Healthy ping", every: "2s", url: "{{SINK}}/ok" },
    { name: BROKEN, every: "3s", url: "{{SINK}}/fail", method: "POST", body: { hello: "world" } },
    { name: "Nightly report", cron: "30 2 * * *", tz: "America/New_York", url: "{{SINK}}/report" },
  ];
  writeFileSync(join(home.dir, "jobs.json"), JSON.stringify(jobs));
  expect((await runCli(home, ["jobs", "apply", join(home.dir, "jobs.json")])).exitCode).toBe(0);
  agent = startAgent(home, "observed");
  await agent.waitForLog(/http: status page http:\/\/127\.0\.0\.1:\d+\//);
  url = /http: status page (http:\/\/127\.0\.0\.1:\d+\/)/.exec(agent.log())![1]!;
  machineId = readFileSync(join(home.home, "machine-id"), "utf8").trim();
  // A failed run and a successful one are recorded before anyone looks.
  await eventually(async () => {
    const runs = JSON.parse((await runCli(home, ["runs", "--json", "--limit", "50"])).stdout).runs as { job_name: string; status: string }[];
    return runs.some((r) => r.job_name === BROKEN && r.status === "error") && runs.some((r) => r.job_name === "Healthy ping" && r.status === "success");
  }, 30_000, "a failed and a successful run");
}, 60_000);

afterAll(async () => {
  if (agent) expect(await agent.stop()).toBe(0);
  await sink?.stop();
  home?.cleanup();
});

test("/healthz is 200 with the agent's serial; /metrics parses and counts the failed runs", async () => {
  const health = await fetch(`${url}healthz`);
  expect(health.status).toBe(200);
  expect(await health.json()).toMatchObject({ ok: true, machine_id: machineId, serial: 1, rank: 0, phase: "running", store: { kind: "sqlite", reachable: true } });
  const metrics = parsePrometheusText(await (await fetch(`${url}metrics`)).text());
  const info = metrics.get("fleetcron_agent_info")!.samples[0]!;
  expect(info.labels).toMatchObject({ machine_id: machineId, serial: "1", store: "sqlite" });
  expect(valueOf(metrics, "fleetcron_runs_total", { job_name: BROKEN, outcome: "error" })).toBeGreaterThanOrEqual(1);
  expect(valueOf(metrics, "fleetcron_runs_total", { job_name: "Healthy ping", outcome: "success" })).toBeGreaterThanOrEqual(1);
  expect(valueOf(metrics, "fleetcron_run_lateness_seconds_count", { trigger: "schedule" })).toBeGreaterThanOrEqual(2);
});

test("`fleetcron status --json` and the page tell the same story", async () => {
  const status = JSON.parse((await runCli(home, ["status", "--json"])).stdout);
  expect(status.this_machine.machine_id).toBe(machineId);
  expect(status.fleet.primary).toBe(machineId);
  expect(status.recent_failures[0].job).toBe(BROKEN);
  const html = await (await fetch(url)).text();
  for (const job of status.jobs.list as { name: string }[]) expect(html).toContain(Bun.escapeHTML(job.name));
  expect(html).toContain(`primary ${machineId}`);
});

test.skipIf(!HAVE_CHROMIUM && !process.env.CI)(
  "the status page in headless Chromium: a job, a machine and a failed run appear; screenshots kept",
  async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const response = await page.goto(url);
      expect(response?.status()).toBe(200);
      // What an operator sees first: the banner, red, naming the failing job.
      expect(await page.title()).toContain("needs attention");
      const banner = page.locator("#summary");
      expect(await banner.getAttribute("class")).toBe("banner bad");
      expect(await banner.innerText()).toContain(`"${BROKEN}" failed`);
      // A machine, with its serial.
      const machineRow = page.locator("#machines tbody tr", { hasText: machineId });
      expect(await machineRow.count()).toBe(1);
      expect(await machineRow.locator('td[data-label="Serial"]').innerText()).toBe("1");
      // Jobs, with the next fire time in their zone and in UTC.
      const nightly = page.locator("#jobs tbody tr", { hasText: "Nightly report" });
      expect(await nightly.locator('td[data-label="Zone"]').innerText()).toBe("America/New_York");
      expect(await nightly.locator('td[data-label="Next"]').innerText()).toMatch(/02:30:00 E[SD]T \(-0[45]:00\)\n.*0[67]:30:00 UTC/);
      expect(await page.locator("#jobs tbody tr", { hasText: "Healthy ping" }).count()).toBe(1);
      // The failed run comes first, its name shown as text (not markup), its step open with the HTTP status.
      const first = page.locator("#runs tbody tr").first();
      expect(await first.getAttribute("class")).toBe("failed");
      expect(await first.locator('td[data-label="Job"] strong').first().innerText()).toBe(BROKEN);
      expect(await first.innerText()).toContain("HTTP 500");
      expect(await first.locator("details").first().getAttribute("open")).toBe("");
      expect(await page.evaluate("document.scripts.length")).toBe(0);
      expect(await page.locator('meta[http-equiv="refresh"]').getAttribute("content")).toBe("15");
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "status-page.png"), fullPage: true });

      // On a phone: no sideways scrolling, the tables stacked as cards.
      const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
      await phone.goto(url);
      expect(await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")).toBe(true);
      expect(await phone.locator("#jobs thead").isVisible()).toBe(false);
      await phone.screenshot({ path: join(ARTIFACTS, "status-page-phone.png"), fullPage: false });
    } finally {
      await browser.close();
    }
  },
  60_000,
);
