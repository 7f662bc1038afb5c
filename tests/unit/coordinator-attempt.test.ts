import { describe, expect, test } from "bun:test";
import { createConsola, type LogObject } from "consola";
import { StoreError } from "../../src/core/errors.ts";
import { silentLogger } from "../../src/core/logger.ts";
import { executeAttempt, FinalWriter, type AttemptFence, type ExecuteContext, type FinalSink } from "../../src/coordinator/attempt.ts";
import { createRedactor } from "../../src/core/redact.ts";
import type { HttpAction, Job } from "../../src/jobs/types.ts";
import type { FinalWrite } from "../../src/store/types.ts";
import { FakeClock, settle } from "../support/fake-clock.ts";
import { FakeStore, runRecord } from "../support/fake-store.ts";

/**
 * The attempt lifecycle (docs/protocol.md, "Attempts and final writes"): a claimed attempt runs
 * under the fence and hands its final record to the sink; FinalWriter batches those records.
 */

const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);

function action(name: string, over: Partial<HttpAction> = {}): HttpAction {
  return {
    type: "http",
    name,
    method: "POST",
    url: `http://target.test/${name}`,
    headers: {},
    timeout_sec: 60,
    retry: { retries: 0, delay_sec: 1, backoff: 1, max_delay_sec: 1, jitter: 0 },
    expect_status: [],
    continue_on_failure: false,
    ...over,
  };
}

function job(over: Partial<Job> = {}): Job {
  return {
    id: "job-1",
    name: "job one",
    enabled: true,
    schedule: { kind: "every", ms: 60_000, text: "1m" },
    tz: "UTC",
    actions: [action("first"), action("second")],
    overlap: "allow",
    catchup: "skip",
    on_lost: "rerun",
    on_success: [],
    on_failure: [],
    ...over,
  };
}

interface Sent {
  url: string;
  headers: Headers;
  signal: AbortSignal;
}

/** A stub fetch: answers each request with `answer(url)`; records what was sent. */
function stubFetch(answer: (url: string, sent: Sent) => Promise<Response> | Response = () => new Response("ok")) {
  const sent: Sent[] = [];
  const fn = (async (input: string | URL | Request, init?: RequestInit) => {
    const s: Sent = { url: String(input), headers: new Headers(init?.headers), signal: init!.signal! };
    sent.push(s);
    return answer(s.url, s);
  }) as typeof fetch;
  return { fn, sent };
}

/** A fetch that hangs until its signal aborts, like a slow target. */
const hang = (_url: string, s: Sent) =>
  new Promise<Response>((_, reject) => {
    s.signal.addEventListener("abort", () => reject(s.signal.reason), { once: true });
  });

function setup(fetchImpl: typeof fetch, over: Partial<ExecuteContext> = {}) {
  const clock = new FakeClock(T0);
  const hardStop = new AbortController();
  const ctx: ExecuteContext = {
    store: new FakeStore().asStore(),
    clock,
    machineId: "m-a",
    secrets: { TOKEN: "s3cr3t-value" },
    redact: createRedactor(["s3cr3t-value"]),
    userAgent: "fleetcron-test",
    defaultTz: "UTC",
    log: silentLogger,
    signal: hardStop.signal,
    fetch: fetchImpl,
    ...over,
  };
  const fenceCtl = new AbortController();
  let refusal: string | null = null;
  const fence: AttemptFence = { signal: fenceCtl.signal, mayWrite: () => refusal };
  const writes: FinalWrite[] = [];
  const sink: FinalSink = { write: async (f) => void writes.push(f) };
  const run = runRecord({ scheduled_for: new Date(T0), run_id: `job-1@${new Date(T0).toISOString()}`, machine_id: "m-a", session: "s-a" });
  return { clock, ctx, hardStop, fenceCtl, fence, refuse: (why: string | null) => (refusal = why), writes, sink, run };
}

