import { afterEach, describe, expect, test } from "bun:test";
import { silentLogger } from "../../src/core/logger.ts";
import type { Health } from "../../src/observe/health.ts";
import { FleetMetrics } from "../../src/observe/metrics.ts";
import { startObserveServer } from "../../src/observe/server.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { observeHarness, parsePrometheusText, valueOf, type ObserveHarness } from "./observe-support.ts";

/**
 * `/metrics` and `/healthz` of agents driven in-process on the fake clock (the coordination
 * harness's store and clock), read through the same handler the HTTP server serves.
 */
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const MINUTE = 60_000;
let h: ObserveHarness;

afterEach(async () => {
  await h?.close();
});

describe("/metrics moves with runs", () => {
  test("runs by job and outcome, lateness, last success, agent info", async () => {
    h = observeHarness(T0 + 1000);
    h.status.set("/broken", 500);
    await h.addJob("ok job", { every: "1m" });
    await h.addJob('broken "job"', { every: "1m", url: "http://sink.test/broken" });
    const a = h.start("machine-a", { version: "9.9.9" });
    await h.clock.advance(100);

    let m = await a.scrape();
    expect(valueOf(m, "fleetcron_agent_info", { version: "9.9.9", machine_id: "machine-a", hostname: "test", serial: "1", store: "sqlite" })).toBe(1);
    expect(valueOf(m, "fleetcron_agent_serial")).toBe(1);
    expect(valueOf(m, "fleetcron_agent_rank")).toBe(0);
    expect(valueOf(m, "fleetcron_store_up")).toBe(1);
    expect(valueOf(m, "fleetcron_jobs", { state: "enabled" })).toBe(2);
    expect(valueOf(m, "fleetcron_runs_total", { job_name: "ok job", outcome: "success" })).toBeUndefined();
    expect(valueOf(m, "fleetcron_store_errors_total")).toBe(0);

    // Counted once its final record is written (final writes are flushed every 250 ms).
    await h.clock.advanceTo(T0 + MINUTE + 300);
    m = await a.scrape();
    expect(valueOf(m, "fleetcron_runs_total", { job_name: "ok job", outcome: "success" })).toBe(1);
    expect(valueOf(m, "fleetcron_runs_total", { job_name: 'broken "job"', outcome: "error" })).toBe(1);
    expect(valueOf(m, "fleetcron_run_lateness_seconds_count", { trigger: "schedule" })).toBe(2);
    expect(valueOf(m, "fleetcron_run_lateness_seconds_bucket", { trigger: "schedule", le: "0.05" })).toBe(2);
    expect(valueOf(m, "fleetcron_last_success_timestamp_seconds", { job_name: "ok job" })).toBe((T0 + MINUTE) / 1000);
    expect(valueOf(m, "fleetcron_last_success_timestamp_seconds", { job_name: 'broken "job"' })).toBeUndefined();

    await h.clock.advanceTo(T0 + 3 * MINUTE + 300);
    m = await a.scrape();
    expect(valueOf(m, "fleetcron_runs_total", { job_name: "ok job", outcome: "success" })).toBe(3);
    expect(valueOf(m, "fleetcron_runs_total", { job_name: 'broken "job"', outcome: "error" })).toBe(3);
    expect(valueOf(m, "fleetcron_run_lateness_seconds_count", { trigger: "schedule" })).toBe(6);
    expect(valueOf(m, "fleetcron_last_success_timestamp_seconds", { job_name: "ok job" })).toBe((T0 + 3 * MINUTE) / 1000);
    expect(valueOf(m, "fleetcron_last_heartbeat_timestamp_seconds")).toBeGreaterThan((T0 + 3 * MINUTE - 5000) / 1000);
  });

  test("a standby that fires counts a failover (and 5 s of lateness); a takeover counts on the agent that takes over", async () => {
    h = observeHarness(T0 + 1000);
    h.hang.add("/slow");
    await h.addJob("minutely", { every: "1m" });
    await h.addJob("slow", { every: "1h", url: "http://sink.test/slow" });
    const a = h.start("a");
    await h.clock.advance(100);
    const b = h.start("b");
    await h.clock.advance(100);
    expect(valueOf(await b.scrape(), "fleetcron_agent_rank")).toBe(1);

    // The primary dies shortly before the instant: the standby fires one failover step late.
    await h.clock.advanceTo(T0 + MINUTE - 3000);
    a.cut(true);
    await h.clock.advanceTo(T0 + MINUTE + 5100);
    let mb = await b.scrape();
    expect(valueOf(mb, "fleetcron_failovers_total", { job_name: "minutely" })).toBe(1);
    expect(valueOf(mb, "fleetcron_run_lateness_seconds_bucket", { trigger: "schedule", le: "2.5" })).toBe(0);
    expect(valueOf(mb, "fleetcron_run_lateness_seconds_bucket", { trigger: "schedule", le: "5" })).toBe(1);
    expect(valueOf(mb, "fleetcron_run_lateness_seconds_sum", { trigger: "schedule" })).toBe(5);

    // The primary comes back: at the hour it is primary again and hangs in "slow"; then it dies.
    a.cut(false);
    // Past the final-write flush window, so the minutely run of the same instant is recorded and
    // only "slow" is still running when a is cut off.
    await h.clock.advanceTo(T0 + 60 * MINUTE + 400);
    expect(h.requests.filter((r) => r.url.includes("/slow")).map((r) => r.machine)).toEqual(["a"]);
    h.hang.delete("/slow");
    a.cut(true);
    await h.clock.advanceTo(T0 + 60 * MINUTE + 30_000 + 5_000 + 6_000);
    mb = await b.scrape();
    expect(valueOf(mb, "fleetcron_takeovers_total", { job_name: "slow" })).toBe(1);
    expect(valueOf(mb, "fleetcron_runs_total", { job_name: "slow", outcome: "success" })).toBe(1);
    expect(valueOf(mb, "fleetcron_run_lateness_seconds_count", { trigger: "takeover" })).toBe(1);
    // dead_after_sec after a's last heartbeat, not a lease later: well under the 30 s lease_sec of v1.
    expect(valueOf(mb, "fleetcron_run_lateness_seconds_sum", { trigger: "takeover" })).toBeGreaterThan(5);
    expect(valueOf(mb, "fleetcron_run_lateness_seconds_sum", { trigger: "takeover" })).toBeLessThan(21);
    // The dead agent's own metrics count its store failures.
    expect(valueOf(await a.scrape(), "fleetcron_store_errors_total")).toBeGreaterThan(0);
    expect(valueOf(await a.scrape(), "fleetcron_store_up")).toBe(0);
  });

  test("skipped occurrences count with their outcome", async () => {
    h = observeHarness(T0 + 1000);
    h.hang.add("/slow");
    await h.addJob("slow", { every: "10s", url: "http://sink.test/slow", timeout_sec: 25 });
    const a = h.start("a");
    await h.clock.advanceTo(T0 + 20_000 + 100);
    expect(valueOf(await a.scrape(), "fleetcron_runs_total", { job_name: "slow", outcome: "skipped" })).toBe(1);
  });
});

