import { afterEach, describe, expect, test } from "bun:test";
import { attention, esc, runsInPageOrder } from "../../src/observe/page.ts";
import { assessHealth } from "../../src/observe/health.ts";
import { gatherStatus, type StatusData } from "../../src/observe/status-data.ts";
import { observeHarness, type ObserveHarness } from "./observe-support.ts";

/** The status page as HTML: what it shows, in what order, and that nothing from the store is markup. */
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const MINUTE = 60_000;
const HOSTILE = `<script>alert("x")</script> & 'it'`;
let h: ObserveHarness;

afterEach(async () => {
  await h?.close();
});

describe("status page", () => {
  test("jobs, machines and a failed run with its steps, failures first, every store value escaped", async () => {
    h = observeHarness(T0 + 1000);
    h.status.set("/broken", 500);
    h.bodies.set("/broken", `<img src=x onerror="alert(1)">`);
    await h.addJob(HOSTILE, { every: "1m", url: "http://sink.test/broken", tz: "Asia/Seoul" });
    await h.addJob("Healthy ping", { every: "1m" });
    await h.addJob("Daily report", { hour: 9, minute: 30, tz: "America/New_York", url: "http://sink.test/report" });
    await h.store.createJob({ name: "bad <hour>", hour: 25, minute: 0, url: "http://sink.test/x" });
    await h.store.bumpJobsRevision(new Date(h.clock.now()));
    const a = h.start("machine-a");
    await h.clock.advanceTo(T0 + 2 * MINUTE + 300); // past the final-write flush window

    const res = await a.get("/");
    expect(res.status).toBe(200);
    const html = await res.text();
    // No markup from the store: the only tags are the page's own.
    expect(html).not.toContain("<script");
    expect(html).not.toContain("<img");
    expect(html).toContain(esc(HOSTILE));
    expect(html).toContain("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;");
    expect(html).toContain('<meta http-equiv="refresh" content="15">');
    expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');

    // The banner names what needs attention, first.
    const banner = html.slice(html.indexOf('<header class="banner'), html.indexOf("</header>"));
    expect(banner).toContain('class="banner bad"');
    expect(banner).toContain(`${esc(`"${HOSTILE}" failed`)}`);
    expect(banner).toContain("HTTP 500");
    expect(banner).toContain(esc('job "bad <hour>" is invalid and skipped: hour: must be an integer 0-23'));

    // Sections in order: machines, jobs, runs (failures first).
    const order = ["id=\"machines\"", "id=\"jobs\"", "id=\"runs\""].map((id) => html.indexOf(id));
    expect(order.every((i, k) => i > 0 && (k === 0 || i > order[k - 1]!))).toBe(true);
    const machines = html.slice(order[0], order[1]);
    expect(machines).toContain("machine-a");
    expect(machines).toContain("(this agent, primary)");
    expect(machines).toContain("0 ms");
    const jobs = html.slice(order[1], order[2]);
    expect(jobs).toContain("Healthy ping");
    expect(jobs).toContain("Asia/Seoul");
    // Next fire in the job's zone and in UTC: 09:30 in New York is 14:30 UTC in January.
    expect(jobs).toContain("2026-01-05 09:30:00 EST (-05:00)");
    expect(jobs).toContain("2026-01-05 14:30:00 UTC");
    const runs = html.slice(order[2]);
    const rows = runs.split("<tr").slice(2);
    expect(rows[0]).toContain('class="failed"');
    expect(rows[0]).toContain(esc(HOSTILE));
    expect(rows[0]).toContain("<details open>");
    expect(rows[0]).toContain("HTTP 500");
    expect(rows.findIndex((r) => r.includes("Healthy ping"))).toBeGreaterThan(rows.findLastIndex((r) => r.includes('class="failed"')));
  });

  test("all clear when nothing needs attention", async () => {
    h = observeHarness(T0 + 1000);
    await h.addJob("Healthy ping", { every: "1m" });
    const a = h.start("machine-a");
    await h.clock.advanceTo(T0 + MINUTE + 100);
    const html = await (await a.get("/")).text();
    expect(html).toContain('<header class="banner ok" id="summary">');
    expect(html).toContain("✓ All clear");
    expect(html).toContain("1 of 1 machine alive · primary machine-a · 1 of 1 jobs enabled");
    expect(html).toContain("<title>FleetCron — all clear</title>");
  });
});

describe("what needs attention, and run order", () => {
  test("a machine gone quiet, a skewed clock and a failing job are named; a stopped machine is not", async () => {
    h = observeHarness(T0);
    const now = T0;
    const seen = (ms: number) => new Date(now - ms);
    const machine = (id: string, lastSeenAgo: number, status: "running" | "stopped", offset: number) =>
      h.store.putMachine({ _id: id, hostname: `${id}.host`, pid: 1, serial: null, status, version: "1", started_at: seen(HOUR), last_seen: seen(lastSeenAgo), clock_offset_ms: offset });
    const HOUR = 60 * MINUTE;
    await machine("gone", 5 * MINUTE, "running", 0);
    await machine("skewed", 1000, "running", 1500);
    await machine("retired", HOUR, "stopped", 0);
    const jobId = await h.store.createJob({ name: "nightly", hour: 2, minute: 0, url: "http://sink.test/n" });
    await h.store.insertRun({ _id: `${jobId}@x`, run_id: `${jobId}@x`, job_id: jobId, job_name: "nightly", scheduled_for: seen(10 * MINUTE), attempt: 1, trigger: "catchup", status: "missed", reason: "missed: no agent was running", claimed_at: seen(MINUTE) });
    const data = await gatherStatus(h.store, { now, deadAfterMs: 15_000, defaultTz: "UTC", secretKeys: [], thisMachine: null, failures: 10, recentRuns: 10 });
    const snapshot = {
      machineId: "skewed", hostname: "skewed.host", version: "1", serial: 1, placement: "serial" as const, rank: 0, liveAgents: 1, phase: "running" as const,
      store: { kind: "sqlite" as const, location: ":memory:", reachable: true, downSince: null, lastError: null },
      startedAt: now - HOUR, lastHeartbeatAt: now - 1000, runningAttempts: 0, slots: { inUse: 0, size: 50, queued: 0, lastSkippedAt: null }, jobs: 1, invalidJobs: 0, heartbeatMs: 5000, deadAfterMs: 15_000, defaultTz: "UTC", secretKeys: [],
    };
    const items = attention({ now, snapshot, health: assessHealth(snapshot, now), data });
    expect(items).toEqual([
      '"nightly" missed 10 min ago: missed: no agent was running',
      "machine gone (gone.host) not heard from for 300 s: dead or cut off from the store",
      "machine skewed: clock differs from the store's by 1.5 s: check NTP",
    ]);
  });

  test("failed runs (error, lost, missed) come first, newest first, then the rest; duplicates once", () => {
    const run = (id: string, status: string, at: string) => ({ id, status, scheduled_for: at }) as StatusData["recent_runs"][number];
    const data = {
      recent_failures: [run("e1", "error", "2026-01-05T10:00:00.000Z"), run("m1", "missed", "2026-01-05T11:00:00.000Z")],
      recent_runs: [run("s2", "success", "2026-01-05T12:00:00.000Z"), run("l1", "lost", "2026-01-05T11:30:00.000Z"), run("k1", "skipped", "2026-01-05T11:45:00.000Z"), run("m1", "missed", "2026-01-05T11:00:00.000Z")],
    } as StatusData;
    expect(runsInPageOrder(data).map((r) => r.id)).toEqual(["l1", "m1", "e1", "s2", "k1"]);
  });
});
