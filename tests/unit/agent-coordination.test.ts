import { afterEach, describe, expect, test } from "bun:test";
import { addJob as addJobTo, createHarness, type Harness } from "../support/agent-harness.ts";

/**
 * The coordination protocol (docs/protocol.md) driven with a fake clock: agents on one store, time moved
 * by hand, each request recorded with the machine that sent it and the (fake) instant it left.
 */
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const MINUTE = 60_000;
let h: Harness;

afterEach(async () => {
  await h?.close();
});

const addJob = (name: string, fields: Record<string, unknown>) => addJobTo(h, name, fields);

/**
 * An hourly job and its occurrence of an hour ago, recorded `running` by `machine`'s session
 * `runSession`; the machine's last heartbeat (then) carried `session`, listing the attempt if `listed`.
 */
async function abandonedAttempt(o: { machine?: string; session: string; runSession?: string; listed?: boolean; record?: Record<string, unknown> }) {
  const machine = o.machine ?? "ghost";
  const jobId = await addJob("hourly", { every: "1h" });
  const lastSeen = new Date(T0 - 60 * MINUTE);
  const runId = `${jobId}@${lastSeen.toISOString()}`;
  const running = o.listed ? [{ id: runId, job_id: jobId, scheduled_for: lastSeen }] : [];
  await h.store.beat({ _id: machine, hostname: "elsewhere", pid: 1, serial: null, status: "running", version: "0", started_at: lastSeen, clock_offset_ms: 0, protocol: 2, session: o.session, running, ready: true, ...o.record }, lastSeen);
  const base = { run_id: runId, job_id: jobId, job_name: "hourly", scheduled_for: lastSeen, claimed_at: lastSeen };
  await h.store.insertRun({ ...base, _id: runId, attempt: 1, trigger: "schedule", status: "running", machine_id: machine, session: o.runSession ?? o.session });
  return { runId, base };
}

describe("staggered claims", () => {
  test("the lowest serial fires on time; the standby only checks, then fires when the primary is gone", async () => {
    h = createHarness(T0 + 1000);
    await addJob("minutely", { every: "1m" });
    const a = h.startAgent("a");
    await h.clock.advance(100);
    const b = h.startAgent("b");
    await h.clock.advance(100);
    expect(a.agent.serial).toBe(1);
    expect(b.agent.serial).toBe(2);

    await h.clock.advanceTo(T0 + MINUTE + 50);
    expect(h.calls.map((c) => [c.machine, c.at - (T0 + MINUTE)])).toEqual([["a", 0]]);

    // The standby's turn (5 s later) passes without a second delivery.
    await h.clock.advanceTo(T0 + MINUTE + 10_000);
    expect(h.calls).toHaveLength(1);

    // The primary dies shortly before the next instant (its last heartbeat still looks alive):
    // the standby fires one failover step late.
    await h.clock.advanceTo(T0 + 2 * MINUTE - 3000);
    a.cut(true);
    await h.clock.advanceTo(T0 + 2 * MINUTE + 5_100);
    expect(h.calls.map((c) => [c.machine, c.at - (T0 + 2 * MINUTE)])).toEqual([["a", -MINUTE], ["b", 5000]]);

    // After dead_after_sec the dead primary no longer counts: the standby fires on time.
    await h.clock.advanceTo(T0 + 3 * MINUTE + 100);
    const last = h.calls[h.calls.length - 1]!;
    expect([last.machine, last.at - (T0 + 3 * MINUTE)]).toEqual(["b", 0]);
    const counts = new Map<string, number>();
    for (const c of h.calls) counts.set(c.runId, (counts.get(c.runId) ?? 0) + 1);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  });

  test("a stopped agent hands over its serial: the next agent is primary at once", async () => {
    h = createHarness(T0 + 1000);
    await addJob("minutely", { every: "1m" });
    const a = h.startAgent("a");
    await h.clock.advance(100);
    const b = h.startAgent("b");
    await h.clock.advance(100);
    a.agent.stop("drain");
    await h.clock.advance(100);
    await a.done;
    expect((await h.store.listSerials()).map((s) => s.machine_id)).toEqual(["b"]);
    expect((await h.store.getMachine("a"))?.status).toBe("stopped");
    await h.clock.advanceTo(T0 + MINUTE + 50);
    expect(h.calls.map((c) => [c.machine, c.at - (T0 + MINUTE)])).toEqual([["b", 0]]);
  });
});