describe("/healthz", () => {
  test("200 while the store answers and the agent holds a serial; 503 with the reason when the store goes away; 200 again after", async () => {
    h = observeHarness(T0 + 1000);
    await h.addJob("minutely", { every: "1m" });
    const a = h.start("a");
    await h.clock.advance(100);

    let res = await a.get("/healthz");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    let body = (await res.json()) as Health;
    expect(body).toMatchObject({ ok: true, reasons: [], machine_id: "a", serial: 1, rank: 0, phase: "running" });

    a.cut(true);
    await h.clock.advance(5_100); // the next heartbeat fails
    res = await a.get("/healthz");
    expect(res.status).toBe(503);
    body = (await res.json()) as Health;
    expect(body.ok).toBe(false);
    expect(body.reasons.join("\n")).toMatch(/store unreachable since 2026-01-05T12:00:0\d.\d{3}Z \(\d+ s\): connection refused \(test\)/);
    let m = await a.scrape();
    expect(valueOf(m, "fleetcron_store_up")).toBe(0);
    expect(valueOf(m, "fleetcron_store_errors_total")).toBeGreaterThanOrEqual(1);
    expect(valueOf(m, "fleetcron_store_reconnects_total")).toBe(0);

    // The status page says it cannot read the store, with the same reason, and answers 503.
    const page = await a.get("/");
    expect(page.status).toBe(503);
    const html = await page.text();
    expect(html).toContain("the store cannot be read: connection refused (test)");
    expect(html).toContain("store unreachable since");

    a.cut(false);
    await h.clock.advance(5_100);
    res = await a.get("/healthz");
    expect(res.status).toBe(200);
    m = await a.scrape();
    expect(valueOf(m, "fleetcron_store_up")).toBe(1);
    expect(valueOf(m, "fleetcron_store_reconnects_total")).toBe(1);
  });

  test("503 for an agent that holds no serial (max_serial reached), and while it starts or stops", async () => {
    h = observeHarness(T0 + 1000);
    const a = h.start("a", { maxSerial: 1 });
    // Before its first heartbeat completes the agent is starting.
    const starting = await a.get("/healthz");
    expect(starting.status).toBe(503);
    expect(((await starting.json()) as Health).reasons.join("\n")).toContain("starting");
    await h.clock.advance(100);
    const b = h.start("b", { maxSerial: 1 });
    await h.clock.advance(100);
    expect((await a.get("/healthz")).status).toBe(200);
    const res = await b.get("/healthz");
    expect(res.status).toBe(503);
    expect(((await res.json()) as Health).reasons.join("\n")).toContain("holds no serial");
    expect(valueOf(await b.scrape(), "fleetcron_agent_serial")).toBe(0);
    expect(valueOf(await b.scrape(), "fleetcron_agent_info", { version: "test", machine_id: "b", hostname: "test", serial: "", store: "sqlite" })).toBe(1);

    a.agent.stop("drain");
    const stopping = await a.get("/healthz");
    expect(stopping.status).toBe(503);
    expect(((await stopping.json()) as Health).reasons.join("\n")).toContain("stopping");
  });
});

