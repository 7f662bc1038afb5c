import { Agent, type AgentDeps, type AgentSettings } from "../../src/agent/agent.ts";
import { StoreError } from "../../src/core/errors.ts";
import { silentLogger } from "../../src/core/logger.ts";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import type { Store } from "../../src/store/types.ts";
import { FakeClock } from "./fake-clock.ts";

export interface Call {
  machine: string;
  runId: string;
  url: string;
  at: number;
}

/**
 * A store whose calls all fail while `down` is set (a machine cut off from the database, or dead),
 * or hang while `frozen` is set and go through when it is lifted (a process paused, then resumed).
 */
export interface Link {
  store: Store;
  cut(down: boolean): void;
  freeze(frozen: boolean): void;
  /** The next `times` calls of `method` fail with a StoreError. */
  failNext(method: keyof Store, times?: number): void;
  /** Calls of `method` never answer while set. */
  hangMethod(method: keyof Store, hang: boolean): void;
  /** Calls of `method` answer `ms` later (on the harness's clock) while set; 0 clears it. */
  delayMethod(method: keyof Store, ms: number): void;
}

export function cuttable(store: Store, sleep: (ms: number) => Promise<void> = (ms) => Bun.sleep(ms)): Link {
  let down = false;
  let thaw: Promise<void> | null = null;
  let release = () => {};
  const failures = new Map<string, number>();
  const hanging = new Set<string>();
  const delays = new Map<string, number>();
  const proxy = new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== "function" || key === "close") return value;
      return async (...args: unknown[]) => {
        if (thaw) await thaw;
        if (down) throw new StoreError("connection refused (test)");
        const left = failures.get(String(key)) ?? 0;
        if (left > 0) {
          failures.set(String(key), left - 1);
          throw new StoreError(`${String(key)} failed (test)`);
        }
        if (hanging.has(String(key))) await new Promise(() => {});
        const delay = delays.get(String(key)) ?? 0;
        if (delay > 0) {
          const result = await value.apply(target, args);
          await sleep(delay);
          return result;
        }
        return value.apply(target, args);
      };
    },
  });
  return {
    store: proxy,
    failNext: (method, times = 1) => failures.set(method, times),
    hangMethod: (method, hang) => (hang ? hanging.add(method) : hanging.delete(method)),
    delayMethod: (method, ms) => (ms > 0 ? delays.set(method, ms) : delays.delete(method)),
    cut: (d) => (down = d),
    freeze(frozen) {
      if (frozen && !thaw) thaw = new Promise((resolve) => (release = resolve));
      if (!frozen && thaw) {
        thaw = null;
        release();
      }
    },
  };
}

/** The store, telling `onCall` the name of every method called on it. */
export function counting(store: Store, onCall: (method: string) => void): Store {
  return new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== "function" || key === "close") return value;
      return (...args: unknown[]) => {
        onCall(String(key));
        return value.apply(target, args);
      };
    },
  });
}

export interface Harness {
  clock: FakeClock;
  store: Store;
  calls: Call[];
  /** Requests that were aborted while they hung (the fence closing them, or a hard stop). */
  aborts: Call[];
  /** Every store call an agent made, by machine, method and (fake) time. */
  storeCalls: { machine: string; method: string; at: number }[];
  /** Requests to URLs containing this never answer until aborted. */
  hang: Set<string>;
  /** Requests to URLs containing a key answer that many ms later (on the fake clock), or when aborted. */
  slow: Map<string, number>;
  startAgent(machineId: string, overrides?: Partial<AgentSettings>, deps?: Partial<AgentDeps>): { agent: Agent; done: Promise<void> } & Omit<Link, "store">;
  close(): Promise<void>;
}

export const BASE_SETTINGS: Omit<AgentSettings, "machineId"> = {
  hostname: "test",
  version: "test",
  maxSerial: 10,
  heartbeatMs: 5000,
  deadAfterMs: 15_000,
  failoverStepMs: 5000,
  placement: "serial",
  catchupWindowMs: 3_600_000,
  historyDays: 30,
  maxConcurrentRuns: 50,
  shutdownTimeoutMs: 30_000,
  defaultTz: "UTC",
  secrets: {},
  userAgent: "FleetCron/test",
};

export function createHarness(startMs: number): Harness {
  const clock = new FakeClock(startMs);
  const store = openSqliteStore(":memory:");
  const calls: Call[] = [];
  const aborts: Call[] = [];
  const storeCalls: Harness["storeCalls"] = [];
  const hang = new Set<string>();
  const slow = new Map<string, number>();
  const agents: { agent: Agent; done: Promise<void> }[] = [];
  return {
    clock,
    store,
    calls,
    aborts,
    storeCalls,
    hang,
    slow,
    startAgent(machineId, overrides = {}, deps = {}) {
      const link = cuttable(
        counting(store, (method) => storeCalls.push({ machine: machineId, method, at: clock.now() })),
        (ms) => clock.sleep(ms),
      );
      const fetchStub = (async (input: string | URL | Request, init?: RequestInit) => {
        const url = String(input instanceof Request ? input.url : input);
        const headers = new Headers(init?.headers);
        calls.push({ machine: machineId, runId: headers.get("x-fleetcron-run-id") ?? "", url, at: clock.now() });
        const delay = [...slow].find(([key]) => url.includes(key))?.[1];
        if (delay !== undefined) {
          const aborted = new AbortController();
          init?.signal?.addEventListener("abort", () => aborted.abort(), { once: true });
          await clock.sleep(delay, aborted.signal);
          if (aborted.signal.aborted) {
            aborts.push({ machine: machineId, runId: headers.get("x-fleetcron-run-id") ?? "", url, at: clock.now() });
            throw new DOMException("aborted", "AbortError");
          }
        }
        if ([...hang].some((h) => url.includes(h))) {
          await new Promise((_, reject) =>
            init?.signal?.addEventListener(
              "abort",
              () => {
                aborts.push({ machine: machineId, runId: headers.get("x-fleetcron-run-id") ?? "", url, at: clock.now() });
                reject(new DOMException("aborted", "AbortError"));
              },
              { once: true },
            ),
          );
        }
        return new Response("{}", { status: 200, headers: { "content-type": "application/json" } });
      }) as typeof fetch;
      const agent = new Agent({ store: link.store, clock, log: silentLogger, settings: { ...BASE_SETTINGS, machineId, ...overrides }, fetch: fetchStub, ...deps });
      const done = agent.run();
      agents.push({ agent, done });
      const { store: _linked, ...controls } = link;
      return { agent, done, ...controls };
    },
    async close() {
      for (const { agent } of agents) agent.stop("test over");
      await clock.advance(60_000);
      await store.close();
    },
  };
}

/** A job written the way `jobs apply` writes it (FleetCron's timestamps, revision bumped), posting to sink.test. */
export async function addJob(h: Harness, name: string, fields: Record<string, unknown>): Promise<string> {
  const now = new Date(h.clock.now());
  const id = await h.store.createJob({ name, method: "POST", url: `http://sink.test/${name}?m={{machine_id}}`, created_at: now, updated_at: now, ...fields });
  await h.store.bumpJobsRevision(new Date(h.clock.now()));
  return id;
}
