/**
 * A page load cannot take the agent down (issue: hardening, item 6): page loads share one
 * gathering of the store, at most one per few seconds, and /healthz never waits on it.
 */
import { describe, expect, test } from "bun:test";
import { silentLogger } from "../../src/core/logger.ts";
import { FleetMetrics } from "../../src/observe/metrics.ts";
import { createObserveHandler } from "../../src/observe/server.ts";
import { StatusCache } from "../../src/observe/status-cache.ts";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import type { Store } from "../../src/store/types.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { snapshotAt } from "./api-support.ts";

const T0 = Date.parse("2026-03-02T10:00:00Z");

/**
 * A store that counts gatherings (each reads the latest runs once) and can hold them at their
 * first read (the machine list) until released.
 */
function countingStore(): { store: Store; gatherings: () => number; hold(): void; release(): void } {
  const store = openSqliteStore(":memory:");
  let count = 0;
  let gate: Promise<void> | null = null;
  let open = () => {};
  const latestRunsByJob = store.latestRunsByJob.bind(store);
  store.latestRunsByJob = () => {
    count++;
    return latestRunsByJob();
  };
  const listMachines = store.listMachines.bind(store);
  store.listMachines = async () => {
    if (gate) await gate;
    return listMachines();
  };
  return {
    store,
    gatherings: () => count,
    hold: () => (gate = new Promise((resolve) => (open = resolve))),
    release: () => {
      gate = null;
      open();
    },
  };
}

describe("status page under load", () => {
  test("16 concurrent page loads read the store once; a later load within the age limit reads nothing", async () => {
    const clock = new FakeClock(T0);
    const { store, gatherings } = countingStore();
    const handler = createObserveHandler({ snapshot: () => snapshotAt(clock.now(), []), metrics: new FleetMetrics(), store, clock, log: silentLogger, statusMaxAgeMs: 5000 });
    const pages = await Promise.all(Array.from({ length: 16 }, () => handler(new Request("http://127.0.0.1/"))));
    expect(pages.map((p) => p.status)).toEqual(Array(16).fill(200));
    expect(gatherings()).toBe(1);
    await clock.advance(4000);
    await handler(new Request("http://127.0.0.1/"));
    expect(gatherings()).toBe(1);
    await clock.advance(1000);
    await handler(new Request("http://127.0.0.1/"));
    expect(gatherings()).toBe(2);
    await store.close();
  });

  test("/healthz answers while a gathering is stuck on the store, and stuck page loads do not pile up", async () => {
    const clock = new FakeClock(T0);
    const { store, gatherings, hold, release } = countingStore();
    const handler = createObserveHandler({ snapshot: () => snapshotAt(clock.now(), []), metrics: new FleetMetrics(), store, clock, log: silentLogger, storeTimeoutMs: 50_000 });
    hold();
    const pages = Array.from({ length: 8 }, () => handler(new Request("http://127.0.0.1/")));
    const health = await handler(new Request("http://127.0.0.1/healthz"));
    expect(health.status).toBe(200);
    release();
    expect((await Promise.all(pages)).every((p) => p.status === 200)).toBe(true);
    expect(gatherings()).toBe(1);
    await store.close();
  });
});

describe("StatusCache", () => {
  test("a failed gathering is not kept: the next call gathers again", async () => {
    const clock = new FakeClock(T0);
    let calls = 0;
    const cache = new StatusCache(async () => {
      calls++;
      if (calls === 1) throw new Error("store down");
      return calls;
    }, clock, 5000);
    await expect(cache.get()).rejects.toThrow("store down");
    expect((await cache.get()).data).toBe(2);
    expect((await cache.get()).data).toBe(2);
    expect(calls).toBe(2);
  });
});
