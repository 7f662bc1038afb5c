import type { AgentSnapshot } from "./observer.ts";
import type { Clock } from "../core/clock.ts";
import { ConfigError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { Store } from "../store/types.ts";
import { CONTENT_TYPE } from "./exposition.ts";
import { assessHealth } from "./health.ts";
import type { FleetMetrics } from "./metrics.ts";
import { renderStatusPage } from "./page.ts";
import { StatusCache } from "./status-cache.ts";
import { gatherStatus, type StatusData } from "./status-data.ts";

export interface ObserveDeps {
  snapshot: () => AgentSnapshot;
  metrics: FleetMetrics;
  store: Store;
  clock: Clock;
  log: Logger;
  /** How long the status page waits for the store before it says it cannot read it. */
  storeTimeoutMs?: number;
  /** Runs listed on the page. */
  recentRuns?: number;
  /** The page shows the store as read at most this long ago (one gathering at a time). */
  statusMaxAgeMs?: number;
}

const COMMON_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};
// No script, no remote anything: the page is one document with an inline stylesheet.
const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** The HTTP handler, without a socket: `/healthz`, `/metrics`, `/` (tests call it directly). */
export function createObserveHandler(deps: ObserveDeps): (req: Request) => Promise<Response> {
  const timeoutMs = deps.storeTimeoutMs ?? 5000;
  // Page loads share one gathering: /healthz and /metrics never wait on it (they read the agent).
  const status = new StatusCache((now) => {
    const snapshot = deps.snapshot();
    return gatherStatus(deps.store, {
      now,
      deadAfterMs: snapshot.deadAfterMs,
      defaultTz: snapshot.defaultTz,
      secretKeys: snapshot.secretKeys,
      thisMachine: snapshot.machineId,
      failures: 10,
      recentRuns: deps.recentRuns ?? 30,
    });
  }, deps.clock, deps.statusMaxAgeMs ?? 5000);
  return async (req) => {
    const url = new URL(req.url);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("only GET and HEAD\n", { status: 405, headers: { ...COMMON_HEADERS, allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" } });
    }
    const now = deps.clock.now();
    if (url.pathname === "/healthz") {
      const health = assessHealth(deps.snapshot(), now);
      return new Response(`${JSON.stringify(health, null, 2)}\n`, {
        status: health.ok ? 200 : 503,
        headers: { ...COMMON_HEADERS, "content-type": "application/json; charset=utf-8" },
      });
    }
    if (url.pathname === "/metrics") {
      return new Response(deps.metrics.render(deps.snapshot()), { headers: { ...COMMON_HEADERS, "content-type": CONTENT_TYPE } });
    }
    if (url.pathname === "/" || url.pathname === "/index.html") {
      const snapshot = deps.snapshot();
      const health = assessHealth(snapshot, now);
      let data: StatusData | null = null;
      let storeError: string | undefined;
      try {
        data = (await withTimeout(status.get(), timeoutMs, "the store")).data;
      } catch (error) {
        storeError = (error as Error).message;
      }
      const html = renderStatusPage({ now, snapshot, health, data, ...(storeError !== undefined ? { storeError } : {}) });
      return new Response(html, {
        status: data ? 200 : 503,
        headers: { ...COMMON_HEADERS, "content-type": "text/html; charset=utf-8", "content-security-policy": PAGE_CSP },
      });
    }
    return new Response("not found: try /, /metrics or /healthz\n", { status: 404, headers: { ...COMMON_HEADERS, "content-type": "text/plain; charset=utf-8" } });
  };
}

export interface ObserveServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** Serves the handler on `host:port` (port 0: any free port). Throws a readable error when it cannot bind. */
export function startObserveServer(deps: ObserveDeps, host: string, port: number): ObserveServer {
  const handle = createObserveHandler(deps);
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: host,
      port,
      fetch: async (req) => {
        try {
          return await handle(req);
        } catch (error) {
          deps.log.error(`http: ${new URL(req.url).pathname}: ${(error as Error)?.stack ?? error}`);
          return new Response("internal error\n", { status: 500, headers: COMMON_HEADERS });
        }
      },
    });
  } catch (error) {
    throw new ConfigError(`http_port ${port} on http_host ${host}: cannot listen (${(error as Error).message}); choose another port, 0 for any free one, or null to turn the server off`);
  }
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${server.port}/`,
    port: server.port!,
    stop: async () => {
      await server.stop(true);
    },
  };
}