describe("liveness and takeover", () => {
  test("an attempt whose agent dies mid-run is re-run once as attempt 2 after dead_after_sec; the old attempt is lost", async () => {
    h = createHarness(T0 + 1000);
    h.hang.add("/slow");
    const jobId = await addJob("slow", { every: "1h", url: "http://sink.test/slow?m={{machine_id}}" });
    const a = h.startAgent("a");
    await h.clock.advance(100);
    h.startAgent("b");
    await h.clock.advance(100);
    await h.clock.advanceTo(T0 + 60 * MINUTE + 100);
    expect(h.calls.map((c) => c.machine)).toEqual(["a"]);
    h.hang.delete("/slow"); // the re-run answers
    a.cut(true); // agent a is cut off from the store while its request hangs
    const cutAt = h.clock.now();

    await h.clock.advanceTo(T0 + 60 * MINUTE + 30_000);
    const runId = `${jobId}@${new Date(T0 + 60 * MINUTE).toISOString()}`;
    expect(h.calls.map((c) => [c.machine, c.runId])).toEqual([
      ["a", runId],
      ["b", runId],
    ]);
    // a closed its request (its fence deadline) before b's attempt 2 left, and within dead_after_sec.
    expect(h.aborts.map((c) => [c.machine, c.runId])).toEqual([["a", runId]]);
    expect(h.aborts[0]!.at).toBeLessThan(h.calls[1]!.at);
    expect(h.calls[1]!.at - cutAt).toBeLessThanOrEqual(15_000 + 5_000);
    const first = await h.store.getRun(runId);
    const second = await h.store.getRun(`${runId}#2`);
    expect(first?.status).toBe("lost");
    expect(first?.reason).toContain("a not heard from");
    expect(second?.status).toBe("success");
    expect(second?.machine_id).toBe("b");
    expect(await h.store.getRun(`${runId}#3`)).toBeNull();
    // Nothing runs a third time, however long we wait, and a's late results change nothing.
    a.cut(false);
    await h.clock.advance(2 * MINUTE);
    expect(h.calls.filter((c) => c.runId === runId)).toHaveLength(2);
    expect((await h.store.getRun(runId))?.status).toBe("lost");
  });

  test("on_lost: skip records the lost attempt and does not re-run", async () => {
    h = createHarness(T0 + 1000);
    h.hang.add("/slow");
    const jobId = await addJob("slow", { every: "1h", on_lost: "skip", url: "http://sink.test/slow" });
    const a = h.startAgent("a");
    await h.clock.advance(100);
    h.startAgent("b");
    await h.clock.advanceTo(T0 + 60 * MINUTE + 100);
    a.cut(true);
    await h.clock.advanceTo(T0 + 62 * MINUTE);
    const runId = `${jobId}@${new Date(T0 + 60 * MINUTE).toISOString()}`;
    expect((await h.store.getRun(runId))?.status).toBe("lost");
    expect((await h.store.getRun(`${runId}#2`))?.status).toBe("skipped");
    expect(h.calls).toHaveLength(1);
  });
});

