import { createHash } from "node:crypto";
import { FailureThrottle, TokenSet } from "../../src/api/auth.ts";
import type { LifecycleOps } from "../../src/api/lifecycle.ts";
import type { ApiRole } from "../../src/config/schema.ts";
import { systemClock, type Clock } from "../../src/core/clock.ts";
import { silentLogger } from "../../src/core/logger.ts";
import { createRedactor } from "../../src/core/redact.ts";
import { FleetMetrics } from "../../src/observe/metrics.ts";
import type { AgentSnapshot } from "../../src/observe/observer.ts";
import { createObserveHandler, type ControlDeps } from "../../src/observe/server.ts";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import type { Store } from "../../src/store/types.ts";
import { startSink, type Sink } from "../support/sink.ts";

/** The HTTP handler of an agent, in process: a real SQLite store, a local sink, tokens by role. */
export const TOKENS: Record<ApiRole, string> = {
  read: "read-token-0123456789abcdef",
  operate: "operate-token-0123456789abcdef",
  admin: "admin-token-0123456789abcdef",
};
export const SECRET_VALUE = "s3cr3t-value-do-not-show-7f3a";

export function snapshotAt(now: number, secretKeys: string[]): AgentSnapshot {
  return {
    machineId: "node-1",
    hostname: "host-1",
    version: "test",
    serial: 1,
    placement: "spread",
    rank: 0,
    liveAgents: 1,
    phase: "running",
    store: { kind: "sqlite", location: ":memory:", reachable: true, downSince: null, lastError: null },
    startedAt: now,
    lastHeartbeatAt: now,
    runningAttempts: 0,
    slots: { inUse: 0, size: 50, queued: 0, lastSkippedAt: null },
    jobs: 0,
    invalidJobs: 0,
    heartbeatMs: 5000,
    deadAfterMs: 15000,
    defaultTz: "UTC",
    secretKeys,
  };
}

export interface ApiHarness {
  store: Store;
  sink: Sink;
  handler: (req: Request, info?: { address: string }) => Promise<Response>;
  call(method: string, path: string, opts?: { token?: string; body?: unknown; raw?: string; address?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; text: string; headers: Headers }>;
  close(): Promise<void>;
}

export function apiHarness(opts: { tokens?: boolean; clock?: Clock; lifecycle?: LifecycleOps; throttle?: FailureThrottle; runHere?: ControlDeps["runHere"] } = {}): ApiHarness {
  const store = openSqliteStore(":memory:");
  const sink = startSink({ status: (req) => (new URL(req.url).pathname === "/fail" ? 500 : 200) });
  const clock = opts.clock ?? systemClock;
  const secrets = { SINK: sink.url, API_KEY: SECRET_VALUE };
  const redact = createRedactor(Object.values(secrets));
  const tokens = new TokenSet(
    opts.tokens === false ? [] : (Object.entries(TOKENS) as [ApiRole, string][]).map(([role, token]) => ({ name: `${role}-bot`, role, sha256: createHash("sha256").update(token).digest("hex") })),
  );
  const abort = new AbortController();
  const handler = createObserveHandler({
    snapshot: () => snapshotAt(clock.now(), Object.keys(secrets)),
    metrics: new FleetMetrics(),
    store,
    clock,
    log: silentLogger,
    statusMaxAgeMs: 0,
    control: {
      tokens: () => tokens,
      redact: () => redact,
      placement: "spread",
      executeContext: () => ({ store, clock, machineId: "node-1", secrets, redact, userAgent: "FleetCron/test", defaultTz: "UTC", log: silentLogger, signal: abort.signal }),
      ...(opts.lifecycle ? { lifecycle: opts.lifecycle } : {}),
      ...(opts.runHere ? { runHere: opts.runHere } : {}),
      ...(opts.throttle ? { throttle: opts.throttle } : {}),
    },
  });
  return {
    store,
    sink,
    handler,
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      const body = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
      if (body !== undefined) headers["content-type"] = "application/json";
      const res = await handler(new Request(`http://127.0.0.1:8080${path}`, { method, headers, ...(body !== undefined ? { body } : {}) }), { address: o.address ?? "127.0.0.1" });
      const text = await res.text();
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = null;
      }
      return { status: res.status, body: parsed, text, headers: res.headers };
    },
    async close() {
      abort.abort();
      await sink.stop();
      await store.close();
    },
  };
}
