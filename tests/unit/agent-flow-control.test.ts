import { afterEach, describe, expect, test } from "bun:test";
import { parseJobDocument } from "../../src/jobs/schema.ts";
import { assessHealth } from "../../src/observe/health.ts";
import { NOOP_OBSERVER } from "../../src/observe/observer.ts";
import { jitterOffsetMs } from "../../src/schedule/jitter.ts";
import type { RunRecord } from "../../src/store/types.ts";
import { addJob as addJobTo, createHarness, type Harness } from "../support/agent-harness.ts";

/**
 * One job cannot starve the others (max_parallel, bounded slot waits, saturation on /healthz),
 * flow control shared by jobs across the fleet (`limits`), and `jitter_sec`; on the fake clock.
 * docs/protocol.md, "Slots" and "Flow control".
 */
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const MINUTE = 60_000;
let h: Harness;

afterEach(async () => {
  await h?.close();
});

const addJob = (name: string, fields: Record<string, unknown>) => addJobTo(h, name, fields);
const pathOf = (url: string) => new URL(url).pathname;
const callsTo = (path: string) => h.calls.filter((c) => pathOf(c.url) === path);

/** The most requests in flight at once, each taking `durationMs` from its start. */
function maxInFlight(starts: number[], durationMs: number): number {
  let max = 0;
  for (const t of starts) max = Math.max(max, starts.filter((s) => s <= t && t < s + durationMs).length);
  return max;
}

/** The most starts within any window [t, t + windowMs). */
function maxStartsPerWindow(starts: number[], windowMs: number): number {
  let max = 0;
  for (const t of starts) max = Math.max(max, starts.filter((s) => s >= t && s < t + windowMs).length);
  return max;
}

async function runsOf(jobId: string): Promise<RunRecord[]> {
  return (await h.store.listRuns({ limit: 10_000 })).filter((r) => r.job_id === jobId);
}

describe("one job cannot starve the others", () => {
  test("an every-second overlap: allow job against a slow target holds at most its share of the slots; the others still run", async () => {
    h = createHarness(T0 + 500);
    h.slow.set("/slow", 20_000);
    const slowId = await addJob("slow", { every: "1s", overlap: "allow" });
    const fastId = await addJob("fast", { every: "1s" });
    h.startAgent("a", { maxConcurrentRuns: 4, placement: "spread" });
    await h.clock.advanceTo(T0 + 30_000);
    // Half of max_concurrent_runs by default: 2 in flight at once, whatever the target does.
    expect(maxInFlight(callsTo("/slow").map((c) => c.at), 20_000)).toBe(2);
    // The fast job ran every second it was due.
    expect(callsTo("/fast").length).toBeGreaterThanOrEqual(28);
    expect((await runsOf(fastId)).filter((r) => r.status === "success").length).toBeGreaterThanOrEqual(28);
    // Every occurrence of the slow job left a record: run, or skipped with the reason.
    const skipped = (await runsOf(slowId)).filter((r) => r.status === "skipped");
    expect(skipped.length).toBeGreaterThanOrEqual(20);
    expect(skipped[0]!.reason).toContain('max_parallel: 2 attempt(s) of "slow" already run or wait here');
  });

  test("an occurrence that cannot get a slot within its interval is recorded skipped, and /healthz says saturated", async () => {
    h = createHarness(T0 + 500);
    h.slow.set("/hog", 5 * MINUTE);
    await addJob("hog", { every: "10s", overlap: "allow", max_parallel: 2 });
    const waitingId = await addJob("waiting", { every: "30s" });
    const a = h.startAgent("a", { maxConcurrentRuns: 2, placement: "spread" });
    await h.clock.advanceTo(T0 + 30_000 + 100);
    // The hog's runs from :10 and :20 hold both slots; "waiting"'s occurrence at :30 queues (the
    // hog's own at :30 is skipped by max_parallel).
    let health = assessHealth(a.agent.snapshot(), h.clock.now());
    expect(health.slots).toMatchObject({ in_use: 2, size: 2, waiting: 1, saturated: true });
    expect(health.ok).toBe(false);
    expect(health.reasons.join("\n")).toContain("saturated: 2 of 2 run slots busy, 1 attempt(s) waiting");
    // It waits no longer than its interval (30 s), then is recorded skipped.
    await h.clock.advanceTo(T0 + 60_000 - 200);
    expect((await runsOf(waitingId))[0]?.status).toBe("running");
    await h.clock.advanceTo(T0 + 60_000 + 500);
    const runs = await runsOf(waitingId);
    const first = runs.find((r) => r.scheduled_for.getTime() === T0 + 30_000)!;
    expect(first.status).toBe("skipped");
    expect(first.reason).toContain("no free run slot in time: all 2 of max_concurrent_runs were busy");
    expect(callsTo("/waiting")).toHaveLength(0);
    health = assessHealth(a.agent.snapshot(), h.clock.now());
    expect(health.slots.saturated).toBe(true);
    expect(health.reasons.join("\n")).toContain("an occurrence was skipped for want of a slot");
  });

  test("max_parallel above 1 with overlap: skip is refused with the fix", async () => {
    const { parseJobDocument } = await import("../../src/jobs/schema.ts");
    const parsed = parseJobDocument({ name: "x", every: "1m", url: "http://127.0.0.1/", max_parallel: 3 }, { secretKeys: [] });
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.problems).toEqual([{ job: "x", path: "max_parallel", message: 'has no effect with overlap: skip (one attempt at a time); set "overlap": "allow" to run several at once' }]);
  });
});

