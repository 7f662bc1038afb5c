import { afterEach, describe, expect, test } from "bun:test";
import type { AgentSettings } from "../../src/agent/agent.ts";
import { Slots } from "../../src/agent/slots.ts";
import { addJob as addJobTo, BASE_SETTINGS, createHarness, type Harness } from "../support/agent-harness.ts";

/**
 * Regression tests for the findings of the coordination review (issue 10, item 6), one each, on
 * the fake clock. Each names its finding; the protocol is in docs/protocol.md.
 */
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const MINUTE = 60_000;
let h: Harness;

afterEach(async () => {
  await h?.close();
});

const addJob = (name: string, fields: Record<string, unknown>) => addJobTo(h, name, fields);

const occurrence = (jobId: string, at: number) => `${jobId}@${new Date(at).toISOString()}`;

describe("review findings", () => {
  test("b, c: a fenced attempt sends nothing more, and its late result does not overwrite lost", async () => {
    h = createHarness(T0 + 1000);
    h.hang.add("/slow");
    const jobId = await addJob("slow", { every: "1h", url: "http://sink.test/slow", actions: undefined });
    const a = h.startAgent("a");
    await h.clock.advance(100);
    h.startAgent("b");
    await h.clock.advanceTo(T0 + 60 * MINUTE + 100);
    // a freezes (its store calls hang) mid-request, past dead_after_sec; b takes over.
    a.freeze(true);
    h.hang.delete("/slow");
    await h.clock.advanceTo(T0 + 60 * MINUTE + 25_000);
    const runId = occurrence(jobId, T0 + 60 * MINUTE);
    expect((await h.store.getRun(`${runId}#2`))?.status).toBe("success");
    a.freeze(false);
    await h.clock.advance(MINUTE);
    // a's request was closed at its fence deadline; it sent nothing after, and wrote no result over lost.
    expect(h.calls.filter((c) => c.runId === runId).map((c) => c.machine)).toEqual(["a", "b"]);
    expect(h.aborts.map((c) => c.machine)).toEqual(["a"]);
    expect((await h.store.getRun(runId))?.status).toBe("lost");
  });

  test("b: within the abort margin of its fence deadline an attempt starts no further request", async () => {
    h = createHarness(T0 + 1000);
    h.slow.set("/step1", 8400);
    await addJob("two", { every: "1h", url: undefined, method: undefined, actions: [
      { type: "http", name: "one", method: "POST", url: "http://sink.test/step1" },
      { type: "http", name: "two", method: "POST", url: "http://sink.test/step2" },
    ] });
    const a = h.startAgent("a");
    await h.clock.advanceTo(T0 + 60 * MINUTE + 100);
    a.cut(true);
    // Its last acknowledged heartbeat left at 12:59:56: F = 13:00:08.97, F − M = 13:00:07.97.
    // Step one answers at 13:00:08.4, inside the margin: step two must not leave.
    await h.clock.advance(20_000);
    expect(h.calls.map((c) => new URL(c.url).pathname)).toEqual(["/step1"]);
  });

  test("b: a claim acknowledged after the fence deadline is not run by its agent; the takeover runs it once", async () => {
    h = createHarness(T0 + 1000);
    const jobId = await addJob("hourly", { every: "1h" });
    const a = h.startAgent("a");
    await h.clock.advanceTo(T0 + 60 * MINUTE - 1000);
    a.failNext("beat", 4); // heartbeats fail for about 9 s: the fence is not renewed
    a.delayMethod("insertRuns", 15_000); // and the claim's answer comes after F
    await h.clock.advanceTo(T0 + 60 * MINUTE + 16_000);
    a.delayMethod("insertRuns", 0);
    await h.clock.advance(30_000);
    const runId = occurrence(jobId, T0 + 60 * MINUTE);
    expect(h.calls.filter((c) => c.runId === runId)).toHaveLength(1);
    expect((await h.store.getRun(runId))?.status).toBe("lost");
    expect((await h.store.getRun(`${runId}#2`))?.status).toBe("success");
  });

  test("d: an occurrence waiting for its turn is not fired after its job was disabled", async () => {
    h = createHarness(T0 + 1000);
    const jobId = await addJob("minutely", { every: "1m" });
    const a = h.startAgent("a");
    await h.clock.advance(100);
    h.startAgent("b");
    await h.clock.advanceTo(T0 + MINUTE - 3000);
    a.cut(true); // the primary is gone: b would fire one failover step late
    await h.clock.advanceTo(T0 + MINUTE + 500);
    const doc = (await h.store.getJob(jobId))!;
    const { _id, ...fields } = doc;
    await h.store.replaceJob(jobId, { ...fields, enabled: false, updated_at: new Date(h.clock.now()) });
    await h.store.bumpJobsRevision(new Date(h.clock.now()));
    await h.clock.advanceTo(T0 + MINUTE + 10_000);
    expect(h.calls.filter((c) => c.at >= T0 + MINUTE)).toEqual([]);
  });

  test("e: reload-config with a new default zone re-places fixed-hour jobs (one fire per day)", async () => {
    const start = Date.UTC(2026, 0, 5, 8, 0, 0);
    h = createHarness(start);
    await addJob("daily", { hour: 9, minute: 0 });
    const settings: AgentSettings = { ...BASE_SETTINGS, machineId: "a", defaultTz: "UTC" };
    h.startAgent("a", {}, { reloadConfig: async () => ({ ...settings, defaultTz: "Asia/Seoul" }) });
    await h.clock.advance(1000);
    await h.store.insertCommand({ _id: "cfg-1", type: "reload-config", target: null, created_at: new Date(h.clock.now()) });
    await h.clock.advanceTo(Date.UTC(2026, 0, 6, 0, 0, 500));
    // 09:00 Seoul is 00:00 UTC; the old 09:00 UTC placement did not fire.
    expect(h.calls.map((c) => new Date(c.at).toISOString())).toEqual(["2026-01-06T00:00:00.000Z"]);
    expect((await h.store.listAcks("cfg-1")).map((a) => a.machine_id)).toEqual(["a"]);
  }, 30_000);

  test("f: a smaller max_concurrent_runs keeps every waiter and never counts below zero", async () => {
    const slots = new Slots(2);
    await slots.acquire();
    await slots.acquire();
    let third = false;
    const waiting = slots.acquire().then(() => (third = true));
    slots.resize(1);
    slots.release(); // 1 in use now, limit 1: the waiter must wait
    await Promise.resolve();
    expect(third).toBe(false);
    expect(slots.inUse).toBe(1);
    slots.release();
    await waiting;
    expect(third).toBe(true);
    expect(slots.inUse).toBe(1);
    slots.release();
    expect(slots.inUse).toBe(0);
    slots.resize(3);
    expect(slots.inUse).toBe(0);
  });

  test("g: a catch-up whose claim hits a store error keeps the occurrence and records it later", async () => {
    h = createHarness(T0 + 1000);
    const jobId = await addJob("minutely", { every: "1m", catchup: "last" });
    const a = h.startAgent("a");
    await h.clock.advanceTo(T0 + MINUTE - 500);
    a.cut(true);
    await h.clock.advanceTo(T0 + 3 * MINUTE + 30_000);
    a.failNext("insertRuns", 1); // the first catch-up claim after the outage fails
    a.cut(false);
    await h.clock.advanceTo(T0 + 4 * MINUTE - 1000);
    const runs = await h.store.getRuns([1, 2, 3].map((m) => occurrence(jobId, T0 + m * MINUTE)));
    expect(runs.map((r) => r.status).sort()).toEqual(["missed", "missed", "success"]);
  });

  test("h: a single agent restarted after draining records the occurrences due while it drained", async () => {
    h = createHarness(T0 + 1000);
    h.hang.add("/slow");
    const slowId = await addJob("slow", { every: "1h", url: "http://sink.test/slow", timeout_sec: 40 });
    const tickId = await addJob("tick", { every: "10s", catchup: "skip" });
    const first = h.startAgent("a");
    await h.clock.advanceTo(T0 + 60 * MINUTE + 100);
    first.agent.stop("drain"); // waits for "slow" (40 s) while ticks fall due
    await h.clock.advance(45_000);
    await first.done;
    h.startAgent("a");
    await h.clock.advance(5_000);
    const instants = Array.from({ length: 4 }, (_, i) => T0 + 60 * MINUTE + (i + 1) * 10_000);
    const runs = await h.store.getRuns(instants.map((at) => occurrence(tickId, at)));
    // Every one has a record: the three the drain passed over are missed (catchup: skip); the last
    // fell within the restarted agent's grace and ran.
    expect(runs.map((r) => [r.scheduled_for.getTime(), r.status]).sort()).toEqual(instants.map((at, i) => [at, i < 3 ? "missed" : "success"]));
    expect((await h.store.getRun(occurrence(slowId, T0 + 60 * MINUTE)))?.status).toBe("error");
  });

  test("i: a store outage longer than dead_after_sec during a run: the run is fenced, then re-run (on_lost)", async () => {
    h = createHarness(T0 + 1000);
    h.hang.add("/slow");
    const jobId = await addJob("slow", { every: "1h", url: "http://sink.test/slow" });
    const a = h.startAgent("a");
    await h.clock.advanceTo(T0 + 60 * MINUTE + 100);
    a.cut(true);
    await h.clock.advance(30_000);
    h.hang.delete("/slow");
    a.cut(false);
    await h.clock.advance(20_000);
    const runId = occurrence(jobId, T0 + 60 * MINUTE);
    expect((await h.store.getRun(runId))?.status).toBe("lost");
    expect((await h.store.getRun(`${runId}#2`))?.status).toBe("success");
    expect(h.calls.filter((c) => c.runId === runId)).toHaveLength(2);
  });

  test("j: occurrences older than catchup_window_sec or beyond the cap are recorded missed; the window applies after an outage", async () => {
    h = createHarness(Date.UTC(2026, 0, 5, 8, 0, 0));
    const jobId = await addJob("daily", { hour: 9, minute: 0, catchup: "last" });
    const a = h.startAgent("a", { catchupWindowMs: 3_600_000 });
    await h.clock.advance(1000);
    a.cut(true); // 08:00–17:00 outage
    await h.clock.advanceTo(Date.UTC(2026, 0, 5, 17, 0, 0));
    a.cut(false);
    await h.clock.advance(20_000);
    const run = await h.store.getRun(occurrence(jobId, Date.UTC(2026, 0, 5, 9, 0, 0)));
    expect(run?.status).toBe("missed");
    expect(run?.reason).toContain("older than catchup_window_sec");
    expect(h.calls).toHaveLength(0);
  });

  test("l: a slow history sweep neither delays heartbeats nor sends on-time occurrences to catch-up", async () => {
    h = createHarness(T0 + 1000);
    await addJob("minutely", { every: "1m" });
    const a = h.startAgent("a");
    a.hangMethod("pruneRuns", true);
    await h.clock.advanceTo(T0 + 5 * MINUTE + 100);
    expect(h.calls.map((c) => c.at - T0)).toEqual([1, 2, 3, 4, 5].map((m) => m * MINUTE));
    expect(a.agent.snapshot().store.reachable).toBe(true);
  });

  test("m: a claim that landed though its read-back failed is run, not left for a sweep", async () => {
    h = createHarness(T0 + 1000);
    const jobId = await addJob("minutely", { every: "1m" });
    const a = h.startAgent("a");
    await h.clock.advanceTo(T0 + MINUTE - 100);
    // The claim is written but its answer is lost, and so is the read-back's.
    const insertRuns = h.store.insertRuns.bind(h.store);
    let once = true;
    (h.store as { insertRuns: typeof insertRuns }).insertRuns = async (runs) => {
      const outcomes = await insertRuns(runs);
      if (!once) return outcomes;
      once = false;
      return outcomes.map(() => "unknown" as const);
    };
    a.failNext("getRuns", 1);
    await h.clock.advanceTo(T0 + MINUTE + 10_000);
    const runId = occurrence(jobId, T0 + MINUTE);
    expect((await h.store.getRun(runId))?.status).toBe("success");
    expect(h.calls.filter((c) => c.runId === runId)).toHaveLength(1);
  });

  test("a stop ends within its grace when the store does not take the last results; the attempt is left for takeover", async () => {
    h = createHarness(T0 + 1000);
    const jobId = await addJob("minutely", { every: "1m" });
    const a = h.startAgent("a");
    await h.clock.advanceTo(T0 + MINUTE + 100); // delivered; its result waits for the flush window
    a.cut(true);
    a.agent.stop("SIGTERM");
    let stopped = false;
    void a.done.then(() => (stopped = true));
    await h.clock.advance(20_000);
    expect(stopped).toBe(true);
    // Not recorded as finished: still running, for another agent to take over (at least once).
    expect((await h.store.getRun(occurrence(jobId, T0 + MINUTE)))?.status).toBe("running");
  });

  test("n: a command from a CLI whose clock is behind is applied; a failed acknowledgement is retried", async () => {
    h = createHarness(T0 + 1000);
    const a = h.startAgent("a");
    await h.clock.advance(100);
    a.failNext("insertAck", 1);
    await h.store.insertCommand({ _id: "late-clock", type: "reload", target: null, created_at: new Date(T0 + 1000 - 30_000) });
    await h.clock.advance(6_000);
    expect(await h.store.listAcks("late-clock")).toEqual([]);
    await h.clock.advance(6_000);
    expect((await h.store.listAcks("late-clock")).map((x) => x.machine_id)).toEqual(["a"]);
  });
});

