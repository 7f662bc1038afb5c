import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { planBackfill, runBackfill } from "../../src/control/backfill.ts";
import { applyJobs, parseStored, requireJob } from "../../src/control/jobs.ts";
import { pauseJob } from "../../src/control/pause.ts";
import { planRetry, retryRun } from "../../src/control/retry.ts";
import type { ExecuteContext } from "../../src/coordinator/attempt.ts";
import { occurrenceId } from "../../src/coordinator/occurrence.ts";
import { FleetCronError } from "../../src/core/errors.ts";
import { silentLogger } from "../../src/core/logger.ts";
import { createRedactor } from "../../src/core/redact.ts";
import type { Job } from "../../src/jobs/types.ts";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import type { RunRecord, RunStatus, Store } from "../../src/store/types.ts";
import { FakeClock } from "../support/fake-clock.ts";

/** The control operations of issue 14 on one store, as the CLI (and later the HTTP API) calls them. */
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const MINUTE = 60_000;
let store: Store;
let clock: FakeClock;
let requests: string[];

beforeEach(() => {
  store = openSqliteStore(":memory:");
  clock = new FakeClock(T0 + 10 * MINUTE);
  requests = [];
});
afterEach(async () => {
  await store.close();
});

function context(machineId: string): ExecuteContext {
  return {
    store,
    clock,
    machineId,
    secrets: {},
    redact: createRedactor([]),
    userAgent: "FleetCron/test",
    defaultTz: "UTC",
    log: silentLogger,
    signal: new AbortController().signal,
    fetch: (async (input: string | URL | Request, init?: RequestInit) => {
      requests.push(new Headers(init?.headers).get("x-fleetcron-run-id") ?? "");
      await Bun.sleep(5); // both operators are in flight at once
      return new Response("{}", { status: 200 });
    }) as typeof fetch,
  };
}

async function minutely(): Promise<Job> {
  await applyJobs(store, [{ name: "m", doc: { name: "m", every: "1m", url: "http://sink.test/m" } }], { prune: false, now: T0 });
  return parseStored(await requireJob(store, "m"), []).job!;
}

function record(job: Job, instant: number, status: RunStatus, attempt = 1): RunRecord {
  const runId = occurrenceId(job.id, instant);
  return { _id: attempt === 1 ? runId : `${runId}#${attempt}`, run_id: runId, job_id: job.id, job_name: job.name, scheduled_for: new Date(instant), attempt, trigger: "schedule", status, claimed_at: new Date(instant) };
}

describe("backfill", () => {
  test("a range with 3 missed and 2 successful occurrences runs exactly the 3, once, even with two backfills at once", async () => {
    const job = await minutely();
    const statuses: RunStatus[] = ["missed", "success", "missed", "success", "missed"];
    for (const [i, status] of statuses.entries()) await store.insertRun(record(job, T0 + (i + 1) * MINUTE, status));
    const range = { from: T0 + MINUTE, to: T0 + 5 * MINUTE, max: 100, now: clock.now() };

    const plan = await planBackfill(store, job, "UTC", range);
    expect(plan.items.map((i) => [i.before, i.action, i.attempt])).toEqual([["missed", "run", 2], ["success", "keep", 1], ["missed", "run", 2], ["success", "keep", 1], ["missed", "run", 2]]);

    const [first, second] = await Promise.all([
      planBackfill(store, job, "UTC", range).then((p) => runBackfill(context("op-1"), job, p, { concurrency: 1 })),
      planBackfill(store, job, "UTC", range).then((p) => runBackfill(context("op-2"), job, p, { concurrency: 1 })),
    ]);
    expect(first.ran + second.ran).toBe(3);
    expect(first.taken + second.taken).toBe(3);
    const missedKeys = [1, 3, 5].map((i) => occurrenceId(job.id, T0 + i * MINUTE));
    expect(requests.sort()).toEqual(missedKeys.sort());
    const runs = await store.listOccurrenceRuns(job.id, new Date(range.from), new Date(range.to), 100);
    const backfilled = runs.filter((r) => r.trigger === "backfill");
    expect(backfilled.map((r) => [r.run_id, r.attempt, r.status])).toEqual(missedKeys.map((k) => [k, 2, "success"]));

    // Done: a third backfill finds nothing left to run.
    const again = await planBackfill(store, job, "UTC", range);
    expect(again.items.filter((i) => i.action === "run")).toEqual([]);
  });

  test("an occurrence with no record runs as attempt 1; failed, skipped and running ones are kept", async () => {
    const job = await minutely();
    await store.insertRun(record(job, T0 + 2 * MINUTE, "error"));
    await store.insertRun(record(job, T0 + 3 * MINUTE, "skipped"));
    await store.insertRun(record(job, T0 + 4 * MINUTE, "running"));
    const plan = await planBackfill(store, job, "UTC", { from: T0 + MINUTE, to: T0 + 4 * MINUTE, max: 100, now: clock.now() });
    expect(plan.items.map((i) => [i.before, i.action, i.attempt])).toEqual([[null, "run", 1], ["error", "keep", 1], ["skipped", "keep", 1], ["running", "keep", 1]]);
    const summary = await runBackfill(context("op"), job, plan, { concurrency: 2 });
    expect(summary).toEqual({ occurrences: 4, to_run: 1, ran: 1, succeeded: 1, failed: 0, taken: 0, kept: 3 });
    expect((await store.getRun(occurrenceId(job.id, T0 + MINUTE)))?.trigger).toBe("backfill");
  });

  test("refuses a future end, a reversed range and more than --max occurrences", async () => {
    const job = await minutely();
    const now = clock.now();
    await expect(planBackfill(store, job, "UTC", { from: T0, to: now + MINUTE, max: 100, now })).rejects.toThrow("is in the future");
    await expect(planBackfill(store, job, "UTC", { from: T0 + MINUTE, to: T0, max: 100, now })).rejects.toThrow("must be before --to");
    await expect(planBackfill(store, job, "UTC", { from: T0, to: T0 + 9 * MINUTE, max: 3, now })).rejects.toThrow("more than --max 3 occurrences");
  });
});