describe("flow control across the fleet (limits)", () => {
  const limits = { partner: { parallel: 2, rate: { count: 5, perMs: 1000 } } };

  test("12 same-instant jobs sharing {parallel 2, rate 5/s} on 3 agents: one agent runs them, never more than 2 in flight or 5 starts a second, each once", async () => {
    h = createHarness(T0 + 500);
    h.slow.set("/partner", 300);
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push(await addJob(`partner${i}`, { url: `http://sink.test/partner/${i}`, every: "1m", limit: "partner" }));
    const started: RunRecord[] = [];
    const observer = { ...NOOP_OBSERVER, runStarted: (run: RunRecord) => started.push(run) };
    for (const id of ["a", "b", "c"]) h.startAgent(id, { placement: "spread", limits }, { observer });
    await h.clock.advanceTo(T0 + MINUTE + 10_000);
    const calls = h.calls.filter((c) => pathOf(c.url).startsWith("/partner/"));
    expect(calls.map((c) => pathOf(c.url)).sort()).toEqual(ids.map((_, i) => `/partner/${i}`).sort());
    expect(new Set(calls.map((c) => c.machine)).size).toBe(1);
    const starts = calls.map((c) => c.at);
    expect(maxInFlight(starts, 300)).toBeLessThanOrEqual(2);
    expect(maxStartsPerWindow(starts, 1000)).toBeLessThanOrEqual(5);
    // 12 starts at 5 a second take more than 2 s: the limit did bind.
    expect(Math.max(...starts) - Math.min(...starts)).toBeGreaterThanOrEqual(2000);
    // Each run says what it waited for; the wait is not counted as lateness.
    const runs = (await h.store.listRuns({ limit: 100 })).filter((r) => ids.includes(r.job_id));
    expect(runs.every((r) => r.status === "success" && r.limit === "partner" && typeof r.waited_ms === "number")).toBe(true);
    expect(Math.max(...runs.map((r) => r.waited_ms!))).toBeGreaterThanOrEqual(2000);
    const lateness = started.filter((r) => ids.includes(r.job_id)).map((r) => r.started_at!.getTime() - r.scheduled_for.getTime());
    expect(Math.max(...lateness)).toBeLessThan(500);
  });

  test("manual runs (Run now on the owner) wait for the job's limit like scheduled ones; a limit this agent lacks is refused", async () => {
    h = createHarness(T0 + 500);
    h.slow.set("/partner", 300);
    const id = await addJob("partner", { url: "http://sink.test/partner/manual", every: "1h", limit: "partner" });
    const orphanId = await addJob("orphan", { url: "http://sink.test/orphan", every: "1h", limit: "nowhere" });
    const a = h.startAgent("a", { placement: "spread", limits });
    await h.clock.advance(1000);
    const jobOf = async (jobId: string) => {
      const parsed = parseJobDocument(await h.store.getJob(jobId), { secretKeys: [], id: jobId });
      if (!parsed.ok) throw new Error("test job invalid");
      return { ...parsed.job, id: jobId };
    };
    const job = await jobOf(id);
    for (let i = 0; i < 6; i++) await a.agent.runManual(job, `${id}@manual-${i}`, "test");
    await h.clock.advance(10_000);
    const starts = callsTo("/partner/manual").map((c) => c.at);
    expect(starts).toHaveLength(6);
    expect(maxInFlight(starts, 300)).toBeLessThanOrEqual(2);
    expect(maxStartsPerWindow(starts, 1000)).toBeLessThanOrEqual(5);
    expect((await runsOf(id)).every((r) => r.status === "success" && r.trigger === "manual" && r.limit === "partner")).toBe(true);
    await expect(a.agent.runManual(await jobOf(orphanId), `${orphanId}@manual`, "test")).rejects.toThrow('limit "nowhere"');
    expect(await h.store.getRun(`${orphanId}@manual`)).toBeNull();
  });

  test("a job naming a limit its agent's config lacks is invalid there, and says what to add", async () => {
    h = createHarness(T0 + 500);
    await addJob("orphan", { every: "1m", limit: "nowhere" });
    const a = h.startAgent("a", { placement: "spread", limits });
    await h.clock.advanceTo(T0 + MINUTE + 1000);
    expect(a.agent.snapshot().invalidJobs).toBe(1);
    expect(callsTo("/orphan")).toHaveLength(0);
  });
});

