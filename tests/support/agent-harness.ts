import { Agent, type AgentSettings } from "../../src/agent/agent.ts";
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
export function cuttable(store: Store): { store: Store; cut(down: boolean): void; freeze(frozen: boolean): void } {
  let down = false;
  let thaw: Promise<void> | null = null;
  let release = () => {};
  const proxy = new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== "function" || key === "close") return value;
      return async (...args: unknown[]) => {
        if (thaw) await thaw;
        if (down) throw new Error("connection refused (test)");
        return value.apply(target, args);
      };
    },
  });
  return {
    store: proxy,
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
  startAgent(machineId: string, overrides?: Partial<AgentSettings>): { agent: Agent; done: Promise<void>; cut(down: boolean): void; freeze(frozen: boolean): void };
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
  const agents: { agent: Agent; done: Promise<void> }[] = [];
  return {
    clock,
    store,
    calls,
    aborts,
    storeCalls,
    hang,
    startAgent(machineId, overrides = {}) {
      const link = cuttable(counting(store, (method) => storeCalls.push({ machine: machineId, method, at: clock.now() })));
      const fetchStub = (async (input: string | URL | Request, init?: RequestInit) => {
        const url = String(input instanceof Request ? input.url : input);
        const headers = new Headers(init?.headers);
        calls.push({ machine: machineId, runId: headers.get("x-fleetcron-run-id") ?? "", url, at: clock.now() });
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
      const agent = new Agent({ store: link.store, clock, log: silentLogger, settings: { ...BASE_SETTINGS, machineId, ...overrides }, fetch: fetchStub });
      const done = agent.run();
      agents.push({ agent, done });
      return { agent, done, cut: link.cut, freeze: link.freeze };
    },
    async close() {
      for (const { agent } of agents) agent.stop("test over");
      await clock.advance(60_000);
      await store.close();
    },
  };
}
