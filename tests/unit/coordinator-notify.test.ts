import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { notificationsFor, streakBefore } from "../../src/coordinator/notify.ts";
import { occurrenceId } from "../../src/coordinator/occurrence.ts";
import { parseJobDocument } from "../../src/jobs/schema.ts";
import type { Job } from "../../src/jobs/types.ts";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import type { RunRecord, RunStatus, Store } from "../../src/store/types.ts";

/** Failure streaks read from job_runs, and the once-per-streak markers (coordinator/notify.ts). */
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const STEP = 10_000;
let store: Store;

beforeEach(() => {
  store = openSqliteStore(":memory:");
});
afterEach(async () => {
  await store.close();
});

function job(fields: Record<string, unknown> = {}): Job {
  const parsed = parseJobDocument(
    { name: "flaky", every: "10s", url: "http://sink.test/f", on_failure: [{ url: "http://sink.test/alert" }], on_recovery: [{ url: "http://sink.test/ok" }], notify_after_failures: 3, ...fields },
    { secretKeys: [], id: "job-f" },
  );
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return parsed.job;
}

function run(n: number, status: RunStatus, attempt = 1): RunRecord {
  const runId = occurrenceId("job-f", T0 + n * STEP);
  return { _id: attempt === 1 ? runId : `${runId}#${attempt}`, run_id: runId, job_id: "job-f", job_name: "flaky", scheduled_for: new Date(T0 + n * STEP), attempt, trigger: "schedule", status, claimed_at: new Date(T0 + n * STEP) };
}

const labels = (n: { label: string; failures?: number }[]) => n.map((x) => `${x.label}:${x.failures ?? "-"}`);

describe("streakBefore", () => {
  test("counts failed occurrences back to the last success; the latest attempt counts; skipped and running are passed over", async () => {
    for (const r of [run(0, "error"), run(1, "success"), run(2, "error"), run(3, "lost"), run(3, "success", 2), run(4, "skipped"), run(5, "lost"), run(6, "running"), run(7, "error")]) await store.insertRun(r);
    const streak = await streakBefore(store, job(), run(8, "running"));
    // 7 and 5 failed; 6 (running) and 4 (skipped) are passed over; 3 succeeded on its attempt 2.
    expect(streak.failures).toBe(2);
    expect(streak.first?.run_id).toBe(run(5, "lost").run_id);
  });
});

describe("notificationsFor", () => {
  test("two failures of one streak finishing at once notify once (the marker's unique insert)", async () => {
    const j = job();
    await store.insertRun(run(0, "error"));
    await store.insertRun(run(1, "error"));
    const [a, b] = await Promise.all([notificationsFor(store, j, run(2, "running"), "error", "a", T0), notificationsFor(store, j, run(3, "running"), "error", "b", T0)]);
    expect([...labels(a), ...labels(b)]).toEqual(["on_failure:3"]);
    expect((await store.getRun(`${run(0, "error").run_id}!notified`))?.trigger).toBe("notify");
  });

  test("a streak whose third result was not yet stored is notified on the fourth, not never; later failures stay quiet", async () => {
    const j = job();
    await store.insertRun(run(0, "error"));
    await store.insertRun(run(1, "running")); // its result still in another agent's batch
    expect(labels(await notificationsFor(store, j, run(2, "running"), "error", "a", T0))).toEqual([]);
    await store.updateRun(run(1, "error").run_id, { status: "error" });
    await store.insertRun(run(2, "error"));
    expect(labels(await notificationsFor(store, j, run(3, "running"), "error", "a", T0))).toEqual(["on_failure:4"]);
    await store.insertRun(run(3, "error"));
    expect(labels(await notificationsFor(store, j, run(4, "running"), "error", "a", T0))).toEqual([]);
    await store.insertRun(run(4, "error"));
    // Recovery once, even when two successes race.
    const [r1, r2] = await Promise.all([notificationsFor(store, j, run(5, "running"), "success", "a", T0), notificationsFor(store, j, run(5, "running"), "success", "b", T0)]);
    expect([...labels(r1), ...labels(r2)]).toEqual(["on_recovery:5"]);
  });

  test("a streak below the threshold recovers silently; the default threshold notifies every failure with its streak, and a success reads nothing", async () => {
    await store.insertRun(run(0, "error"));
    expect(labels(await notificationsFor(store, job(), run(1, "running"), "success", "a", T0))).toEqual([]);
    const plain = job({ notify_after_failures: null, on_recovery: null, on_success: [{ url: "http://sink.test/yay" }] });
    expect(labels(await notificationsFor(store, plain, run(1, "running"), "error", "a", T0))).toEqual(["on_failure:2"]);
    await store.insertRun(run(1, "error"));
    expect(labels(await notificationsFor(store, plain, run(2, "running"), "error", "a", T0))).toEqual(["on_failure:3"]);
    const reads: string[] = [];
    const counting = new Proxy(store, { get: (t, k, r) => (k === "listRuns" || k === "insertRun" ? (...args: unknown[]) => (reads.push(String(k)), (Reflect.get(t, k, r) as (...a: unknown[]) => unknown).apply(t, args)) : Reflect.get(t, k, r)) });
    expect(labels(await notificationsFor(counting, plain, run(2, "running"), "success", "a", T0))).toEqual(["on_success:-"]);
    expect(reads).toEqual([]);
  });
});