describe("executeAttempt", () => {
  test("success: every step is sent and the final record is written through the sink", async () => {
    const { fn, sent } = stubFetch();
    const s = setup(fn);
    const outcome = await executeAttempt(s.ctx, job(), s.run, s.fence, s.sink);
    expect(sent.map((r) => r.url)).toEqual(["http://target.test/first", "http://target.test/second"]);
    expect(sent[0]!.headers.get("idempotency-key")).toBe(s.run.run_id);
    expect(outcome.status).toBe("success");
    expect(s.writes).toHaveLength(1);
    expect(s.writes[0]!.id).toBe(s.run._id);
    expect(s.writes[0]!.patch).toMatchObject({ status: "success", finished_at: new Date(T0), duration_ms: 0 });
    expect(s.writes[0]!.patch.steps!.map((st) => [st.name, st.status])).toEqual([
      ["first", "success"],
      ["second", "success"],
    ]);
    expect(s.writes[0]!.patch.reason).toBeUndefined();
  });

  test("duration and finish time are read from the agent's clock", async () => {
    let clock: FakeClock | null = null;
    const { fn } = stubFetch(async () => {
      await clock!.advance(1500);
      return new Response("ok");
    });
    const s = setup(fn);
    clock = s.clock;
    await executeAttempt(s.ctx, job({ actions: [action("only")] }), s.run, s.fence, s.sink);
    expect(s.writes[0]!.patch).toMatchObject({ duration_ms: 1500, finished_at: new Date(T0 + 1500) });
  });

  test("error: a failing step stops the chain, on_failure is notified, the error is written (redacted)", async () => {
    const { fn, sent } = stubFetch((url) => (url.endsWith("/first") ? new Response("bad s3cr3t-value", { status: 500 }) : new Response("ok")));
    const s = setup(fn);
    const outcome = await executeAttempt(s.ctx, job({ on_success: [action("yay")], on_failure: [action("alarm")] }), s.run, s.fence, s.sink);
    expect(sent.map((r) => r.url)).toEqual(["http://target.test/first", "http://target.test/alarm"]);
    expect(outcome.status).toBe("error");
    expect(s.writes).toHaveLength(1);
    const patch = s.writes[0]!.patch;
    expect(patch.status).toBe("error");
    expect(patch.error).toContain('step "first"');
    expect(patch.steps!.map((st) => [st.name, st.status])).toEqual([
      ["first", "error"],
      ["second", "skipped"],
      ["on_failure:alarm", "success"],
    ]);
    expect(JSON.stringify(patch)).not.toContain("s3cr3t-value");
  });

  test("success notifies on_success, not on_failure", async () => {
    const { fn, sent } = stubFetch();
    const s = setup(fn);
    await executeAttempt(s.ctx, job({ actions: [action("only")], on_success: [action("yay")], on_failure: [action("alarm")] }), s.run, s.fence, s.sink);
    expect(sent.map((r) => r.url)).toEqual(["http://target.test/only", "http://target.test/yay"]);
    expect(s.writes[0]!.patch.steps!.map((st) => st.name)).toEqual(["only", "on_success:yay"]);
  });

  test("a fence that refuses before the first request: nothing is sent, the attempt is lost, nothing is written", async () => {
    const { fn, sent } = stubFetch();
    const s = setup(fn);
    s.refuse("this agent's heartbeat is not confirmed (fence deadline)");
    const outcome = await executeAttempt(s.ctx, job({ on_failure: [action("alarm")] }), s.run, s.fence, s.sink);
    expect(sent).toEqual([]);
    expect(outcome.status).toBe("lost");
    expect(outcome.reason).toStartWith("fenced: this agent's heartbeat is not confirmed (fence deadline)");
    expect(outcome.reason).toContain("another agent takes the occurrence over");
    expect(outcome.steps!.map((st) => st.name)).toEqual(["first", "second"]);
    expect(s.writes).toEqual([]);
  });

  test("a fence that refuses after the first step: the next step and the notification are not sent", async () => {
    let s: ReturnType<typeof setup> | null = null;
    const { fn, sent } = stubFetch(() => {
      s!.refuse("past F - M");
      return new Response("ok");
    });
    s = setup(fn);
    const outcome = await executeAttempt(s.ctx, job({ on_success: [action("yay")], on_failure: [action("alarm")] }), s.run, s.fence, s.sink);
    expect(sent.map((r) => r.url)).toEqual(["http://target.test/first"]);
    expect(outcome.status).toBe("lost");
    expect(outcome.reason).toStartWith("fenced: past F - M");
    expect(outcome.steps!.map((st) => st.name)).toEqual(["first", "second"]);
    expect(s.writes).toEqual([]);
  });

  test(
    "the fence aborting mid-request aborts that request; no later step is sent and nothing is written",
    async () => {
      const { fn, sent } = stubFetch(hang);
      const s = setup(fn);
      const done = executeAttempt(s.ctx, job({ on_failure: [action("alarm")] }), s.run, s.fence, s.sink);
      for (let i = 0; i < 50 && sent.length === 0; i++) await settle();
      expect(sent).toHaveLength(1);
      s.fenceCtl.abort(new Error("fence deadline passed"));
      const outcome = await done;
      expect(sent[0]!.signal.aborted).toBe(true);
      expect(sent.map((r) => r.url)).toEqual(["http://target.test/first"]);
      expect(outcome.status).toBe("lost");
      expect(outcome.reason).toStartWith("fenced: the agent's fence deadline passed");
      expect(s.writes).toEqual([]);
    },
    2000,
  );

  test(
    "a hard stop mid-request ends the attempt as an error that is recorded, not as lost",
    async () => {
      const { fn, sent } = stubFetch(hang);
      const s = setup(fn);
      const done = executeAttempt(s.ctx, job(), s.run, s.fence, s.sink);
      for (let i = 0; i < 50 && sent.length === 0; i++) await settle();
      s.hardStop.abort(new Error("agent shut down"));
      const outcome = await done;
      expect(sent).toHaveLength(1);
      expect(sent[0]!.signal.aborted).toBe(true);
      expect(outcome.status).toBe("error");
      expect(s.writes).toHaveLength(1);
      expect(s.writes[0]!.patch.status).toBe("error");
      expect(s.writes[0]!.patch.error).toContain("agent shut down");
    },
    2000,
  );

  test("an unexpected failure inside the chain ends the attempt as a recorded, redacted error", async () => {
    const { fn, sent } = stubFetch(() => new Response("busy", { status: 503 }));
    const broken = new FakeClock(T0);
    broken.sleep = async () => {
      throw new Error("clock broke while holding s3cr3t-value");
    };
    const s = setup(fn, { clock: broken });
    const retrying = job({ actions: [action("only", { retry: { retries: 2, delay_sec: 1, backoff: 1, max_delay_sec: 1, jitter: 0 } })] });
    const outcome = await executeAttempt(s.ctx, retrying, s.run, s.fence, s.sink);
    expect(sent).toHaveLength(1);
    expect(outcome.status).toBe("error");
    expect(s.writes).toHaveLength(1);
    expect(s.writes[0]!.patch.status).toBe("error");
    expect(s.writes[0]!.patch.error).toBe("clock broke while holding ***");
  });

  test("an attempt started after the fence aborted sends nothing and is lost", async () => {
    const { fn, sent } = stubFetch();
    const s = setup(fn);
    s.fenceCtl.abort(new Error("fence deadline passed"));
    const outcome = await executeAttempt(s.ctx, job(), s.run, s.fence, s.sink);
    expect(sent).toEqual([]);
    expect(outcome.status).toBe("lost");
    expect(s.writes).toEqual([]);
  });
});

