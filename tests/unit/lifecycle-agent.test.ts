import { afterEach, describe, expect, test } from "bun:test";
import { listJobSummaries } from "../../src/control/jobs.ts";
import { pauseJob, resumeJob } from "../../src/control/pause.ts";
import { addJob, createHarness, type Harness } from "../support/agent-harness.ts";

/**
 * Schedule lifecycle (issue 14) with a fake clock and three agents on one store: a one-time job
 * fires once and shows done; a pause with `until` holds every agent back with no record and each
 * resumes by itself; failure thresholds and on_recovery are counted across the fleet.
 */
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const FAST = { heartbeatMs: 1000, deadAfterMs: 4000, failoverStepMs: 1000 };
let h: Harness;

afterEach(async () => {
  await h?.close();
});

interface Sent {
  machine: string;
  path: string;
  query: Record<string, string>;
  at: number;
}

/** A fetch for every agent: records each request; `status(path, n)` answers the n-th request to a path. */
function recordingFetch(sent: Sent[], status: (path: string, n: number) => number = () => 200): typeof fetch {
  const counts = new Map<string, number>();
  return (async (input: string | URL | Request) => {
    const url = new URL(String(input instanceof Request ? input.url : input));
    const n = (counts.get(url.pathname) ?? 0) + 1;
    counts.set(url.pathname, n);
    sent.push({ machine: url.searchParams.get("m") ?? "", path: url.pathname, query: Object.fromEntries(url.searchParams), at: h.clock.now() });
    return new Response("{}", { status: status(url.pathname, n), headers: { "content-type": "application/json" } });
  }) as typeof fetch;
}

function startThree(fetchFn: typeof fetch) {
  return ["a", "b", "c"].map((id) => h.startAgent(id, FAST, { fetch: fetchFn }));
}

describe("one-time jobs (at)", () => {
  test("fires once across three agents at its instant, then shows done and never fires again", async () => {
    h = createHarness(T0);
    const sent: Sent[] = [];
    startThree(recordingFetch(sent));
    await h.clock.advance(2000);
    const at = T0 + 30_000;
    await addJob(h, "once", { at: new Date(at).toISOString() });
    await h.clock.advanceTo(at + 10_000);
    expect(sent.map((s) => [s.path, s.at])).toEqual([["/once", at]]);
    const runs = await h.store.listRuns({ job_name: "once", limit: 10 });
    expect(runs.map((r) => [r.status, r.scheduled_for.getTime(), r.trigger])).toEqual([["success", at, "schedule"]]);
    const [summary] = await listJobSummaries(h.store, [], "UTC", h.clock.now());
    expect(summary!.state).toBe("done");
    expect(summary!.done?.status).toBe("success");
    expect(summary!.next_fire).toBeNull();
    await h.clock.advance(120_000);
    expect(sent).toHaveLength(1);
  });

  test("a wall time is read in the job's zone", async () => {
    h = createHarness(T0);
    const sent: Sent[] = [];
    startThree(recordingFetch(sent));
    await h.clock.advance(2000);
    // 12:01 UTC is 07:01 in New York in January (EST, -05:00).
    await addJob(h, "once-ny", { at: "2026-01-05T07:01", tz: "America/New_York" });
    await h.clock.advanceTo(T0 + 70_000);
    expect(sent.map((s) => s.at)).toEqual([T0 + 60_000]);
  });
});

describe("one-time jobs missed while every agent was down", () => {
  test("follow catchup: last runs it once on start-up (trigger catchup), skip records it missed", async () => {
    h = createHarness(T0);
    const sent: Sent[] = [];
    const fetchFn = recordingFetch(sent);
    const first = h.startAgent("a", FAST, { fetch: fetchFn });
    await h.clock.advance(2000);
    await addJob(h, "once-last", { at: new Date(T0 + 60_000).toISOString() });
    await addJob(h, "once-skip", { at: new Date(T0 + 60_000).toISOString(), catchup: "skip" });
    await h.clock.advance(2000);
    first.agent.stop("maintenance");
    await h.clock.advanceTo(T0 + 5 * 60_000);
    h.startAgent("a", FAST, { fetch: fetchFn });
    await h.clock.advance(10_000);
    expect(sent.map((s) => [s.path, s.at])).toEqual([["/once-last", T0 + 5 * 60_000]]);
    const last = await h.store.listRuns({ job_name: "once-last", limit: 10 });
    expect(last.map((r) => [r.trigger, r.status, r.scheduled_for.getTime()])).toEqual([["catchup", "success", T0 + 60_000]]);
    const skip = await h.store.listRuns({ job_name: "once-skip", limit: 10 });
    expect(skip.map((r) => [r.status, r.scheduled_for.getTime()])).toEqual([["missed", T0 + 60_000]]);
    const states = (await listJobSummaries(h.store, [], "UTC", h.clock.now())).map((j) => [j.name, j.state, j.done?.status]);
    expect(states.sort()).toEqual([["once-last", "done", "success"], ["once-skip", "done", "missed"]]);
  });
});