describe("dead sessions", () => {
  test("a claim its dead holder never published is found by scanning its session, and taken over", async () => {
    h = createHarness(T0 + 1000);
    // The ghost died right after its claim landed: its last heartbeat does not list the attempt.
    const { runId } = await abandonedAttempt({ session: "s-ghost" });
    h.startAgent("a");
    await h.clock.advance(2000);
    expect((await h.store.getRun(runId))?.status).toBe("lost");
    const second = await h.store.getRun(`${runId}#2`);
    expect([second?.status, second?.reason, second?.machine_id]).toEqual(["success", undefined, "a"]);
    expect(h.calls.map((c) => c.runId)).toEqual([runId]);
  });

  test("a takeover interrupted after its claim is completed by the next look: the old attempt does not stay running", async () => {
    h = createHarness(T0 + 1000);
    const { runId, base } = await abandonedAttempt({ session: "s-ghost", listed: true });
    // An earlier taker claimed attempt 2 and died before marking attempt 1 lost.
    await h.store.insertRun({ ...base, _id: `${runId}#2`, attempt: 2, trigger: "takeover", status: "success", machine_id: "taker" });
    h.startAgent("a");
    await h.clock.advance(2000);
    expect((await h.store.getRun(runId))?.status).toBe("lost");
    expect(h.calls).toHaveLength(0);
  });
});

describe("a restart that dies before its takeover", () => {
  test("the fleet takes over the predecessor's attempts with the dead session that inherited them", async () => {
    h = createHarness(T0 + 1000);
    // s-1 ran the attempt and died; s-2 (the same machine restarted) published that it owed s-1's
    // attempts, then died too before taking them over.
    const { runId } = await abandonedAttempt({ session: "s-2", runSession: "s-1", record: { inherited: ["s-1"] } });
    h.startAgent("a");
    await h.clock.advance(2000);
    const first = await h.store.getRun(runId);
    expect([first?.status, first?.reason]).toEqual(["lost", "ghost not heard from for 3601.0 s; attempt 2 claimed by a"]);
    expect((await h.store.getRun(`${runId}#2`))?.status).toBe("success");
    expect(h.calls.map((c) => c.runId)).toEqual([runId]);
  });

  test("a restarted agent lists its predecessor's session as inherited until it has taken its attempts over", async () => {
    h = createHarness(T0 + 1000);
    const { runId } = await abandonedAttempt({ machine: "a", session: "s-old", listed: true });
    const a = h.startAgent("a", { hostname: "elsewhere" });
    a.failNext("insertRuns", 2); // both looks of its own takeover fail to claim attempt 2
    await h.clock.advance(3000);
    const record = await h.store.getMachine("a");
    expect(record?.session).not.toBe("s-old");
    expect(record?.inherited).toEqual(["s-old"]);
    expect((await h.store.getRun(runId))?.status).toBe("running");
    // The next heartbeat judges it again; this time the takeover lands, and the list is emptied.
    await h.clock.advance(10_000);
    expect((await h.store.getRun(runId))?.status).toBe("lost");
    expect((await h.store.getRun(`${runId}#2`))?.machine_id).toBe("a");
    expect(h.calls.map((c) => c.runId)).toEqual([runId]);
    expect((await h.store.getMachine("a"))?.inherited).toBeUndefined();
  });
});

describe("one round trip to fire", () => {
  test("between the timer and the request the only store call is the claim; a lost claim runs nothing", async () => {
    h = createHarness(T0 + 1000);
    const jobId = await addJob("minutely", { every: "1m" });
    h.startAgent("a");
    await h.clock.advanceTo(T0 + MINUTE - 200);
    const before = h.storeCalls.length;
    await h.clock.advanceTo(T0 + MINUTE);
    // The claim goes out 50 ms before the instant (the claim lead), the request at the instant.
    const critical = h.storeCalls.slice(before);
    expect(h.calls.map((c) => c.at)).toEqual([T0 + MINUTE]);
    expect(critical.map((c) => [c.method, c.at - T0 - MINUTE])).toEqual([["insertRuns", -50]]);
    // The next occurrence was claimed by another agent already: this one's claim loses, nothing is sent.
    const runId = `${jobId}@${new Date(T0 + 2 * MINUTE).toISOString()}`;
    await h.store.insertRun({ _id: runId, run_id: runId, job_id: jobId, job_name: "minutely", scheduled_for: new Date(T0 + 2 * MINUTE), attempt: 1, trigger: "schedule", status: "success", machine_id: "other", claimed_at: new Date(T0) });
    await h.clock.advanceTo(T0 + 2 * MINUTE + 100);
    expect(h.calls).toHaveLength(1);
  });
});