describe("the HTTP server", () => {
  test("serves /healthz, /metrics (text format 0.0.4) and / on a free port; 404 and 405 elsewhere; a taken port is a config error", async () => {
    h = observeHarness(T0 + 1000);
    const a = h.start("a");
    await h.clock.advance(100);
    const metrics = new FleetMetrics();
    const deps = { snapshot: () => a.agent.snapshot(), metrics, store: h.store, clock: h.clock as FakeClock, log: silentLogger };
    const server = startObserveServer(deps, "127.0.0.1", 0);
    try {
      expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
      const health = await fetch(`${server.url}healthz`);
      expect(health.status).toBe(200);
      const scraped = await fetch(`${server.url}metrics`);
      expect(scraped.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
      expect(parsePrometheusText(await scraped.text()).has("fleetcron_runs_total")).toBe(true);
      const page = await fetch(server.url);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
      expect((await fetch(`${server.url}nope`)).status).toBe(404);
      const post = await fetch(`${server.url}metrics`, { method: "POST" });
      expect(post.status).toBe(405);
      const head = await fetch(`${server.url}healthz`, { method: "HEAD" });
      expect(head.status).toBe(200);
      expect(await head.text()).toBe("");
      expect(() => startObserveServer(deps, "127.0.0.1", server.port)).toThrow(/http_port \d+ on http_host 127.0.0.1: cannot listen/);
    } finally {
      await server.stop();
    }
  });
});
