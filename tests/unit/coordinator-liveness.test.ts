import { describe, expect, test } from "bun:test";
import { deadSessions, Fence, isLiveMachine } from "../../src/coordinator/liveness.ts";
import { deriveTiming } from "../../src/coordinator/timing.ts";
import type { MachineRecord } from "../../src/store/types.ts";
import { FakeClock } from "../support/fake-clock.ts";

/** Liveness (docs/protocol.md, "Liveness and the fence"): the fence deadline F and the judge. */

const timing = deriveTiming({ heartbeatMs: 5000, deadAfterMs: 15_000, failoverStepMs: 1000 });
const L = timing.ownLeaseMs; // 12972
const R = timing.roundTripMs; // 2000
const M = timing.abortMarginMs; // 1000
const T0 = 1_000_000;

function fence(clock = new FakeClock(T0)) {
  const lapses: string[] = [];
  let n = 0;
  const f = new Fence(timing, clock, (s) => lapses.push(s), () => `session-${++n}`);
  return { f, clock, lapses };
}

describe("Fence", () => {
  test("nothing may be written before the first acknowledgement", async () => {
    const { f, clock, lapses } = fence();
    expect(f.session).toBe("session-1");
    expect(f.deadlineMs).toBe(Number.NEGATIVE_INFINITY);
    expect(f.mayWrite()).toBe(false);
    expect(f.mayWrite(Number.MIN_SAFE_INTEGER)).toBe(false);
    // Without a deadline there is nothing to lapse, however long it waits.
    await clock.advance(10 * L);
    expect(f.lapseIfPast()).toBe(false);
    expect(f.signal.aborted).toBe(false);
    expect(f.session).toBe("session-1");
    expect(lapses).toEqual([]);
    f.close();
  });

  test("an acknowledgement within R sets F to its send time plus L", () => {
    const { f } = fence();
    expect(f.acknowledged(T0, T0 + R)).toBe(true); // exactly R still counts
    expect(f.deadlineMs).toBe(T0 + L);
    expect(f.mayWrite()).toBe(true);
    f.close();
  });

  test("an acknowledgement slower than R does not extend F", () => {
    const { f } = fence();
    expect(f.acknowledged(T0, T0 + R + 1)).toBe(false);
    expect(f.deadlineMs).toBe(Number.NEGATIVE_INFINITY);
    expect(f.mayWrite()).toBe(false);
    expect(f.acknowledged(T0 + 100, T0 + 200)).toBe(true);
    expect(f.acknowledged(T0 + 4000, T0 + 4000 + R + 1)).toBe(false);
    expect(f.deadlineMs).toBe(T0 + 100 + L);
    f.close();
  });

  test("an older heartbeat acknowledged later never moves F back", () => {
    const { f } = fence();
    expect(f.acknowledged(T0 + 1000, T0 + 1100)).toBe(true);
    expect(f.acknowledged(T0 + 500, T0 + 1200)).toBe(true);
    expect(f.deadlineMs).toBe(T0 + 1000 + L);
    f.close();
  });

  test("mayWrite is false within M of F", () => {
    const { f } = fence();
    f.acknowledged(T0, T0 + 10);
    const F = T0 + L;
    expect(f.mayWrite(F - M - 1)).toBe(true);
    expect(f.mayWrite(F - M)).toBe(false);
    expect(f.mayWrite(F - 1)).toBe(false);
    f.close();
  });

  test("an acknowledgement arriving at or after F lapses the session instead of extending it", () => {
    const { f, lapses } = fence();
    f.acknowledged(T0, T0 + 10);
    const F = T0 + L;
    const signal = f.signal;
    expect(f.acknowledged(F - 100, F)).toBe(false);
    expect(signal.aborted).toBe(true);
    expect(lapses).toEqual(["session-1"]);
    expect(f.session).toBe("session-2");
    expect(f.deadlineMs).toBe(Number.NEGATIVE_INFINITY);
    expect(f.mayWrite(F)).toBe(false);
    f.close();
  });

  test("at F, with no further acknowledgement, the fence aborts, reports the old session and opens a new one", async () => {
    const { f, clock, lapses } = fence();
    expect(f.nextSeq()).toBe(1);
    expect(f.nextSeq()).toBe(2);
    f.acknowledged(T0, T0 + 10);
    const signal = f.signal;
    await clock.advanceTo(T0 + L - 1);
    expect(signal.aborted).toBe(false);
    expect(lapses).toEqual([]);
    await clock.advanceTo(T0 + L);
    expect(signal.aborted).toBe(true);
    expect(String((signal.reason as Error).message)).toContain("session-1");
    expect(lapses).toEqual(["session-1"]);
    expect(f.session).toBe("session-2");
    expect(f.signal).not.toBe(signal);
    expect(f.signal.aborted).toBe(false);
    expect(f.nextSeq()).toBe(1);
    expect(f.mayWrite()).toBe(false);
    // Lapsing once is enough: later checks do not open yet another session.
    expect(f.lapseIfPast(T0 + 2 * L)).toBe(false);
    await clock.advance(10 * L);
    expect(lapses).toEqual(["session-1"]);
    expect(f.session).toBe("session-2");
    f.close();
  });

  test("each acknowledgement re-arms the abort at the new F", async () => {
    const { f, clock, lapses } = fence();
    f.acknowledged(T0, T0 + 10);
    await clock.advanceTo(T0 + 5000);
    expect(f.acknowledged(T0 + 5000, T0 + 5010)).toBe(true);
    await clock.advanceTo(T0 + L + 1);
    expect(lapses).toEqual([]);
    expect(f.mayWrite()).toBe(true);
    await clock.advanceTo(T0 + 5000 + L);
    expect(lapses).toEqual(["session-1"]);
    f.close();
  });

  test("close() disarms the timer", async () => {
    const { f, clock, lapses } = fence();
    f.acknowledged(T0, T0 + 10);
    f.close();
    await clock.advance(2 * L);
    expect(lapses).toEqual([]);
    expect(f.signal.aborted).toBe(false);
  });

  test("an acknowledgement after F does not revive the old session", async () => {
    const { f, clock, lapses } = fence();
    f.acknowledged(T0, T0 + 10);
    const oldSignal = f.signal;
    await clock.advanceTo(T0 + L + 500);
    expect(lapses).toEqual(["session-1"]);
    // The heartbeat sent just before F is answered just after it.
    f.acknowledged(T0 + L - 500, T0 + L + 500);
    expect(f.session).toBe("session-2");
    expect(oldSignal.aborted).toBe(true);
    expect(lapses).toEqual(["session-1"]);
    f.close();
  });

  // Regression: a bug once in (src/coordinator/liveness.ts:63-68, Fence.acknowledged): `acknowledged` does not know which session a
  // heartbeat carried. A heartbeat sent by session 1 before F and acknowledged within R after the
  // timer lapsed the fence extends the NEW session's fence (to sentAt + L), although that
  // heartbeat wrote session 1 into `machines`. The agent (src/agent/agent.ts renewLiveness, lines
  // 634-639) calls acknowledged() after such a beat, so session 2 may claim and run attempts
  // before any heartbeat has published it; if the agent then dies, the judge reports session 1
  // dead and attemptsOf (takeover.ts:40) skips session-2 claims (other session, not published):
  // they stay `running` forever. Fence now refuses acks of heartbeats sent before its last lapse.
  test("a heartbeat sent by the old session does not open the new session's fence", async () => {
    const { f, clock } = fence();
    f.acknowledged(T0, T0 + 10);
    await clock.advanceTo(T0 + L + 500);
    expect(f.session).toBe("session-2");
    f.acknowledged(T0 + L - 500, T0 + L + 500);
    expect(f.mayWrite()).toBe(false);
    f.close();
  });
});