describe("jitter_sec", () => {
  test("the offset is a pure function of the job id, within [0, jitter)", () => {
    expect(jitterOffsetMs("job-1", 60_000)).toBe(jitterOffsetMs("job-1", 60_000));
    expect(jitterOffsetMs("job-1", undefined)).toBe(0);
    const offsets = Array.from({ length: 1000 }, (_, i) => jitterOffsetMs(`665f1c2e9b1d4a0012${String(i).padStart(6, "0")}`, 60_000));
    expect(Math.min(...offsets)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...offsets)).toBeLessThan(60_000);
    // Spread: every tenth of the minute gets a share.
    const deciles = new Set(offsets.map((o) => Math.floor(o / 6000)));
    expect(deciles.size).toBe(10);
  });

  test("1,000 jobs at 0 * * * * with jitter_sec 60 start spread over the minute, each once, named by the nominal instant", async () => {
    h = createHarness(T0 + 500);
    const ids: string[] = [];
    for (let i = 0; i < 1000; i++) ids.push(await addJob(`hourly${i}`, { url: `http://sink.test/hourly/${i}`, cron: "0 * * * *", jitter_sec: 60 }));
    h.startAgent("a", { placement: "spread" });
    h.startAgent("b", { placement: "spread" });
    const top = T0 + 60 * MINUTE;
    await h.clock.advanceTo(top + 2 * MINUTE);
    const calls = h.calls.filter((c) => pathOf(c.url).startsWith("/hourly/"));
    expect(calls).toHaveLength(1000);
    expect(new Set(calls.map((c) => pathOf(c.url))).size).toBe(1000);
    expect(Math.min(...calls.map((c) => c.at))).toBeGreaterThanOrEqual(top);
    expect(Math.max(...calls.map((c) => c.at))).toBeLessThan(top + MINUTE);
    expect(new Set(calls.map((c) => Math.floor((c.at - top) / 6000))).size).toBe(10);
    const runs = (await h.store.listRuns({ limit: 1000 })).filter((r) => ids.includes(r.job_id));
    expect(runs).toHaveLength(1000);
    expect(runs.every((r) => r.scheduled_for.getTime() === top && r.status === "success")).toBe(true);
  }, 30_000);
});

describe("FlowLimits", () => {
  test("a limit name that is also an Object.prototype key is not found unless configured", async () => {
    const { FlowLimits } = await import("../../src/agent/flow-limits.ts");
    const { FakeClock } = await import("../support/fake-clock.ts");
    const limits = new FlowLimits({ partner: { parallel: 1, rate: null } }, new FakeClock(T0));
    expect(limits.has("constructor")).toBe(false);
    expect(limits.has("partner")).toBe(true);
  });

  test("rate 5/s alone: 12 permits asked at once start 5, 5 and 2, a full second apart, never 6 in any second", async () => {
    const { FlowLimits } = await import("../../src/agent/flow-limits.ts");
    const { FakeClock } = await import("../support/fake-clock.ts");
    const clock = new FakeClock(T0);
    const limits = new FlowLimits({ partner: { parallel: null, rate: { count: 5, perMs: 1000 } } }, clock);
    const starts: number[] = [];
    const never = new AbortController().signal;
    const permits = Array.from({ length: 12 }, () => limits.acquire("partner", never).then((p) => (starts.push(clock.now()), p.release())));
    await clock.advance(5000);
    await Promise.all(permits);
    expect(starts.map((t) => t - T0)).toEqual([0, 0, 0, 0, 0, 1000, 1000, 1000, 1000, 1000, 2000, 2000]);
    expect(maxStartsPerWindow(starts, 1000)).toBe(5);
  });
});