describe("overlap", () => {
  test("overlap: skip records a reason for an occurrence due while the previous run still runs", async () => {
    h = createHarness(T0 + 1000);
    h.hang.add("/slow");
    const jobId = await addJob("slow", { every: "10s", url: "http://sink.test/slow", timeout_sec: 25 });
    h.startAgent("a");
    await h.clock.advanceTo(T0 + 10_000 + 100);
    await h.clock.advanceTo(T0 + 20_000 + 100);
    const skipped = await h.store.getRun(`${jobId}@${new Date(T0 + 20_000).toISOString()}`);
    expect(skipped?.status).toBe("skipped");
    expect(skipped?.reason).toContain("overlap");
    expect(h.calls).toHaveLength(1);
  });

  test("overlap: allow runs them side by side", async () => {
    h = createHarness(T0 + 1000);
    h.hang.add("/slow");
    await addJob("slow", { every: "10s", url: "http://sink.test/slow", overlap: "allow", timeout_sec: 25 });
    h.startAgent("a");
    await h.clock.advanceTo(T0 + 20_000 + 100);
    expect(h.calls).toHaveLength(2);
  });
});

describe("catch-up after the whole fleet was down", () => {
  async function fleetWasDownFor(minutes: number) {
    const lastSeen = new Date(T0 - minutes * MINUTE);
    await h.store.putMachine({ _id: "old", hostname: "x", pid: 1, serial: null, status: "stopped", version: "0", started_at: lastSeen, last_seen: lastSeen, clock_offset_ms: 0 });
  }

  // Last seen at T0-5m, back at T0+30s: T0-5m … T0 (6 occurrences) have no record; T0+30s-grace
  // is past T0, so T0 is catch-up too, not an on-time fire.
  for (const [policy, expectRuns, expectMissed] of [
    ["last", 1, 5],
    ["skip", 0, 6],
    ["all", 6, 0],
  ] as const) {
    test(`catchup: ${policy}`, async () => {
      h = createHarness(T0 + 30_000);
      const id = await h.store.createJob({ name: "m", every: "1m", url: "http://sink.test/m", catchup: policy, created_at: new Date(T0 - 60 * MINUTE) });
      await fleetWasDownFor(5);
      h.startAgent("a");
      await h.clock.advance(2000);
      const runs = await h.store.listRuns({ job_id: id, limit: 100 });
      expect(runs.filter((r) => r.status === "missed")).toHaveLength(expectMissed);
      expect(h.calls).toHaveLength(expectRuns);
      if (policy === "last") expect(h.calls[0]!.runId).toBe(`${id}@${new Date(T0).toISOString()}`);
      for (const missed of runs.filter((r) => r.status === "missed")) expect(missed.reason).toContain("no agent was running");
    });
  }

  test("a job created while the fleet was down is not caught up before its creation", async () => {
    h = createHarness(T0 + 30_000);
    await h.store.createJob({ name: "new", every: "1m", url: "http://sink.test/n", updated_at: new Date(T0 - 90_000) });
    await fleetWasDownFor(30);
    h.startAgent("a");
    await h.clock.advance(2000);
    expect(h.calls.map((c) => c.runId.split("@")[1])).toEqual([new Date(T0).toISOString()]);
    const missed = (await h.store.listRuns({ limit: 100 })).filter((r) => r.status === "missed");
    expect(missed.map((r) => r.scheduled_for.getTime())).toEqual([T0 - MINUTE]);
  });
});