describe("pause and resume", () => {
  test("pause --until 5s: no agent claims or records anything, then every agent resumes by itself", async () => {
    h = createHarness(T0);
    const sent: Sent[] = [];
    startThree(recordingFetch(sent));
    await h.clock.advance(2000);
    await addJob(h, "tick", { every: "1s", overlap: "allow" });
    await h.clock.advanceTo(T0 + 10_000);
    expect(sent.length).toBeGreaterThan(5);

    const pausedAt = h.clock.now();
    const paused = await pauseJob(h.store, "tick", { until: "5s", note: "deploy", by: "ops@test", defaultTz: "UTC", now: pausedAt });
    const until = Date.parse(paused.paused.until!);
    expect(until).toBe(pausedAt + 5000);
    // Each agent reads the pause at its next heartbeat (1 s).
    const seenBy = pausedAt + FAST.heartbeatMs + 100;
    await h.clock.advanceTo(seenBy);
    const [summary] = await listJobSummaries(h.store, [], "UTC", h.clock.now());
    expect(summary!.state).toBe("paused");
    expect(summary!.paused).toMatchObject({ note: "deploy", by: "ops@test", until: new Date(until).toISOString() });

    const claimsBefore = h.storeCalls.filter((c) => c.method === "insertRuns").length;
    await h.clock.advanceTo(until - 100);
    expect(h.storeCalls.filter((c) => c.method === "insertRuns").length).toBe(claimsBefore);
    await h.clock.advanceTo(until + 6000);

    const runs = await h.store.listRuns({ job_name: "tick", limit: 1000 });
    const between = runs.filter((r) => r.scheduled_for.getTime() >= seenBy && r.scheduled_for.getTime() < until);
    expect(between).toEqual([]);
    // From `until` on, every instant has its record again; every agent takes part again: the first
    // two of the order claim at their turn, the third checks that one of them did.
    const after = runs.filter((r) => r.scheduled_for.getTime() >= until && r.scheduled_for.getTime() <= until + 3000);
    expect(after.map((r) => r.scheduled_for.getTime()).sort()).toEqual([until, until + 1000, until + 2000, until + 3000]);
    const claimers = new Set(h.storeCalls.filter((c) => c.method === "insertRuns" && c.at >= until).map((c) => c.machine));
    expect([...claimers].sort()).toEqual(["a", "b"]);
    expect(h.storeCalls.some((c) => c.machine === "c" && c.method === "getRuns" && c.at >= until)).toBe(true);
    const [resumed] = await listJobSummaries(h.store, [], "UTC", h.clock.now());
    expect(resumed!.state).toBe("active");
  });

  test("a pause without until holds until jobs resume; a stale dead-man alert is not raised meanwhile", async () => {
    h = createHarness(T0);
    const sent: Sent[] = [];
    startThree(recordingFetch(sent));
    await h.clock.advance(2000);
    await addJob(h, "tick", { every: "2s", overlap: "allow", alert_after_sec: 3 });
    await h.clock.advanceTo(T0 + 6000);
    await pauseJob(h.store, "tick", { by: "ops@test", defaultTz: "UTC", now: h.clock.now() });
    await h.clock.advance(1500);
    const count = sent.length;
    const records = (await h.store.listRuns({ job_name: "tick", limit: 1000 })).length;
    await h.clock.advance(60_000);
    expect(sent.length).toBe(count);
    expect((await h.store.listRuns({ job_name: "tick", limit: 1000 })).length).toBe(records);
    const resumedAt = h.clock.now();
    expect((await resumeJob(h.store, "tick", resumedAt)).changed).toBe(true);
    await h.clock.advance(5000);
    expect(sent.filter((s) => s.at > resumedAt).length).toBeGreaterThan(0);
  });
});

describe("notify_after_failures and on_recovery", () => {
  test("notify_after_failures 3: on_failure on the third failure only (the streak spans agents); on_recovery once with {{failures}}", async () => {
    h = createHarness(T0);
    const sent: Sent[] = [];
    // The job's own request fails 4 times, then succeeds.
    const agents = startThree(recordingFetch(sent, (path, n) => (path === "/flaky" && n <= 4 ? 500 : 200)));
    await h.clock.advance(2000);
    await addJob(h, "flaky", {
      every: "10s",
      url: "http://sink.test/flaky?m={{machine_id}}",
      notify_after_failures: 3,
      on_failure: [{ url: "http://sink.test/alert?m={{machine_id}}&f={{failures}}" }],
      on_recovery: [{ url: "http://sink.test/recovered?m={{machine_id}}&f={{failures}}" }],
    });
    // Two failures on the first agent; it stops, and the next ones run elsewhere.
    await h.clock.advanceTo(T0 + 20_500);
    expect(sent.filter((s) => s.path === "/flaky").map((s) => s.machine)).toEqual(["a", "a"]);
    agents[0]!.agent.stop("test");
    await h.clock.advanceTo(T0 + 80_500);
    const flaky = sent.filter((s) => s.path === "/flaky");
    expect(flaky.length).toBe(8);
    expect(new Set(flaky.slice(2).map((s) => s.machine)).has("a")).toBe(false);
    const alerts = sent.filter((s) => s.path === "/alert");
    expect(alerts.map((s) => s.query.f)).toEqual(["3"]);
    expect(alerts[0]!.at).toBe(flaky[2]!.at);
    const recovered = sent.filter((s) => s.path === "/recovered");
    expect(recovered.map((s) => s.query.f)).toEqual(["4"]);
    expect(recovered[0]!.at).toBe(flaky[4]!.at);
  });

  test("the default (1) notifies every failure, as before, with {{failures}}", async () => {
    h = createHarness(T0);
    const sent: Sent[] = [];
    startThree(recordingFetch(sent, (path) => (path === "/bad" ? 500 : 200)));
    await h.clock.advance(2000);
    await addJob(h, "bad", { every: "10s", url: "http://sink.test/bad?m={{machine_id}}", on_failure: [{ url: "http://sink.test/alert?f={{failures}}" }] });
    await h.clock.advanceTo(T0 + 30_500);
    expect(sent.filter((s) => s.path === "/alert").length).toBe(sent.filter((s) => s.path === "/bad").length);
    expect(sent.filter((s) => s.path === "/alert").map((s) => s.query.f)).toEqual(["1", "2", "3"]);
  });
});