describe("late results on a store whose final update is not guarded (FerretDB v1)", () => {
  test("a result stuck in the writer through an outage does not overwrite the taker's lost mark", async () => {
    h = createHarness(T0 + 1000);
    // FerretDB v1's final write: by _id alone, so a late success would turn `lost` into `success`.
    (h.store as { finalWritesGuarded: boolean }).finalWritesGuarded = false;
    h.store.finishRuns = async (finals) => {
      for (const f of finals) await h.store.updateRun(f.id, f.patch);
    };
    h.slow.set("/slow", 3000);
    const jobId = await addJob("slow", { every: "1h", url: "http://sink.test/slow" });
    const c = h.startAgent("c");
    await h.clock.advance(100);
    h.startAgent("a");
    await h.clock.advanceTo(T0 + 60 * MINUTE + 1000);
    // c sends at the instant; a second later it loses the store, and its result (at +3 s) cannot be written.
    c.cut(true);
    await h.clock.advanceTo(T0 + 60 * MINUTE + 25_000);
    const runId = occurrence(jobId, T0 + 60 * MINUTE);
    expect((await h.store.getRun(runId))?.status).toBe("lost");
    expect((await h.store.getRun(`${runId}#2`))?.status).toBe("success");
    // c is back: its writer retries, finds attempt 2, and leaves attempt 1 lost.
    c.cut(false);
    await h.clock.advance(MINUTE);
    expect(h.calls.filter((x) => x.runId === runId).map((x) => x.machine)).toEqual(["c", "a"]);
    expect((await h.store.getRun(runId))?.status).toBe("lost");
  });
});