describe("store outage", () => {
  test("occurrences that could not be claimed while the store was down follow catchup: last", async () => {
    h = createHarness(T0 + 1000);
    const id = await addJob("m", { every: "1m" });
    const a = h.startAgent("a");
    await h.clock.advanceTo(T0 + MINUTE + 100);
    expect(h.calls).toHaveLength(1);
    a.cut(true);
    await h.clock.advanceTo(T0 + 4 * MINUTE + 100);
    expect(h.calls).toHaveLength(1); // nothing fired that could not be claimed
    a.cut(false);
    await h.clock.advance(10_000);
    const runs = await h.store.listRuns({ job_id: id, limit: 100 });
    expect(runs.filter((r) => r.status === "missed").map((r) => r.scheduled_for.getTime())).toEqual([T0 + 3 * MINUTE, T0 + 2 * MINUTE]);
    expect(h.calls).toHaveLength(2);
    expect(h.calls[1]!.runId).toBe(`${id}@${new Date(T0 + 4 * MINUTE).toISOString()}`);
  });
});

describe("only the first two of an order try (docs/protocol.md, \"Cost of standbys\")", () => {
  /** Three agents in serial order a, b, c, started 100 ms apart. */
  async function threeAgents() {
    const a = h.startAgent("a");
    await h.clock.advance(100);
    const b = h.startAgent("b");
    await h.clock.advance(100);
    const c = h.startAgent("c");
    await h.clock.advance(100);
    expect([a.agent.serial, b.agent.serial, c.agent.serial]).toEqual([1, 2, 3]);
    return { a, b, c };
  }

  test("the third claims nothing while the first two are alive; one read per heartbeat checks that they claimed", async () => {
    h = createHarness(T0 + 1000);
    await addJob("secondly", { every: "1s" });
    await threeAgents();
    await h.clock.advanceTo(T0 + 20_000);
    const from = h.clock.now();
    await h.clock.advanceTo(T0 + 50_000);
    const inWindow = (machine: string, method: string) => h.storeCalls.filter((c) => c.machine === machine && c.method === method && c.at >= from).length;
    expect(inWindow("c", "insertRuns")).toBe(0);
    // c checks at each heartbeat (every 5 s), not per occurrence.
    expect(inWindow("c", "getRuns")).toBeGreaterThanOrEqual(5);
    expect(inWindow("c", "getRuns")).toBeLessThanOrEqual(7);
    // The first two still try each occurrence (a fires, b's claim loses).
    expect(inWindow("a", "insertRuns")).toBeGreaterThanOrEqual(29);
    expect(inWindow("b", "insertRuns")).toBeGreaterThanOrEqual(25);
    const runIds = h.calls.filter((c) => c.at >= from).map((c) => c.runId);
    expect(new Set(runIds).size).toBe(runIds.length);
    expect(h.calls.filter((c) => c.at >= from).every((c) => c.machine === "a")).toBe(true);
  });

  test("when the first two are cut off together, the third catches up what neither claimed, then fires on time", async () => {
    h = createHarness(T0 + 1000);
    const id = await addJob("every-two", { every: "2s", catchup: "all" });
    const { a, b } = await threeAgents();
    await h.clock.advanceTo(T0 + 20_500);
    a.cut(true);
    b.cut(true);
    await h.clock.advanceTo(T0 + 80_000);
    // Every instant from the cut on has exactly one delivery: c caught up those the dead first two
    // never claimed (late, trigger catchup), then fired the rest on time as the new first in order.
    const instants: number[] = [];
    for (let t = T0 + 22_000; t <= T0 + 76_000; t += 2000) instants.push(t);
    const byRun = new Map<string, { machine: string; at: number }[]>();
    for (const call of h.calls) byRun.set(call.runId, [...(byRun.get(call.runId) ?? []), { machine: call.machine, at: call.at }]);
    for (const t of instants) expect([t, byRun.get(`${id}@${new Date(t).toISOString()}`)?.map((c) => c.machine)]).toEqual([t, ["c"]]);
    const runs = await h.store.listRuns({ job_id: id, limit: 200 });
    const caughtUp = runs.filter((r) => r.trigger === "catchup" && r.scheduled_for.getTime() >= T0 + 22_000);
    expect(caughtUp.length).toBeGreaterThanOrEqual(3);
    // Once a and b are judged dead (dead_after 15 s), c fires on time.
    const lastCall = h.calls.filter((c) => c.runId === `${id}@${new Date(T0 + 76_000).toISOString()}`)[0]!;
    expect(lastCall.at - (T0 + 76_000)).toBeLessThan(100);
  });
});

