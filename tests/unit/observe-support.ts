/**
 * Test support for the observe tests: agents on the fake-clock harness that report to a
 * FleetMetrics, serve the observe handler and record each request's headers.
 */
import { Agent, type AgentSettings } from "../../src/agent/agent.ts";
import { silentLogger } from "../../src/core/logger.ts";
import { FleetMetrics } from "../../src/observe/metrics.ts";
import { createObserveHandler } from "../../src/observe/server.ts";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import type { Store } from "../../src/store/types.ts";
import { BASE_SETTINGS, cuttable } from "../support/agent-harness.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { parsePrometheusText, type MetricFamily } from "./observe-prom-parser.ts";

export { parsePrometheusText, ParseError, valueOf, type MetricFamily } from "./observe-prom-parser.ts";

// ── agents on a fake clock, with metrics ──────────────────────────────────────────────────────

export interface SentRequest {
  machine: string;
  url: string;
  runId: string;
  headers: Record<string, string>;
  at: number;
}

export interface ObservedAgent {
  agent: Agent;
  metrics: FleetMetrics;
  done: Promise<void>;
  cut(down: boolean): void;
  /** GETs a path from this agent's observe handler (no socket). */
  get(path: string): Promise<Response>;
  scrape(): Promise<Map<string, MetricFamily>>;
}

export interface ObserveHarness {
  clock: FakeClock;
  store: Store;
  requests: SentRequest[];
  /** URLs containing a key answer with that status; containing a `hang` entry, never (until aborted). */
  status: Map<string, number>;
  /** URLs containing a key answer with that body. */
  bodies: Map<string, string>;
  hang: Set<string>;
  start(machineId: string, overrides?: Partial<AgentSettings>): ObservedAgent;
  addJob(name: string, fields: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export function observeHarness(startMs: number): ObserveHarness {
  const clock = new FakeClock(startMs);
  const store = openSqliteStore(":memory:");
  // SQLite's clock is this host's: on the fake clock the store's time is the fake time (no skew).
  store.serverTime = async () => new Date(clock.now());
  const requests: SentRequest[] = [];
  const status = new Map<string, number>();
  const bodies = new Map<string, string>();
  const hang = new Set<string>();
  const agents: ObservedAgent[] = [];
  return {
    clock,
    store,
    requests,
    status,
    bodies,
    hang,
    start(machineId, overrides = {}) {
      const link = cuttable(store);
      const fetchStub = (async (input: string | URL | globalThis.Request, init?: RequestInit) => {
        const url = String(input instanceof globalThis.Request ? input.url : input);
        const headers = Object.fromEntries(new Headers(init?.headers));
        requests.push({ machine: machineId, url, runId: headers["x-fleetcron-run-id"] ?? "", headers, at: clock.now() });
        if ([...hang].some((h) => url.includes(h))) {
          await new Promise((_, reject) => init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")), { once: true }));
        }
        const code = [...status].find(([k]) => url.includes(k))?.[1] ?? 200;
        const body = [...bodies].find(([k]) => url.includes(k))?.[1] ?? JSON.stringify({ ok: code < 400 });
        return new Response(body, { status: code, headers: { "content-type": "application/json" } });
      }) as typeof fetch;
      const metrics = new FleetMetrics();
      const settings = { ...BASE_SETTINGS, machineId, ...overrides };
      const agent = new Agent({ store: link.store, clock, log: silentLogger, settings, fetch: fetchStub, observer: metrics });
      const handler = createObserveHandler({ snapshot: () => agent.snapshot(), metrics, store: link.store, clock, log: silentLogger, storeTimeoutMs: 1000 });
      const get = (path: string) => handler(new globalThis.Request(`http://127.0.0.1${path}`));
      const observed: ObservedAgent = {
        agent,
        metrics,
        done: agent.run(),
        cut: link.cut,
        get,
        scrape: async () => parsePrometheusText(await (await get("/metrics")).text()),
      };
      agents.push(observed);
      return observed;
    },
    async addJob(name, fields) {
      const now = new Date(clock.now());
      const request = fields.actions ? {} : { method: "POST", url: `http://sink.test/${encodeURIComponent(name)}` };
      const id = await store.createJob({ name, ...request, created_at: now, updated_at: now, ...fields });
      await store.bumpJobsRevision(now);
      return id;
    },
    async close() {
      for (const { agent } of agents) agent.stop("test over");
      await clock.advance(60_000);
      await store.close();
    },
  };
}