/** finishRuns that records the clock at each call, over a FakeStore with fault injection. */
function writerSetup(giveUpAfterMs?: number) {
  const clock = new FakeClock(T0);
  const store = new FakeStore();
  const callTimes: number[] = [];
  const timed = {
    finishRuns: async (finals: FinalWrite[]) => {
      callTimes.push(clock.now() - T0);
      return store.finishRuns(finals);
    },
  };
  const logs: LogObject[] = [];
  const log = createConsola({ level: 5, reporters: [{ log: (e) => void logs.push(e) }] });
  const writer = giveUpAfterMs === undefined ? new FinalWriter(timed, clock, log, 250) : new FinalWriter(timed, clock, log, 250, { giveUpAfterMs });
  return { clock, store, callTimes, writer, logs };
}
const final = (id: string): FinalWrite => ({ id, patch: { status: "success", finished_at: new Date(T0) } });
const track = (p: Promise<void>) => {
  const state = { done: false };
  void p.then(() => (state.done = true));
  return state;
};

describe("FinalWriter", () => {
  test("all writes within one window go in one finishRuns call, at the window's end", async () => {
    const { clock, store, callTimes, writer } = writerSetup();
    store.seed(runRecord({ _id: "a" }), runRecord({ _id: "b" }), runRecord({ _id: "c" }));
    const a = track(writer.write(final("a")));
    await clock.advance(100);
    const b = track(writer.write(final("b")));
    await clock.advance(100);
    const c = track(writer.write(final("c")));
    expect(writer.size).toBe(3);
    await clock.advanceTo(T0 + 249);
    expect(callTimes).toEqual([]);
    expect([a.done, b.done, c.done]).toEqual([false, false, false]);
    await clock.advanceTo(T0 + 250);
    expect(callTimes).toEqual([250]);
    expect(store.argsOf<FinalWrite[]>("finishRuns")[0]!.map((f) => f.id)).toEqual(["a", "b", "c"]);
    expect([a.done, b.done, c.done]).toEqual([true, true, true]);
    expect(store.get("a")!.status).toBe("success");
    expect(writer.size).toBe(0);
  });

  test("a write after a flush opens a new window", async () => {
    const { clock, callTimes, writer } = writerSetup();
    void writer.write(final("a"));
    await clock.advance(300);
    void writer.write(final("b"));
    await clock.advance(1000);
    expect(callTimes).toEqual([250, 550]);
  });

  test("a StoreError is retried with growing backoff until it succeeds", async () => {
    const { clock, store, callTimes, writer } = writerSetup();
    store.seed(runRecord({ _id: "a" }));
    store.failNext("finishRuns", 3);
    const a = track(writer.write(final("a")));
    await clock.advance(1999);
    expect(a.done).toBe(false);
    await clock.advance(1);
    expect(callTimes).toEqual([250, 500, 1000, 2000]);
    expect(a.done).toBe(true);
    expect(store.get("a")!.status).toBe("success");
  });

  test("retries give up after the deadline, say so, and release the writers", async () => {
    const { clock, store, callTimes, writer, logs } = writerSetup(10_000);
    store.failNext("finishRuns", 1000);
    const a = track(writer.write(final("a")));
    await clock.advance(12_999);
    expect(a.done).toBe(false);
    await clock.advance(1);
    // 250, then backoff 250, 500, 1000, 2000, 4000, 5000 (capped): the try at 13 s fails past 250 + 10 000.
    expect(callTimes).toEqual([250, 500, 1000, 2000, 4000, 8000, 13_000]);
    expect(a.done).toBe(true);
    expect(logs.some((l) => l.type === "error" && String(l.args[0]).includes("giving up: a"))).toBe(true);
    await clock.advance(60_000);
    expect(callTimes).toHaveLength(7);
  });

  test("by default a result is retried through a ten-minute outage", async () => {
    const { clock, store, callTimes, writer } = writerSetup();
    store.seed(runRecord({ _id: "a" }));
    store.failNext("finishRuns", 10_000);
    const a = track(writer.write(final("a")));
    await clock.advance(590_000);
    expect(a.done).toBe(false);
    await clock.advance(20_000);
    expect(a.done).toBe(true);
    const last = callTimes[callTimes.length - 1]!;
    expect(last).toBeGreaterThan(250 + 600_000);
    expect(callTimes[callTimes.length - 2]!).toBeLessThanOrEqual(250 + 600_000);
  });

  test("an error that is not a StoreError is not retried", async () => {
    const { clock, store, callTimes, writer } = writerSetup();
    store.failNext("finishRuns", 1, new TypeError("bug"));
    const a = track(writer.write(final("a")));
    await clock.advance(10_000);
    expect(callTimes).toEqual([250]);
    expect(a.done).toBe(true);
  });

  test("flush() sends what is pending at once and cancels the window's timer", async () => {
    const { clock, store, callTimes, writer } = writerSetup();
    void writer.write(final("a"));
    void writer.write(final("b"));
    await clock.advance(100);
    await writer.flush();
    expect(callTimes).toEqual([100]);
    expect(store.argsOf<FinalWrite[]>("finishRuns")[0]!.map((f) => f.id)).toEqual(["a", "b"]);
    // The next write waits a whole window of its own, not the rest of the cancelled one.
    void writer.write(final("c"));
    await clock.advanceTo(T0 + 349);
    expect(callTimes).toEqual([100]);
    await clock.advanceTo(T0 + 350);
    expect(callTimes).toEqual([100, 350]);
  });

  test("writes arriving during a retried flush get a window of their own once it settles", async () => {
    const { clock, store, callTimes, writer } = writerSetup();
    store.failNext("finishRuns", 1);
    const a = track(writer.write(final("a")));
    await clock.advance(300); // the try at 250 failed; the retry is due at 500
    const b = track(writer.write(final("b")));
    await clock.advanceTo(T0 + 749);
    expect(a.done).toBe(true);
    expect(b.done).toBe(false);
    await clock.advanceTo(T0 + 750);
    expect(callTimes).toEqual([250, 500, 750]);
    expect(store.argsOf<FinalWrite[]>("finishRuns").map((fs) => fs.map((f) => f.id))).toEqual([["a"], ["a"], ["b"]]);
    expect(b.done).toBe(true);
  });

  test("flush() with nothing pending makes no call", async () => {
    const { store, writer } = writerSetup();
    await writer.flush();
    expect(store.count("finishRuns")).toBe(0);
  });

  test("writes arriving during a retried flush go in the next batch, after it settles", async () => {
    const { clock, store, callTimes, writer } = writerSetup();
    store.failNext("finishRuns", 2);
    const a = track(writer.write(final("a")));
    await clock.advance(300); // first try at 250 failed; the retry is due at 500
    const b = track(writer.write(final("b")));
    const flushed = track(writer.flush()); // SIGTERM: waits for the batch in flight
    await clock.advance(150);
    expect(callTimes).toEqual([250]);
    await clock.advanceTo(T0 + 1000);
    const batches = store.argsOf<FinalWrite[]>("finishRuns").map((fs) => fs.map((f) => f.id));
    expect(batches).toEqual([["a"], ["a"], ["a"], ["b"]]);
    expect(callTimes).toEqual([250, 500, 1000, 1000]);
    expect([a.done, b.done, flushed.done]).toEqual([true, true, true]);
  });
});

describe("FinalWriter on a store whose final update is not guarded", () => {
  test("a batch that landed late marks superseded attempts lost again; a timely one costs no read", async () => {
    const clock = new FakeClock(T0);
    const writes: FinalWrite[][] = [];
    let slowMs = 0;
    const store = {
      finishRuns: async (finals: FinalWrite[]) => {
        writes.push(finals);
        if (slowMs > 0) await clock.sleep(slowMs);
      },
    };
    let checks = 0;
    const writer = new FinalWriter(store, clock, createConsola({ level: -999 }), 250, {
      superseded: async (finals) => {
        checks++;
        return new Set(finals.map((f) => f.id).filter((id) => id === "taken"));
      },
      lateAfterMs: 2000,
    });
    void writer.write(final("taken"));
    await clock.advance(1000);
    expect(writes).toHaveLength(1);
    expect(checks).toBe(0);
    slowMs = 3000;
    void writer.write(final("taken"));
    await clock.advance(5000);
    expect(checks).toBe(1);
    expect(writes).toHaveLength(3);
    expect(writes[2]).toEqual([{ id: "taken", patch: { status: "lost", reason: "lost: its result arrived after the next attempt was taken over (the target was called by both)" } }]);
  });
});
