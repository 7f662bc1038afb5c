import { afterEach, describe, expect, test } from "bun:test";
import { occurrenceId } from "../../src/coordinator/occurrence.ts";
import { alertId } from "../../src/coordinator/deadman.ts";
import { observeHarness, valueOf, type ObserveHarness } from "./observe-support.ts";

/**
 * The dead-man's switch (`alert_after_sec`): an occurrence that has not succeeded that long after
 * its instant makes the job's on_failure actions fire once across the fleet, with the reason.
 */
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
let h: ObserveHarness;

afterEach(async () => {
  await h?.close();
});

const NOTIFY = [{ type: "http", name: "page me", url: "http://sink.test/alert" }];

describe("alert_after_sec", () => {
  test("a run still going after alert_after_sec: on_failure fires once across two agents, with the reason", async () => {
    h = observeHarness(T0 + 1000);
    h.hang.add("/work");
    const jobId = await h.addJob("hourly", {
      every: "1h",
      alert_after_sec: 120,
      actions: [{ type: "http", name: "work", url: "http://sink.test/work", timeout_sec: 3600 }],
      on_failure: [{ type: "http", name: "page me", url: "http://sink.test/alert?job={{job.name}}&run={{run_id}}" }],
    });
    const a = h.start("a", {});
    await h.clock.advance(100);
    const b = h.start("b", {});
    await h.clock.advance(100);

    await h.clock.advanceTo(T0 + HOUR + 119_000);
    expect(h.requests.filter((r) => r.url.includes("/alert"))).toEqual([]);
    await h.clock.advanceTo(T0 + HOUR + 120_000 + 5_100); // every agent has had a heartbeat past the deadline
    await h.clock.advanceTo(T0 + HOUR + 10 * MINUTE);

    const alerts = h.requests.filter((r) => r.url.includes("/alert"));
    expect(alerts).toHaveLength(1);
    const runId = occurrenceId(jobId, T0 + HOUR);
    expect(alerts[0]!.runId).toBe(alertId(runId));
    expect(alerts[0]!.headers["idempotency-key"]).toBe(alertId(runId));
    expect(alerts[0]!.url).toBe(`http://sink.test/alert?job=hourly&run=${alertId(runId)}`);
    expect(alerts[0]!.headers["x-fleetcron-alert"]).toBe(`alert_after_sec=120; scheduled_for=${new Date(T0 + HOUR).toISOString()}; state=running`);

    const record = await h.store.getRun(alertId(runId));
    expect(record).toMatchObject({ run_id: runId, job_id: jobId, attempt: 0, trigger: "alert", status: "error" });
    expect(record!.reason).toContain(`alert_after_sec: "hourly" @ ${new Date(T0 + HOUR).toISOString()} has not succeeded 120 s after its instant — attempt 1 is still running on a`);
    expect(record!.steps!.map((s) => [s.name, s.status])).toEqual([["on_failure:page me", "success"]]);
    // The occurrence's own attempt is untouched and still the job's latest run.
    expect((await h.store.getRun(runId))?.status).toBe("running");
    expect((await h.store.latestRunsByJob()).get(jobId)?._id).toBe(runId);

    const alertsCounted = [await a.scrape(), await b.scrape()].map((m) => valueOf(m, "fleetcron_alerts_total", { job_name: "hourly" }) ?? 0);
    expect(alertsCounted.sort()).toEqual([0, 1]);
  });

  test("a success, or an error whose on_failure already ran, raises no alert", async () => {
    h = observeHarness(T0 + 1000);
    h.status.set("/broken", 500);
    await h.addJob("fine", { every: "1m", alert_after_sec: 30, on_failure: NOTIFY.map((a) => ({ ...a, url: "http://sink.test/alert-fine" })) });
    await h.addJob("broken", {
      every: "1m",
      alert_after_sec: 30,
      actions: [{ type: "http", name: "work", url: "http://sink.test/broken" }],
      on_failure: [{ type: "http", name: "page me", url: "http://sink.test/alert-broken?status={{steps.work.status}}" }],
    });
    h.start("a");
    await h.clock.advanceTo(T0 + 3 * MINUTE + 45_000);
    expect(h.requests.filter((r) => r.url.includes("/alert-fine"))).toEqual([]);
    // The broken job's on_failure ran once per occurrence, from the run itself, never again as an alert.
    expect(h.requests.filter((r) => r.url.includes("/alert-broken")).map((r) => [r.url, r.runId.includes("!alert")])).toEqual([
      ["http://sink.test/alert-broken?status=500", false],
      ["http://sink.test/alert-broken?status=500", false],
      ["http://sink.test/alert-broken?status=500", false],
    ]);
    expect((await h.store.listRuns({ limit: 100 })).filter((r) => r.trigger === "alert")).toEqual([]);
  });

  test("a skipped occurrence alerts; a notification that cannot be sent is recorded with the alert", async () => {
    h = observeHarness(T0 + 1000);
    h.hang.add("/work");
    const jobId = await h.addJob("every 10 s", {
      every: "10s",
      alert_after_sec: 5,
      actions: [{ type: "http", name: "work", url: "http://sink.test/work", timeout_sec: 25 }],
      on_failure: [
        { type: "http", name: "page me", url: "http://sink.test/alert" },
        // The skipped occurrence ran no step: this template cannot be filled, so this step fails.
        { type: "http", name: "with status", url: "http://sink.test/alert-status?s={{steps.work.status}}", continue_on_failure: true },
      ],
    });
    h.start("a");
    await h.clock.advanceTo(T0 + 20_000 + 5_000 + 5_100);
    const skipped = occurrenceId(jobId, T0 + 20_000);
    expect((await h.store.getRun(skipped))?.status).toBe("skipped");
    const alert = await h.store.getRun(alertId(skipped));
    expect(alert?.reason).toContain("attempt 1 ended skipped: overlap");
    expect(alert?.reason).toContain('the notification failed: step "with status"');
    expect(alert?.steps?.map((s) => [s.name, s.status])).toEqual([
      ["on_failure:page me", "success"],
      ["on_failure:with status", "error"],
    ]);
    expect(h.requests.filter((r) => r.url.includes("/alert")).map((r) => r.headers["x-fleetcron-alert"])).toContain(
      `alert_after_sec=5; scheduled_for=${new Date(T0 + 20_000).toISOString()}; state=skipped`,
    );
    expect(h.requests.filter((r) => r.url.includes("/alert-status"))).toEqual([]);
  });

  test("occurrences missed while no agent ran: one alert for the newest, none for older ones", async () => {
    h = observeHarness(T0 + 1000);
    const lastSeen = new Date(T0 - 30 * MINUTE);
    await h.store.putMachine({ _id: "old", hostname: "x", pid: 1, serial: null, status: "stopped", version: "0", started_at: lastSeen, last_seen: lastSeen, clock_offset_ms: 0 });
    const created = new Date(T0 - 40 * MINUTE);
    const jobId = await h.store.createJob({
      name: "five-minutely",
      every: "5m",
      url: "http://sink.test/work",
      catchup: "skip",
      alert_after_sec: 60,
      on_failure: [{ type: "http", name: "page me", url: "http://sink.test/alert" }],
      created_at: created,
      updated_at: created,
    });
    h.start("a");
    await h.clock.advance(12_000);
    const alerts = (await h.store.listRuns({ limit: 100 })).filter((r) => r.trigger === "alert");
    expect(alerts.map((r) => r._id)).toEqual([alertId(occurrenceId(jobId, T0 - 5 * MINUTE))]);
    expect(alerts[0]!.reason).toContain('ended missed: missed: no agent was running at');
    expect(h.requests.filter((r) => r.url.includes("/alert"))).toHaveLength(1);
  });

  test("a job without on_failure still records and logs the alert", async () => {
    h = observeHarness(T0 + 1000);
    h.hang.add("/work");
    const jobId = await h.addJob("quiet", { every: "1h", url: "http://sink.test/work", timeout_sec: 3600, alert_after_sec: 60 });
    h.start("a", {});
    await h.clock.advanceTo(T0 + HOUR + 70_000);
    const alert = await h.store.getRun(alertId(occurrenceId(jobId, T0 + HOUR)));
    expect(alert?.reason).toContain("the job has no on_failure actions to notify");
    expect(alert?.steps).toEqual([]);
    expect(h.requests.filter((r) => !r.url.includes("/work"))).toEqual([]);
  });
});