describe("catch-up waits for the other tryer's turn", () => {
  test("an owner whose claim failed does not record the occurrence missed before the next agent had its turn", async () => {
    h = createHarness(T0 + 1000);
    const id = await addJob("minutely-skip", { every: "1m", catchup: "skip" });
    const a = h.startAgent("a");
    await h.clock.advance(100);
    h.startAgent("b");
    await h.clock.advanceTo(T0 + MINUTE - 1000);
    a.failNext("insertRuns", 1);
    await h.clock.advanceTo(T0 + MINUTE + 20_000);
    // b tried at its turn (5 s late) and ran it; a's catch-up, after that turn, found b's claim.
    expect(h.calls.map((c) => [c.machine, c.at - (T0 + MINUTE)])).toEqual([["b", 5000]]);
    const record = await h.store.getRun(`${id}@${new Date(T0 + MINUTE).toISOString()}`);
    expect([record?.status, record?.machine_id]).toEqual(["success", "b"]);
  });
});

describe("commands and job changes", () => {
  test("jobs changed through the store's revision are picked up within a heartbeat; reload is acknowledged", async () => {
    h = createHarness(T0 + 1000);
    h.startAgent("a");
    await h.clock.advance(1000);
    await addJob("late", { every: "10s" });
    await h.clock.advanceTo(T0 + 20_000 + 100);
    expect(h.calls.length).toBeGreaterThanOrEqual(1);
    await h.store.insertCommand({ _id: "cmd1", type: "reload", target: null, created_at: new Date(h.clock.now()) });
    await h.clock.advance(6000);
    expect((await h.store.listAcks("cmd1")).map((a) => a.machine_id)).toEqual(["a"]);
  });

  test("a heartbeat reads both revisions in one call and lists commands only when a command was written, or 12 heartbeats later", async () => {
    h = createHarness(T0 + 1000);
    h.startAgent("a");
    await h.clock.advance(11_000);
    const since = (t: number, method: string) => h.storeCalls.filter((c) => c.at > t && c.method === method).length;
    // Quiet: three heartbeats, three revision reads, no listing of commands or jobs.
    let t = h.clock.now();
    await h.clock.advance(15_000);
    expect(since(t, "getRevisions")).toBe(3);
    expect(since(t, "listCommands")).toBe(0);
    expect(since(t, "listJobs")).toBe(0);
    // A command: listed at the next heartbeat, applied and acknowledged.
    await h.store.insertCommand({ _id: "cmd-rev", type: "reload", target: null, created_at: new Date(h.clock.now()) });
    t = h.clock.now();
    await h.clock.advance(5000);
    expect(since(t, "listCommands")).toBe(1);
    expect((await h.store.listAcks("cmd-rev")).map((a) => a.machine_id)).toEqual(["a"]);
    // A command that did not change the revision (written by hand, or its writer died first; the
    // revision is held still here): the listing 12 heartbeats (60 s) after the last one finds it.
    const frozen = await h.store.getRevisions();
    const realRevisions = h.store.getRevisions;
    h.store.getRevisions = async () => frozen;
    try {
      await h.store.insertCommand({ _id: "cmd-norev", type: "reload", target: "a", created_at: new Date(h.clock.now()) });
      t = h.clock.now();
      await h.clock.advance(45_000);
      expect(since(t, "listCommands")).toBe(0);
      expect(await h.store.listAcks("cmd-norev")).toEqual([]);
      await h.clock.advance(20_000);
      expect((await h.store.listAcks("cmd-norev")).map((a) => a.machine_id)).toEqual(["a"]);
    } finally {
      h.store.getRevisions = realRevisions;
    }
    expect(since(t, "listCommands")).toBe(1);
  });
});