const SELF = "m-self";
const NOW = new Date("2030-01-01T00:00:30.000Z").getTime();
const D = 15_000;

function machine(id: string, over: Partial<MachineRecord> = {}): MachineRecord {
  return {
    _id: id,
    hostname: id,
    pid: 1,
    serial: null,
    status: "running",
    version: "test",
    started_at: new Date(NOW - 60_000),
    last_seen: new Date(NOW),
    clock_offset_ms: 0,
    protocol: 2,
    session: `${id}-s1`,
    seq: 1,
    running: [],
    ready: true,
    ...over,
  };
}
const attempt = (id: string) => ({ id, job_id: "job-1", scheduled_for: new Date(NOW - 20_000) });
const view = (...machines: MachineRecord[]) => new Map(machines.map((m) => [m._id, m]));
const dead = (previous: Map<string, MachineRecord>, current: MachineRecord[]) =>
  deadSessions(previous, current, SELF, D).map((d) => `${d.machineId}/${d.session}`);

describe("deadSessions", () => {
  const self = machine(SELF);

  test("silent for more than D is dead; exactly D is not", () => {
    const running = [attempt("r1")];
    const current = [self, machine("a", { last_seen: new Date(NOW - D - 1), running }), machine("b", { last_seen: new Date(NOW - D) })];
    const result = deadSessions(view(), current, SELF, D);
    expect(result).toHaveLength(1);
    expect(result[0]).toMatchObject({ machineId: "a", session: "a-s1", running });
    expect(result[0]!.why).toContain("not heard from for 15.0 s");
  });

  test("silence is measured from self's own last_seen, not from anyone's clock", () => {
    const current = [machine(SELF, { last_seen: new Date(NOW + 10_000) }), machine("a", { last_seen: new Date(NOW - 6000) })];
    expect(dead(view(), current)).toEqual(["a/a-s1"]);
    expect(dead(view(), [machine(SELF, { last_seen: new Date(NOW + 9000) }), machine("a", { last_seen: new Date(NOW - 6000) })])).toEqual([]);
  });

  test("a changed session of a machine that listed running attempts: the old session is dead", () => {
    const running = [attempt("r1"), attempt("r2")];
    const previous = view(self, machine("a", { running }));
    const current = [self, machine("a", { session: "a-s2", running: [] })];
    const result = deadSessions(previous, current, SELF, D);
    expect(result).toHaveLength(1);
    expect(result[0]).toMatchObject({ machineId: "a", session: "a-s1", running });
    expect(result[0]!.why).toContain("restarted");
  });

  test("a changed session is a death even with nothing listed (a claim may have been in flight)", () => {
    const result = deadSessions(view(self, machine("a")), [self, machine("a", { session: "a-s2" })], SELF, D);
    expect(result).toEqual([{ machineId: "a", session: "a-s1", running: [], why: "a restarted (new session)", replaced: true, inherited: [] }]);
  });

  test("a dead session carries the earlier sessions it had yet to take over (a restart that died before its takeover)", () => {
    // a-s2 restarted after a-s1, published that it still owes a-s1's attempts, then fell silent.
    const silent = machine("a", { session: "a-s2", inherited: ["a-s1"], last_seen: new Date(NOW - D - 1) });
    expect(deadSessions(view(), [self, silent], SELF, D)[0]).toMatchObject({ session: "a-s2", inherited: ["a-s1"], replaced: false });
    // Replaced in turn (a third start): the replaced session hands its inheritance on.
    const replaced = deadSessions(view(self, machine("a", { session: "a-s2", inherited: ["a-s1"] })), [self, machine("a", { session: "a-s3" })], SELF, D);
    expect(replaced).toEqual([{ machineId: "a", session: "a-s2", running: [], why: "a restarted (new session)", replaced: true, inherited: ["a-s1"] }]);
    // A clean stop that still owed a takeover is a death too; without anything owed it is not.
    expect(dead(view(), [self, machine("a", { status: "stopped", running: [], inherited: ["a-s0"] })])).toEqual(["a/a-s1"]);
    expect(dead(view(self, machine("a", { status: "stopped", inherited: ["a-s0"] })), [self, machine("a", { session: "a-s2" })])).toEqual(["a/a-s1"]);
  });

  test("a changed session after a clean stop is no death; after a stop with attempts listed it is", () => {
    expect(dead(view(self, machine("a", { status: "stopped" })), [self, machine("a", { session: "a-s2" })])).toEqual([]);
    expect(dead(view(self, machine("a", { status: "stopped", running: [attempt("r1")] })), [self, machine("a", { session: "a-s2" })])).toEqual(["a/a-s1"]);
  });

  test("an unchanged session is no death, nor a machine absent from the previous view", () => {
    expect(dead(view(self, machine("a", { running: [attempt("r1")] })), [self, machine("a", { running: [attempt("r1")] })])).toEqual([]);
    expect(dead(view(self), [self, machine("a", { session: "a-s9", running: [attempt("r1")] })])).toEqual([]);
  });

  test("a stopped machine with running attempts is dead; without, it is not (even when long silent)", () => {
    const running = [attempt("r1")];
    const result = deadSessions(view(), [self, machine("a", { status: "stopped", running })], SELF, D);
    expect(result).toHaveLength(1);
    expect(result[0]).toMatchObject({ machineId: "a", session: "a-s1", running });
    expect(result[0]!.why).toContain("stopped with attempts unfinished");
    expect(dead(view(), [self, machine("a", { status: "stopped", running: [] })])).toEqual([]);
    expect(dead(view(), [self, machine("a", { status: "stopped", last_seen: new Date(NOW - 10 * D) })])).toEqual([]);
  });

  test("a draining machine silent for more than D is dead", () => {
    expect(dead(view(), [self, machine("a", { status: "draining", last_seen: new Date(NOW - D - 1) })])).toEqual(["a/a-s1"]);
  });

  test("self is never judged dead, whatever its record says", () => {
    const current = [machine(SELF, { status: "stopped", running: [attempt("r1")] }), machine("a")];
    expect(dead(view(), current)).toEqual([]);
  });

  test("self's own replaced session (a lapsed fence) is reported, so its attempts are taken over", () => {
    const previous = view(machine(SELF, { running: [attempt("r1")] }));
    expect(dead(previous, [machine(SELF, { session: "m-self-s2" })])).toEqual(["m-self/m-self-s1"]);
  });

  test("machines without protocol 2 or without a session are ignored", () => {
    const old = new Date(NOW - 10 * D);
    const current = [self, machine("v1", { protocol: undefined, last_seen: old }), machine("v3", { protocol: 3, last_seen: old }), machine("nosession", { session: undefined, last_seen: old })];
    expect(dead(view(), current)).toEqual([]);
  });

  test("without self in the view nothing is judged", () => {
    expect(deadSessions(view(), [machine("a", { last_seen: new Date(NOW - 10 * D) })], SELF, D)).toEqual([]);
  });

  test("a missing running list is reported as empty", () => {
    const result = deadSessions(view(), [self, machine("a", { running: undefined, last_seen: new Date(NOW - D - 1) })], SELF, D);
    expect(result[0]!.running).toEqual([]);
  });
});

describe("isLiveMachine", () => {
  test("live while heard from within D and not stopped", () => {
    expect(isLiveMachine(machine("a", { last_seen: new Date(NOW - D) }), NOW, D)).toBe(true);
    expect(isLiveMachine(machine("a", { last_seen: new Date(NOW - D - 1) }), NOW, D)).toBe(false);
    expect(isLiveMachine(machine("a", { status: "draining" }), NOW, D)).toBe(true);
    expect(isLiveMachine(machine("a", { status: "stopped" }), NOW, D)).toBe(false);
  });
});