describe("runs retry", () => {
  test("two operators retrying one failed run at once produce one new attempt", async () => {
    const job = await minutely();
    await store.insertRun(record(job, T0 + MINUTE, "error"));
    const runId = occurrenceId(job.id, T0 + MINUTE);
    const results = await Promise.allSettled([retryRun(context("op-1"), runId, []), retryRun(context("op-2"), runId, [])]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0]!.reason as FleetCronError).code).toBe("E_RETRY_RACE");
    expect(requests).toEqual([runId]);
    const attempts = await store.listOccurrenceRuns(job.id, new Date(T0 + MINUTE), new Date(T0 + MINUTE), 10);
    expect(attempts.map((r) => [r._id, r.trigger, r.status])).toEqual([[runId, "schedule", "error"], [`${runId}#2`, "retry", "success"]]);
  });

  test("follows the latest attempt; refuses a running or successful run with the reason", async () => {
    const job = await minutely();
    await store.insertRun(record(job, T0 + MINUTE, "lost"));
    await store.insertRun(record(job, T0 + MINUTE, "missed", 2));
    const runId = occurrenceId(job.id, T0 + MINUTE);
    const plan = await planRetry(store, `${runId}#2`);
    expect([plan.previous.status, plan.attempt]).toEqual(["missed", 3]);
    await store.insertRun(record(job, T0 + 2 * MINUTE, "success"));
    await store.insertRun(record(job, T0 + 3 * MINUTE, "running"));
    await expect(planRetry(store, occurrenceId(job.id, T0 + 2 * MINUTE))).rejects.toThrow("succeeded: there is nothing to re-drive");
    await expect(planRetry(store, occurrenceId(job.id, T0 + 3 * MINUTE))).rejects.toThrow("is still running");
    await expect(planRetry(store, "nope@2026")).rejects.toThrow('no run "nope@2026"');
  });
});

describe("apply with at and pause", () => {
  test("a past at is refused naming the time and zone; the same at re-applied is unchanged; a pause survives a re-apply", async () => {
    const now = T0;
    const doc = { name: "once", at: "2026-01-05T15:00", tz: "Europe/Berlin", url: "http://sink.test/o" };
    await applyJobs(store, [{ name: "once", doc }], { prune: false, now, defaultTz: "UTC" });
    // Later the time has passed: re-applying the same file changes nothing and is not an error.
    const later = T0 + 3 * 3_600_000;
    await pauseJob(store, "once", { by: "ops@h", note: "hold", defaultTz: "UTC", now: later });
    expect(await applyJobs(store, [{ name: "once", doc }], { prune: false, now: later, defaultTz: "UTC" })).toEqual([{ name: "once", change: "unchanged" }]);
    // An edit keeps the pause (FleetCron's state, not the file's).
    await applyJobs(store, [{ name: "once", doc: { ...doc, at: "2026-01-06T13:00" } }], { prune: false, now: later, defaultTz: "UTC" });
    expect((await requireJob(store, "once")).paused).toMatchObject({ by: "ops@h", note: "hold" });
    const error = await applyJobs(store, [{ name: "once", doc: { ...doc, at: "2026-01-05T12:30" } }], { prune: false, now: later, defaultTz: "UTC" }).catch((e) => e as FleetCronError);
    expect(error).toBeInstanceOf(FleetCronError);
    expect((error as FleetCronError).message).toContain('job "once": at: "2026-01-05T12:30" is 2026-01-05 12:30:00 (+01:00) (read in Europe/Berlin), which is already past');
    expect((await requireJob(store, "once")).at).toBe("2026-01-06T13:00");
  });
});
