import type { AgentSnapshot } from "./observer.ts";
import { FailureThrottle, TokenSet } from "../api/auth.ts";
import { UNAVAILABLE_LIFECYCLE, type LifecycleOps } from "../api/lifecycle.ts";
import { API_PREFIX, handleApi, type ApiDeps, type RequestInfo } from "../api/router.ts";
import { SessionStore } from "../api/session.ts";
import { handleUi, html, viewer, type UiDeps } from "./page-actions.ts";
import { listAuditEntries } from "../control/audit.ts";
import type { ExecuteContext } from "../coordinator/attempt.ts";
import type { PlacementMode } from "../coordinator/placement.ts";
import type { Clock } from "../core/clock.ts";
import { ConfigError, FleetCronError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { Redactor } from "../core/redact.ts";
import type { Job } from "../jobs/types.ts";
import type { RunRecord, Store } from "../store/types.ts";
import { CONTENT_TYPE } from "./exposition.ts";
import { assessHealth } from "./health.ts";
import type { FleetMetrics } from "./metrics.ts";
import { renderStatusPage, type PageExtras } from "./page.ts";
import { StatusCache } from "./status-cache.ts";
import { gatherStatus, runView, type RunView, type StatusData } from "./status-data.ts";

/** What the API and the page's actions need from the agent (src/cli/commands/run.ts wires it). */
export interface ControlDeps {
  /** Read per request: `reload-config` may change them. */
  tokens: () => TokenSet;
  /** Masks this agent's secret values. */
  redact: () => Redactor;
  /** Where a triggered run executes: this agent's machine id, secrets and fetch. */
  executeContext: () => ExecuteContext;
  /** The agent runs a manual occurrence it owns itself (src/api/operations.ts `triggerByName`). */
  runHere?: (job: Job, runId: string, by: string) => Promise<RunRecord>;
  placement: PlacementMode;
  /** Pause, resume, backfill, retry; answers 501 until wired (src/api/lifecycle.ts). */
  lifecycle?: LifecycleOps;
  /** Slows down repeated token failures per address (tests pass one with a fake clock's delays). */
  throttle?: FailureThrottle;
}

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
  /** The HTTP API and the page's actions; absent: read-only, no tokens (as before issue 15). */
  control?: ControlDeps;
}

const COMMON_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};
/** Jobs whose run strip and chart the page draws, and the records read per job for them. */
const PICTURED_JOBS = 50;
const HISTORY_PER_JOB = 100;
const AUDIT_ON_PAGE = 20;

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** The run strips' and charts' history, and the latest changes, for the page. */
async function gatherExtras(store: Store, data: StatusData, redact: Redactor): Promise<PageExtras> {
  const jobs = data.jobs.list.slice(0, PICTURED_JOBS);
  const [histories, audit] = await Promise.all([
    Promise.all(jobs.map((j) => store.listRuns({ job_id: j.id, limit: HISTORY_PER_JOB }))),
    listAuditEntries(store, { limit: AUDIT_ON_PAGE }, redact),
  ]);
  const history = new Map<string, RunView[]>();
  jobs.forEach((j, i) => history.set(j.id, histories[i]!.map(runView)));
  return { history, audit };
}

/** The HTTP handler, without a socket: `/healthz`, `/metrics`, `/`, `/api/v1`, the page's forms (tests call it directly). */
export function createObserveHandler(deps: ObserveDeps): (req: Request, info?: RequestInfo) => Promise<Response> {
  const timeoutMs = deps.storeTimeoutMs ?? 5000;
  const control = deps.control;
  const noTokens = new TokenSet([]);
  const redact = () => control?.redact() ?? ((text: string) => text);
  // Page loads share one gathering: /healthz and /metrics never wait on it (they read the agent).
  const gather = () =>
    new StatusCache(async (now) => {
      const snapshot = deps.snapshot();
      const data = await gatherStatus(deps.store, {
        now,
        deadAfterMs: snapshot.deadAfterMs,
        defaultTz: snapshot.defaultTz,
        secretKeys: snapshot.secretKeys,
        thisMachine: snapshot.machineId,
        failures: 10,
        recentRuns: deps.recentRuns ?? 30,
      });
      return { data, extras: await gatherExtras(deps.store, data, redact()) };
    }, deps.clock, deps.statusMaxAgeMs ?? 5000);
  let status = gather();
  const api: ApiDeps = {
    store: deps.store,
    clock: deps.clock,
    log: deps.log,
    settings: () => {
      const snapshot = deps.snapshot();
      return { secretKeys: snapshot.secretKeys, defaultTz: snapshot.defaultTz, deadAfterMs: snapshot.deadAfterMs, heartbeatMs: snapshot.heartbeatMs, placement: control?.placement ?? snapshot.placement, redact: redact() };
    },
    executeContext: () => {
      if (!control) throw new FleetCronError("E_NOT_AVAILABLE", "this server cannot run jobs (no agent wired in)");
      return control.executeContext();
    },
    ...(control?.runHere ? { runHere: control.runHere } : {}),
    lifecycle: control?.lifecycle ?? UNAVAILABLE_LIFECYCLE,
    tokens: () => control?.tokens() ?? noTokens,
    throttle: control?.throttle ?? new FailureThrottle(),
  };
  const ui: UiDeps = {
    api,
    sessions: new SessionStore(),
    machineId: () => deps.snapshot().machineId,
    // After an action the next page load reads the store again, so it shows what the action did.
    invalidate: () => (status = gather()),
  };
  return async (req, info = { address: "unknown" }) => {
    const url = new URL(req.url);
    if (url.pathname === API_PREFIX || url.pathname.startsWith(`${API_PREFIX}/`)) return handleApi(api, req, info);
    const page = await handleUi(ui, req, info);
    if (page) return page;
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
      const seen = await viewer(ui, req, info, { loginPage: false });
      if ("response" in seen) return seen.response;
      return new Response(deps.metrics.render(deps.snapshot()), { headers: { ...COMMON_HEADERS, "content-type": CONTENT_TYPE } });
    }
    if (url.pathname === "/" || url.pathname === "/index.html") {
      const seen = await viewer(ui, req, info, { loginPage: true });
      if ("response" in seen) return seen.response;
      const snapshot = deps.snapshot();
      const health = assessHealth(snapshot, now);
      let data: StatusData | null = null;
      let extras: PageExtras | undefined;
      let storeError: string | undefined;
      try {
        ({ data, extras } = (await withTimeout(status.get(), timeoutMs, "the store")).data);
      } catch (error) {
        storeError = (error as Error).message;
      }
      const page = renderStatusPage({ now, snapshot, health, data, ui: seen.ui, ...(extras ? { extras } : {}), ...(storeError !== undefined ? { storeError } : {}) });
      return html(data ? 200 : 503, page);
    }
    return new Response("not found: try /, /metrics, /healthz or /api/v1/openapi.json\n", { status: 404, headers: { ...COMMON_HEADERS, "content-type": "text/plain; charset=utf-8" } });
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
      fetch: async (req, srv) => {
        try {
          return await handle(req, { address: srv.requestIP(req)?.address ?? "unknown" });
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