describe("a stopping agent says what it waits for", () => {
  test("every 5 s it names the running attempts and the time left before they are aborted", async () => {
    const { createConsola } = await import("consola");
    const lines: string[] = [];
    const log = createConsola({ level: 3, reporters: [{ log: (e) => void lines.push(e.args.join(" ")) }] });
    h = createHarness(T0 + 1000);
    h.slow.set("/slow", 12_000);
    await addJob("slow", { every: "1h", url: "http://sink.test/slow" });
    const a = h.startAgent("a", { shutdownTimeoutMs: 30_000 }, { log });
    await h.clock.advanceTo(T0 + 60 * MINUTE + 100);
    a.agent.stop("SIGTERM");
    await h.clock.advance(11_000);
    const progress = lines.filter((l) => l.startsWith("stopping: waiting for"));
    expect(progress).toEqual([
      "stopping: waiting for 1 running attempt(s) (slow @ 2026-01-05T13:00:00.000Z); 30 s left before they are aborted (shutdown_timeout_sec)",
      "stopping: waiting for 1 running attempt(s) (slow @ 2026-01-05T13:00:00.000Z); 25 s left before they are aborted (shutdown_timeout_sec)",
      "stopping: waiting for 1 running attempt(s) (slow @ 2026-01-05T13:00:00.000Z); 20 s left before they are aborted (shutdown_timeout_sec)",
    ]);
    await h.clock.advance(5000);
    expect(lines).toContain("stopped (SIGTERM)");
  });
});
